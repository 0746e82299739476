"""Badges and the audit ledger cite each other: ``ledgerEntry`` is the leaf hash of the entry recording the
same step; verification checks the link (in the workspace or in an exported bundle) and flags ledger
steps that lack their badge."""

from __future__ import annotations

import json

import orjson
import pytest

from custody.attest import auto, badges
from custody.attest.ledger_link import LedgerView
from custody.attest.verify import Verifier
from custody.audit.bundle import export_bundle
from custody.audit.merkle import leaf_hash
from custody.audit.record import ledger_for
from custody.exceptions import BundleError
from custody.session import Session
from custody.signers.local import anvil_address
from custody.vault import oob, proposals
from tests import attest_helpers
from tests.attest_helpers import ATTESTED, OPS, transfer

vault = attest_helpers.vault  # the attested-template vault fixture


@pytest.fixture(autouse=True)
def _oob_passphrase(monkeypatch):
    monkeypatch.setenv("CUSTODY_OOB_PASSPHRASE", "attest ledger test passphrase")


def _entries(session) -> dict[tuple, tuple[int, bytes]]:
    """(kind, safe_tx_hash, actor) -> (seq, leaf hash) of the workspace ledger."""
    out = {}
    for seq, _leaf, blob in ledger_for(session.store).rows():
        entry = orjson.loads(blob)
        out[(entry["kind"], entry["refs"].get("safe_tx_hash"), entry["actor"])] = (seq, leaf_hash(bytes(blob)))
    return out


def _confirmed_transfer(session, vault, workspace):
    oob.enroll(workspace, "alice"), oob.enroll(workspace, "bob")  # alice proposes, bob confirms
    proposal = transfer(session, vault, amount="55")  # above out_of_band_above: 50
    code = oob.issue_challenge(session, proposal, "bob", issued_by="alice")[0]
    oob.confirm_with_code(session, proposal, "bob", code)
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    return proposals.get_proposal(session, proposal.id)


def test_badges_cite_the_ledger_entries_of_their_steps(session, vault, workspace):
    session.attester_uri = OPS
    proposal = _confirmed_transfer(session, vault, workspace)
    entries = _entries(session)
    h = proposal.safe_tx_hash
    for row in badges.stored(session, step_name="approval", reference=h):
        _seq, leaf = entries[("approval_signed", h, row["signer"])]
        assert bytes(badges.read(session, row["uid"]).fields["ledgerEntry"]) == leaf
    (conf,) = badges.stored(session, step_name="oob_confirmation", reference=h)
    assert (
        bytes(badges.read(session, conf["uid"]).fields["ledgerEntry"])
        == entries[("out_of_band_confirmation", h, "bob")][1]
    )
    (execution,) = badges.stored(session, step_name="execution", reference=h)
    ((exec_seq, exec_leaf),) = [v for k, v in entries.items() if k[0] == "execution" and k[1] == h]
    assert bytes(badges.read(session, execution["uid"]).fields["ledgerEntry"]) == exec_leaf

    report = Verifier(session).verify_vault(vault.safe)
    assert report.ok, report.failures()
    check = next(c for c in report.checks if c.uid == execution["uid"])
    assert f"recorded in the workspace ledger as entry #{exec_seq}" in check.notes


def test_a_wrong_or_unknown_ledger_link_fails_verification(session, vault):
    session.attester_uri = OPS
    proposal = transfer(session, vault)
    proposals.execute(session, proposal)
    entries = _entries(session)
    created_seq, created_leaf = entries[("proposal_created", proposal.safe_tx_hash, "alice")]
    signer = anvil_address(1)
    fields = {"vault": vault.safe, "safeTxHash": bytes.fromhex(proposal.safe_tx_hash[2:]), "signer": signer}
    wrong_kind = badges.issue(session, "approval", attester=session.signer(OPS), recipient=signer,
                         fields={**fields, "ledgerEntry": created_leaf})  # fmt: skip
    unknown = badges.issue(session, "approval", attester=session.signer(OPS), recipient=signer,
                      fields={**fields, "ledgerEntry": bytes(range(32))})  # fmt: skip
    _seq2, other_signer_leaf = entries[("approval_signed", proposal.safe_tx_hash, anvil_address(2))]
    other_actor = badges.issue(session, "approval", attester=session.signer(OPS), recipient=signer,
                          fields={**fields, "ledgerEntry": other_signer_leaf})  # fmt: skip
    verifier = Verifier(session)
    problems = {b.uid: verifier.verify_uid(b.uid).checks[0].problems for b in (wrong_kind, unknown, other_actor)}
    assert any(f"entry #{created_seq} is a proposal_created entry, not approval_signed" in p
               for p in problems[wrong_kind.uid])  # fmt: skip
    assert any(
        f"{badges.hex32(bytes(range(32)))} is not an entry of the workspace ledger" in p for p in problems[unknown.uid]
    )
    assert any(f"records an approval by {anvil_address(2)}, not by {signer}" in p for p in problems[other_actor.uid])


def test_auditor_flags_ledger_steps_without_badges_from_a_bundle(session, vault, workspace, tmp_path, run_cli):
    # badges for approvals and the execution exist, the out-of-band confirmation's badge does not: only the
    # ledger knows of the confirmation when the auditor has no workspace
    session.attester_uri = OPS
    oob.enroll(workspace, "alice"), oob.enroll(workspace, "bob")  # alice proposes, bob confirms
    proposal = transfer(session, vault, amount="55")
    plain = Session(workspace=workspace, chain=session.chain)  # another operator's process, without --attester
    code = oob.issue_challenge(plain, proposal, "bob", issued_by="alice")[0]
    oob.confirm_with_code(plain, proposal, "bob", code)
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    assert badges.stored(session, step_name="oob_confirmation", reference=proposal.safe_tx_hash) == []

    bundle = tmp_path / "audit.tar.gz"
    export_bundle(ledger_for(session.store), bundle, store=session.store)
    (conf_seq, conf_leaf) = _entries(session)[("out_of_band_confirmation", proposal.safe_tx_hash, "bob")]

    auditor = Verifier(session, templates=[ATTESTED], use_workspace=False, ledger=LedgerView.from_bundle(bundle))
    report = auditor.verify_vault(vault.safe)
    assert [(m["step"], m["ledger_seq"], m["ledger_entry"]) for m in report.missing] == [
        ("oob_confirmation", conf_seq, badges.hex32(conf_leaf))
    ]
    assert all(c.ok for c in report.checks) and not report.ok
    # without a ledger the auditor cannot see the confirmation at all
    assert Verifier(session, templates=[ATTESTED], use_workspace=False).verify_vault(vault.safe).ok

    cli = ["attest", "verify", "--vault", vault.safe, "--no-workspace", "--template", str(ATTESTED),
           "--ledger", str(bundle), "--json"]  # fmt: skip
    result = run_cli(*cli)
    assert result.exit_code == 2, result.stderr
    (missing,) = json.loads(result.stdout)["reports"][0]["missing"]
    assert missing["ledger_seq"] == conf_seq and "lacks a valid oob_confirmation badge" in missing["message"]

    # backfill issues it, linked to the entry, and the auditor's verdict turns green on a fresh bundle
    assert [b.step for b in auto.backfill(session, "attested")] == ["oob_confirmation"]
    export_bundle(ledger_for(session.store), bundle, store=session.store)
    result = run_cli(*cli)
    assert result.exit_code == 0, result.stdout


def test_a_damaged_bundle_is_refused(session, vault, tmp_path):
    bundle = tmp_path / "audit.tar.gz"
    export_bundle(ledger_for(session.store), bundle, store=session.store)
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(bundle.read_bytes()[:-40])
    with pytest.raises(BundleError, match="is not a readable audit bundle"):
        LedgerView.from_bundle(damaged)


def test_the_ledger_lists_the_badges_issued_and_revoked(session, vault):
    session.attester_uri = OPS
    proposal = transfer(session, vault)
    proposals.execute(session, proposal)
    uids = {row["uid"]: row for row in badges.stored(session, vault=vault.safe)}
    assert len(uids) == 3  # two approvals, one execution
    entries = [orjson.loads(blob) for _s, _l, blob in ledger_for(session.store).rows()]
    issued = {e["refs"]["uid"]: e for e in entries if e["kind"] == "attestation_issued"}
    assert set(issued) == set(uids)
    for uid, entry in issued.items():
        assert entry["refs"]["tx_hash"] == uids[uid]["tx_hash"] and entry["actor"] == anvil_address(7)
        assert entry["payload"]["step"] == uids[uid]["step"] and entry["vault"] == "attested"
    execution = next(u for u, r in uids.items() if r["step"] == "execution")
    _badge, tx = badges.revoke(session, execution, attester=session.signer(OPS))
    (revoked,) = [orjson.loads(b) for _s, _l, b in ledger_for(session.store).rows() if b"attestation_revoked" in b]
    assert revoked["refs"] == {"tx_hash": tx, "block": revoked["refs"]["block"], "uid": execution}
    assert revoked["payload"]["mode"] == "onchain" and revoked["payload"]["step"] == "execution"
