"""custody vault fund (local chains); listed lazily by custody.cli.vault_cmd"""

from __future__ import annotations

import click

from custody.cli._app import AppContext, json_option, pass_app
from custody.vault.funding import fund_vault


@click.command("fund")
@click.argument("vault_ref", metavar="VAULT")
@click.option("--amount", required=True, help="Human amount, e.g. 10 or 0.5 (digits and one optional '.').")
@click.option("--token", metavar="ADDRESS", help="ERC-20 token to send [native ETH].")
@click.option("--from", "funder", default="anvil:0", show_default=True, metavar="URI", help="Signer URI that pays.")
@json_option
@pass_app
def fund_cmd(app: AppContext, vault_ref: str, amount: str, token: str | None, funder: str) -> None:
    """Send ETH or an ERC-20 to VAULT's Safe from a funded account (local Anvil chains only)."""
    done = fund_vault(app.session(), vault_ref, amount, token=token, funder_uri=funder)
    app.emit(
        done.as_dict(),
        lambda c: c.print(
            f"sent {done.as_dict()['amount']} {done.symbol} to {done.vault} ({done.safe}) in {done.tx_hash}"
        ),
    )
