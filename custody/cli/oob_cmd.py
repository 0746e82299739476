"""custody oob enroll|list and custody tx challenge|confirm — out-of-band (second-channel) confirmation."""

from __future__ import annotations

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app, table
from custody.cli.tx_cmd import render_proposal
from custody.exceptions import InputError
from custody.signers.registry import SignerContext, open_signer
from custody.vault import oob, proposals


@click.group("oob")
def oob_group() -> None:
    """Out-of-band confirmers: people who confirm large or risky transfers through a second channel."""


@oob_group.command()
@click.argument("name")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="ADDRESS|URI",
    help="A signing key NAME holds (repeatable): NAME may never confirm what that key proposed.",
)
@json_option
@pass_app
def enroll(app: AppContext, name: str, keys: tuple[str, ...]) -> None:
    """Enroll confirmer NAME with a TOTP secret (shown once, as an otpauth:// URI for an authenticator app; kept
    sealed under the out-of-band passphrase, $CUSTODY_OOB_PASSPHRASE or a prompt)."""
    workspace = app.workspace.ensure()
    context = SignerContext(keystore_dir=workspace.keystore_dir)
    addresses = tuple(k if k.startswith("0x") else open_signer(k, context).address for k in keys)
    uri = oob.enroll(workspace, name, keys=addresses)
    app.emit(
        {"name": name, "otpauth_uri": uri, "keys": list(addresses)},
        lambda c: c.print(
            f"enrolled {name}; add this to {name}'s authenticator app now — it is not shown again:\n  {uri}"
        ),
    )


@oob_group.command("list")
@json_option
@pass_app
def list_cmd(app: AppContext) -> None:
    """Enrolled confirmers."""
    names = oob.list_confirmers(app.workspace)

    def render(c: Console) -> None:
        t = table("confirmer")
        for n in names:
            t.add_row(n)
        c.print(t)

    app.emit(names, render)


@click.command()
@click.argument("ref", metavar="ID")
@click.option("--confirmer", required=True, metavar="NAME", help="Who will confirm (an enrolled confirmer).")
@click.option("--issued-by", default="", metavar="NAME", help="Who issues the challenge, for the record.")
@json_option
@pass_app
def challenge(app: AppContext, ref: str, confirmer: str, issued_by: str) -> None:
    """Print a one-time code bound to proposal ID's safeTxHash, to read to NAME over a second channel."""
    session = app.session()
    proposal = proposals.get_proposal(session, ref)
    code, expires = oob.issue_challenge(session, proposal, confirmer, issued_by=issued_by)
    app.emit(
        {
            "proposal": proposal.id,
            "safe_tx_hash": proposal.safe_tx_hash,
            "confirmer": confirmer,
            "code": code,
            "expires_at": expires.isoformat(),
        },
        lambda c: c.print(
            f"code for {confirmer}: [bold]{code}[/bold] (proposal {proposal.id}, safeTxHash {proposal.safe_tx_hash}; "
            f"valid until {expires:%H:%M} UTC, single use)\nread it to {confirmer} by phone together with the "
            f"safeTxHash; {confirmer} confirms with `custody tx confirm {proposal.id} --code CODE --confirmer {confirmer}`"
        ),
    )


@click.command()
@click.argument("ref", metavar="ID")
@click.option("--confirmer", required=True, metavar="NAME", help="The confirming person (not the proposer).")
@click.option("--totp", metavar="CODE", help="The confirmer's current authenticator code.")
@click.option("--code", metavar="CODE", help="The code printed by `tx challenge`.")
@json_option
@pass_app
def confirm(app: AppContext, ref: str, confirmer: str, totp: str | None, code: str | None) -> None:
    """Record an out-of-band confirmation of proposal ID by NAME (TOTP or a challenge code)."""
    if (totp is None) == (code is None):
        raise InputError("give exactly one of --totp CODE or --code CODE")
    session = app.session()
    proposal = proposals.get_proposal(session, ref)
    if not app.json:
        render_proposal(app.err, proposals.describe(session, proposal))
    if totp is not None:
        done = oob.confirm_with_totp(session, proposal, confirmer, totp)
    else:
        done = oob.confirm_with_code(session, proposal, confirmer, code or "")
    app.emit(
        {
            "proposal": proposal.id,
            "confirmer": done.confirmer,
            "method": done.method,
            "safe_tx_hash": done.safe_tx_hash,
            "confirmed_at": done.confirmed_at.isoformat(),
            "reason": done.reason,
        },
        lambda c: c.print(
            f"confirmed proposal {proposal.id} ({done.safe_tx_hash}) out of band: {done.confirmer} via {done.method}"
        ),
    )
