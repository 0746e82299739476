"""custody collateral deploy|register|list|issue"""

from __future__ import annotations

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.reconcile import collateral


@click.group("collateral")
def collateral_group() -> None:
    """CollateralTokens this workspace reconciles: deploy (with an issuer vault), register, list, issue bars."""


def _render_info(c: Console, info: collateral.CollateralInfo, verb: str) -> None:
    d = info.as_dict()
    c.print(
        f"{verb} {d['symbol']} ({d['name']}, CollateralToken {d['version']}) at {d['address']}; "
        f"supply {d['supply']}, allocated {d['allocated_fine_oz']} fine oz, issuer vault {d['issuer_vault'] or '-'}"
    )


@collateral_group.command("deploy")
@click.argument("symbol")
@click.option("--name", "token_name", required=True, help="Token name, e.g. 'Custody Gold'.")
@click.option("--vault", "vault_name", required=True, metavar="NAME", help="Name of the new issuer vault.")
@click.option(
    "--template", required=True, type=click.Path(exists=True, dir_okay=False), help="Policy template of the vault."
)
@json_option
@pass_app
def deploy_cmd(app: AppContext, symbol: str, token_name: str, vault_name: str, template: str) -> None:
    """Create issuer vault NAME from TEMPLATE (plus the issuer calls) and deploy CollateralToken SYMBOL for it."""
    session = app.session()
    vault, info = collateral.deploy(
        session,
        symbol=symbol,
        name=token_name,
        vault=vault_name,
        template=template,
        workdir=session.workspace.home / "templates",
    )
    app.emit({**info.as_dict(), "issuer_vault": vault}, lambda c: _render_info(c, info, "deployed"))


@collateral_group.command("register")
@click.argument("address")
@json_option
@pass_app
def register_cmd(app: AppContext, address: str) -> None:
    """Record an existing CollateralToken at ADDRESS (its interface is checked first)."""
    info = collateral.register(app.session(), address)
    app.emit(info.as_dict(), lambda c: _render_info(c, info, "registered"))


@collateral_group.command("list")
@json_option
@pass_app
def list_cmd(app: AppContext) -> None:
    """CollateralTokens recorded in this workspace, with live supply and allocation."""
    infos = collateral.registered(app.session())

    def render(c: Console) -> None:
        t = table("symbol", "address", "supply", "allocated (fine oz)", "issuer vault")
        for i in infos:
            d = i.as_dict()
            t.add_row(d["symbol"], d["address"], d["supply"], d["allocated_fine_oz"], d["issuer_vault"] or "-")
        c.print(t)

    app.emit([i.as_dict() for i in infos], render)


@collateral_group.command("issue")
@click.argument("token", metavar="ADDR|SYMBOL")
@click.option("--bars", "bars_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Bar list.")
@click.option("--to", "holder", required=True, metavar="ADDRESS", help="Who receives the minted tokens.")
@click.option(
    "--signer", "signer_uris", multiple=True, required=True, metavar="URI", help="Issuer vault owner (repeat)."
)
@json_option
@pass_app
def issue_cmd(app: AppContext, token: str, bars_path: str, holder: str, signer_uris: tuple[str, ...]) -> None:
    """Allocate every bar of the list as one batch and mint its fine weight to --to, via the issuer vault."""
    session = app.session()
    signers = [session.signer(uri) for uri in signer_uris]
    info, batch, bars = collateral.issue_bars(
        session, collateral.resolve_token(session, token), bars_path, to=holder, signers=signers
    )
    data = {
        **info.as_dict(),
        "batch": "0x" + batch.batch.hex(),
        "bars": len(bars),
        "allocate_tx": batch.allocate_tx,
        "mint_tx": batch.mint_tx,
        "block": batch.block,
    }
    app.emit(
        data,
        lambda c: c.print(
            f"allocated {len(bars)} bars and minted against batch {data['batch'][:14]}… (block {batch.block}); "
            f"{info.symbol} supply now {data['supply']}"
        ),
    )
