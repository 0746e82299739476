"""A template chooses, per emitted step, an on-chain badge or a batched one (an EAS off-chain attestation
signed as the step happens, anchored with the vault's other waiting badges by one EAS timestamp): the
flows follow the choice, a waiting badge does not verify until its anchor, the vault anchors by itself
at ``anchor_every``, every anchored item verifies on its own (also from an audit bundle alone), and the
template's mistakes are named."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from custody.attest import auto, badges, batch
from custody.attest.ledger_link import LedgerView
from custody.attest.verify import Verifier
from custody.audit.bundle import export_bundle
from custody.audit.record import ledger_for
from custody.exceptions import TemplateError
from custody.policy.template import check_policy, load_policy
from custody.signers.local import anvil_address, anvil_signer
from custody.store import attest_batches
from custody.vault import proposals, service
from tests.attest_helpers import ATTESTED, BROKER, ETH, OPS, transfer

ONCHAIN_EMIT = "  emit: [approval, oob_confirmation, execution]\n"


def _template(tmp_path, emit: str, name: str) -> object:
    text = ATTESTED.read_text()
    assert ONCHAIN_EMIT in text  # the fixture's emit line, replaced below
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(ONCHAIN_EMIT, emit))
    return path


def _vault(session, template, name):
    record, _ = service.create_vault(session, template, name=name)
    session.send(to=record.safe, value=50 * ETH, what="fund")
    return record


def test_batched_approvals_wait_for_their_anchor_then_verify_alone_and_from_a_bundle(session, tmp_path, run_cli):
    template = _template(tmp_path, "  emit: {approval: batched, execution: onchain}\n", "mixed")
    vault = _vault(session, template, "mixed")
    session.attester_uri = OPS
    proposal = transfer(session, vault)
    receipt = proposals.execute(session, proposal)

    approvals = badges.stored(session, step_name="approval", reference=proposal.safe_tx_hash)
    (execution,) = badges.stored(session, step_name="execution", reference=proposal.safe_tx_hash)
    assert [(r["mode"], r["signer"], r["batch_root"], r["tx_hash"]) for r in approvals] == [
        ("offchain", anvil_address(1), None, None), ("offchain", anvil_address(2), None, None),
    ]  # fmt: skip
    assert execution["mode"] == "onchain" and execution["tx_hash"]
    onchain = badges.read(session, execution["uid"])
    assert [badges.hex32(u) for u in onchain.fields["approvals"]] == [r["uid"] for r in approvals]
    assert onchain.ref_uid == badges.hex32(badges.ZERO32)  # EAS refuses an on-chain refUID to an off-chain UID
    assert badges.hex32(onchain.fields["txHash"]) == receipt.tx_hash
    # the approvals were signed without a transaction: the only attestation sent is the execution's
    assert [r for r in badges.stored(session, vault=vault.safe) if r["tx_hash"]] == [execution]

    waiting = Verifier(session).verify_vault(vault.safe)
    assert not waiting.ok
    for row in approvals:
        (check,) = [c for c in waiting.checks if c.uid == row["uid"]]
        assert check.problems == [
            "is neither in an anchored batch nor timestamped on EAS (a batched badge waiting for its anchor: "
            "`custody attest anchor`)"
        ]
    (check,) = [c for c in waiting.checks if c.uid == execution["uid"]]
    assert check.problems == [
        f"listed approval {row['uid']} is not valid: is neither in an anchored batch nor timestamped on EAS (a "
        "batched badge waiting for its anchor: `custody attest anchor`)"
        for row in approvals
    ]  # the execution badge stands on approvals that are not evidence yet
    assert {(m["step"], m.get("signer")) for m in waiting.missing} == {
        ("approval", anvil_address(1)), ("approval", anvil_address(2)), ("execution", None),
    }  # fmt: skip
    listed = run_cli("attest", "list", "--vault", "mixed")
    assert listed.stdout.count("awaiting anchor") == 2, listed.stdout

    out = tmp_path / "anchored.json"
    anchored = run_cli("attest", "anchor", "mixed", "--out", str(out), "--json")
    assert anchored.exit_code == 0, anchored.stderr
    summary = json.loads(anchored.stdout)["anchored"]
    assert summary["size"] == 2 and summary["step"] == "approval"
    assert summary["uids"] == [r["uid"] for r in approvals]
    assert {r["batch_root"] for r in badges.stored(session, step_name="approval")} == {summary["root"]}
    assert batch.pending(session, vault=vault.safe) == []
    again = run_cli("attest", "anchor", "mixed", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["anchored"] is None
    assert "no batched badge of vault mixed waits for an anchor" in run_cli("attest", "anchor", "mixed").stdout

    report = Verifier(session).verify_vault(vault.safe)
    assert report.ok, report.failures()
    assert sorted((c.step, c.mode) for c in report.checks) == [
        ("approval", "offchain"), ("approval", "offchain"), ("execution", "onchain"),
    ]  # fmt: skip
    # each anchored document verifies on its own, by an auditor holding only it, the chain and the template
    for doc in batch.read_documents(out):
        alone = Verifier(session, use_workspace=False, templates=[template], documents=[doc])
        assert alone.verify_documents([doc]).ok
    # an outside auditor with the template and the exported audit bundle alone sees every badge valid
    bundle = tmp_path / "bundle.tar.gz"
    export_bundle(ledger_for(session.store), bundle, store=session.store)
    auditor = Verifier(session, use_workspace=False, templates=[template], ledger=LedgerView.from_bundle(bundle))
    outside = auditor.verify_vault(vault.safe)
    assert outside.ok and len(outside.checks) == 3 and outside.missing == [], outside.failures()
    verified = run_cli("attest", "verify", "--vault", vault.safe, "--no-workspace", "--template", str(template),
                       "--ledger", str(bundle), "--json")  # fmt: skip
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True, verified.stdout


def test_a_vault_anchors_its_waiting_badges_itself_every_anchor_every(session, tmp_path):
    template = _template(tmp_path, "  emit: {approval: batched, execution: batched}\n  anchor_every: 3\n", "batched")
    vault = _vault(session, template, "batched")
    session.attester_uri = OPS
    proposal = transfer(session, vault)
    waiting = batch.pending(session, vault=vault.safe)
    assert [r["step"] for r in waiting] == ["approval", "approval"]  # two wait: fewer than anchor_every
    assert _batches(session) == []
    proposals.execute(session, proposal)  # the execution's badge is the third: the vault anchors all three
    assert batch.pending(session, vault=vault.safe) == []
    rows = badges.stored(session, vault=vault.safe)
    assert [r["step"] for r in rows] == ["approval", "approval", "execution"]
    assert len({r["batch_root"] for r in rows}) == 1 and rows[0]["batch_root"]
    (execution,) = [batch.stored_documents(session, [r["uid"]])[0] for r in rows if r["step"] == "execution"]
    assert execution["custody"]["batch"]["size"] == 3
    assert execution["sig"]["message"]["refUID"] == rows[1]["uid"]  # off chain it may refer to an off-chain UID
    assert [(b["size"], b["root"]) for b in _batches(session)] == [(3, rows[0]["batch_root"])]
    report = Verifier(session).verify_vault(vault.safe)
    assert report.ok and len(report.checks) == 3, report.failures()


def _batches(session):
    with session.store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(attest_batches))]


def test_an_anchor_that_fails_leaves_the_step_and_its_badges_waiting_for_the_next(session, tmp_path, caplog, run_cli):
    template = _template(tmp_path, "  emit: {approval: batched}\n  anchor_every: 2\n", "broke")
    vault = _vault(session, template, "broke")
    session.attester_uri = OPS
    proposal = proposals.propose_transfer(session, vault.id, to=BROKER, amount="1", proposer="alice")
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    gas_payer = session.sender.address
    balance = session.chain.w3.eth.get_balance(gas_payer)
    session.chain.rpc("anvil_setBalance", [gas_payer, "0x0"])  # the anchoring transaction cannot be paid
    with caplog.at_level(logging.WARNING, logger="custody.attest.auto"):
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(2))  # the 2nd badge
    session.chain.rpc("anvil_setBalance", [gas_payer, hex(balance)])
    assert "2 batched badge(s) of vault broke await their anchor" in caplog.text
    assert "`custody attest anchor broke` retries" in caplog.text
    assert len(proposals.get_proposal(session, proposal.id).signatures) == 2  # the approval itself stands
    assert [r["signer"] for r in batch.pending(session, vault=vault.safe)] == [anvil_address(1), anvil_address(2)]
    assert _batches(session) == []
    retried = run_cli("attest", "anchor", "broke", "--json")
    assert retried.exit_code == 0 and json.loads(retried.stdout)["anchored"]["size"] == 2, retried.stderr
    assert batch.pending(session, vault=vault.safe) == []


def test_backfill_signs_the_missing_batched_badges_and_anchors_them_as_one_set(session, tmp_path, caplog):
    template = _template(tmp_path, "  emit: {approval: batched, execution: batched}\n", "late")
    vault = _vault(session, template, "late")
    with caplog.at_level(logging.WARNING, logger="custody.attest.auto"):
        proposals.execute(session, transfer(session, vault))  # no attester configured: nothing issued
    assert "no attester key is configured" in caplog.text and badges.stored(session, vault=vault.safe) == []
    session.attester_uri = OPS
    issued = auto.backfill(session, vault.safe)
    assert sorted((b.step, b.mode) for b in issued) == [
        ("approval", "offchain"), ("approval", "offchain"), ("execution", "offchain"),
    ]  # fmt: skip
    assert batch.pending(session, vault=vault.safe) == []
    assert len({r["batch_root"] for r in badges.stored(session, vault=vault.safe)}) == 1
    assert Verifier(session).verify_vault(vault.safe).ok
    assert auto.backfill(session, vault.safe) == []


def test_the_template_states_each_steps_mode(tmp_path):
    policy = load_policy(_template(tmp_path, "  emit: {approval: batched, execution: onchain}\n", "modes"))
    rule = policy.attestations
    assert rule.emit == ("approval", "execution") and rule.batched == ("approval",) and rule.anchor_every == 100
    assert (rule.mode("approval"), rule.mode("execution")) == ("batched", "onchain")
    listed = load_policy(ATTESTED).attestations
    assert listed.batched == () and {listed.mode(s) for s in listed.emit} == {"onchain"}


@pytest.mark.parametrize(
    ("emit", "field", "message"),
    [
        ("  emit: {approval: offchain}\n", "attestations.emit.approval",
         "is 'offchain'; an emitted step is attested onchain or batched"),
        ("  emit: {kyc: batched}\n", "attestations.emit.kyc", "unknown key 'kyc'"),
        ("  emit: {approval: batched}\n  anchor_every: 0\n", "attestations.anchor_every", "must be at least 1, got 0"),
        ("  emit: {approval: batched}\n  anchor_every: 10001\n", "attestations.anchor_every",
         "must be at most 10,000 badges per anchor, got 10,001"),
        ("  emit: [approval]\n  anchor_every: 10\n", "attestations.anchor_every",
         "applies to batched steps, and emit batches none"),
    ],
)  # fmt: skip
def test_a_wrong_emit_mode_is_named_with_its_line(tmp_path, emit, field, message):
    path = _template(tmp_path, emit, "wrong")
    found = check_policy(path)
    line = path.read_text().splitlines().index(emit.splitlines()[-1]) + 1
    assert [(p.line, p.field) for p in found] == [(line, field)], found
    assert found[0].message.startswith(message), found[0].message
    with pytest.raises(TemplateError, match="problem"):
        load_policy(path)
