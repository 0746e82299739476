"""`custody pilot` through the installed console script, run once for the whole module: no process left
behind, the summary it prints, and — on the pilot's own chain, restarted from the state file it saved —
what actually happened: owners, thresholds and delays of the vaults, every transfer's execution event,
balances and Safe nonces, the guard the policy change installed, the KYC and reconciliation badges in EAS,
the inventory tags' anchor, and the audit ledger verified against that chain (workspace and bundle)."""

from __future__ import annotations

import html
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_utils import keccak
from rich.console import Console
from web3 import Web3
from web3.logs import DISCARD

from custody.chain.anvil import AnvilProcess, pid_is_anvil
from custody.cli.pilot_cmd import render_summary
from custody.contracts import load_artifact
from custody.pilots.main import COLD_OFFICER_1, PRIME_BROKER
from custody.policy.onchain import GUARD_SLOT

CUSTODY = Path(sys.executable).parent / "custody"
ETH, USD = 10**18, 10**6
ATTESTED = keccak(text="Attested(address,address,bytes32,bytes32)")  # EAS's event topic


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


@dataclass(frozen=True)
class PilotRun:
    summary: dict
    anvils_before: set[int]
    anvils_after: set[int]


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> PilotRun:
    """The one pilot run of the suite (`custody --home H pilot --json`)."""
    root = tmp_path_factory.mktemp("pilot")
    before = _anvils(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    result = subprocess.run(
        [str(CUSTODY), "--home", str(root / "home"), "pilot", "--json"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout  # with --json the error is printed on stdout
    return PilotRun(json.loads(result.stdout), before, _anvils(root))


@dataclass(frozen=True)
class PilotChain:
    url: str
    w3: Web3

    def contract(self, name: str, address: str):
        return self.w3.eth.contract(Web3.to_checksum_address(address), abi=load_artifact(name).abi)


@pytest.fixture(scope="module")
def pilot_chain(pilot: PilotRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PilotChain]:
    """The pilot's chain, restarted from a copy of the state file it saved (the pilot's own copy stays as it left it)."""
    copy = tmp_path_factory.mktemp("pilot-chain") / "anvil-state.json"
    shutil.copy(pilot.summary["chain"]["state_file"], copy)
    anvil = AnvilProcess(state_file=copy, chain_id=pilot.summary["chain"]["chain_id"])
    anvil.start()
    try:
        yield PilotChain(anvil.url, Web3(Web3.HTTPProvider(anvil.url)))
    finally:
        anvil.stop()


def test_pilot_leaves_no_process_and_saves_its_chain(pilot):
    assert not pilot.anvils_before and pilot.anvils_after == set(), "the pilot left an anvil running"
    assert pilot.summary["chain"]["stopped"] is True and Path(pilot.summary["chain"]["state_file"]).exists()


def test_vaults_on_chain_are_the_templates(pilot, pilot_chain):
    summary = pilot.summary
    vaults, hsm = summary["vaults"], summary["hsm"]
    shapes = {"hot": (1, 2, 3600), "cold": (2, 3, 86400)}  # policies/hot.yaml, cold.yaml
    for label, (threshold, owners, delay) in shapes.items():
        safe = pilot_chain.contract("SafeL2", vaults[label]["safe"])
        on_chain = safe.functions.getOwners().call()
        assert (safe.functions.getThreshold().call(), len(on_chain)) == (threshold, owners), label
        assert set(on_chain) == set(vaults[label]["owners"]), label
        timelock = pilot_chain.contract("VaultTimelock", vaults[label]["timelock"])
        assert timelock.functions.getMinDelay().call() == delay, label
        assert safe.functions.isModuleEnabled(vaults[label]["timelock"]).call(), label
    # one cold owner is the HSM key, in place of custody-officer-1
    cold_owners = pilot_chain.contract("SafeL2", vaults["cold"]["safe"]).functions.getOwners().call()
    assert hsm["address"] in cold_owners and COLD_OFFICER_1 not in cold_owners
    assert hsm["uri"] == "pkcs11:token=pilot-hsm;object=cold-officer-hsm"


def test_transfers_balances_and_nonces_on_chain(pilot, pilot_chain):
    summary, w3 = pilot.summary, pilot_chain.w3
    vaults = summary["vaults"]
    cold, hot = vaults["cold"]["safe"], vaults["hot"]["safe"]
    # each reported transfer was executed by its Safe, with the reported safeTxHash and gas
    for transfer, safe in zip(summary["transfers"], (cold, hot, cold), strict=True):
        receipt = w3.eth.get_transaction_receipt(transfer["tx_hash"])
        assert receipt["status"] == 1 and receipt["gasUsed"] == transfer["gas_used"] > 21000
        events = pilot_chain.contract("SafeL2", safe).events.ExecutionSuccess().process_receipt(receipt, errors=DISCARD)
        assert ["0x" + bytes(e["args"]["txHash"]).hex() for e in events] == [transfer["safe_tx_hash"]]
        assert transfer["safe_tx_hash"] == transfer["onchain_safe_tx_hash"]
    # the signers that approved the cold transfers: the HSM key first
    assert summary["transfers"][0]["signers"][0] == summary["transfers"][2]["signers"][0] == summary["hsm"]["address"]
    # funded with 160 ETH, paid 10 + 60 to the prime broker; the drill swept it on a snapshot only
    assert w3.eth.get_balance(cold) == 90 * ETH
    token = pilot_chain.contract("TestERC20", summary["demo_token"])
    assert token.functions.balanceOf(hot).call() == 97_500 * USD  # minted 100,000, paid 2,500
    assert token.functions.balanceOf(PRIME_BROKER).call() == 2_500 * USD
    # cold: two transfers (the drill's exit was rehearsed and reverted); hot: one transfer and the
    # scheduling of the policy change (the refused transfers never executed)
    assert pilot_chain.contract("SafeL2", cold).functions.nonce().call() == 2
    assert pilot_chain.contract("SafeL2", hot).functions.nonce().call() == 2
    exit_module = pilot_chain.contract("ExitModule", pilot_chain.contract("CustodyGuard", vaults["cold"]["guard"])
                                       .functions.bindings().call()[3])  # fmt: skip
    assert exit_module.functions.state().call() == 0, "the rehearsed exit must not be pending on the real chain"


def test_policy_change_installed_the_new_guard_through_the_timelock(pilot, pilot_chain):
    summary, w3 = pilot.summary, pilot_chain.w3
    hot, change = summary["vaults"]["hot"], summary["policy"]["change"]
    installed = "0x" + bytes(w3.eth.get_storage_at(hot["safe"], GUARD_SLOT))[-20:].hex()
    assert Web3.to_checksum_address(installed) == change["new_guard"] != hot["guard"]
    info = pilot_chain.contract("CustodyGuard", change["new_guard"]).functions.info().call()
    bindings = info[1]
    assert (bindings[0], bindings[1], bindings[5]) == (
        hot["safe"],
        hot["timelock"],
        hot["guard"],
    )  # safe, timelock, previous
    assert "0x" + bytes(info[2]).hex() == change["policy_hash"]
    timelock = pilot_chain.contract("VaultTimelock", hot["timelock"])
    assert timelock.functions.isOperationDone(bytes.fromhex(change["operation"][2:])).call()
    executed = timelock.events.CallExecuted().process_receipt(
        w3.eth.get_transaction_receipt(change["tx_hash"]), errors=DISCARD
    )
    assert executed and all("0x" + bytes(e["args"]["id"]).hex() == change["operation"] for e in executed)
    assert "ETH per-tx limit 5 -> 3" in change["changes"] and "becomes executable at" in change["refused_early"]
    policy = summary["policy"]
    assert "CustodyGuardPerTxLimitExceeded" in policy["over_limit"]["onchain"]
    assert "CustodyGuardDestinationNotAllowed" in policy["not_allowlisted"]["onchain"]


def test_badges_and_the_inventory_anchor_are_in_eas(pilot, pilot_chain):
    att, w3 = pilot.summary["attestations"], pilot_chain.w3
    sign_off = w3.eth.get_transaction_receipt(att["reconciliation"]["tx_hash"])
    (eas_address,) = {log["address"] for log in sign_off["logs"] if bytes(log["topics"][0]) == ATTESTED}
    eas = pilot_chain.contract("EAS", eas_address)
    vaults = pilot.summary["vaults"]
    owners = {f"{label}:{o}" for label, v in vaults.items() for o in v["owners"]}
    assert set(att["kyc"]["badges"]) == owners
    for who, uid in [*att["kyc"]["badges"].items(), ("reconciliation", att["reconciliation"]["uid"])]:
        onchain = eas.functions.getAttestation(bytes.fromhex(uid[2:])).call()
        assert "0x" + bytes(onchain[0]).hex() == uid, who  # it exists (an unknown uid reads back as zero)
        assert onchain[4] == 0, f"{who}: revoked"
        if who != "reconciliation":
            assert onchain[6] == who.split(":")[1] and onchain[7] == att["kyc"]["attester"], who
    tags = att["inventory_tags"]
    assert (
        tags["size"] == 24 and eas.functions.getTimestamp(bytes.fromhex(tags["root"][2:])).call() == tags["anchor_time"]
    )
    assert w3.eth.get_transaction_receipt(tags["anchor_tx"])["blockNumber"] == tags["anchor_block"]


def _custody(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    return subprocess.run([str(CUSTODY), *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_ledger_verifies_against_the_pilots_chain(pilot, pilot_chain):
    summary = pilot.summary
    verified = _custody("--home", summary["workspace"], "--rpc", pilot_chain.url, "audit", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["verdict"] == "ok" and report["integrity"]["ok"] and report["chain"]["problems"] == []
    assert report["size"] >= summary["audit"]["head"]["size"]  # the risk section appends after the audit section
    chain = report["chain"]
    assert chain["executions_checked"] == chain["onchain_executions"] >= len(summary["transfers"])
    assert chain["anchors_checked"] == 1
    # the exported bundle, as an auditor holds it, against the same chain
    bundle = _custody("audit", "verify", "--bundle", summary["audit"]["bundle"], "--rpc", pilot_chain.url, "--json")
    assert bundle.returncode == 0, bundle.stdout + bundle.stderr
    assert json.loads(bundle.stdout)["verdict"] == "ok"


def test_pilot_json_summary(pilot):
    summary = pilot.summary
    confirmation = summary["out_of_band"]
    large = summary["transfers"][2]
    assert large["action"].startswith("send 60 ETH")
    assert confirmation["required"] and confirmation["confirmer"] != confirmation["proposer"]
    assert confirmation["safe_tx_hash"] == large["safe_tx_hash"]
    assert "needs an out-of-band confirmation" in confirmation["refused_without_it"]
    collateral = summary["collateral"]
    assert collateral["clean"]["findings"] == 0 and collateral["clean_with_previous"]["findings"] == 0
    assert collateral["seeded"]["finding_counts"] == collateral["seeded_expected"]
    assert collateral["seeded_as_expected"] is True and collateral["seeded"]["exit_code"] == 2
    assert Path(collateral["seeded"]["html"]).exists()
    att = summary["attestations"]
    verified = att["verified"]
    assert verified["by_step"]["approval"] >= 2 and verified["by_step"]["oob_confirmation"] == 1
    assert verified["by_step"]["execution"] >= len(summary["transfers"])
    assert verified["by_step"]["inventory_tag"] == att["inventory_tags"]["size"] == 24
    for label in ("hot", "cold", "issuer", "auditor_issuer_vault"):
        assert verified[label]["invalid"] == 0 and verified[label]["missing"] == 0 and verified[label]["valid"] > 0
    assert att["inventory_tags"]["gas_per_attestation"] < 5_000
    # hot.yaml and cold.yaml batch their transfer badges: one anchoring transaction for all of them
    moved = att["transfer_badges"]
    assert moved["size"] == sum(verified["by_step"][s] for s in ("approval", "oob_confirmation", "execution"))
    assert moved["step"] == "mixed" and moved["anchor_gas"] < 60_000
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
    assert report["run"]["chain"]["restored"] is True and drill["chain_restored"] is True
    assert report["run"]["chain"]["block_start"] == drill["block"] < report["run"]["chain"]["block_end"]
    records = report["records"]
    assert drill["records"] == records and isinstance(records["ledger"]["seq"], int)
    assert records["attestation"] and records["attestation"] in page
    # audit ledger (issue 5): every step recorded; indexed, verified against the chain, anchored, exported
    audit = summary["audit"]
    assert audit["verdict"] == "ok" and audit["exit_code"] == 0 and audit["head"]["size"] == audit["entries"]
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


def test_pilot_human_summary(pilot):
    """What `custody pilot` prints for people, drawn from the same run's summary."""
    buffer = io.StringIO()
    render_summary(Console(file=buffer, width=100), pilot.summary)
    text = buffer.getvalue()
    assert "cold-reserve" in text and "2-of-3" in text
    assert "chain stopped; state saved to" in text
    assert "HSM owner of the cold vault" in text and "out-of-band confirmation: risk-officer" in text
    assert "cGOLD" in text and "seeded" in text
    assert "attestation badges (EAS)" in text and "inventory tags: 24 off-chain attestations" in text
    assert "audit ledger:" in text and "verdict ok" in text
    out = " ".join(text.split())  # rich wraps long lines
    assert "emergency-exit drill on cold-reserve (snapshot): PASSED, 13/13 steps as expected" in out
    assert "drill recorded: audit-ledger entry #" in out and "auditor (chain + templates + audit bundle only)" in out
    assert "would sweep 90 ETH to 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc" in out and "chain restored: yes" in out
    drill_page = str(Path(pilot.summary["workspace"]) / "drill-report" / "report.html")
    assert drill_page in out.replace(" ", "")
    assert "risk engine: lookalike" in out and "with case file case-00001" in out and "off-hours transfer WARN" in out
