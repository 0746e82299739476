"""Approvals: an owner's signature, from a signer backend or imported offline, verified, low-s normalised and
stored once per owner — after the risk engine decided; and the re-check of stored signatures against the
Safe's current owners."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from custody import events
from custody.audit import record as audit
from custody.exceptions import NotAnOwner, SignatureError
from custody.risk.verdict import Decision
from custody.safe.mismatch import explain_mismatch
from custody.safe.signatures import OwnerSignature, verify_owner_signature
from custody.session import Session
from custody.signers.base import Signer
from custody.store import signatures, utcnow
from custody.types import Address
from custody.vault.proposals.checks import enforce_risk, require_open
from custody.vault.proposals.model import Proposal
from custody.vault.proposals.safe_reads import SafeView, owners_and_threshold


def _store_signature(
    session: Session, proposal: Proposal, signature: OwnerSignature, source: str
) -> tuple[OwnerSignature, bool]:
    with session.store.begin() as conn:
        existing = conn.execute(
            sa.select(signatures.c.signature).where(
                signatures.c.proposal_id == proposal.id, signatures.c.signer == signature.signer
            )
        ).scalar()
        if existing is not None:
            return OwnerSignature(signature.signer, bytes.fromhex(existing[2:])), False
        conn.execute(
            signatures.insert().values(
                proposal_id=proposal.id,
                signer=signature.signer,
                signature=signature.to_hex(),
                source=source[:32],
                created_at=utcnow(),
            )
        )
        audit.approval_signed(conn, session, proposal, signature.signer, source, signature.kind)
    events.publish(events.ApprovalSigned(session, proposal.safe_tx.safe, proposal.safe_tx_hash, signature.signer))
    return signature, True


def add_signature(
    session: Session,
    proposal: Proposal,
    blob: bytes,
    *,
    source: str,
    on_decision: Callable[[Decision], None] | None = None,
) -> tuple[OwnerSignature, bool]:
    """Verify a signature blob for the proposal and store it; returns (signature, newly_added).

    The risk engine decides first (stage ``sign``, backend ``offline``); a Deny stores nothing."""
    view = require_open(session, proposal)
    signature = verify_owner_signature(blob, proposal.safe_tx.safe_tx_hash)
    if signature.signer not in view.owners:
        raise NotAnOwner(
            explain_mismatch(blob, proposal.safe_tx, view.owners, signature.signer), signer=signature.signer
        )
    enforce_risk(
        session, proposal, stage="sign", view=view, signer=signature.signer, backend="offline", on_decision=on_decision
    )
    return _store_signature(session, proposal, signature, source)


def sign(
    session: Session, proposal: Proposal, signer: Signer, *, on_decision: Callable[[Decision], None] | None = None
) -> tuple[OwnerSignature, bool]:
    """Have ``signer`` approve the proposal (it must be an owner); stored once per owner.

    The risk engine decides before the signer is asked: on a Deny no backend ever sees the transaction."""
    view = require_open(session, proposal)
    if signer.address not in view.owners:
        raise NotAnOwner(
            f"{signer.uri} ({signer.address}) is not an owner of vault {proposal.safe_tx.safe}", signer=signer.address
        )
    enforce_risk(
        session,
        proposal,
        stage="sign",
        view=view,
        signer=signer.address,
        backend=signer.uri.split(":", 1)[0],
        on_decision=on_decision,
    )
    blob = signer.sign_safe_tx(proposal.safe_tx)
    signature = verify_owner_signature(blob, proposal.safe_tx.safe_tx_hash)
    if signature.signer != signer.address:
        raise SignatureError(f"{signer.uri} returned a signature from {signature.signer}, expected {signer.address}")
    return _store_signature(session, proposal, signature, signer.uri.split(":", 1)[0])


def valid_signatures(
    session: Session, proposal: Proposal, view: SafeView | None = None
) -> tuple[list[OwnerSignature], list[Address], int]:
    """Re-verify stored signatures against the current owners; (valid, owners, threshold)."""
    if view is None:
        owners, threshold = owners_and_threshold(session, proposal.safe_tx.safe)
    else:
        owners, threshold = view.owners, view.threshold
    valid: dict[str, OwnerSignature] = {}
    for stored in proposal.signatures:
        checked = verify_owner_signature(stored.signature, proposal.safe_tx.safe_tx_hash)
        if checked.signer == stored.signer and checked.signer in owners:
            valid[checked.signer] = checked
    return list(valid.values()), owners, threshold
