"""The ``custody`` command line: thin — parse, call the service layer, render (rich or --json)."""

from __future__ import annotations

import sys

try:  # Ctrl-C while the CLI loads (web3 and friends take a moment) is a sentence, not a traceback
    import click

    from custody.cli._app import AppContext, CustodyGroup, configure_logging
    from custody.cli._entry import run
    from custody.cli.attest_cmd import attest
    from custody.cli.audit_cmd import audit
    from custody.cli.build_cmd import build_cmd
    from custody.cli.chain_cmd import chain
    from custody.cli.collateral_cmd import collateral_group
    from custody.cli.drill_cmd import drill_group
    from custody.cli.exit_cmd import exit_group
    from custody.cli.fund_cmd import fund_cmd as _vault_fund  # noqa: F401  (adds vault fund)
    from custody.cli.infra_cmd import infra
    from custody.cli.key_cmd import key
    from custody.cli.msg_cmd import msg_group
    from custody.cli.offline_cmd import export_cmd as _tx_offline  # noqa: F401  (adds tx export/sign-offline/import-signature)
    from custody.cli.oob_cmd import oob_group
    from custody.cli.pilot_cmd import pilot
    from custody.cli.policy_cmd import policy
    from custody.cli.reconcile_cmd import reconcile_cmd
    from custody.cli.risk_cmd import risk_group
    from custody.cli.tx_cmd import tx
    from custody.cli.vault_cmd import vault
    from custody.cli.workspace_cmd import workspace_group

except KeyboardInterrupt:
    sys.stderr.write("error: interrupted while starting; nothing was done\n")
    raise SystemExit(130) from None


@click.group(cls=CustodyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--home", envvar="CUSTODY_HOME", type=click.Path(file_okay=False), help="Workspace folder [./.custody].")
@click.option(
    "--rpc", envvar="CUSTODY_RPC", metavar="URL", help="Attach to this RPC instead of the workspace's local Anvil."
)
@click.option(
    "--sender", envvar="CUSTODY_SENDER", metavar="URI", help="Signer URI that pays gas [anvil:0 on local chains]."
)
@click.option(
    "--attester",
    envvar="CUSTODY_ATTESTER",
    metavar="URI",
    help="Signer URI of the attester key for automatic badges (see `custody attest`).",
)
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(package_name="custody")
@click.pass_context
def cli(
    ctx: click.Context, home: str | None, rpc: str | None, sender: str | None, attester: str | None, verbose: int
) -> None:
    """Micro-vault custody toolkit: Safe multisigs bounded by on-chain policy."""
    configure_logging(verbose)
    app = ctx.ensure_object(AppContext)
    app.home, app.rpc, app.sender, app.attester = home, rpc, sender, attester


for command in (
    chain,
    build_cmd,
    infra,
    vault,
    policy,
    tx,
    msg_group,
    key,
    pilot,
    oob_group,
    reconcile_cmd,
    exit_group,
    attest,
    audit,
    drill_group,
    risk_group,
    collateral_group,
    workspace_group,
):
    cli.add_command(command)


def main() -> None:
    run(cli)


__all__ = ["cli", "main"]
