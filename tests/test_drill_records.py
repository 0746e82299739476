"""A finished drill leaves an audit-ledger entry and (for a vault that outlives the drill) an EAS drill
badge; both carry the report's hash, which a regulator recomputes from report.json."""

from __future__ import annotations

import json

import orjson
import pytest

from custody.attest import badges
from custody.attest.verify import Verifier
from custody.audit.record import ledger_for
from custody.drills import DrillOptions, load_playbook, run_drill
from custody.drills.hooks import report_hash
from custody.vault import service
from tests.conftest import REPO

PLAYBOOK = REPO / "playbooks" / "emergency-exit.yaml"
OPS = "anvil:7"
ETH = 10**18


@pytest.fixture
def attested_vault(session, tmp_path):
    text = (REPO / "playbooks" / "templates" / "drill-vault.yaml").read_text()
    text = text.replace("name: drill-vault", "name: attested-drill-vault") + (
        "attestations:\n"
        "  attesters:\n"
        "    - {address: 0x14dC79964da2C08b23698B3D3cc7Ca32193d9955, label: ops, steps: [approval, execution, drill]}\n"
        "  emit: [approval, execution]\n"
        "  controls: [TEST-6]\n"
    )
    template = tmp_path / "attested-drill-vault.yaml"
    template.write_text(text)
    record, _ = service.create_vault(session, template)
    session.send(to=record.safe, value=10 * ETH, what="fund")
    return record


def _ledger_entry(session, seq: int) -> dict:
    ((_s, _leaf, blob),) = list(ledger_for(session.store).rows(seq, seq + 1))
    return orjson.loads(blob)


def test_a_drill_on_an_existing_vault_is_recorded_and_attested(session, attested_vault, tmp_path):
    options = DrillOptions(vault=attested_vault.name, attester=OPS, out=tmp_path / "report")
    report = run_drill(session.workspace, load_playbook(PLAYBOOK), options, chain=session.chain)
    assert report.passed, report.data["failures"]
    # the snapshot was restored: the vault still holds its ETH
    assert session.chain.w3.eth.get_balance(attested_vault.safe) == 10 * ETH

    records = report.data["records"]
    written = json.loads(report.json_path.read_text())
    assert records["report_keccak"] == report_hash(written)  # recomputable from the file alone

    entry = _ledger_entry(session, records["ledger"]["seq"])
    assert entry["kind"] == "drill" and entry["vault"] == attested_vault.name
    payload = entry["payload"]
    assert payload["report_keccak"] == records["report_keccak"] and payload["outcome"] == "passed"
    assert payload["mode"] == "snapshot" and payload["restored"] is True
    assert [s["verdict"] for s in payload["steps"]] == ["passed"] * len(written["steps"])

    badge = badges.read(session, records["attestation"])
    assert badge.step == "drill" and badge.attester.lower() == "0x14dc79964da2c08b23698b3d3cc7ca32193d9955"
    assert badges.hex32(badge.fields["reportHash"]) == records["report_keccak"] and badge.fields["passed"] is True
    assert badges.hex32(badge.fields["ledgerEntry"]) == records["ledger"]["leaf_hash"]
    verdict = Verifier(session).verify_vault(attested_vault.safe)
    assert verdict.ok, verdict.failures()
    (check,) = [c for c in verdict.checks if c.step == "drill"]
    assert f"recorded in the workspace ledger as entry #{records['ledger']['seq']}" in check.notes
    html = report.html_path.read_text()
    assert records["attestation"] in html and records["ledger"]["leaf_hash"] in html


def test_a_drill_on_its_own_snapshot_vault_is_recorded_but_not_attested(session, tmp_path):
    options = DrillOptions(attester=OPS, out=tmp_path / "report")
    report = run_drill(session.workspace, load_playbook(PLAYBOOK), options, chain=session.chain)
    assert report.passed, report.data["failures"]
    records = report.data["records"]
    assert records["attestation"] is None and "existed only on the snapshot" in records["attestation_skipped"]
    entry = _ledger_entry(session, records["ledger"]["seq"])
    assert entry["kind"] == "drill" and entry["payload"]["safe"] is None
    assert "not issued: the drill&#x27;s vaults existed only on the snapshot" in report.html_path.read_text()
