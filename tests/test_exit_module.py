"""ExitModule: emergency exit to pre-approved custodians only, after the escrow delay, cancellable,
working without the guard and without the owners' keys — and not a back door."""

import json

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel

from custody.contracts.deploy import deploy_plain
from custody.contracts.infra import DEMO_TOKEN_ADDRESS
from custody.exceptions import PolicyViolation, TransactionFailed, VaultError
from custody.policy.onchain import installed_guard
from custody.signers.local import anvil_address, anvil_signer
from custody.store import exit_signatures
from custody.vault import exit as vault_exit
from custody.vault import proposals, service
from tests.resilience_helpers import (
    BROKER,
    COUNCIL,
    CUSTODIAN,
    ETH,
    OWNERS,
    RESILIENT,
    SECOND_CUSTODIAN,
    USD,
    advance,
    execute_with,
    install_reverting_guard,
    resilient_vault,
    sign_exit,
)  # fmt: skip


def _token_balance(session, who):
    return session.contract("TestERC20", DEMO_TOKEN_ADDRESS).functions.balanceOf(who).call()


def test_exit_moves_everything_to_the_custodian_only_after_the_delay(session):
    vault = resilient_vault(session)
    request = sign_exit(session, vault, CUSTODIAN)
    vault_exit.initiate(session, request)
    status = vault_exit.status(session, vault.id)
    assert status.pending and status.pending_custodian == CUSTODIAN
    with pytest.raises(VaultError, match="becomes final at .* the owners can still cancel it"):
        vault_exit.finalize(session, vault.id)
    advance(session, 2 * 3600)
    eth_before, usd_before = session.chain.w3.eth.get_balance(CUSTODIAN), _token_balance(session, CUSTODIAN)
    vault_exit.finalize(session, vault.id)
    assert session.chain.w3.eth.get_balance(CUSTODIAN) - eth_before == 40 * ETH
    assert _token_balance(session, CUSTODIAN) - usd_before == 50_000 * USD
    assert session.chain.w3.eth.get_balance(vault.safe) == 0 and _token_balance(session, vault.safe) == 0
    assert not vault_exit.status(session, vault.id).pending


def test_quorum_and_initiators_are_enforced(session):
    vault = resilient_vault(session)
    one = sign_exit(session, vault, CUSTODIAN, signers=COUNCIL[:1])
    with pytest.raises(VaultError, match="has 1 valid initiator signature\\(s\\); the quorum is 2; nothing was sent"):
        vault_exit.initiate(session, one)
    from custody.exceptions import SignerError

    with pytest.raises(SignerError, match="may not initiate exits"):
        vault_exit.sign(session, one, anvil_signer(OWNERS[0]))  # with a council, owners are not initiators


@pytest.mark.parametrize("forgery", ["another_initiators_signature", "a_non_initiators_signature"])
def test_a_stored_signature_counts_only_if_it_recovers_to_its_initiator(session, forgery):
    """The workspace database is not trusted: a signature row is checked against its signer and the module."""
    vault = resilient_vault(session)
    request = sign_exit(session, vault, CUSTODIAN)  # two council signatures: the quorum
    (_first, first_blob), (second, _blob) = request.signatures
    with session.store.begin() as conn:
        if forgery == "another_initiators_signature":  # the second signer's row holds the first's signature
            conn.execute(
                exit_signatures.update()
                .where(exit_signatures.c.request_id == request.id, exit_signatures.c.signer == second)
                .values(signature="0x" + first_blob.hex())
            )
        else:  # an owner (no initiator when there is a council) signed correctly, stored in place of the second
            owner = anvil_signer(OWNERS[0])
            signature = owner.sign_typed_data(request.typed_data(session.chain_id, vault.safe))
            conn.execute(
                exit_signatures.update()
                .where(exit_signatures.c.request_id == request.id, exit_signatures.c.signer == second)
                .values(signer=owner.address, signature=signature.to_hex())
            )
    with pytest.raises(VaultError, match="has 1 valid initiator signature\\(s\\); the quorum is 2; nothing was sent"):
        vault_exit.initiate(session, vault_exit.get_request(session, request.id))


def test_only_pre_approved_custodians(session):
    vault = resilient_vault(session)
    with pytest.raises(VaultError, match="is not a pre-approved fallback custodian"):
        vault_exit.open_request(session, vault.id, BROKER)


def _raw_initiate(session, vault, custodian, signers, deadline=None):
    """Call initiate directly with EIP-712 signatures (bypassing the Python checks)."""
    module = session.contract("ExitModule", vault.exit_module)
    deadline = deadline or session.chain.latest_timestamp() + 3600
    digest = bytes(module.functions.requestDigest(custodian, deadline).call())
    from custody.signers.ecdsa import sign_digest_with_key
    from custody.signers.local import anvil_private_key

    sigs = sorted(
        ((anvil_address(i), sign_digest_with_key(anvil_private_key(i), digest).to_bytes()) for i in signers),
        key=lambda p: int(p[0], 16),
    )
    data = bytes.fromhex(module.encode_abi("initiate", [custodian, deadline, b"".join(s for _a, s in sigs)])[2:])
    return session.send(to=vault.exit_module, data=data, what="raw initiate")


@pytest.mark.parametrize(
    "custodian,signers,error",
    [
        (BROKER, COUNCIL[:2], "ExitModuleCustodianNotApproved"),
        (CUSTODIAN, COUNCIL[:1], "ExitModuleQuorumNotMet\\(valid=1, quorum=2\\)"),
        (CUSTODIAN, (COUNCIL[0], OWNERS[0]), "ExitModuleInvalidSigner"),
        (CUSTODIAN, (COUNCIL[0], COUNCIL[0]), "ExitModuleInvalidSigner"),
    ],
)
def test_contract_rejects_bad_initiations(session, custodian, signers, error):
    vault = resilient_vault(session)
    with pytest.raises(TransactionFailed, match=error):
        _raw_initiate(session, vault, custodian, signers)


def test_expired_request_and_second_initiation_are_rejected(session):
    vault = resilient_vault(session)
    with pytest.raises(TransactionFailed, match="ExitModuleRequestExpired"):
        _raw_initiate(session, vault, CUSTODIAN, COUNCIL[:2], deadline=session.chain.latest_timestamp() - 1)
    _raw_initiate(session, vault, CUSTODIAN, COUNCIL[:2])
    with pytest.raises(TransactionFailed, match="ExitModuleExitPending"):
        _raw_initiate(session, vault, SECOND_CUSTODIAN, COUNCIL[1:])


def test_an_initiated_request_is_not_initiated_again_and_no_new_request_opens_while_it_is_pending(session):
    vault = resilient_vault(session)
    request = sign_exit(session, vault, CUSTODIAN)
    receipt = vault_exit.initiate(session, request)
    initiated = vault_exit.get_request(session, request.id)
    assert initiated.state is vault_exit.ExitState.INITIATED
    with pytest.raises(VaultError, match=rf"exit request {request.id} is initiated already \(tx {receipt.tx_hash}\)"):
        vault_exit.initiate(session, initiated)
    with pytest.raises(VaultError, match=f"an exit to {CUSTODIAN} is already pending on vault {vault.name}"):
        vault_exit.open_request(session, vault.id, SECOND_CUSTODIAN)


def test_owners_are_told_to_propose_the_cancel_where_the_policy_does_not_let_them_cancel(session, tmp_path):
    policy = tmp_path / "no-owner-cancel.yaml"
    text = RESILIENT.read_text()
    assert text.count("owners_can_cancel: true") == 1
    policy.write_text(text.replace("owners_can_cancel: true", "owners_can_cancel: false"))
    vault, _ = service.create_vault(session, policy, name="no-owner-cancel")
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    with pytest.raises(VaultError, match="policy lets only the Safe or its timelock cancel an exit: propose it"):
        vault_exit.cancel_as_owner(session, vault.id, anvil_signer(OWNERS[0]))
    assert vault_exit.status(session, vault.id).pending  # nothing was sent


def test_finalize_twice_and_before_the_delay_are_rejected(session):
    vault = resilient_vault(session)
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    module = session.contract("ExitModule", vault.exit_module)
    finalize = bytes.fromhex(module.encode_abi("finalize", [])[2:])
    with pytest.raises(TransactionFailed, match="ExitModuleTooEarly"):
        session.send(to=vault.exit_module, data=finalize, what="early finalize")
    advance(session, 2 * 3600)
    session.send(to=vault.exit_module, data=finalize, what="finalize")
    with pytest.raises(TransactionFailed, match="ExitModuleNoPendingExit"):
        session.send(to=vault.exit_module, data=finalize, what="second finalize")


def test_cancel_by_owner_safe_or_nobody_else(session):
    vault = resilient_vault(session)
    request = sign_exit(session, vault, CUSTODIAN)
    vault_exit.initiate(session, request)
    module = session.contract("ExitModule", vault.exit_module)
    cancel = bytes.fromhex(module.encode_abi("cancel", [])[2:])
    from custody.chain.transactions import send_transaction
    from custody.contracts.errors import decode_revert

    with pytest.raises(TransactionFailed, match="ExitModuleNotAuthorized"):
        send_transaction(
            session.chain,
            anvil_signer(8),
            to=vault.exit_module,
            data=cancel,
            what="stranger cancels",
            decoder=decode_revert,
        )
    owner = anvil_signer(OWNERS[2])
    balance = session.chain.w3.eth.get_balance
    before = balance(owner.address)
    receipt = vault_exit.cancel_as_owner(session, vault.id, owner)
    assert not vault_exit.status(session, vault.id).pending
    assert vault_exit.get_request(session, request.id).state is vault_exit.ExitState.CANCELLED
    # an owner holding ETH pays its own gas (only an owner without any is funded, on a local chain)
    price = session.chain.w3.eth.get_transaction_receipt(receipt.tx_hash)["effectiveGasPrice"]
    assert before - balance(owner.address) == receipt.gas_used * price
    advance(session, 3 * 3600)
    with pytest.raises(VaultError, match="has no pending exit"):
        vault_exit.finalize(session, vault.id)  # a cancelled exit can't be finalized
    # a new exit, cancelled by the Safe itself (an owner-signed proposal the guard lets through)
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    target, data = vault_exit.cancel_proposal_data(session, vault.id)
    execute_with(session, proposals.propose(session, vault.id, to=target, data=data))
    assert not vault_exit.status(session, vault.id).pending


def test_configuration_changes_only_through_the_timelock(session):
    vault = resilient_vault(session)
    module = session.contract("ExitModule", vault.exit_module)
    cfg = ([BROKER], [], 1, 0, True, [])
    with pytest.raises(TransactionFailed, match="ExitModuleNotAuthorized"):
        session.send(
            to=vault.exit_module, data=bytes.fromhex(module.encode_abi("configure", [cfg])[2:]), what="configure"
        )
    # the owners cannot reach it through the Safe either: only a timelock-scheduled call would
    with pytest.raises(PolicyViolation, match="CustodyGuardCallForbidden"):
        proposals.propose(
            session, vault.id, to=vault.exit_module, data=bytes.fromhex(module.encode_abi("configure", [cfg])[2:])
        )


def test_reentrant_custodian_cannot_move_funds_twice(session, tmp_path):
    custodian = deploy_plain(
        session.chain, session.sender, "ReentrantCustodian", constructor_types=[], constructor_args=[]
    ).address
    from tests.resilience_helpers import RESILIENT

    template = tmp_path / "reentrant.yaml"
    template.write_text(RESILIENT.read_text().replace(CUSTODIAN, custodian))
    vault, _ = service.create_vault(session, template, name="reentrant")
    session.send(to=vault.safe, value=3 * ETH, what="fund")
    session.send(
        to=custodian, data=sel("setModule(address)") + encode(["address"], [vault.exit_module]), what="point at module"
    )
    vault_exit.initiate(session, sign_exit(session, vault, custodian))
    advance(session, 2 * 3600)
    receipt = vault_exit.finalize(session, vault.id)
    module = session.contract("ExitModule", vault.exit_module)
    from web3.logs import DISCARD

    events = module.events.ExitAssetMoved().process_receipt(receipt.raw, errors=DISCARD)
    (moved,) = [e["args"] for e in events if e["args"]["token"] == "0x" + "00" * 20]
    # the re-entry reverted inside the custodian, so the ETH transfer failed as a whole: nothing moved twice
    assert moved["success"] is False
    assert session.chain.w3.eth.get_balance(custodian) == 0 and session.chain.w3.eth.get_balance(vault.safe) == 3 * ETH


def test_vault_with_an_always_reverting_guard_can_still_exit(session):
    vault = resilient_vault(session)
    bad = install_reverting_guard(session, vault)
    assert installed_guard(session, vault.safe) == bad
    proposal = proposals.propose(
        session, vault.id, to=BROKER, value=ETH, force=True
    )  # the pre-flight cannot read a foreign guard
    proposals.sign(session, proposal, anvil_signer(1))
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(2))
    with pytest.raises(TransactionFailed, match="RevertingGuardRefusesEverything"):
        proposals.execute(session, proposals.get_proposal(session, proposal.id))
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    advance(session, 2 * 3600)
    before = session.chain.w3.eth.get_balance(CUSTODIAN)
    vault_exit.finalize(session, vault.id)
    assert session.chain.w3.eth.get_balance(CUSTODIAN) - before == 40 * ETH


def test_key_loss_recovery_through_the_council(session):
    """Two of three owners lost their keys: no transfer can reach the 2-of-3 threshold, but the
    recovery council moves the funds to the fallback custodian."""
    vault = resilient_vault(session)
    lonely = proposals.propose(session, vault.id, to=BROKER, value=ETH)
    proposals.sign(session, lonely, anvil_signer(OWNERS[0]))
    from custody.exceptions import NotEnoughSignatures

    with pytest.raises(NotEnoughSignatures):
        proposals.execute(session, proposals.get_proposal(session, lonely.id))
    vault_exit.initiate(session, sign_exit(session, vault, SECOND_CUSTODIAN, signers=COUNCIL[1:]))
    advance(session, 2 * 3600 + 1)
    vault_exit.finalize(session, vault.id)
    assert session.chain.w3.eth.get_balance(vault.safe) == 0


def test_cli_exit_flow(run_cli, session):
    vault = resilient_vault(session)
    for i in COUNCIL[:2]:
        out = run_cli("exit", "sign", vault.name, "--custodian", CUSTODIAN, "--signer", f"anvil:{i}", "--json")
        assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["signatures"] == 2
    assert run_cli("exit", "initiate", vault.name, "--custodian", CUSTODIAN).exit_code == 0
    status = json.loads(run_cli("exit", "status", vault.name, "--json").stdout)
    assert status["pending"] and status["pending_custodian"] == CUSTODIAN
    early = run_cli("exit", "finalize", vault.name)
    assert early.exit_code == 1 and "becomes final at" in early.stderr
    advance(session, 2 * 3600)
    assert run_cli("exit", "finalize", vault.name).exit_code == 0


def test_an_unknown_exit_request_is_named_not_read_as_an_empty_row(session):
    """Looking up a request id the workspace never recorded fails with one sentence naming it (a missing check would
    hand None to the row reader and fail with a TypeError instead)."""
    with pytest.raises(VaultError, match=r"^no exit request 4242 in this workspace$"):
        vault_exit.get_request(session, 4242)
