"""custody pilot"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.pilots.main import run_pilot


@click.command()
@click.option("--out", type=click.Path(file_okay=False), help="Pilot workspace [<home>/pilot]; wiped at start.")
@json_option
@pass_app
def pilot(app: AppContext, out: str | None) -> None:
    """End-to-end demonstration on a fresh local Anvil (started and stopped by the pilot)."""
    home = Path(out) if out else app.workspace.home / "pilot"
    summary = run_pilot(home, progress=app.note)

    app.emit(summary, lambda c: render_summary(c, summary))


def render_summary(c: Console, summary: dict[str, Any]) -> None:
    """The pilot's summary for people (the same dict `--json` prints)."""
    c.print(
        f"[bold]custody pilot[/bold] — chain {summary['chain']['chain_id']} ({summary['seconds']}s), workspace {summary['workspace']}"
    )
    t = table("vault", "class", "safe", "timelock", "owners", "delay", "create gas")
    for v in summary["vaults"].values():
        t.add_row(
            v["name"],
            v["risk_class"],
            v["safe"],
            v["timelock"],
            f"{v['threshold']}-of-{len(v['owners'])}",
            f"{v['timelock_delay']}s",
            str(v["gas_used"]),
        )
    c.print(t)
    t = table("transfer", "safeTxHash (local = on-chain)", "tx", "gas")
    for x in summary["transfers"]:
        t.add_row(x["action"], x["safe_tx_hash"], x["tx_hash"], str(x["gas_used"]))
    c.print(t)
    hsm, confirmation = summary.get("hsm"), summary.get("out_of_band")
    if hsm:
        c.print(f"HSM owner of the cold vault: {hsm['address']} ({hsm['uri']}, SoftHSM2, non-extractable key)")
    if confirmation:
        c.print(
            f"out-of-band confirmation: {confirmation['confirmer']} confirmed {confirmation['safe_tx_hash']} "
            f"by {confirmation['method']} at {confirmation['confirmed_at']} ({confirmation['reason']})"
        )
    if "policy" in summary:
        pol = summary["policy"]
        c.print(
            f"policy refusals: {pol['over_limit']['rule']} → {pol['over_limit']['error']}; "
            f"{pol['not_allowlisted']['rule']} → {pol['not_allowlisted']['error']} (also refused on chain)"
        )
        ch = pol["change"]
        c.print(
            f"timelocked policy change {ch['operation'][:18]}…: refused early ({ch['delay_s']} s delay), then "
            f"completed in {ch['tx_hash'][:18]}…; new guard {ch['guard']} (policy {ch['policy_hash'][:18]}…)"
        )
    if "collateral" in summary:
        col = summary["collateral"]
        c.print(f"collateral token cGOLD {col['token']}, issuer vault {col['issuer_vault']} ({col['safe']})")
        t = table("reconciliation", "bars", "block", "findings", "exit", "HTML report")
        for label in ("clean", "clean_with_previous", "seeded"):
            r = col[label]
            kinds = ", ".join(f"{k} ×{n}" for k, n in r["finding_counts"].items()) or "none"
            t.add_row(label, str(r["bars"]), str(r["at_block"]), kinds, str(r["exit_code"]), r["html"])
        c.print(t)
    if "attestations" in summary:
        att = summary["attestations"]
        v = att["verified"]
        counts = ", ".join(f"{k} ×{n}" for k, n in v["by_step"].items())
        tags = att["inventory_tags"]
        c.print(f"attestation badges (EAS): {counts}")
        c.print(
            f"inventory tags: {tags['size']} off-chain attestations anchored in {tags['anchor_tx'][:18]}… "
            f"({tags['anchor_gas']:,} gas, {tags['gas_per_attestation']:,.0f} per tag); documents {tags['documents']}"
        )
        moved = att.get("transfer_badges") or {}
        if moved.get("size"):
            c.print(
                f"transfer badges: {moved['size']} batched ({moved['step']}) anchored in {moved['anchor_tx'][:18]}… "
                f"({moved['anchor_gas']:,} gas, {moved['gas_per_attestation']:,.0f} per badge)"
            )
        c.print(
            "badges verified: "
            + ", ".join(f"{k} {r['valid']}/{r['badges']}" for k, r in v.items() if k != "by_step")
            + " (auditor_issuer_vault: chain + templates + exported documents only)"
        )
    if "drill" in summary:
        dr = summary["drill"]
        swept = ", ".join(f"{amount} {symbol}" for symbol, amount in dr["would_sweep"].items()) or "nothing"
        c.print(
            f"emergency-exit drill on {dr['vault']} ({dr['mode']}): [bold]{dr['verdict'].upper()}[/bold], "
            f"{dr['passed']}/{dr['steps']} steps as expected; would sweep {swept} to {dr['custodian']}; "
            f"chain restored: {'yes' if dr['chain_restored'] else 'NO'} (block {dr['block']}); "
            f"report {dr['html']} ({dr['json']})"
        )
        rec = dr.get("records") or {}
        if rec.get("ledger"):
            c.print(
                f"drill recorded: audit-ledger entry #{rec['ledger']['seq']}; badge "
                f"{rec.get('attestation') or 'not issued (' + str(rec.get('attestation_skipped')) + ')'}"
            )
    if "audit" in summary:
        au = summary["audit"]
        c.print(
            f"audit ledger: {au['entries']} entries, verdict [bold]{au['verdict']}[/bold] "
            f"({au['executions_checked']} executions checked against the chain); head {au['head']['size']} "
            f"anchored in {au['anchor']['tx_hash']}; bundle {au['bundle']} verifies offline: {au['bundle_offline']}; "
            f"report {au['html']}"
        )
    if "auditor_badges" in summary:
        ab = summary["auditor_badges"]
        c.print(
            "auditor (chain + templates + audit bundle only): "
            + ", ".join(
                f"{k} {r['valid']}/{r['badges']} valid, {r['missing']} missing" for k, r in ab["by_vault"].items()
            )
            + f"; {ab['ledger_entries_linked']} badges matched to their ledger entries"
        )
    if "risk" in summary:
        rk = summary["risk"]
        c.print(
            f"risk engine: lookalike {rk['lookalike']['to']} [bold red]DENY[/bold red] "
            f"({', '.join(rk['lookalike']['reasons'])}); sanctioned {rk['sanctioned']['to']} [bold red]DENY[/bold red] "
            f"with case file {rk['sanctioned']['case']['case']}; off-hours transfer [yellow]WARN[/yellow] "
            f"({', '.join(rk['off_hours']['reasons'])}) executed after out-of-band confirmation by "
            f"{rk['off_hours']['confirmer']} and a second signer; ledger {rk['ledger_verified']}"
        )
    t = table("step", "seconds")
    for s in summary["steps"]:
        t.add_row(s["name"], f"{s['seconds']:.3f}")
    c.print(t)
    c.print(
        f"chain stopped; state saved to {summary['chain']['state_file']} "
        f"(inspect with `custody --home {summary['workspace']} chain up`)"
    )
