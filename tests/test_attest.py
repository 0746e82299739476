"""Attestation badges end to end on Anvil with the real EAS contracts: linked badges for a transfer's
approvals and execution verify; revoking one makes verification fail naming it; unauthorised attesters,
missing badges and forged off-chain attestations are caught."""

from __future__ import annotations

import copy
import hashlib
import json
import logging

import pytest
from eth_utils import keccak

from custody.attest import badges, batch, merkle, steps
from custody.attest.schemas import STEPS
from custody.attest.verify import Verifier
from custody.audit.record import ledger_for
from custody.exceptions import AttestationError, InputError, UnknownAttestation
from custody.signers.local import anvil_address, anvil_signer
from custody.vault import oob, proposals, service
from tests import attest_helpers, collateral_helpers
from tests.attest_helpers import ATTESTED, BROKER, COMPLIANCE, ETH, OPS, transfer
from tests.signer_fixtures import HSM_KEY

vault = attest_helpers.vault  # the attested-template vault fixture


def _kyc(session, vault, owner_index):
    return steps.kyc_badge(
        session, vault=vault.safe, subject=anvil_address(owner_index), jurisdiction="CH",
        evidence=f"passport scan of signer {owner_index}".encode(), attester=session.signer(COMPLIANCE),
    )  # fmt: skip


def test_a_transfer_yields_linked_badges_that_verify_and_a_revocation_is_named(session, vault, run_cli):
    session.attester_uri = OPS
    kyc = {i: _kyc(session, vault, i) for i in (1, 2)}
    proposal = transfer(session, vault)
    approvals = badges.stored(session, step_name="approval", reference=proposal.safe_tx_hash)
    assert [r["signer"] for r in approvals] == [anvil_address(1), anvil_address(2)]
    for row, i in zip(approvals, (1, 2)):
        badge = badges.read(session, row["uid"])
        assert badge.attester == anvil_address(7) and badge.recipient == anvil_address(i)
        assert badge.ref_uid == kyc[i].uid  # approval -> the signer's KYC badge
        assert badges.hex32(badge.fields["safeTxHash"]) == proposal.safe_tx_hash

    receipt = proposals.execute(session, proposal)
    (execution,) = badges.stored(session, step_name="execution", reference=proposal.safe_tx_hash)
    badge = badges.read(session, execution["uid"])
    assert badge.ref_uid == approvals[-1]["uid"]  # execution -> its last approval
    assert [badges.hex32(u) for u in badge.fields["approvals"]] == [r["uid"] for r in approvals]
    assert badges.hex32(badge.fields["txHash"]) == receipt.tx_hash
    assert badge.fields["to"] == BROKER and badge.fields["amount"] == 5 * ETH

    report = Verifier(session).verify_vault(vault.safe)
    assert report.ok, report.failures()
    assert sorted(c.step for c in report.checks) == ["approval", "approval", "execution", "kyc", "kyc"]
    ok = run_cli("attest", "verify", "--vault", "attested", "--json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True

    revoked_uid = approvals[0]["uid"]
    _badge, tx = badges.revoke(session, revoked_uid, attester=session.signer(OPS))
    assert tx is not None and badges.read(session, revoked_uid).revocation_time > 0
    report = Verifier(session).verify_vault(vault.safe)
    assert not report.ok
    failures = report.failures()
    assert f"badge {revoked_uid} (approval): was revoked" in "\n".join(failures)
    assert any(f"listed approval {revoked_uid} was revoked" in f for f in failures)  # the execution's link breaks
    assert any(f"by {anvil_address(1)} lacks a valid approval badge" in f for f in failures)
    bad = run_cli("attest", "verify", "--vault", "attested")
    assert bad.exit_code == 2
    assert revoked_uid in bad.stdout
    assert badges.revoke(session, revoked_uid, attester=session.signer(OPS))[1] is None  # idempotent


def test_an_approval_links_only_to_its_signers_kyc_badge_for_the_same_vault(session, vault):
    """A signer's KYC badge issued for another vault is not this vault's evidence: linking to it would make
    the approval badge fail verification (its refUID would be a badge of another vault)."""
    session.attester_uri = OPS
    other, _ = service.create_vault(session, ATTESTED, name="other-desk")
    elsewhere = _kyc(session, other, 1)  # signer 1 was vetted for the other vault only
    here = _kyc(session, vault, 2)
    proposal = transfer(session, vault)
    first, second = (
        badges.read(session, r["uid"])
        for r in badges.stored(session, step_name="approval", reference=proposal.safe_tx_hash)
    )
    assert (first.ref_uid, second.ref_uid) == (badges.hex32(badges.ZERO32), here.uid) and elsewhere.uid != here.uid
    report = Verifier(session).verify_vault(vault.safe)
    assert report.ok, report.failures()


def test_out_of_band_confirmation_badge_is_linked_from_the_execution(session, vault, workspace, monkeypatch):
    monkeypatch.setenv("CUSTODY_OOB_PASSPHRASE", "attest test passphrase")
    session.attester_uri = OPS
    oob.enroll(workspace, "alice"), oob.enroll(workspace, "bob")  # alice proposes (a known person), bob confirms
    proposal = transfer(session, vault, amount="55")  # above out_of_band_above: 50
    challenge = oob.issue_challenge(session, proposal, "bob", issued_by="alice")[0]
    oob.confirm_with_code(session, proposal, "bob", challenge)
    (confirmation,) = badges.stored(session, step_name="oob_confirmation", reference=proposal.safe_tx_hash)
    fields = badges.read(session, confirmation["uid"]).fields
    assert fields["confirmer"] == "bob" and fields["method"] == "code"
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    (execution,) = badges.stored(session, step_name="execution", reference=proposal.safe_tx_hash)
    linked = [badges.hex32(u) for u in badges.read(session, execution["uid"]).fields["approvals"]]
    assert confirmation["uid"] in linked and len(linked) == 3
    report = Verifier(session).verify_vault(vault.safe)
    assert report.ok, report.failures()


def test_badge_by_an_attester_the_template_does_not_authorise_fails(session, vault):
    session.attester_uri = OPS
    proposal = transfer(session, vault)
    proposals.execute(session, proposal)
    # compliance may attest KYC only; anvil:5 is not in the template at all
    for uri in (COMPLIANCE, "anvil:5"):
        rogue = badges.issue(
            session, "approval", attester=session.signer(uri), recipient=anvil_address(3),
            fields={"vault": vault.safe, "safeTxHash": bytes.fromhex(proposal.safe_tx_hash[2:]),
                    "signer": anvil_address(3), "ledgerEntry": badges.ZERO32},
        )  # fmt: skip
        check = Verifier(session).verify_uid(rogue.uid).checks[0]
        assert not check.ok
        assert any(
            f"attester {anvil_address(int(uri[-1]))} is not authorised for approval badges" in p for p in check.problems
        )
        # and anvil 3 never signed this transaction: the approval claims something the chain does not show
        assert any(f"no evidence that {anvil_address(3)} signed" in p for p in check.problems)


def test_missing_badges_are_listed_and_backfill_issues_them(session, vault, caplog, run_cli):
    with caplog.at_level(logging.WARNING, logger="custody.attest.auto"):
        proposal = transfer(session, vault)  # no attester configured
    assert "no attester key is configured" in caplog.text
    proposals.execute(session, proposal)
    report = Verifier(session).verify_vault(vault.safe)
    assert {(m["step"], m.get("signer")) for m in report.missing} == {
        ("execution", None), ("approval", anvil_address(1)), ("approval", anvil_address(2)),
    }  # fmt: skip
    # an attester the template does not authorise for these steps issues nothing, and says so
    ledger_size = ledger_for(session.store).size
    for uri, why in [
        (COMPLIANCE, "the template authorises it (compliance) for kyc only"),
        ("anvil:4", f"it is not one of the template's attesters ({anvil_address(7)} (custody-operations), "
                    f"{anvil_address(9)} (compliance))"),
    ]:  # fmt: skip
        refused = run_cli("attest", "backfill", "attested", "--attester", uri)
        assert refused.exit_code == 1, refused.stdout
        assert refused.stderr.splitlines()[0] == (
            f"error: attester {anvil_address(int(uri[-1]))} ({uri}) is not authorised for approval, execution badges "
            f"by vault attested's template: {why}; nothing was issued"
        )
        as_json = json.loads(run_cli("attest", "backfill", "attested", "--attester", uri, "--json").stdout)
        assert as_json["error"] == "AttestationError" and as_json["details"]["steps"] == ["approval", "execution"]
    assert badges.stored(session, vault=vault.safe) == [] and ledger_for(session.store).size == ledger_size
    result = run_cli("attest", "backfill", "attested", "--attester", OPS, "--json")
    assert result.exit_code == 0, result.stderr
    assert sorted(b["step"] for b in json.loads(result.stdout)["issued"]) == ["approval", "approval", "execution"]
    assert json.loads(run_cli("attest", "backfill", "attested", "--attester", OPS, "--json").stdout)["issued"] == []
    report = Verifier(session).verify_vault(vault.safe)
    assert report.ok, report.failures()


def test_an_execution_badge_must_match_the_chain(session, vault):
    session.attester_uri = OPS
    proposal = transfer(session, vault)
    proposals.execute(session, proposal)
    other = transfer(session, vault, amount="1")  # never executed
    fake = badges.issue(
        session, "execution", attester=session.signer(OPS), recipient=vault.safe,
        fields={"vault": vault.safe, "safeTxHash": bytes.fromhex(other.safe_tx_hash[2:]),
                "txHash": bytes.fromhex(proposal.exec_tx_hash[2:] if proposal.exec_tx_hash else "00" * 32),
                "asset": "0x" + "00" * 20, "to": BROKER, "amount": 1, "approvals": [], "ledgerEntry": badges.ZERO32},
    )  # fmt: skip
    problems = Verifier(session).verify_uid(fake.uid).checks[0].problems
    assert any(f"never executed {other.safe_tx_hash}" in p for p in problems)


def test_hsm_attester_issues_badges_by_delegation(session, hsm, tmp_path):
    attester = session.signer(hsm.uri)
    template = tmp_path / "hsm-attested.yaml"
    template.write_text(ATTESTED.read_text().replace("0x14dC79964da2C08b23698B3D3cc7Ca32193d9955", attester.address))
    record, _ = service.create_vault(session, template, name="hsm-attested")
    session.send(to=record.safe, value=10 * ETH, what="fund")
    session.attester_uri = hsm.uri
    proposal = transfer(session, record)
    proposals.execute(session, proposal)
    rows = badges.stored(session, vault=record.safe)
    assert sorted(r["step"] for r in rows) == ["approval", "approval", "execution"]
    assert {badges.read(session, r["uid"]).attester for r in rows} == {attester.address}  # EAS records the HSM key
    assert attester.address != session.sender.address and HSM_KEY in hsm.uri
    report = Verifier(session).verify_vault(record.safe)
    assert report.ok, report.failures()


# -- batch mode (off-chain, anchored) ----------------------------------------------------------------------
@pytest.fixture
def tagged(session, vault, tmp_path):
    from custody.harness import scenario

    issuer = collateral_helpers.deploy(session)
    bars = scenario.write_csv(tmp_path / "bars.csv", scenario.generate_rows(12))
    result = steps.tag_bars(session, bars, token=issuer.token, vault=vault.safe, attester=session.signer(OPS))
    return issuer, bars, result


def test_inventory_tags_are_eas_offchain_attestations_anchored_by_one_timestamp(
    session, vault, tagged, tmp_path, run_cli
):
    _issuer, bars, result = tagged
    assert result.size == 12 and len({d["sig"]["uid"] for d in result.documents}) == 12
    receipt = session.chain.w3.eth.get_transaction_receipt(result.anchor_tx)
    assert receipt["gasUsed"] == result.anchor_gas < 60_000  # one EAS.timestamp for the whole batch
    ctx = badges.context(session)
    assert (
        session.chain.call(ctx.contract.functions.getTimestamp(bytes.fromhex(result.root[2:])).call)
        == result.anchor_time
    )
    # the audit ledger records the batch once (root, size, anchor tx), not one entry per tag
    (anchored,) = [e for e in ledger_for(session.store).entries() if e.kind == "attestation_batch_anchored"]
    assert anchored.refs["root"] == result.root and anchored.refs["tx_hash"] == result.anchor_tx
    assert anchored.payload["size"] == 12 and anchored.payload["step"] == "inventory_tag"
    doc = result.documents[5]
    assert doc["sig"]["domain"]["name"] == "EAS Attestation" and doc["sig"]["message"]["version"] == 2
    fields = STEPS["inventory_tag"].decode(bytes.fromhex(doc["sig"]["message"]["data"][2:]))
    assert fields["barListHash"] == hashlib.sha256(bars.read_bytes()).digest()
    verifier = Verifier(session, use_workspace=False, templates=[ATTESTED])
    for d in result.documents:
        check = verifier.check_offchain(d)
        assert check.ok, check.problems
    out = tmp_path / "tags.json"
    batch.write_documents(result.documents, out)
    cli = run_cli("attest", "verify", "--file", str(out), "--no-workspace", "--template", str(ATTESTED), "--json")
    assert cli.exit_code == 0, cli.stdout + cli.stderr
    assert json.loads(cli.stdout)["reports"][0]["summary"]["valid"] == 12


def _resign(session, doc, signer):
    """Re-sign a document's (possibly altered) message with ``signer``, keeping every other field."""
    from custody.attest.evidence import offchain_message

    msg = offchain_message(doc["sig"]["message"])
    ctx = badges.context(session)
    sig = signer.sign_typed_data(
        msg.typed_data(eas=ctx.address, eas_version=ctx.deployment.version, chain_id=session.chain_id)
    )
    doc["sig"]["signature"] = {"r": f"0x{sig.r:064x}", "s": f"0x{sig.s:064x}", "v": sig.v}
    return doc


def test_forged_offchain_attestations_are_rejected(session, vault, tagged):
    _issuer, _bars, result = tagged
    verifier = Verifier(session, use_workspace=False, templates=[ATTESTED])
    original = result.documents[3]

    wrong_signer = _resign(session, copy.deepcopy(original), anvil_signer(5))  # claims anvil 7 signed it
    problems = verifier.check_offchain(wrong_signer).problems
    assert any(f"recovers to {anvil_address(5)}, not to the claimed attester {anvil_address(7)}" in p for p in problems)

    self_claimed = _resign(session, copy.deepcopy(original), anvil_signer(5))
    self_claimed["signer"] = anvil_address(5)  # honest about its signer, but not an authorised attester
    problems = verifier.check_offchain(self_claimed).problems
    assert any(f"attester {anvil_address(5)} is not authorised for inventory_tag" in p for p in problems)

    altered = copy.deepcopy(original)
    fields = STEPS["inventory_tag"].decode(bytes.fromhex(altered["sig"]["message"]["data"][2:]))
    altered["sig"]["message"]["data"] = (
        "0x" + STEPS["inventory_tag"].encode({**fields, "fineWeight": fields["fineWeight"] + 1}).hex()
    )
    problems = verifier.check_offchain(altered).problems
    assert any("its UID does not match its contents" in p for p in problems)
    assert any("not to the claimed attester" in p for p in problems)

    wrong_proof = copy.deepcopy(original)
    wrong_proof["custody"]["batch"]["proof"][0] = "0x" + keccak(b"not a sibling").hex()
    assert any("Merkle proof does not lead to batch root" in p for p in verifier.check_offchain(wrong_proof).problems)

    other_proof = copy.deepcopy(original)
    other_proof["custody"]["batch"]["proof"] = result.documents[4]["custody"]["batch"]["proof"]
    assert any("Merkle proof" in p for p in verifier.check_offchain(other_proof).problems)

    unanchored_root = copy.deepcopy(original)  # a self-consistent tree that was never timestamped
    uid = bytes.fromhex(original["sig"]["uid"][2:])
    tree = merkle.levels([uid, keccak(b"x")])
    unanchored_root["custody"]["batch"].update(
        root=badges.hex32(merkle.root(tree)), proof=[badges.hex32(p) for p in merkle.proof(tree, 0)]
    )
    assert any("was never timestamped" in p for p in verifier.check_offchain(unanchored_root).problems)

    wrong_chain = copy.deepcopy(original)
    wrong_chain["sig"]["domain"]["chainId"] = 1
    assert any("domain chainId is 1" in p for p in verifier.check_offchain(wrong_chain).problems)

    assert verifier.check_offchain(original).ok  # the untouched one still verifies


def test_revoking_an_offchain_attestation_fails_its_verification(session, vault, tagged, run_cli):
    _issuer, _bars, result = tagged
    uid = result.documents[0]["sig"]["uid"]
    revoked = run_cli("attest", "revoke", uid, "--attester", OPS, "--json")
    assert revoked.exit_code == 0, revoked.stderr
    assert json.loads(revoked.stdout)["mode"] == "offchain"
    report = Verifier(session).verify_vault(vault.safe)
    failures = "\n".join(report.failures())
    assert f"badge {uid} (inventory_tag): was revoked off chain" in failures
    assert sum(not c.ok for c in report.checks) == 1
    with pytest.raises(AttestationError, match="only that attester can revoke it"):
        batch.revoke_offchain(session, result.documents[1]["sig"]["uid"], attester=anvil_signer(5))


def test_auditor_needs_the_templates_the_chain_anchors(session, vault, tagged):
    _issuer, _bars, result = tagged
    blind = Verifier(session, use_workspace=False, documents=result.documents)
    report = blind.verify_vault(vault.safe)
    assert not report.ok
    assert any("is not available: pass it with --template FILE" in p for p in report.problems)
    tampered = ATTESTED.read_text().replace("label: compliance", "label: compliance-team")
    path = session.workspace.home / "tampered.yaml"
    path.write_text(tampered)  # a different text than the one whose hash the guard holds: ignored
    still_blind = Verifier(session, use_workspace=False, documents=result.documents, templates=[path]).verify_vault(
        vault.safe
    )
    assert not still_blind.ok
    informed = Verifier(session, use_workspace=False, documents=result.documents, templates=[ATTESTED]).verify_vault(
        vault.safe
    )
    assert informed.ok, informed.failures()


# -- bad input ------------------------------------------------------------------------------------------
def test_bad_input_gets_specific_errors(session, vault, run_cli):
    attester = session.signer(OPS)
    with pytest.raises(InputError, match="approval badge fields: missing signer"):
        badges.issue(session, "approval", attester=attester, recipient=anvil_address(1),
                fields={"vault": vault.safe, "safeTxHash": badges.ZERO32, "ledgerEntry": badges.ZERO32})  # fmt: skip
    with pytest.raises(InputError, match="unknown custody step 'audit'"):
        badges.issue(session, "audit", attester=attester, recipient=anvil_address(1), fields={})
    with pytest.raises(InputError, match="is not in the future"):
        steps.kyc_badge(session, vault=vault.safe, subject=anvil_address(1), jurisdiction="CH", evidence=b"x",
                    attester=attester, expiration=session.chain.latest_timestamp() - 1)  # fmt: skip
    with pytest.raises(UnknownAttestation, match="refUID 0x1111"):
        badges.issue(session, "drill", attester=attester, recipient=vault.safe, ref_uid=b"\x11" * 32,
                fields={"vault": vault.safe, "playbook": "x", "reportHash": badges.ZERO32, "passed": True, "ledgerEntry": badges.ZERO32})  # fmt: skip
    with pytest.raises(InputError, match="must be 0x followed by 64 hex digits"):
        badges.parse_uid("0x1234")
    with pytest.raises(UnknownAttestation):
        badges.read(session, "0x" + "ab" * 32)
    st = STEPS["execution"]
    with pytest.raises(InputError, match="execution.amount must be a non-negative whole number"):
        badges.coerce_fields(st, {"amount": "-5"})
    with pytest.raises(InputError, match="execution badges have no field colour"):
        badges.coerce_fields(st, {"colour": "red"})
    with pytest.raises(InputError, match="execution.safeTxHash must be a 32-byte hex value"):
        badges.coerce_fields(st, {"safeTxHash": "0x12"})
    result = run_cli("attest", "issue", "kyc", "--subject", anvil_address(1), "--vault", "attested",
                     "--field", "jurisdiction=CH")  # fmt: skip
    assert result.exit_code == 1 and "kyc badges need --field for evidenceHash" in result.stderr
    result = run_cli("attest", "issue", "kyc", "--subject", anvil_address(1), "--vault", "attested",
                     "--field", "jurisdiction=CH", "--field", "evidenceHash=0x" + "11" * 32)  # fmt: skip
    assert result.exit_code == 1 and "name the attester key" in result.stderr
    result = run_cli("attest", "issue", "kyc", "--subject", "0xnothex", "--vault", "attested", "--attester", COMPLIANCE,
                     "--field", "jurisdiction=CH", "--field", "evidenceHash=0x" + "11" * 32)  # fmt: skip
    assert result.exit_code == 1 and "'0xnothex' is not an address" in result.stderr
    result = run_cli("attest", "verify")
    assert result.exit_code == 1 and "name what to verify" in result.stderr
    kyc = _kyc(session, vault, 1)
    with pytest.raises(AttestationError, match=f"issued by {anvil_address(9)}; only that attester can revoke it"):
        badges.revoke(session, kyc.uid, attester=attester)
    assert badges.stored(session, step_name="kyc")[0]["uid"] == kyc.uid  # nothing lost by the failures


def test_cli_issue_show_list_and_schemas(session, vault, run_cli):
    schemas = json.loads(run_cli("attest", "schemas", "--json").stdout)
    assert set(schemas["schemas"]) == set(STEPS)
    assert all(s["uid"] == "0x" + STEPS[n].uid.hex() for n, s in schemas["schemas"].items())
    issued = run_cli(
        "attest", "issue", "kyc", "--subject", anvil_address(2), "--vault", "attested", "--attester", COMPLIANCE,
        "--field", "jurisdiction=LI", "--field", "evidenceHash=0x" + "22" * 32, "--expires", "365d", "--json",
    )  # fmt: skip
    assert issued.exit_code == 0, issued.stderr
    data = json.loads(issued.stdout)
    assert data["attester"] == anvil_address(9) and data["fields"]["jurisdiction"] == "LI"
    assert data["expiration"] > session.chain.latest_timestamp() + 364 * 86400
    shown = json.loads(run_cli("attest", "show", data["uid"], "--json").stdout)
    assert shown["uid"] == data["uid"] and shown["recipient"] == anvil_address(2)
    listed = json.loads(run_cli("attest", "list", "--vault", "attested", "--json").stdout)
    assert [r["uid"] for r in listed] == [data["uid"]]
    assert run_cli("attest", "verify", "--uid", data["uid"]).exit_code == 0


def test_expired_badge_fails_verification(session, vault):
    badge = steps.kyc_badge(session, vault=vault.safe, subject=anvil_address(1), jurisdiction="CH", evidence=b"e",
                        attester=session.signer(COMPLIANCE), expiration=session.chain.latest_timestamp() + 600)  # fmt: skip
    assert Verifier(session).verify_uid(badge.uid).ok
    session.chain.rpc("evm_increaseTime", [601])
    session.chain.mine()
    problems = Verifier(session).verify_uid(badge.uid).checks[0].problems
    assert any("expired at" in p for p in problems)
