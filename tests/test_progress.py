"""Progress for long work (issue 17): the library reports ``progress(done, total)`` on real runs — counts that
only grow and end at the total — for reconciliation (bar list read), `audit index` (blocks), `audit verify`
(entries checked) and `audit export` (entries written); the CLI draws it on a terminal's stderr and never with
--json, whose stdout stays one JSON document."""

from __future__ import annotations

import json

import pytest

from custody.audit import service as audit_service
from custody.audit.indexer import index_vaults
from custody.audit.record import ledger_for
from custody.harness import scenario
from custody.harness.synthetic import fill
from custody.reconcile.service import run_reconcile
from custody.vault import service
from tests.collateral_helpers import deploy, units, write
from tests.conftest import POLICIES

ENTRIES = 2_345  # several reports at the library's every-1,000 cadence, and a last one that is not on it
TERMINAL = {"FORCE_COLOR": "1"}  # rich then treats the captured stderr as a terminal: bars are drawn


def recorder() -> tuple[list[tuple[int, int]], object]:
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


def assert_counts_up_to(calls: list[tuple[int, int]], total: int) -> None:
    assert len(calls) >= 2, calls
    dones = [done for done, _ in calls]
    assert dones == sorted(dones) and dones[0] == 0, calls  # monotonic, from nothing done
    assert calls[-1] == (total, total), calls  # reaching the total


@pytest.fixture
def filled(workspace):
    ledger = ledger_for(workspace.store)
    fill(ledger, ENTRIES, key=audit_service.ledger_key(workspace), head_every=500)
    return ledger


def test_verify_and_export_report_every_entry(workspace, filled, tmp_path):
    calls, progress = recorder()
    report = audit_service.verify(store=workspace.store, progress=progress)
    assert report.integrity.size == ENTRIES
    assert_counts_up_to(calls, ENTRIES)
    assert len(calls) == 2 + ENTRIES // 1_000  # the start, every 1,000, the end
    for fmt in ("jsonl", "csv", "bundle"):
        calls, progress = recorder()
        out = tmp_path / f"ledger.{fmt}"
        audit_service.export(workspace.store, fmt, out, progress=progress)
        assert_counts_up_to(calls, ENTRIES)
    bundle_calls, progress = recorder()
    audit_service.verify(bundle=tmp_path / "ledger.bundle", progress=progress)
    assert_counts_up_to(bundle_calls, ENTRIES)


def test_index_reports_the_blocks_scanned_over_all_vaults(session):
    for template in ("hot.yaml", "cold.yaml"):
        record, _ = service.create_vault(session, POLICIES / template)
        session.send(to=record.safe, value=10**18, what="ETH deposit")
    calls, progress = recorder()
    results = index_vaults(session, progress=progress)
    scanned = sum(r.sync.to_block - r.sync.from_block + 1 for r in results)
    assert len(results) == 2 and scanned > 0
    assert_counts_up_to(calls, scanned)
    calls, progress = recorder()
    index_vaults(session, progress=progress)  # nothing new: still a start and an end, at zero
    assert calls and all(done == total == 0 for done, total in calls)


def test_reconcile_reports_the_bar_list_read(session, tmp_path):
    rows = scenario.generate_rows(40, seed=3, prefix="PRG")
    issuer = deploy(session)
    batch, _ = issuer.allocate(rows)
    issuer.mint(units(rows), batch)
    listed = write(tmp_path, "bars.csv", rows)
    calls, progress = recorder()
    descriptions = []

    class Bar:
        def __init__(self, description: str) -> None:
            descriptions.append(description)

        def __enter__(self):
            return progress

        def __exit__(self, *exc) -> None:
            return None

    run = run_reconcile(session, issuer.token, listed, progress=Bar)
    assert run.exit_code == 0 and descriptions == ["reading the bar list"]
    size = listed.stat().st_size
    assert calls[-1] == (size, size) and [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_cli_draws_on_a_terminal_and_never_with_json(workspace, filled, run_cli, tmp_path):
    drawn = run_cli("audit", "verify", "--no-chain", env=TERMINAL)
    assert "checking entries" in drawn.stderr and "checking entries" not in drawn.stdout  # positive control
    quiet = run_cli("audit", "verify", "--no-chain", "--json", env=TERMINAL)
    assert json.loads(quiet.stdout)["integrity"]["size"] == ENTRIES  # stdout: the JSON document and nothing else
    assert "checking entries" not in quiet.stderr and "\x1b" not in quiet.stdout
    out = tmp_path / "ledger.jsonl"
    drawn = run_cli("audit", "export", "--format", "jsonl", "--out", str(out), env=TERMINAL)
    assert drawn.exit_code == 0 and "writing entries" in drawn.stderr
    quiet = run_cli("audit", "export", "--format", "jsonl", "--out", str(out), "--json", env=TERMINAL)
    assert json.loads(quiet.stdout)["entries"] == ENTRIES and "writing entries" not in quiet.stderr
    piped = run_cli("audit", "export", "--format", "jsonl", env=TERMINAL)  # entries on stdout: only entries there
    assert [json.loads(line)["seq"] for line in piped.stdout.splitlines()] == list(range(ENTRIES))
    assert "writing entries" in piped.stderr


def test_cli_reconcile_and_index_progress_stay_off_json_stdout(session, run_cli, tmp_path):
    rows = scenario.generate_rows(30, seed=4, prefix="PRC")
    issuer = deploy(session)
    batch, _ = issuer.allocate(rows)
    issuer.mint(units(rows), batch)
    listed = write(tmp_path, "bars.csv", rows)
    drawn = run_cli("reconcile", "--token", issuer.token, "--bars", str(listed), env=TERMINAL)
    assert drawn.exit_code == 0 and "reading the bar list" in drawn.stderr
    quiet = run_cli("reconcile", "--token", issuer.token, "--bars", str(listed), "--json", env=TERMINAL)
    assert json.loads(quiet.stdout)["exit_code"] == 0 and "reading the bar list" not in quiet.stderr
    service.create_vault(session, POLICIES / "hot.yaml")
    drawn = run_cli("audit", "index", env=TERMINAL)
    assert drawn.exit_code == 0 and "indexing blocks" in drawn.stderr
    quiet = run_cli("audit", "index", "--json", env=TERMINAL)
    assert json.loads(quiet.stdout)["vaults"] and "indexing blocks" not in quiet.stderr
