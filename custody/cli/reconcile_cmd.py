"""custody reconcile"""

from __future__ import annotations

import json

import click
from rich.console import Console

from custody.cli._app import AppContext, console, json_option, pass_app, table
from custody.cli._progress import byte_progress, wanted
from custody.exceptions import BarListError
from custody.reconcile.barlist import format_units
from custody.reconcile.collateral import resolve_token
from custody.reconcile.service import run_reconcile

SHOWN = 25


@click.command("reconcile")
@click.option(
    "--token", required=True, metavar="ADDR|SYMBOL", help="CollateralToken address, or the symbol of one recorded here."
)
@click.option("--bars", "bars_path", required=True, type=click.Path(dir_okay=False), help="Bar list (CSV or JSON).")
@click.option("--previous", "previous_path", type=click.Path(dir_okay=False), help="The previous bar list.")
@click.option(
    "--since-block", type=int, help="Block the previous list was valid at [from this workspace's earlier runs]."
)
@click.option("--at-block", type=int, help="Reconcile as of this block [the latest].")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Write an HTML report with charts here.")
@json_option
@pass_app
@click.pass_context
def reconcile_cmd(
    ctx: click.Context,
    app: AppContext,
    token: str,
    bars_path: str,
    previous_path: str | None,
    since_block: int | None,
    at_block: int | None,
    html_path: str | None,
) -> None:
    """Reconcile a CollateralToken against a bar list.

    Exit codes: 0 backed and no critical finding, 2 backing short, 3 invalid bar list,
    4 backed but with critical findings, 1 any other error.
    """
    session = app.session()
    try:
        run = run_reconcile(
            session,
            resolve_token(session, token),
            bars_path,
            previous_path=previous_path,
            since_block=since_block,
            at_block=at_block,
            html_path=html_path,
            progress=byte_progress if wanted(app) else None,
        )
    except BarListError as exc:
        _bar_list_errors(app, exc)
        ctx.exit(exc.exit_code)
    data = run.as_dict()

    def render(c: Console) -> None:
        r = run.reconciliation
        t = r.totals
        verdict = "BACKING SHORT" if r.backing_short else ("discrepancies found" if r.findings else "reconciled")
        c.print(f"[bold]{run.token}[/bold] at block {run.at_block} (chain {run.chain_id}): [bold]{verdict}[/bold]")
        c.print(f"bar list {run.bars.source}: {len(run.bars)} bars, sha256 {run.bars.sha256}")
        s = table("", "fine oz")
        s.add_row("token supply", format_units(t.supply))
        s.add_row("allocated on-chain", format_units(t.onchain_allocated))
        s.add_row("verified backing", format_units(t.verified_backing))
        s.add_row("bar list total", format_units(t.listed))
        s.add_row("shortfall", format_units(t.shortfall))
        c.print(s)
        if r.findings:
            k = table("kind", "severity", "count")
            for f_kind, count in r.counts().items():
                severity = next(f.severity.value for f in r.findings if f.kind.value == f_kind)
                k.add_row(f_kind, severity, str(count))
            c.print(k)
            f = table("severity", "kind", "finding", "block", "tx")
            for finding in r.findings[:SHOWN]:
                f.add_row(
                    finding.severity.value,
                    finding.kind.value,
                    finding.message,
                    str(finding.block or ""),
                    finding.tx_hash or "",
                )
            c.print(f)
            if len(r.findings) > SHOWN:
                c.print(f"… {len(r.findings) - SHOWN} more (use --json or --html)")
        if r.diff is not None:
            d = r.diff
            c.print(
                f"since block {d.since_block}: {d.added} added, {d.removed} removed, {d.altered} altered, "
                f"{d.moved} moved; list {format_units(d.list_change)} oz, minted {format_units(d.minted)} oz, "
                f"burned {format_units(d.burned)} oz"
            )
        if run.html:
            c.print(f"HTML report: {run.html}")
        c.print(f"run {run.run_id} recorded; exit code {run.exit_code}")

    app.emit(data, render)
    ctx.exit(run.exit_code)


def _bar_list_errors(app: AppContext, exc: BarListError) -> None:
    if app.json:
        click.echo(json.dumps(exc.to_dict(), indent=2, sort_keys=True))
        return
    err = console(stderr=True)
    err.print(f"[bold red]error:[/bold red] {exc.message}", markup=True, highlight=False)
    t = table("row", "column", "problem")
    for item in exc.details.get("errors", []):
        t.add_row(str(item["row"]), item["column"] or "—", item["message"])
    err.print(t)
