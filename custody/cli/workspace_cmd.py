"""custody workspace status|repair and custody vault forget (listed lazily by custody.cli.vault_cmd)"""

from __future__ import annotations

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.exceptions import ChainError, ForeignChain
from custody.workspace_repair import forget_vault, repair, status


@click.group("workspace")
def workspace_group() -> None:
    """The workspace's records: which chain they belong to, and repairs (each recorded in the audit ledger)."""


@workspace_group.command("status")
@json_option
@pass_app
def status_cmd(app: AppContext) -> None:
    """Chains this workspace is bound to, their vaults, and whether the current endpoint is the recorded chain."""
    try:
        chain, _ = app.workspace.connect(app.rpc, autostart=False)
    except ChainError:
        chain = None
    data = status(app.workspace.store, chain, where=str(app.workspace.home))

    def render(c: Console) -> None:
        t = table("chain id", "genesis", "anchored blocks", "vaults")
        for item in data["chains"]:
            t.add_row(
                str(item["chain_id"]),
                item["genesis_hash"] or "(not bound yet)",
                str(len(item["anchored_blocks"])),
                ", ".join(v["name"] for v in item["vaults"]) or "-",
            )
        c.print(t)
        current = data["current"]
        if current is None:
            c.print("no chain reachable (start one with `custody chain up`, or pass --rpc URL)")
        elif current["matches"]:
            c.print(f"[green]{current['url']} is the recorded chain {current['chain_id']}[/green]")
        else:
            c.print(f"[red]{current['problem']}[/red]")

    app.emit(data, render)
    if data["current"] is not None and not data["current"]["matches"]:
        raise click.exceptions.Exit(ForeignChain.exit_code)


@workspace_group.command("repair")
@click.option("--reason", required=True, help="Why (recorded in the audit ledger), e.g. 'chain reset on purpose'.")
@json_option
@pass_app
def repair_cmd(app: AppContext, reason: str) -> None:
    """Bind this chain id to the endpoint as it is now, forgetting every record of it the chain does not hold."""
    chain, _ = app.workspace.connect(app.rpc)
    done = repair(app.workspace.store, chain, reason=reason)
    app.emit(
        done,
        lambda c: c.print(
            f"bound chain {done['chain_id']} to {done['url']}; forgot {len(done['vaults_forgotten'])} vault(s) and "
            f"{len(done['deployments_forgotten'])} deployment record(s) (ledger entry {done['ledger_seq']})"
        ),
    )


@click.command("forget")
@click.argument("name")
@click.option("--reason", required=True, help="Why the record is dropped (recorded in the audit ledger).")
@click.option("--chain-id", type=int, help="The vault's chain id, when the name exists on several chains.")
@json_option
@pass_app
def forget_cmd(app: AppContext, name: str, reason: str, chain_id: int | None) -> None:
    """Drop the record of vault NAME (and its proposals) from this workspace; the chain is not touched or needed."""
    done = forget_vault(app.workspace.store, name, chain_id=chain_id, reason=reason)
    app.emit(
        done.as_dict(),
        lambda c: c.print(
            f"forgot vault {done.name} ({done.safe} on chain {done.chain_id}) and {done.proposals} proposal(s); "
            f"ledger entry {done.entry_seq}"
        ),
    )
