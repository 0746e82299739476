"""custody msg show|sign|status|revoke — EIP-712 message signing for a vault (ERC-1271), policy-bound."""

from __future__ import annotations

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app
from custody.cli.tx_cmd import render_proposal
from custody.exceptions import InputError
from custody.vault import messages, proposals
from custody.vault.identities import PROPOSER_HELP, resolve_proposer


@click.group("msg")
def msg_group() -> None:
    """Messages the vault signs (ERC-1271): only for EIP-712 domains its policy lists, by owner vote."""


def _render_typed(c: Console, typed: messages.TypedMessage) -> None:
    d = typed.as_dict()
    c.print(f"[bold]{typed.primary_type}[/bold] for domain " + ", ".join(f"{k}={v}" for k, v in d["domain"].items()))
    for key, value in d["message"].items():
        c.print(f"  {key:<16} {value}")
    c.print(f"  domain sep.      {d['domain_separator']}")
    c.print(f"  struct hash      {d['struct_hash']}")
    c.print(f"  digest           {d['digest']}  (what verifiers check with isValidSignature)")


def _digest(text: str) -> bytes:
    raw = text.strip().lower().removeprefix("0x")
    if len(raw) != 64 or any(ch not in "0123456789abcdef" for ch in raw):
        raise InputError(f"{text!r} is not a 32-byte message digest (0x + 64 hex digits)")
    return bytes.fromhex(raw)


@msg_group.command()
@click.argument("typed_data", metavar="FILE", type=click.Path(dir_okay=False))
@json_option
@pass_app
def show(app: AppContext, typed_data: str) -> None:
    """Decode an EIP-712 payload (eth_signTypedData_v4 JSON): what the vault would sign, and its digest."""
    typed = messages.load_typed_data(typed_data)
    app.emit(typed.as_dict(), lambda c: _render_typed(c, typed))


@msg_group.command()
@click.argument("vault_ref", metavar="VAULT")
@click.argument("typed_data", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--proposer", default="", metavar="URI|NAME", help=PROPOSER_HELP)
@json_option
@pass_app
def sign(app: AppContext, vault_ref: str, typed_data: str, proposer: str) -> None:
    """Propose that VAULT sign the EIP-712 message in FILE (then `tx sign` and `tx execute` it)."""
    session = app.session()
    typed = messages.load_typed_data(typed_data)
    proposal = messages.propose_message(
        session, vault_ref, typed, proposer=resolve_proposer(session, proposer, optional=True)
    )
    described = {**proposals.describe(session, proposal), "message": typed.as_dict()}

    def render(c: Console) -> None:
        _render_typed(c, typed)
        render_proposal(c, described)

    app.emit(described, render)


@msg_group.command()
@click.argument("vault_ref", metavar="VAULT")
@click.argument("digest", metavar="DIGEST")
@json_option
@pass_app
def status(app: AppContext, vault_ref: str, digest: str) -> None:
    """Does VAULT sign DIGEST? The guard's record and the vault's own ERC-1271 answer."""
    st = messages.status(app.session(), vault_ref, _digest(digest))
    app.emit(
        st.as_dict(),
        lambda c: c.print(
            f"vault {st.vault}: message 0x{st.digest.hex()} is "
            + (
                "[green]signed[/green] (isValidSignature answers 0x1626ba7e)"
                if st.erc1271_valid
                else "[yellow]not signed[/yellow]"
            )
        ),
    )


@msg_group.command()
@click.argument("vault_ref", metavar="VAULT")
@click.argument("digest", metavar="DIGEST")
@click.option("--proposer", default="", metavar="URI|NAME", help=PROPOSER_HELP)
@json_option
@pass_app
def revoke(app: AppContext, vault_ref: str, digest: str, proposer: str) -> None:
    """Propose that VAULT withdraw its signature of DIGEST."""
    session = app.session()
    proposal = messages.propose_revocation(
        session, vault_ref, _digest(digest), proposer=resolve_proposer(session, proposer, optional=True)
    )
    described = proposals.describe(session, proposal)
    app.emit(described, lambda c: render_proposal(c, described))
