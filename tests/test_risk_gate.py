"""The risk engine on every signing path: a Deny blocks the signature on every backend (keystore,
SoftHSM2, Ledger and Trezor doubles at their transports, an imported offline signature, message
signing), an engine failure or timeout denies, Warn requirements hold, and every decision and list
change is in the ledger, which still verifies."""

from __future__ import annotations

import json

import pytest
from eth_utils import keccak, to_checksum_address

from custody.audit import service as audit_service
from custody.audit.record import ledger_for
from custody.chain.connection import connect
from custody.drills.faultproxy import FaultProxy
from custody.exceptions import RiskDenied, RiskRequirementMissing
from custody.risk import service as risk_service
from custody.session import Session
from custody.signers.keystore import create_keystore
from custody.signers.local import anvil_signer
from custody.signers.registry import SignerContext, open_signer
from custody.vault import messages, proposals, service
from custody.vault.identities import resolve_proposer
from tests.attack_helpers import deploy
from tests.conftest import FIXTURES
from tests.risk_helpers import confirm_out_of_band
from tests.signer_fixtures import policy_with_owners

PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # on the hot template's allowlist
LISTS = FIXTURES / "risk"
PASSPHRASE = "risk gate keystore passphrase"


def _entries(session, kind: str) -> list:
    return [e for e in ledger_for(session.store).entries() if e.kind == kind]


def _vault(session, tmp_path, owner: str, *, risk: str = "", name: str = "risky"):
    path = policy_with_owners(
        tmp_path, [owner, anvil_signer(2).address, anvil_signer(3).address], threshold=1, name=name
    )
    if risk:
        path.write_text(path.read_text() + risk)
    vault, _ = service.create_vault(session, path)
    session.send(to=vault.safe, value=10**18, what="fund")
    return vault


@pytest.fixture
def signers(softhsm, ledger, trezor, tmp_path):
    create_keystore(tmp_path / "k.json", keccak(b"custody risk gate keystore"), PASSPHRASE, kdf="pbkdf2")
    pin = softhsm.pin_file.read_text().strip()
    return {
        "keystore": (open_signer(f"keystore:{tmp_path / 'k.json'}", SignerContext(passphrase_source=lambda _p: PASSPHRASE)), None),
        "pkcs11": (open_signer(softhsm.uri, SignerContext(pin_source=lambda _p: pin)), None),
        "ledger": (open_signer("ledger:44'/60'/0'/0/0"), ledger),
        "trezor": (open_signer("trezor:m/44'/60'/0'/0/0"), trezor),
    }  # fmt: skip


@pytest.mark.parametrize("backend", ["keystore", "pkcs11", "ledger", "trezor"])
def test_a_deny_blocks_the_signature_on_every_backend(backend, signers, session, tmp_path):
    signer, device = signers[backend]
    vault = _vault(session, tmp_path, signer.address)
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer=signer.address)
    imported = risk_service.import_list(
        session, str(LISTS / "sdn_test.xml")
    )  # the destination is listed after proposing
    assert PRIME.lower() in imported["additions"]
    if device is not None:
        device.screens.clear()
    with pytest.raises(RiskDenied, match=f"sanctioned_counterparty: {PRIME} is sanctioned.*nothing was signed"):
        proposals.sign(session, proposals.get_proposal(session, proposal.id), signer)
    assert proposals.get_proposal(session, proposal.id).signatures == ()
    if device is not None:
        assert device.screens == []  # the device was never asked
    denied = _entries(session, "risk_decision")[-1]
    assert denied.payload["stage"] == "sign" and denied.payload["verdict"] == "deny"
    assert denied.payload["backend"] == backend and denied.payload["proposal"] == proposal.id
    assert denied.refs["safe_tx_hash"] == proposal.safe_tx_hash
    # positive control: once the destination is delisted, the same backend signs the same proposal
    risk_service.import_list(session, str(LISTS / "sdn_test_delisted.csv"), date="2026-12-01")
    _signature, added = proposals.sign(session, proposals.get_proposal(session, proposal.id), signer)
    assert added and _entries(session, "risk_decision")[-1].payload["verdict"] == "accept"


def test_a_deny_refuses_an_imported_offline_signature(session, tmp_path):
    vault = _vault(session, tmp_path, anvil_signer(1).address)
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer=anvil_signer(1).address)
    blob = anvil_signer(1).sign_safe_tx(proposal.safe_tx)  # made on the air-gapped side
    risk_service.import_list(session, str(LISTS / "sdn_test.xml"))
    with pytest.raises(RiskDenied, match="sanctioned_counterparty"):
        proposals.add_signature(session, proposals.get_proposal(session, proposal.id), blob, source="offline")
    assert proposals.get_proposal(session, proposal.id).signatures == ()
    assert _entries(session, "risk_decision")[-1].payload["backend"] == "offline"
    risk_service.import_list(session, str(LISTS / "sdn_test_delisted.csv"), date="2026-12-01")
    assert proposals.add_signature(session, proposals.get_proposal(session, proposal.id), blob, source="offline")[1]


def test_a_deny_blocks_message_signing_at_propose_and_sign(session, tmp_path):
    template = (FIXTURES / "policies" / "messages.yaml").read_text()
    strict = tmp_path / "strict-messages.yaml"
    strict.write_text(
        template.replace("name: signing-vault", "name: strict-signing") + "  rules:\n    message_signing: deny\n"
    )
    vault, _ = service.create_vault(session, strict)
    order = messages.load_typed_data(FIXTURES / "order.json")
    with pytest.raises(RiskDenied, match="message_signing: asks the vault to sign an EIP-712 message"):
        messages.propose_message(session, vault.id, order)
    assert [p.state for p in proposals.list_proposals(session)] == [proposals.ProposalState.DISCARDED]
    # the default template (message signing = WARN): proposed, then the engine fails at the sign stage
    relaxed, _ = service.create_vault(session, FIXTURES / "policies" / "messages.yaml")
    proposal = messages.propose_message(session, relaxed.id, order)
    risk_service.train(session, relaxed.name)
    _tamper_model(session, relaxed.name)
    with pytest.raises(RiskDenied, match="engine_error: risk model .* does not match its recorded sha256"):
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    assert proposals.get_proposal(session, proposal.id).signatures == ()


def _tamper_model(session, vault_name: str) -> None:
    folder = session.workspace.home / "risk" / "models"
    path = folder / (folder / f"{vault_name}.current").read_text().strip()
    doc = json.loads(path.read_text())
    doc["model"]["max_1h"] = 10**6  # a burst could never be flagged with this
    path.write_text(json.dumps(doc))


def test_an_engine_error_denies_and_on_error_warn_is_the_templates_choice(session, tmp_path):
    vault = _vault(session, tmp_path, anvil_signer(1).address)
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer=anvil_signer(1).address)
    trained = risk_service.train(session, vault.name)
    assert _entries(session, "risk_model_trained")[-1].payload["sha256"] == trained["sha256"]
    _tamper_model(session, vault.name)
    with pytest.raises(RiskDenied, match="engine_error"):
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    failed = _entries(session, "risk_decision")[-1].payload
    assert failed["verdict"] == "deny" and failed["reasons"][0]["code"] == "engine_error"
    assert failed["reasons"][0]["layer"] == "engine" and proposals.get_proposal(session, proposal.id).signatures == ()
    # a template that chose on_error: warn gets a Warn (and its requirements) instead
    lenient = _vault(session, tmp_path, anvil_signer(1).address, name="lenient", risk="risk:\n  on_error: warn\n")
    other = proposals.propose_transfer(session, lenient.id, to=PRIME, amount="0.25", proposer="alice")
    risk_service.train(session, lenient.name)
    _tamper_model(session, lenient.name)
    proposals.sign(session, proposals.get_proposal(session, other.id), anvil_signer(1))
    assert _entries(session, "risk_decision")[-1].payload["verdict"] == "warn"
    with pytest.raises(RiskRequirementMissing, match="WARN verdict \\(engine_error\\)"):
        proposals.execute(session, proposals.get_proposal(session, other.id))


def test_an_engine_timeout_denies(session, anvil, tmp_path):
    vault = _vault(session, tmp_path, anvil_signer(1).address, risk="risk:\n  timeout_ms: 300\n")
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer=anvil_signer(1).address)
    with FaultProxy(anvil.url) as proxy:
        slow = Session(workspace=session.workspace, chain=connect(proxy.url, expected_chain_id=anvil.chain_id))
        held = proxy.inject("hold", method="eth_getBalance", count=None)  # only the engine reads the balance
        try:
            with pytest.raises(RiskDenied, match="engine_timeout: no decision within 300 ms"):
                proposals.sign(slow, proposals.get_proposal(slow, proposal.id), anvil_signer(1))
        finally:
            held.release()
    assert proposals.get_proposal(session, proposal.id).signatures == ()
    assert _entries(session, "risk_decision")[-1].payload["reasons"][0]["code"] == "engine_timeout"


def test_warn_needs_out_of_band_confirmation_and_one_more_signer(session, tmp_path):
    vault = _vault(session, tmp_path, anvil_signer(1).address)
    stranger = to_checksum_address("0x" + "5a" * 20)  # no history, not a known counterparty: first_time_destination
    proposal = proposals.propose(
        session, vault.id, to=stranger, value=10**15, proposer=resolve_proposer(session, "anvil:1"), force=True
    )  # the guard would refuse an unlisted destination; the engine is what is tested
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    with pytest.raises(
        RiskRequirementMissing, match="first_time_destination.*out-of-band confirmation.*2 owner signatures"
    ):
        proposals.execute(session, proposals.get_proposal(session, proposal.id), force=True)
    confirm_out_of_band(session, proposal)
    with pytest.raises(RiskRequirementMissing, match="2 owner signatures \\(threshold 1 \\+ 1\\), have 1"):
        proposals.execute(session, proposals.get_proposal(session, proposal.id), force=True)


def test_every_decision_and_list_change_is_ledgered_and_the_ledger_verifies(session, tmp_path):
    vault = _vault(session, tmp_path, anvil_signer(1).address)
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer=anvil_signer(1).address)
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    first = risk_service.import_list(session, str(LISTS / "sdn_test.xml"))
    second = risk_service.import_list(session, str(LISTS / "sdn_test_delisted.csv"), date="2026-12-01")
    stages = [e.payload["stage"] for e in _entries(session, "risk_decision")]
    assert stages == ["propose", "sign", "execute"]
    changes = [e.payload for e in _entries(session, "risk_list_changed")]
    assert [c["sha256"] for c in changes] == [first["sha256"], second["sha256"]]
    assert changes[0]["date"] == "2026-11-28" and changes[0]["count"] == 2
    assert sorted(changes[0]["additions"]) == sorted([PRIME.lower(), "0x000000000000000000000000000000000000beef"])
    assert changes[1]["additions"] == ["0x000000000000000000000000000000000000dead"]
    assert changes[1]["delistings"] == [PRIME.lower()] and changes[1]["previous_sha256"] == first["sha256"]
    report = audit_service.verify(store=session.store, chain=session.chain)
    assert report.exit_code == 0 and report.verdict == "ok"


def test_a_sanctions_hit_opens_a_case_file_and_tx_show_prints_the_verdict(session, tmp_path, run_cli):
    risk = "risk:\n  reporting_windows:\n    US: 30d\n    EU: 14d\n"
    vault = _vault(session, tmp_path, anvil_signer(1).address, risk=risk)
    risk_service.import_list(session, str(LISTS / "sdn_test.xml"))
    with pytest.raises(RiskDenied, match="the proposal was not opened") as denied:
        proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer="alice")
    (case,) = risk_service.list_cases(session)
    assert (
        case["address"] == PRIME and case["decision"] == "deny" and case["proposal"] == denied.value.details["proposal"]
    )
    assert set(case["report_by"]) == {"US", "EU"} and case["list_version"].startswith("2026-11-28:")
    (opened,) = _entries(session, "risk_case_opened")
    assert opened.payload == case
    shown = run_cli("tx", "show", str(case["proposal"]))
    assert "risk            DENY (at propose" in shown.stdout and "sanctioned_counterparty" in shown.stdout
    explained = json.loads(run_cli("risk", "explain", str(case["proposal"]), "--json").stdout)
    (decision,) = explained["decisions"]
    assert decision["versions"]["sanctions_list"] == case["list_version"] and decision["scores"]["sanctions"] == 1000


def test_an_on_chain_sanctions_oracle_is_consulted(session, tmp_path):
    oracle = deploy(session, "TestSanctionsOracle")
    contract = session.contract("TestSanctionsOracle", oracle)
    listing = bytes.fromhex(contract.encode_abi("setSanctioned", [PRIME, True])[2:])
    session.send(to=oracle, data=listing, what="listing the prime broker on the test oracle")
    vault = _vault(session, tmp_path, anvil_signer(1).address, risk=f"risk:\n  sanctions:\n    oracle: {oracle}\n")
    with pytest.raises(RiskDenied, match=f"sanctioned_counterparty: {PRIME} is sanctioned \\(on-chain oracle\\)"):
        proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer="alice")
    delisting = bytes.fromhex(contract.encode_abi("setSanctioned", [PRIME, False])[2:])
    session.send(to=oracle, data=delisting, what="delisting")
    accepted = proposals.propose_transfer(session, vault.id, to=PRIME, amount="0.25", proposer="alice")
    assert _entries(session, "risk_decision")[-1].payload["verdict"] == "accept" and accepted.state.value == "proposed"
    # an oracle address without the contract gives no answer: an engine error, so a Deny
    silent = _vault(session, tmp_path, anvil_signer(1).address, name="silent",
                    risk="risk:\n  sanctions:\n    oracle: 0x000000000000000000000000000000000000dEaD\n")  # fmt: skip
    with pytest.raises(RiskDenied, match="engine_error: sanctions oracle 0x000000000000000000000000000000000000dEaD"):
        proposals.propose_transfer(session, silent.id, to=PRIME, amount="0.25", proposer="alice")
