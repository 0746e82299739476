"""The ``custody`` command line: thin — parse, call the service layer, render (rich or --json)."""

from __future__ import annotations

import sys

try:  # Ctrl-C while the CLI loads is a sentence, not a traceback (a command's own imports: custody.cli._lazy)
    import click

    from custody.cli._app import AppContext, CustodyGroup, configure_logging
    from custody.cli._entry import run
    from custody.cli._lazy import LazyCommand

except KeyboardInterrupt:  # the same sentence as custody.cli._lazy.INTERRUPTED_WHILE_STARTING
    sys.stderr.write("error: interrupted while starting; nothing was done\n")
    raise SystemExit(130) from None

#: every top-level command: where it lives and the short help ``custody --help`` shows without importing it
#: (tests/test_cli_lazy.py checks each against the command's own help)
COMMANDS: dict[str, LazyCommand] = {
    "attest": LazyCommand(
        "custody.cli.attest_cmd",
        "attest",
        "On-chain attestation badges (Ethereum Attestation Service) for custody steps.",
    ),
    "audit": LazyCommand(
        "custody.cli.audit_cmd",
        "audit",
        "Tamper-evident audit ledger: signed heads, proofs, indexing, anchoring, verification, exports.",
    ),
    "build": LazyCommand(
        "custody.cli.build_cmd",
        "build_cmd",
        "Compile contracts/ with the pinned solc (solc-js) into committed artifacts.",
    ),
    "chain": LazyCommand(
        "custody.cli.chain_cmd", "chain", "The workspace's local Anvil chain (state kept across restarts)."
    ),
    "collateral": LazyCommand(
        "custody.cli.collateral_cmd",
        "collateral_group",
        "CollateralTokens this workspace reconciles: deploy (with an issuer vault), register, list, issue bars.",
    ),
    "drill": LazyCommand(
        "custody.cli.drill_cmd",
        "drill_group",
        "Rehearse incidents from playbooks (playbooks/*.yaml) on a snapshot, the live local chain or a fork.",
    ),
    "exit": LazyCommand(
        "custody.cli.exit_cmd",
        "exit_group",
        "Emergency exit of a vault to a pre-approved fallback custodian (ExitModule).",
    ),
    "infra": LazyCommand(
        "custody.cli.infra_cmd",
        "infra",
        "Per-chain infrastructure: Safe v1.4.1 (canonical addresses) and the custody factory.",
    ),
    "key": LazyCommand(
        "custody.cli.key_cmd", "key", "Signing keys: encrypted keystores (passphrase never from the command line)."
    ),
    "msg": LazyCommand(
        "custody.cli.msg_cmd",
        "msg_group",
        "Messages the vault signs (ERC-1271): only for EIP-712 domains its policy lists, by owner vote.",
    ),
    "oob": LazyCommand(
        "custody.cli.oob_cmd",
        "oob_group",
        "Out-of-band confirmers: people who confirm large or risky transfers through a second channel.",
    ),
    "pilot": LazyCommand(
        "custody.cli.pilot_cmd",
        "pilot",
        "End-to-end demonstration on a fresh local Anvil (started and stopped by the pilot).",
    ),
    "policy": LazyCommand("custody.cli.policy_cmd", "policy", "Policy templates: validate and explain."),
    "reconcile": LazyCommand(
        "custody.cli.reconcile_cmd", "reconcile_cmd", "Reconcile a CollateralToken against a bar list."
    ),
    "risk": LazyCommand(
        "custody.cli.risk_cmd",
        "risk_group",
        "Pre-sign risk engine: verdicts (Accept / Warn / Deny), models, sanctions lists, cases.",
    ),
    "tx": LazyCommand(
        "custody.cli.tx_cmd", "tx", "Transfer proposals: propose, review, sign (one owner per call), execute."
    ),
    "vault": LazyCommand(
        "custody.cli.vault_cmd", "vault", "Micro-vaults: Safe + timelock created from a policy template."
    ),
    "workspace": LazyCommand(
        "custody.cli.workspace_cmd",
        "workspace_group",
        "The workspace's records: which chain they belong to, and repairs (each recorded in the audit ledger).",
    ),
}


@click.group(
    cls=CustodyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
)
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


def main() -> None:
    run(cli)


__all__ = ["COMMANDS", "cli", "main"]
