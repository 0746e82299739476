"""custody chain up|down|status"""

from __future__ import annotations

import time

import click
from rich.console import Console

from custody.binding import check_binding
from custody.chain.anvil import rpc_call
from custody.chain.connection import connect
from custody.cli._app import AppContext, json_option, pass_app
from custody.exceptions import ForeignChain


@click.group()
def chain() -> None:
    """The workspace's local Anvil chain (state kept across restarts)."""


@chain.command()
@click.option("--port", type=int, help="Port on 127.0.0.1 [a free one].")
@click.option("--chain-id", type=int, default=31337, show_default=True)
@json_option
@pass_app
def up(app: AppContext, port: int | None, chain_id: int) -> None:
    """Start the local chain in the background (loads its saved state)."""
    record, started = app.workspace.chain_up(port=port, chain_id=chain_id)
    data = {
        "url": record.url,
        "pid": record.pid,
        "chain_id": record.chain_id,
        "state_file": record.state_file,
        "started": started,
    }
    app.emit(
        data,
        lambda c: c.print(
            f"{'started' if started else 'already running'}: {record.url} (chain id {record.chain_id}, pid {record.pid})"
        ),
    )


@chain.command()
@json_option
@pass_app
def down(app: AppContext) -> None:
    """Stop the local chain; its state is saved to the workspace."""
    record = app.workspace.chain_down()
    data = {"stopped": record is not None, "state_file": str(app.workspace.state_file)}
    app.emit(
        data,
        lambda c: c.print(
            f"stopped; state saved to {app.workspace.state_file}" if record else "no local chain was running"
        ),
    )


@chain.command()
@json_option
@pass_app
def status(app: AppContext) -> None:
    """Is the local chain running, where, and is it the chain this workspace's records are on (exit 5 if not)?"""
    record = app.workspace.chain_record()
    if record is None:
        app.emit(
            {"running": False, "home": str(app.workspace.home)},
            lambda c: c.print(f"not running (workspace {app.workspace.home})"),
        )
        raise click.exceptions.Exit(3)
    block = int(rpc_call(record.url, "eth_blockNumber"), 16)
    try:  # a chain restarted without its saved state is another chain to this workspace's records
        check_binding(
            connect(record.url, expected_chain_id=record.chain_id), app.workspace.store, where=str(app.workspace.home)
        )
        problem = None
    except ForeignChain as exc:
        problem = exc.message
    data = {
        "running": True,
        "url": record.url,
        "pid": record.pid,
        "chain_id": record.chain_id,
        "block": block,
        "state_file": record.state_file,
        "uptime_s": round(time.time() - record.started_at, 1),
        "binding": {"matches": problem is None, "problem": problem},
    }

    def render(c: Console) -> None:
        c.print(f"running: {record.url} chain id {record.chain_id}, block {block}, pid {record.pid}")
        if problem is not None:
            c.print(f"[red]{problem}[/red]")

    app.emit(data, render)
    if problem is not None:
        raise click.exceptions.Exit(ForeignChain.exit_code)
