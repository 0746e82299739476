"""Message signing as a policy feature: a vault signs (ERC-1271) only EIP-712 messages of the domains its
template lists, by an owner-signed transaction its guard checks — never on owner signatures alone."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel

from custody.contracts import load_artifact
from custody.exceptions import PolicyViolation, TemplateError
from custody.policy.compiled import CONFIG_ABI, compile_policy
from custody.policy.template import check_policy_text, load_policy, load_policy_text
from custody.signers.local import anvil_signer
from custody.types import ZERO_ADDRESS
from custody.vault import messages, proposals, resilience, service
from tests.attack_helpers import deploy, send_as
from tests.conftest import FIXTURES

TEMPLATE = FIXTURES / "policies" / "messages.yaml"
ORDER = FIXTURES / "order.json"


@pytest.fixture
def vault(session):
    record, _ = service.create_vault(session, TEMPLATE)
    return record


def _approve(session, proposal):
    # both owners: a message-signing request is a WARN and this template asks one signer beyond the threshold
    proposals.sign(session, proposal, anvil_signer(1))
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(2))
    return proposals.execute(session, proposals.get_proposal(session, proposal.id))


def _order(**domain) -> messages.TypedMessage:
    payload = json.loads(ORDER.read_text())
    payload["domain"].update(domain)
    return messages.parse_typed_data(payload)


def test_the_guard_computes_the_same_domain_separators_as_eip712(session, vault):
    info = service.read_state(session, vault).guard_info
    policy = load_policy(TEMPLATE)
    expected = [d.separator(session.chain_id) for d in compile_policy(policy).message_domains]
    assert list(info.message_domain_separators) == expected
    # the four-field domain (with version) agrees with eth_account's EIP-712 encoding of the order
    assert info.message_domain_separators[0] == messages.load_typed_data(ORDER).domain_separator
    assert compile_policy(policy).message_domains[1].version_hash == b"\x00" * 32  # Permit2 has no version


def test_a_listed_domain_is_signed_by_owner_vote_and_can_be_withdrawn(session, vault):
    typed = messages.load_typed_data(ORDER)
    assert not messages.status(session, vault.id, typed.digest).erc1271_valid
    receipt = _approve(session, messages.propose_message(session, vault.id, typed))
    assert receipt.status == 1
    status = messages.status(session, vault.id, typed.digest)
    assert status.approved_by_guard and status.erc1271_valid
    # only that digest: another order of the same domain is not signed
    payload = json.loads(ORDER.read_text())
    payload["message"]["sellAmount"] = "2000000"
    other = messages.parse_typed_data(payload)
    assert not messages.status(session, vault.id, other.digest).erc1271_valid
    _approve(session, messages.propose_revocation(session, vault.id, typed.digest))
    assert not messages.status(session, vault.id, typed.digest).erc1271_valid


def test_an_unlisted_domain_or_a_paused_vault_signs_nothing(session, vault):
    elsewhere = _order(verifyingContract="0x000000000000000000000000000000000000bEEF")
    with pytest.raises(PolicyViolation, match="CustodyGuardMessageDomainForbidden"):
        messages.propose_message(session, vault.id, elsewhere)
    assert proposals.list_proposals(session) == []
    pause = resilience.pause(session, vault.id)
    proposals.sign(session, pause, anvil_signer(1))
    proposals.execute(session, proposals.get_proposal(session, pause.id))
    with pytest.raises(PolicyViolation, match="CustodyGuardPaused"):
        messages.propose_message(session, vault.id, messages.load_typed_data(ORDER))


def test_the_guard_checks_the_domain_where_it_records_the_approval(session, vault):
    """Defence in depth: even a call reaching approveMessage as the Safe itself (impersonated here; no
    policy path leads there) is held to the policy's domains."""
    guard = session.contract("CustodyGuard", vault.guard)
    allowed = messages.load_typed_data(ORDER)
    forbidden = _order(name="Someone Else")
    session.chain.rpc("anvil_impersonateAccount", [vault.safe])
    session.chain.rpc("anvil_setBalance", [vault.safe, hex(10**18)])
    try:
        for typed, ok in ((forbidden, False), (allowed, True)):
            data = guard.encode_abi("approveMessage", [typed.domain_separator, typed.struct_hash])
            tx = session.chain.w3.eth.send_transaction(
                {"from": vault.safe, "to": vault.guard, "data": data, "gas": 200_000}
            )
            receipt = session.chain.w3.eth.wait_for_transaction_receipt(tx)
            assert receipt["status"] == (1 if ok else 0)
            if not ok:
                trace = session.chain.rpc("debug_traceTransaction", ["0x" + bytes(tx).hex(), {"tracer": "callTracer"}])
                expected = sel("CustodyGuardMessageDomainForbidden(bytes32)") + typed.domain_separator
                assert trace["output"] == "0x" + expected.hex()
    finally:
        session.chain.rpc("anvil_stopImpersonatingAccount", [vault.safe])
    assert messages.status(session, vault.id, allowed.digest).erc1271_valid
    assert not messages.status(session, vault.id, forbidden.digest).erc1271_valid


def test_a_policy_asset_can_never_be_a_message_domain(session):
    text = TEMPLATE.read_text()
    asset_domain = text.replace(
        "verifying_contract: 0x9008D19f58AAbD9eD0D60971565AA8510560ab41", "verifying_contract: 0xA0Cf798816D4b9b9866b5330EEa46a18382f251e"
    ).replace(
        "assets:\n",
        "assets:\n  - asset: erc20\n    address: 0xA0Cf798816D4b9b9866b5330EEa46a18382f251e\n    symbol: aUSD\n"
        "    decimals: 6\n    per_tx_limit: \"1\"\n    daily_limit: \"1\"\n    controls: [TEST-8]\n",
    )  # fmt: skip
    problems = check_policy_text(asset_domain)
    assert [p.field for p in problems] == ["messages.domains[0].verifying_contract"]
    assert "is a policy asset" in problems[0].message
    with pytest.raises(TemplateError):
        load_policy_text(asset_domain)
    # the guard refuses it on chain as well (a raw deployment, bypassing the template check)
    good = compile_policy(load_policy(TEMPLATE)).as_tuple()
    token = "0xA0Cf798816D4b9b9866b5330EEa46a18382f251e"
    bad = (
        [(token, 1, 1), *good[0]], good[1], good[2], good[3], good[4], good[5], good[6], good[7], good[8],
        [(token, b"\x01" * 32, b"\x02" * 32)],
    )  # fmt: skip
    infra = session.infrastructure()
    args = [
        "0x" + "11" * 20,
        "0x" + "22" * 20,
        infra.multisend_call_only,
        ZERO_ADDRESS,
        infra.fallback_handler,
        ZERO_ADDRESS,
    ]
    code = load_artifact("CustodyGuard").bytecode
    refused = send_as(session, 0, None, code + encode(["address"] * 6 + [CONFIG_ABI], [*args, bad]))
    assert (refused.error, refused.args) == ("CustodyGuardInvalidConfig", ("message domain of a policy asset",))
    assert deploy(session, "CustodyGuard", ["address"] * 6 + [CONFIG_ABI], [*args, good])  # positive control


def test_message_signing_through_the_cli(run_cli, session, vault):
    shown = json.loads(run_cli("msg", "show", str(ORDER), "--json").stdout)
    assert shown["digest"] == "0x" + messages.load_typed_data(ORDER).digest.hex()
    proposed = run_cli("msg", "sign", vault.name, str(ORDER), "--json")
    assert proposed.exit_code == 0, proposed.stderr
    pid = str(json.loads(proposed.stdout)["id"])
    assert run_cli("tx", "sign", pid, "--signer", "anvil:1").exit_code != 0  # the 'message' risk needs acknowledging
    assert run_cli("tx", "sign", pid, "--signer", "anvil:1", "--i-understand", "message").exit_code == 0
    short = run_cli("tx", "execute", pid, "--json")  # WARN (message_signing): one owner beyond the threshold
    assert short.exit_code != 0 and json.loads(short.stdout)["error"] == "RiskRequirementMissing"
    assert run_cli("tx", "sign", pid, "--signer", "anvil:2", "--i-understand", "message").exit_code == 0
    assert run_cli("tx", "execute", pid).exit_code == 0
    status = json.loads(run_cli("msg", "status", vault.name, shown["digest"], "--json").stdout)
    assert status["erc1271_valid"] and status["approved_by_guard"]
    bad = run_cli("msg", "status", vault.name, "0x1234", "--json")
    assert bad.exit_code != 0 and "not a 32-byte message digest" in json.loads(bad.stdout)["message"]
