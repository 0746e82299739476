"""propose → sign → execute, through the service layer and the real CLI entry point."""

import json

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector
from web3.logs import DISCARD

from custody.exceptions import (
    AddressError,
    AlreadyExecuted,
    AmountError,
    InputError,
    NotAnOwner,
    NotEnoughSignatures,
    ProposalError,
    SignatureError,
    StaleProposal,
)
from custody.signers.ecdsa import SECP256K1_N
from custody.signers.local import anvil_signer
from custody.vault import proposals as vault_proposals
from custody.vault import service
from custody.vault.identities import resolve_proposer
from tests.conftest import POLICIES
from tests.risk_helpers import confirm_out_of_band

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
WARM_REFILL = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"


@pytest.fixture
def cold(session):
    record, _ = service.create_vault(session, POLICIES / "cold.yaml")
    session.send(to=record.safe, value=100 * 10**18, what="fund")
    return record


def _mint(session, token, to, amount):
    data = function_signature_to_4byte_selector("mint(address,uint256)") + encode(["address", "uint256"], [to, amount])
    session.send(to=token, data=data, what="mint")


def _balance(session, address):
    return session.chain.w3.eth.get_balance(address)


def test_two_of_three_eth_transfer(session, cold):
    before = _balance(session, PRIME_BROKER)
    p = vault_proposals.propose_transfer(session, cold.name, to=PRIME_BROKER, amount="1.25")
    assert p.safe_tx.value == 125 * 10**16 and p.safe_tx.nonce == 0
    assert vault_proposals.onchain_hash(session, p.safe_tx) == p.safe_tx.safe_tx_hash
    vault_proposals.sign(session, vault_proposals.get_proposal(session, p.id), anvil_signer(1))
    vault_proposals.sign(session, vault_proposals.get_proposal(session, p.id), anvil_signer(3))
    receipt = vault_proposals.execute(session, vault_proposals.get_proposal(session, p.id))
    assert _balance(session, PRIME_BROKER) - before == 125 * 10**16
    done = vault_proposals.get_proposal(session, p.id)
    assert done.state is vault_proposals.ProposalState.EXECUTED and done.exec_tx_hash == receipt.tx_hash
    assert vault_proposals.safe_nonce(session, cold.safe) == 1
    with pytest.raises(AlreadyExecuted):
        vault_proposals.execute(session, done)
    with pytest.raises(AlreadyExecuted):
        vault_proposals.sign(session, done, anvil_signer(2))


def test_erc20_transfer(session, demo_token):
    hot, _ = service.create_vault(session, POLICIES / "hot.yaml")
    _mint(session, demo_token, hot.safe, 5_000 * 10**6)
    p = vault_proposals.propose_transfer(session, hot.id, to=PRIME_BROKER, amount="1234.5", token=demo_token)
    assert p.description == f"transfer 1234.5 dUSD to {PRIME_BROKER}"
    assert p.safe_tx.to == demo_token and p.safe_tx.value == 0
    vault_proposals.sign(session, vault_proposals.get_proposal(session, p.id), anvil_signer(2))
    vault_proposals.execute(session, vault_proposals.get_proposal(session, p.id))
    token = session.contract("TestERC20", demo_token)
    assert token.functions.balanceOf(PRIME_BROKER).call() == 1_234_500_000


def test_one_signature_is_refused_and_nothing_is_sent(session, cold):
    p = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1")
    vault_proposals.sign(session, vault_proposals.get_proposal(session, p.id), anvil_signer(1))
    sender = anvil_signer(0).address
    nonce, vault_balance = session.chain.w3.eth.get_transaction_count(sender), _balance(session, cold.safe)
    block = session.chain.w3.eth.block_number
    with pytest.raises(
        NotEnoughSignatures, match=r"has 1 valid owner signature\(s\) but the vault needs 2 .* nothing was sent"
    ):
        vault_proposals.execute(session, vault_proposals.get_proposal(session, p.id))
    assert session.chain.w3.eth.get_transaction_count(sender) == nonce
    assert session.chain.w3.eth.block_number == block
    assert _balance(session, cold.safe) == vault_balance
    assert vault_proposals.get_proposal(session, p.id).state is vault_proposals.ProposalState.PROPOSED


def test_signatures_are_deduplicated_per_owner(session, cold):
    p = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1")
    first, added = vault_proposals.sign(session, p, anvil_signer(1))
    again, added_again = vault_proposals.sign(session, vault_proposals.get_proposal(session, p.id), anvil_signer(1))
    assert added and not added_again and again == first
    # the malleated (high-s) twin of the same approval does not count twice
    blob = first.signature
    twin = blob[:32] + (SECP256K1_N - int.from_bytes(blob[32:64], "big")).to_bytes(32, "big") + bytes([55 - blob[64]])
    _sig, added_twin = vault_proposals.add_signature(
        session, vault_proposals.get_proposal(session, p.id), twin, source="import"
    )
    assert not added_twin
    assert len(vault_proposals.get_proposal(session, p.id).signatures) == 1
    with pytest.raises(NotEnoughSignatures):
        vault_proposals.execute(session, vault_proposals.get_proposal(session, p.id))


def test_non_owner_cannot_sign_or_import(session, cold):
    p = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1")
    with pytest.raises(NotAnOwner, match="anvil:5 .* is not an owner"):
        vault_proposals.sign(session, p, anvil_signer(5))
    foreign = anvil_signer(5).sign_safe_tx(p.safe_tx)
    with pytest.raises(NotAnOwner, match="recovers to .* which is not an owner"):
        vault_proposals.add_signature(session, p, foreign, source="import")


def test_signature_for_another_proposal_does_not_verify_as_an_owner(session, cold):
    p1 = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1")
    p2 = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="2")
    blob = anvil_signer(1).sign_safe_tx(p1.safe_tx)
    with pytest.raises((NotAnOwner, SignatureError)):
        vault_proposals.add_signature(session, p2, blob, source="import")


def test_nonces_are_allocated_in_order_and_enforced(session, cold):
    p1 = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1")
    p2 = vault_proposals.propose_transfer(session, cold.id, to=WARM_REFILL, amount="2")
    assert (p1.safe_tx.nonce, p2.safe_tx.nonce) == (0, 1)
    for p in (p1, p2):
        for i in (1, 2):
            vault_proposals.sign(session, vault_proposals.get_proposal(session, p.id), anvil_signer(i))
    with pytest.raises(ProposalError, match=f"vault is at nonce 0: execute proposal {p1.id} \\(nonce 0\\) first;"):
        vault_proposals.execute(session, vault_proposals.get_proposal(session, p2.id))
    vault_proposals.execute(session, vault_proposals.get_proposal(session, p1.id))
    vault_proposals.execute(session, vault_proposals.get_proposal(session, p2.id))


def test_replaced_nonce_makes_the_other_proposal_stale(session, cold):
    p1 = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1")
    replacement = vault_proposals.propose_transfer(
        session, cold.id, to=WARM_REFILL, amount="1", nonce=0, proposer=resolve_proposer(session, "anvil:1")
    )
    # A competing proposal for a queued nonce is a WARN (nonce_duplicate): the template's defaults ask for an
    # out-of-band confirmation and one signer beyond the threshold before it executes.
    for i in (1, 2, 3):
        vault_proposals.sign(session, vault_proposals.get_proposal(session, replacement.id), anvil_signer(i))
    confirm_out_of_band(session, replacement)
    vault_proposals.execute(session, vault_proposals.get_proposal(session, replacement.id))
    with pytest.raises(StaleProposal, match="another transaction used that nonce"):
        vault_proposals.sign(session, vault_proposals.get_proposal(session, p1.id), anvil_signer(1))
    with pytest.raises(StaleProposal, match="nonce 0 is already used"):
        vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1", nonce=0)


def test_identical_proposal_is_refused(session, cold):
    vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1", nonce=0)
    with pytest.raises(ProposalError, match="an identical proposal exists already"):
        vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1", nonce=0)


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        ({"to": PRIME_BROKER.replace("E3f5", "e3f5"), "amount": "1"}, AddressError, "bad EIP-55 checksum"),
        ({"to": "0x1234", "amount": "1"}, AddressError, "destination '0x1234' is not an address"),
        (
            {"to": PRIME_BROKER, "amount": "0.0000000000000000001"},
            AmountError,
            "19 decimal places; ETH allows at most 18",
        ),
        ({"to": PRIME_BROKER, "amount": "-1"}, AmountError, "signs are not allowed"),
        (
            {"to": PRIME_BROKER, "amount": "1", "token": "0x000000000000000000000000000000000000dEaD"},
            InputError,
            "is not an ERC-20 contract",
        ),
    ],
)
def test_bad_input_is_refused_specifically(session, cold, kwargs, error, message):
    with pytest.raises(error, match=message):
        vault_proposals.propose_transfer(session, cold.id, **kwargs)
    assert vault_proposals.list_proposals(session) == []


def test_tampered_workspace_proposal_is_detected(session, cold):
    from custody.exceptions import HashMismatch
    from custody.store import proposals

    p = vault_proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="1")
    with session.store.begin() as conn:
        conn.execute(proposals.update().values(to=WARM_REFILL))
    with pytest.raises(HashMismatch, match="the workspace was altered"):
        vault_proposals.get_proposal(session, p.id)


def test_cli_two_of_three_flow_matches_onchain_hash(run_cli, session, cold):
    proposed = run_cli(
        "tx", "propose", cold.name, "--to", PRIME_BROKER, "--amount", "2.5", "--proposer", "anvil:5", "--json"
    )
    assert proposed.exit_code == 0, proposed.output
    d = json.loads(proposed.stdout)
    assert d["hash_matches_chain"] is True and d["safe_tx_hash"] == d["onchain_safe_tx_hash"]
    assert d["decoded"]["summary"] == f"send 2.5 ETH to {PRIME_BROKER}"

    signed = run_cli("tx", "sign", str(d["id"]), "--signer", "anvil:1")
    assert signed.exit_code == 0 and "1 of 2 signatures" in signed.stdout
    assert d["safe_tx_hash"] in signed.stderr  # the clear-signing view is shown before signing

    refused = run_cli("tx", "execute", str(d["id"]))
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: proposal 1 has 1 valid owner signature(s) but the vault needs 2")
    assert "Traceback" not in refused.output

    assert run_cli("tx", "sign", d["safe_tx_hash"][:12], "--signer", "anvil:2").exit_code == 0
    executed = run_cli("tx", "execute", str(d["id"]), "--json")
    assert executed.exit_code == 0, executed.output
    tx_hash = json.loads(executed.stdout)["tx_hash"]
    receipt = session.chain.w3.eth.get_transaction_receipt(tx_hash)
    safe = session.contract("SafeL2", cold.safe)
    (event,) = safe.events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
    assert "0x" + bytes(event["args"]["txHash"]).hex() == d["safe_tx_hash"]
    shown = json.loads(run_cli("tx", "show", str(d["id"]), "--json").stdout)
    assert shown["state"] == "executed" and shown["exec_tx_hash"] == tx_hash


@pytest.mark.parametrize(
    "args,message",
    [
        (["tx", "sign", "99", "--signer", "anvil:1"], "error: no proposal 99"),
        (["tx", "sign", "1", "--signer", "bogus:1"], "error: unknown signer scheme 'bogus'"),
        (["tx", "sign", "1", "--signer", "anvil:x"], "error: anvil signer URI must be anvil:N"),
        (
            ["tx", "propose", "cold-reserve", "--to", "0xabc", "--amount", "1", "--proposer", "anvil:5"],
            "error: destination '0xabc' is not an address",
        ),
        (
            [
                "tx",
                "propose",
                "cold-reserve",
                "--to",
                PRIME_BROKER,
                "--amount",
                "1.0000000000000000001",
                "--proposer",
                "anvil:5",
            ],
            "error: amount 1.0000000000000000001 ETH has 19 decimal places",
        ),
        (
            ["tx", "propose", "nope", "--to", PRIME_BROKER, "--amount", "1", "--proposer", "anvil:5"],
            "error: no vault 'nope'",
        ),
    ],
)
def test_cli_errors_are_one_sentence(run_cli, cold, args, message):
    run_cli("tx", "propose", cold.name, "--to", PRIME_BROKER, "--amount", "1", "--proposer", "anvil:5")
    result = run_cli(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.output


def test_cli_rpc_unreachable(run_cli):
    result = run_cli("vault", "list", env={"CUSTODY_RPC": "http://127.0.0.1:9"})
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: RPC http://127.0.0.1:9 is unreachable: connection refused"


def test_cli_json_errors_are_machine_readable(run_cli):
    result = run_cli("vault", "show", "ghost", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "UnknownVault"
