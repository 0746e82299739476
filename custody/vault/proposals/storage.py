"""Proposals in the workspace: loading (re-hashed on every read), lookup by id or safeTxHash, listing,
state changes, and the queries on the vault's open nonces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from custody.exceptions import HashMismatch, UnknownProposal
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import OwnerSignature
from custody.session import Session
from custody.store import proposals, signatures, utcnow
from custody.types import Operation
from custody.vault.proposals.model import Proposal, ProposalState
from custody.vault.service import VaultRecord


def load_proposal(session: Session, where: sa.ColumnElement[bool]) -> Proposal | None:
    with session.store.connect() as conn:
        row = conn.execute(sa.select(proposals).where(where)).mappings().first()
        if row is None:
            return None
        sigs = conn.execute(
            sa.select(signatures).where(signatures.c.proposal_id == row["id"]).order_by(signatures.c.signer)
        ).mappings()
        owner_sigs = tuple(OwnerSignature(s["signer"], bytes.fromhex(s["signature"][2:])) for s in sigs)
    safe_tx = SafeTx(
        safe=row["safe"],
        chain_id=row["chain_id"],
        to=row["to"],
        value=int(row["value"]),
        data=bytes.fromhex(row["data"][2:]),
        operation=Operation(row["operation"]),
        nonce=row["nonce"],
        safe_tx_gas=int(row["safe_tx_gas"]),
        base_gas=int(row["base_gas"]),
        gas_price=int(row["gas_price"]),
        gas_token=row["gas_token"],
        refund_receiver=row["refund_receiver"],
    )
    if "0x" + safe_tx.safe_tx_hash.hex() != row["safe_tx_hash"]:
        raise HashMismatch(
            f"stored proposal {row['id']} does not hash to its recorded safeTxHash; the workspace was altered",
            proposal=row["id"],
        )
    return Proposal(
        id=row["id"],
        vault_id=row["vault_id"],
        safe_tx=safe_tx,
        description=row["description"],
        proposer=row["proposer"],
        state=ProposalState(row["state"]),
        signatures=owner_sigs,
        exec_tx_hash=row["exec_tx_hash"],
        exec_block=row["exec_block"],
        exec_gas_used=row["exec_gas_used"],
    )


def get_proposal(session: Session, ref: str | int) -> Proposal:
    """A proposal by id or by safeTxHash (a unique prefix of at least 10 characters works)."""
    text = str(ref).strip()
    if text.isdigit():
        found = load_proposal(session, proposals.c.id == int(text))
    elif text.lower().startswith("0x") and len(text) >= 10:
        with session.store.connect() as conn:
            ids = (
                conn.execute(sa.select(proposals.c.id).where(proposals.c.safe_tx_hash.like(text.lower() + "%")))
                .scalars()
                .all()
            )
        if len(ids) > 1:
            raise UnknownProposal(f"safeTxHash prefix {text} matches {len(ids)} proposals; give more digits")
        found = load_proposal(session, proposals.c.id == ids[0]) if ids else None
    elif text.lower().startswith("0x") and all(c in "0123456789abcdef" for c in text[2:].lower()):
        raise UnknownProposal(f"safeTxHash prefix {text} is too short: give at least 8 hex digits after 0x")
    elif text and all(c in "0123456789abcdef" for c in text.lower()):
        raise UnknownProposal(
            f"{text!r} is not a proposal id (those are decimal) and a safeTxHash prefix starts with 0x: "
            f"write 0x{text}" + ("" if len(text) >= 8 else " with at least 8 hex digits")
        )
    else:
        raise UnknownProposal(f"{text!r} is neither a proposal id nor a safeTxHash")
    if found is None or found.safe_tx.chain_id != session.chain_id:
        raise UnknownProposal(f"no proposal {text} on chain {session.chain_id} in this workspace", proposal=text)
    return found


def list_proposals(session: Session, vault: VaultRecord | None = None) -> list[Proposal]:
    query = sa.select(proposals.c.id).where(proposals.c.chain_id == session.chain_id).order_by(proposals.c.id)
    if vault is not None:
        query = query.where(proposals.c.vault_id == vault.id)
    with session.store.connect() as conn:
        ids = conn.execute(query).scalars().all()
    return [p for p in (load_proposal(session, proposals.c.id == i) for i in ids) if p is not None]


def waiting_behind(session: Session, proposal: Proposal) -> list[Proposal]:
    """The vault's open proposals with a higher nonce than ``proposal`` (after a discard, they wait for its nonce)."""
    with session.store.connect() as conn:
        ids = (
            conn.execute(
                sa.select(proposals.c.id)
                .where(
                    proposals.c.vault_id == proposal.vault_id,
                    proposals.c.nonce > proposal.safe_tx.nonce,
                    proposals.c.state.in_([ProposalState.PROPOSED.value, ProposalState.EXECUTING.value]),
                )
                .order_by(proposals.c.nonce, proposals.c.id)
            )
            .scalars()
            .all()
        )
    return [p for p in (load_proposal(session, proposals.c.id == i) for i in ids) if p is not None]


def set_state(
    session: Session,
    proposal_id: int,
    state: ProposalState,
    *,
    record: Callable[[sa.Connection], object] | None = None,
    **values: Any,
) -> None:
    """Move a proposal to ``state``; ``record(conn)`` writes its audit entry in the same transaction."""
    with session.store.begin() as conn:
        conn.execute(
            proposals.update()
            .where(proposals.c.id == proposal_id)
            .values(state=state.value, updated_at=utcnow(), **values)
        )
        if record is not None:
            record(conn)


def open_nonces(session: Session, vault_id: int, *, exclude: int | None) -> list[int]:
    """Nonces of the vault's other open proposals (the firewall's nonce gap / duplicate rules)."""
    query = sa.select(proposals.c.nonce).where(
        proposals.c.vault_id == vault_id,
        proposals.c.state.in_([ProposalState.PROPOSED.value, ProposalState.EXECUTING.value]),
    )
    if exclude is not None:
        query = query.where(proposals.c.id != exclude)
    with session.store.connect() as conn:
        return list(conn.execute(query).scalars())


def proposal_ids_by_nonce(session: Session, vault_id: int, nonces: range) -> dict[str, dict[int, list[int]]]:
    """Proposal ids by state and nonce, for the vault's proposals with a nonce in ``nonces``."""
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(proposals.c.id, proposals.c.nonce, proposals.c.state)
            .where(proposals.c.vault_id == vault_id, proposals.c.nonce >= nonces.start, proposals.c.nonce < nonces.stop)
            .order_by(proposals.c.id)
        ).all()
    found: dict[str, dict[int, list[int]]] = {}
    for row in rows:
        found.setdefault(row.state, {}).setdefault(int(row.nonce), []).append(int(row.id))
    return found
