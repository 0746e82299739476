"""custody exit status|sign|initiate|cancel|finalize — emergency exit to a pre-approved custodian."""

from __future__ import annotations

import click
from rich.console import Console

from custody.cli._app import AppContext, json_option, pass_app
from custody.vault import exit as vault_exit
from custody.vault import proposals


@click.group("exit")
def exit_group() -> None:
    """Emergency exit of a vault to a pre-approved fallback custodian (ExitModule)."""


@exit_group.command()
@click.argument("vault_ref", metavar="VAULT")
@json_option
@pass_app
def status(app: AppContext, vault_ref: str) -> None:
    """The exit module's custodians, quorum, delay and any pending exit."""
    st = vault_exit.status(app.session(), vault_ref)

    def render(c: Console) -> None:
        c.print(
            f"exit module {st.module}: quorum {st.quorum} of {'the council ' + ', '.join(st.initiators) if st.initiators else 'the owners'}, escrow {st.escrow_delay} s"
        )
        c.print(f"  custodians     {', '.join(st.custodians)}")
        c.print(f"  owners cancel  {'yes' if st.owners_can_cancel else 'no (Safe or timelock only)'}")
        c.print(
            f"  pending        {'to ' + str(st.pending_custodian) + ', final at ' + str(st.ready_at) if st.pending else 'none'}"
        )

    app.emit(st.as_dict(), render)


@exit_group.command()
@click.argument("vault_ref", metavar="VAULT")
@click.option("--custodian", required=True, metavar="ADDRESS", help="One of the policy's fallback custodians.")
@click.option("--signer", "signer_uri", required=True, metavar="URI", help="An initiator (council member or owner).")
@json_option
@pass_app
def sign(app: AppContext, vault_ref: str, custodian: str, signer_uri: str) -> None:
    """Approve an exit request (EIP-712 ExitRequest) as one initiator."""
    session = app.session()
    signer = session.signer(signer_uri)
    request = vault_exit.open_request(session, vault_ref, custodian)
    request, added = vault_exit.sign(session, request, signer)
    quorum = vault_exit.status(session, vault_ref).quorum
    data = {
        "request": request.id,
        "digest": request.digest,
        "signer": signer.address,
        "added": added,
        "signatures": len(request.signatures),
        "quorum": quorum,
        "deadline": request.deadline,
    }
    app.emit(
        data,
        lambda c: c.print(
            f"{'signed' if added else 'already signed'} exit request {request.id} ({request.digest[:18]}…) for {request.custodian}: "
            f"{len(request.signatures)} of {quorum} signatures"
        ),
    )


@exit_group.command()
@click.argument("vault_ref", metavar="VAULT")
@click.option("--custodian", required=True, metavar="ADDRESS")
@json_option
@pass_app
def initiate(app: AppContext, vault_ref: str, custodian: str) -> None:
    """Submit the collected signatures: the escrow delay starts."""
    session = app.session()
    request, receipt = vault_exit.initiate_for(session, vault_ref, custodian)
    st = vault_exit.status(session, vault_ref)
    app.emit(
        {"request": request.id, "tx_hash": receipt.tx_hash, "ready_at": st.ready_at, "custodian": st.pending_custodian},
        lambda c: c.print(f"exit initiated in {receipt.tx_hash}; final at {st.ready_at} unless cancelled"),
    )


@exit_group.command()
@click.argument("vault_ref", metavar="VAULT")
@click.option("--as-owner", "owner_uri", metavar="URI", help="Cancel directly as an owner (where the policy allows).")
@json_option
@pass_app
def cancel(app: AppContext, vault_ref: str, owner_uri: str | None) -> None:
    """Cancel the pending exit: as an owner, or by proposing the Safe's cancellation."""
    session = app.session()
    if owner_uri:
        receipt = vault_exit.cancel_as_owner(session, vault_ref, session.signer(owner_uri))
        app.emit({"tx_hash": receipt.tx_hash}, lambda c: c.print(f"exit cancelled in {receipt.tx_hash}"))
        return
    target, data = vault_exit.cancel_proposal_data(session, vault_ref)
    proposal = proposals.propose(
        session, vault_ref, to=target, data=data, description="cancel the pending emergency exit"
    )
    app.emit(
        {"proposal": proposal.id, "safe_tx_hash": proposal.safe_tx_hash},
        lambda c: c.print(f"proposal {proposal.id} cancels the exit once the owners sign and execute it"),
    )


@exit_group.command()
@click.argument("vault_ref", metavar="VAULT")
@json_option
@pass_app
def finalize(app: AppContext, vault_ref: str) -> None:
    """Complete the pending exit after the escrow delay (anyone may)."""
    receipt = vault_exit.finalize(app.session(), vault_ref)
    app.emit(
        {"tx_hash": receipt.tx_hash, "gas_used": receipt.gas_used},
        lambda c: c.print(f"exit finalized in {receipt.tx_hash}"),
    )
