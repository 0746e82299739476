"""`custody reconcile` through the real click entry point: JSON, tables, exit codes, HTML, recorded runs."""

from __future__ import annotations

import base64
import json
import re

from eth_utils import keccak

from custody.harness import scenario
from custody.reconcile import issuance
from tests.collateral_helpers import deploy, units, write

BARS = scenario.generate_rows(6, seed=5, prefix="CLI")


def issued(session, rows=BARS):
    issuer = deploy(session)
    batch, _ = issuer.allocate(rows)
    issuer.mint(units(rows), batch)
    return issuer


def test_clean_run_exits_0_with_json_summary(session, run_cli, tmp_path):
    issuer = issued(session)
    listed = write(tmp_path, "bars.csv", BARS)
    result = run_cli("reconcile", "--token", issuer.token, "--bars", str(listed), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["findings"] == [] and data["backing_short"] is False and data["exit_code"] == 0
    assert data["totals"]["supply"] == data["totals"]["verified_backing"] == str(units(BARS))
    assert data["bars"]["sha256"] == __import__("hashlib").sha256(listed.read_bytes()).hexdigest()
    assert data["run_id"] == 1 and isinstance(data["ledger_entry"], int)  # recorded in the audit ledger
    from custody.audit.record import ledger_for

    entry = ledger_for(session.store).entry(data["ledger_entry"])
    assert entry.kind == "reconciliation_run" and entry.refs["bars_sha256"] == data["bars"]["sha256"]
    assert entry.payload["run_id"] == 1 and entry.payload["totals"] == data["totals"]
    human = run_cli("reconcile", "--token", issuer.token, "--bars", str(listed))
    assert human.exit_code == 0 and "reconciled" in human.stdout and "verified backing" in human.stdout


def test_backing_short_exits_2_and_writes_an_offline_html_report(session, run_cli, tmp_path):
    issuer = issued(session)
    listed = write(tmp_path, "bars.csv", BARS[:-1])  # one allocated bar is missing from the list
    report = tmp_path / "out" / "report.html"
    result = run_cli("reconcile", "--token", issuer.token, "--bars", str(listed), "--html", str(report))
    assert result.exit_code == 2, result.stderr
    assert "BACKING SHORT" in result.stdout and "allocated_not_in_list" in result.stdout
    html = report.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http://" not in html and "https://" not in html  # opens offline
    assert "backing_shortfall" in html and issuance.row_bar_id(BARS[-1]).hex() in html


def test_critical_without_shortfall_exits_4(session, run_cli, tmp_path):
    issuer = deploy(session)
    batch, _ = issuer.allocate(BARS)
    issuer.mint(units(BARS[:3]), batch)
    issuer.mint(10**18, keccak(text="nothing"))
    result = run_cli("reconcile", "--token", issuer.token, "--bars", str(write(tmp_path, "b.csv", BARS)), "--json")
    assert result.exit_code == 4
    assert [f["kind"] for f in json.loads(result.stdout)["findings"]] == ["mint_without_provenance"]


def test_invalid_bar_list_exits_3_listing_every_row_error(session, run_cli, tmp_path):
    issuer = issued(session)
    rows = [dict(r) for r in BARS]
    rows[1]["fineness"] = "990.0"
    rows[4]["refiner"] = "Nobody Refining"
    listed = write(tmp_path, "bad.csv", rows)
    result = run_cli("reconcile", "--token", issuer.token, "--bars", str(listed), "--json")
    assert result.exit_code == 3
    error = json.loads(result.stdout)
    assert error["error"] == "BarListError"
    assert [(e["row"], e["column"]) for e in error["details"]["errors"]] == [(3, "fineness"), (6, "refiner")]
    human = run_cli("reconcile", "--token", issuer.token, "--bars", str(listed))
    assert human.exit_code == 3 and "Traceback" not in human.output
    assert "fineness 990.0 is below the Good Delivery minimum of 995.0" in human.stderr
    assert "refiner 'Nobody Refining' is not on the Good Delivery refiner list" in human.stderr


def test_previous_list_and_since_block_from_the_cli(session, run_cli, tmp_path):
    issuer = issued(session, BARS[:3])
    first = write(tmp_path, "1.csv", BARS[:3])
    assert run_cli("reconcile", "--token", issuer.token, "--bars", str(first), "--json").exit_code == 0
    batch, _ = issuer.allocate(BARS[3:])
    issuer.mint(units(BARS[3:]), batch)
    second = write(tmp_path, "2.csv", BARS)
    result = run_cli("reconcile", "--token", issuer.token, "--bars", str(second), "--previous", str(first), "--json")
    assert result.exit_code == 0, result.stdout
    diff = json.loads(result.stdout)["diff"]
    assert (diff["added"], diff["minted"]) == (3, str(units(BARS[3:])))
    # an explicit --since-block that puts the first mint inside the period makes the change unmatched
    result = run_cli(
        "reconcile", "--token", issuer.token, "--bars", str(second), "--previous", str(first), "--since-block", "0",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 4 and "list_change_unmatched" in result.stdout  # critical, but still backed


def test_unknown_token_is_one_sentence(session, run_cli, tmp_path):
    listed = write(tmp_path, "b.csv", BARS)
    result = run_cli("reconcile", "--token", "0x" + "12" * 20, "--bars", str(listed))
    assert result.exit_code == 1
    assert "0x1212121212121212121212121212121212121212 has no code on chain 31337: it is not a CollateralToken" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_a_plain_erc20_is_refused_before_the_bar_list_is_read(session, run_cli, tmp_path, demo_token):
    """The token type is checked first: an ERC-20 that is not a CollateralToken is named at once, even before an
    invalid (here: unreadable) bar list would be reported."""
    result = run_cli("reconcile", "--token", demo_token, "--bars", str(tmp_path / "missing.csv"))
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(
        f"error: {demo_token} is not a CollateralToken: it does not answer barId/allocatedFineWeight/VERSION"
    ), result.stderr
