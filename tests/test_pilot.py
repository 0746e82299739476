"""`custody pilot` through the installed console script: summary, hashes, and no process left behind."""

import html
import json
import os
import subprocess
import sys
from pathlib import Path

from custody.chain.anvil import pid_is_anvil

CUSTODY = Path(sys.executable).parent / "custody"


def _anvils(folder: Path) -> set[int]:
    """Anvil processes whose command line names ``folder`` (the pilot's own chain state lives there)."""
    out = set()
    for p in os.listdir("/proc"):
        if p.isdigit() and pid_is_anvil(int(p)):
            try:
                cmdline = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(folder) in cmdline:
                out.add(int(p))
    return out


def test_pilot_json_summary_and_cleanup(tmp_path):
    before = _anvils(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env["CUSTODY_HOME"] = str(tmp_path / "home")
    result = subprocess.run([str(CUSTODY), "pilot", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert not before and _anvils(tmp_path) == set(), "the pilot left an anvil running"

    vaults = summary["vaults"]
    assert (vaults["hot"]["threshold"], len(vaults["hot"]["owners"])) == (1, 2)
    assert (vaults["cold"]["threshold"], len(vaults["cold"]["owners"])) == (2, 3)
    assert vaults["cold"]["timelock_delay"] == 86400
    cold_transfer = summary["transfers"][0]
    assert len(cold_transfer["signers"]) == 2
    for transfer in summary["transfers"]:
        assert transfer["safe_tx_hash"] == transfer["onchain_safe_tx_hash"]
        assert transfer["gas_used"] > 21000 and transfer["tx_hash"].startswith("0x")
    assert summary["balances"]["cold"]["ETH"] == str(90 * 10**18)
    assert summary["balances"]["hot"]["dUSD"] == str(97_500 * 10**6)
    # signers (issue 4): one cold owner is an HSM key; the large cold transfer needed an out-of-band confirmation
    hsm = summary["hsm"]
    assert hsm["uri"] == "pkcs11:token=pilot-hsm;object=cold-officer-hsm"
    assert hsm["address"] in vaults["cold"]["owners"] and hsm["replaces"] not in vaults["cold"]["owners"]
    assert cold_transfer["signers"][0] == hsm["address"]
    large = summary["transfers"][2]
    assert large["action"].startswith("send 60 ETH") and large["signers"][0] == hsm["address"]
    confirmation = summary["out_of_band"]
    assert confirmation["required"] and confirmation["confirmer"] != confirmation["proposer"]
    assert confirmation["safe_tx_hash"] == large["safe_tx_hash"]
    assert "needs an out-of-band confirmation" in confirmation["refused_without_it"]
    collateral = summary["collateral"]
    assert collateral["clean"]["findings"] == 0 and collateral["clean_with_previous"]["findings"] == 0
    assert collateral["seeded"]["finding_counts"] == collateral["seeded_expected"]
    assert collateral["seeded_as_expected"] is True and collateral["seeded"]["exit_code"] == 2
    assert Path(collateral["seeded"]["html"]).exists()
    # policy (issue 3): refused off-chain and on-chain, and a timelocked change
    policy = summary["policy"]
    assert (
        policy["over_limit"]["error"] == "CustodyGuardPerTxLimitExceeded"
        and "CustodyGuardPerTxLimitExceeded" in policy["over_limit"]["onchain"]
    )
    assert (
        policy["not_allowlisted"]["rule"] == "asset.ETH.allowlist"
        and "CustodyGuardDestinationNotAllowed" in policy["not_allowlisted"]["onchain"]
    )
    change = policy["change"]
    assert "ETH per-tx limit 5 -> 3" in change["changes"] and "becomes executable at" in change["refused_early"]
    assert change["guard"] == change["new_guard"] and change["previous_guard"] == vaults["hot"]["guard"]
    assert "exceeds the per-transaction limit of 3 ETH" in change["four_eth_now"]
    # attestations (issue 6): KYC for every signer, flows emitted their badges, a batch of inventory tags,
    # and every badge verified (also by an outside auditor with chain data, templates and documents only)
    att = summary["attestations"]
    owners = {f"{label}:{o}" for label, v in vaults.items() for o in v["owners"]}
    assert set(att["kyc"]["badges"]) == owners
    verified = att["verified"]
    assert verified["by_step"]["approval"] >= 2 and verified["by_step"]["oob_confirmation"] == 1
    assert verified["by_step"]["execution"] >= len(summary["transfers"])
    assert verified["by_step"]["inventory_tag"] == att["inventory_tags"]["size"] == 24
    for label in ("hot", "cold", "issuer", "auditor_issuer_vault"):
        assert verified[label]["invalid"] == 0 and verified[label]["missing"] == 0 and verified[label]["valid"] > 0
    assert att["inventory_tags"]["gas_per_attestation"] < 5_000
    assert Path(att["inventory_tags"]["documents"]).exists()
    # drill (issue 8): the cold vault's emergency exit rehearsed on a snapshot, before the audit section
    drill = summary["drill"]
    order = [s["name"].split(":")[0] for s in summary["steps"]]
    assert order.index("drill") == order.index("audit") - 1  # run just before the audit section
    assert (drill["vault"], drill["mode"], drill["verdict"]) == ("cold-reserve", "snapshot", "passed")
    assert drill["custodian"] == "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"  # cold.yaml's fallback custodian
    assert drill["steps"] == drill["passed"] == 13 and drill["failed"] == drill["skipped"] == 0
    assert drill["would_sweep"] == {"ETH": "90"} and drill["duplicate_nonce_broadcasts"] == 0
    report = json.loads(Path(drill["json"]).read_text())
    assert report["verdict"] == "passed" and report["run"]["subject_vault"] == "cold-reserve"
    assert len(report["steps"]) == 13 and report["files"] == {"json": drill["json"], "html": drill["html"]}
    for step in report["steps"]:
        assert step["expected"] is not None and step["observed"] is not None and step["verdict"] == "passed"
        assert isinstance(step["observed"]["ok"], bool) and step["seconds"] is not None and step["actor"]
    page = Path(drill["html"]).read_text()
    assert all(html.escape(step["name"]) in page for step in report["steps"])
    # restored: the rehearsal swept the vault on the snapshot only; after it the cold vault still holds 90 ETH
    assert report["run"]["chain"]["restored"] is True and drill["chain_restored"] is True
    assert report["run"]["chain"]["block_start"] == drill["block"] < report["run"]["chain"]["block_end"]
    assert drill["vault_balance_wei"] == str(90 * 10**18)
    # ... and left its marks: a ledger entry in the pilot's ledger and a drill badge linked to it
    records = report["records"]
    assert drill["records"] == records and isinstance(records["ledger"]["seq"], int)
    assert records["attestation"] and records["attestation"] in page
    # audit ledger (issue 5): every step recorded; indexed, verified against the chain, anchored, exported
    audit = summary["audit"]
    assert audit["verdict"] == "ok" and audit["exit_code"] == 0 and audit["head"]["size"] == audit["entries"]
    assert audit["executions_checked"] >= 3 and audit["onchain_executions"] >= audit["executions_checked"]
    for kind in ("infrastructure_deployed", "vault_created", "proposal_created", "approval_signed",
                 "out_of_band_confirmation", "execution", "execution_observed", "deposit_observed",
                 "reconciliation_run"):  # fmt: skip
        assert audit["kinds"].get(kind, 0) >= 1, kind
    # two confirmations: the large cold transfer, and the forced not-allowlisted transfer the risk engine warned
    # about (its WARN requirements met, so that the chain is the one to refuse it)
    assert audit["kinds"]["reconciliation_run"] == 3 and audit["kinds"]["out_of_band_confirmation"] == 2
    assert "first_time_destination" in summary["policy"]["not_allowlisted"]["risk"]
    assert audit["bundle_offline"] == audit["bundle_online"] == "ok" and audit["anchors_checked"] == 1
    audit_page = Path(audit["html"]).read_text()
    assert Path(audit["bundle"]).exists() and "<svg class='chart'" in audit_page and "entries verified" in audit_page
    assert audit["kinds"]["drill"] == 1
    # the auditor's view (issue 6 + 5): badges vs chain, templates and the exported bundle only
    auditor = summary["auditor_badges"]
    assert auditor["bundle"] == audit["bundle"] and "drill" in auditor["steps"]
    for label, r in auditor["by_vault"].items():
        assert r["invalid"] == 0 and r["missing"] == 0 and r["valid"] > 0, label
    # every approval, confirmation, execution, the reconciliation sign-off and the drill badge cite their entry
    linked = (
        verified["by_step"]["approval"] + verified["by_step"]["oob_confirmation"] + verified["by_step"]["execution"]
    )
    assert auditor["ledger_entries_linked"] == linked + verified["by_step"]["reconciliation"] + 1
    # the pre-sign risk engine (issue 14): three cases, every decision in the ledger, which verifies
    risk = summary["risk"]
    assert risk["lookalike"]["verdict"] == "deny" and risk["lookalike"]["reasons"] == ["lookalike_destination"]
    assert risk["sanctioned"]["verdict"] == "deny" and risk["sanctioned"]["reasons"] == ["sanctioned_counterparty"]
    case = risk["sanctioned"]["case"]
    assert case["address"] == risk["sanctioned"]["to"] and case["proposal"] == risk["sanctioned"]["proposal"]
    assert json.loads(Path(risk["sanctioned"]["cases_file"]).read_text())["cases"][0]["case"] == case["case"]
    warned = risk["off_hours"]
    assert "off_hours" in warned["reasons"] and warned["verdicts"][-1] == "execute:warn" and warned["tx_hash"]
    assert "WARN verdict (off_hours)" in warned["refused_without_requirements"]
    assert risk["ledger_verified"] == "ok"
    assert summary["chain"]["stopped"] is True
    assert Path(summary["chain"]["state_file"]).exists()


def test_pilot_human_summary(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    result = subprocess.run(
        [str(CUSTODY), "--home", str(tmp_path), "pilot"], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "cold-reserve" in result.stdout and "2-of-3" in result.stdout
    assert "chain stopped; state saved to" in result.stdout
    assert "HSM owner of the cold vault" in result.stdout and "out-of-band confirmation: risk-officer" in result.stdout
    assert "cGOLD" in result.stdout and "seeded" in result.stdout
    assert "attestation badges (EAS)" in result.stdout and "inventory tags: 24 off-chain attestations" in result.stdout
    assert "audit ledger:" in result.stdout and "verdict ok" in result.stdout
    out = " ".join(result.stdout.split())  # rich wraps long lines
    assert "emergency-exit drill on cold-reserve (snapshot): PASSED, 13/13 steps as expected" in out
    assert "drill recorded: audit-ledger entry #" in out and "auditor (chain + templates + audit bundle only)" in out
    assert "would sweep 90 ETH to 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc" in out and "chain restored: yes" in out
    assert str(tmp_path / "pilot" / "drill-report" / "report.html") in out.replace(" ", "")
    assert "risk engine: lookalike" in out and "with case file case-00001" in out and "off-hours transfer WARN" in out
