"""custody tx export | sign-offline | import-signature — air-gapped signing through exchange files (listed
lazily by custody.cli.tx_cmd)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from custody.cli._app import AppContext, json_option, pass_app
from custody.cli.tx_cmd import SIGNER_HELP, acknowledge_option, blind_option, render_inner, render_verdict
from custody.exceptions import ExchangeFileError, NotAnOwner, SignatureError
from custody.safe.signatures import verify_owner_signature
from custody.signers.registry import SignerContext, open_signer
from custody.vault import offline, proposals
from custody.vault.clear import gas_refund_risk, require_acknowledged, risk_kinds
from custody.vault.decode import decode_safe_call


def _write(app: AppContext, doc: dict[str, Any], out: str | None) -> None:
    text = json.dumps(doc, indent=2, sort_keys=False) + "\n"
    if out:
        Path(out).write_text(text, encoding="utf-8")
        if app.json:
            app.emit({"path": out, "safe_tx_hash": doc.get("contractTransactionHash")})
        else:
            app.note(f"wrote {out}")
    else:  # the document itself is the JSON output
        click.echo(text, nl=False)


@click.command("export")
@click.argument("ref", metavar="ID")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the file here instead of stdout.")
@json_option
@pass_app
def export_cmd(app: AppContext, ref: str, out: str | None) -> None:
    """Write proposal ID as a Safe-Transaction-Service-style JSON file for an air-gapped signer."""
    session = app.session()
    proposal = proposals.get_proposal(session, ref)
    description = proposals.describe(session, proposal)
    _write(app, offline.export_document(proposal.safe_tx, description), out)


@click.command("sign-offline")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--signer", "signer_uri", required=True, metavar="URI", help=SIGNER_HELP)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the signature file here instead of stdout.")
@acknowledge_option
@blind_option
@json_option
@pass_app
def sign_offline(
    app: AppContext, file: str, signer_uri: str, out: str | None, acknowledged: tuple[str, ...], blind: bool
) -> None:
    """Sign an exported transaction without any RPC: every hash is recomputed from the file's fields first."""
    doc = offline.read_document(file, what="transaction file")
    safe_tx = offline.verified_safe_tx(doc, what=f"transaction file {file}")
    decoded = decode_safe_call(None, safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe=safe_tx.safe)
    kinds = risk_kinds(safe_tx, decoded)
    err = app.err
    err.print(
        f"[bold]offline signature[/bold] for Safe {safe_tx.safe} on chain {safe_tx.chain_id}, nonce {safe_tx.nonce}"
    )
    err.print(f"  action          {decoded.summary}")
    for i, inner in enumerate(decoded.as_dict()["calls"], 1):
        render_inner(err, inner, str(i))
    op = safe_tx.operation.name
    err.print(f"  operation       {'[bold red]DELEGATECALL[/bold red]' if op == 'DELEGATECALL' else op}")
    err.print(f"  to / value      {safe_tx.to} / {safe_tx.value} wei")
    err.print(f"  domain hash     0x{safe_tx.domain_separator.hex()}")
    err.print(f"  message hash    0x{safe_tx.message_hash.hex()}")
    err.print(f"  safeTxHash      0x{safe_tx.safe_tx_hash.hex()} (recomputed; matches the file)")
    for risk in [*decoded.risks, *filter(None, [gas_refund_risk(safe_tx)])]:
        err.print(f"  [bold yellow]risk[/bold yellow]            {risk}")
    require_acknowledged(kinds, acknowledged, what=f"the transaction in {file}")
    signer = open_signer(signer_uri, SignerContext(keystore_dir=app.workspace.keystore_dir, blind=blind))
    try:
        owners = (doc.get("review") or {}).get("owners") or []
        if owners and signer.address not in owners:
            raise NotAnOwner(f"{signer.uri} ({signer.address}) is not among the owners listed in {file}")
        blob = signer.sign_safe_tx(safe_tx)
    finally:
        close = getattr(signer, "close", None)
        if close is not None:
            close()
    checked = verify_owner_signature(blob, safe_tx.safe_tx_hash)
    if checked.signer != signer.address:
        raise SignatureError(f"{signer.uri} returned a signature from {checked.signer}, expected {signer.address}")
    _write(app, offline.signature_document(safe_tx, checked.signer, checked.signature), out)


@click.command("import-signature")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@json_option
@pass_app
def import_signature(app: AppContext, file: str) -> None:
    """Add an owner signature from a signature file (hashes and signer checked against the chain)."""
    session = app.session()
    doc = offline.read_document(file, what="signature file")
    safe_tx = offline.verified_safe_tx(doc, what=f"signature file {file}", chain_id=session.chain_id)
    proposal = proposals.get_proposal(session, "0x" + safe_tx.safe_tx_hash.hex())
    if "signature" not in doc:
        raise ExchangeFileError(f"signature file {file} has no 'signature' field")
    blob = offline._hex(doc, "signature", f"signature file {file}")
    checked = verify_owner_signature(blob, safe_tx.safe_tx_hash)
    sender = doc.get("sender")
    if sender is not None and str(sender).lower() != checked.signer.lower():
        raise SignatureError(
            f"the signature in {file} recovers to {checked.signer}, but the file names sender {sender}; nothing stored"
        )
    stored = {s.signer: s.signature for s in proposal.signatures}
    if stored.get(checked.signer) == checked.signature and bytes(blob) != checked.signature:
        raise SignatureError(
            f"the signature in {file} is a high-s re-encoding of {checked.signer}'s stored signature; "
            "an approval counts once"
        )
    signature, added = proposals.add_signature(
        session,
        proposal,
        blob,
        source="offline",
        on_decision=None if app.json else lambda d: render_verdict(app.err, d),
    )
    after = proposals.describe(session, proposals.get_proposal(session, proposal.id))
    valid = sum(1 for s in after["signatures"] if s["valid"])
    app.emit(
        {
            "proposal": proposal.id,
            "signer": signature.signer,
            "added": added,
            "valid_signatures": valid,
            "threshold": after["threshold"],
        },
        lambda c: c.print(
            f"{'imported' if added else 'already had'} signature of {signature.signer} for proposal {proposal.id}: "
            f"{valid} of {after['threshold']} signatures"
        ),
    )
