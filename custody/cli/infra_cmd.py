"""custody infra deploy|show"""

from __future__ import annotations

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.contracts.infra import ensure_infrastructure, load_infrastructure


@click.group()
def infra() -> None:
    """Per-chain infrastructure: Safe v1.4.1 (canonical addresses) and the custody factory."""


@infra.command()
@json_option
@pass_app
def deploy(app: AppContext) -> None:
    """Deploy (or find and re-record) every infrastructure contract on this chain."""
    session = app.session()
    infra_set, results = ensure_infrastructure(session.chain, session.sender, session.store)
    rows = [
        {
            "name": r.name,
            "address": r.address,
            "deployed_now": r.tx_hash is not None,
            "tx_hash": r.tx_hash,
            "gas_used": r.gas_used,
        }
        for r in results
    ]

    def render(c: Console) -> None:
        t = table("contract", "address", "status", "gas")
        for r in rows:
            t.add_row(
                str(r["name"]),
                str(r["address"]),
                "deployed" if r["deployed_now"] else "reused",
                str(r["gas_used"] or "-"),
            )
        c.print(t)

    app.emit({"chain_id": infra_set.chain_id, "contracts": rows}, render)


@infra.command()
@json_option
@pass_app
def show(app: AppContext) -> None:
    """The recorded infrastructure, checked against the chain's code."""
    session = app.session()
    infra_set = load_infrastructure(session.chain, session.store)

    def render(c: Console) -> None:
        t = table("contract", "address")
        for name, address in infra_set.as_dict().items():
            t.add_row(name, address)
        c.print(t)

    app.emit({"chain_id": infra_set.chain_id, "contracts": infra_set.as_dict()}, render)
