"""Journaled sends: one intent, at most one live transaction, resumable after a crash.

A flow that sends a transaction on its own (exit initiate/finalize, timelock completion) names its
*intent* (``exit-initiate:<request digest>``, ``timelock-execute:<op id>``, …). :func:`send_once` signs,
records the signed bytes in ``tx_journal`` **before** broadcasting, then sends and waits. If the process
dies anywhere after the record, :func:`resume_intent` finds the entry and finishes it by re-sending
exactly those bytes (or by adopting the receipt when they were mined) — never by signing a second,
different transaction. Only when the journaled transaction provably can never be mined (its sender's
nonce went to another transaction: :class:`~custody.exceptions.NonceConsumed`) is it marked
``dropped`` and may the flow sign anew.

Proposal executions journal in ``proposals.exec_raw_tx`` instead (see :mod:`custody.vault.proposals`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import RowMapping

from custody.chain.transactions import Receipt, get_receipt, raw_sender_nonce, send_raw, wait_for_receipt
from custody.contracts.errors import decode_revert
from custody.exceptions import NonceConsumed, TransactionFailed
from custody.session import Session
from custody.store import tx_journal, utcnow


class JournalState(str, enum.Enum):
    SIGNED = "signed"  # recorded before broadcast; may or may not have reached the node
    MINED = "mined"
    REVERTED = "reverted"
    DROPPED = "dropped"  # can never be mined (its nonce was used by another transaction)


@dataclass(frozen=True)
class JournalEntry:
    id: int
    intent: str
    sender: str
    nonce: int
    tx_hash: str
    raw: bytes
    state: JournalState
    block_number: int | None


def _entry(row: RowMapping) -> JournalEntry:
    return JournalEntry(
        id=row["id"],
        intent=row["intent"],
        sender=row["sender"],
        nonce=row["nonce"],
        tx_hash=row["tx_hash"],
        raw=bytes.fromhex(row["raw_tx"][2:]),
        state=JournalState(row["state"]),
        block_number=row["block_number"],
    )


def latest(session: Session, intent: str) -> JournalEntry | None:
    """The most recent journal entry for ``intent`` on this chain."""
    with session.store.connect() as conn:
        row = (
            conn.execute(
                sa.select(tx_journal)
                .where(tx_journal.c.chain_id == session.chain_id, tx_journal.c.intent == intent)
                .order_by(tx_journal.c.id.desc())
            )
            .mappings()
            .first()
        )
    return None if row is None else _entry(row)


def in_flight(session: Session) -> list[JournalEntry]:
    """Entries signed but not yet known to be mined (what a crashed process left behind)."""
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(tx_journal)
            .where(tx_journal.c.chain_id == session.chain_id, tx_journal.c.state == JournalState.SIGNED.value)
            .order_by(tx_journal.c.id)
        ).mappings()
        return [_entry(r) for r in rows]


def _mark(session: Session, tx_hash: str, state: JournalState, block: int | None = None) -> None:
    with session.store.begin() as conn:
        conn.execute(
            tx_journal.update()
            .where(tx_journal.c.tx_hash == tx_hash)
            .values(state=state.value, block_number=block, updated_at=utcnow())
        )


def _settle(session: Session, entry: JournalEntry, what: str) -> Receipt:
    try:
        receipt = wait_for_receipt(session.chain, entry.tx_hash, what=what, decoder=decode_revert)
    except TransactionFailed:
        _mark(session, entry.tx_hash, JournalState.REVERTED)
        raise
    _mark(session, entry.tx_hash, JournalState.MINED, receipt.block_number)
    return receipt


def resume_intent(session: Session, intent: str, *, what: str, adopt_mined: bool = True) -> Receipt | None:
    """Finish what a previous run left for ``intent``: the receipt of its journaled transaction, or
    None when there is nothing to finish (no entry, it reverted, or it can never be mined).

    An entry still ``signed`` is always finished. A ``mined`` one is returned only with
    ``adopt_mined`` — when the caller's own record of the outcome is not written yet (the process
    died between the receipt and the record); otherwise it is history, not something to resume.
    """
    entry = latest(session, intent)
    if entry is None or entry.state in (JournalState.REVERTED, JournalState.DROPPED):
        return None
    if entry.state is JournalState.MINED and not adopt_mined:
        return None
    if entry.state is JournalState.SIGNED and get_receipt(session.chain, entry.tx_hash) is None:
        try:
            send_raw(session.chain, entry.raw)  # the same bytes again: at most one transaction
        except NonceConsumed:
            _mark(session, entry.tx_hash, JournalState.DROPPED)
            return None
    return _settle(session, entry, f"{what} (resumed)")


def send_once(session: Session, intent: str, *, to: str, data: bytes = b"", value: int = 0, what: str) -> Receipt:
    """Sign, journal, broadcast and wait — the journaled bytes are what any retry re-sends."""

    def journal(tx_hash: str, raw: bytes) -> None:
        sender, nonce = raw_sender_nonce(raw)
        now = utcnow()
        with session.store.begin() as conn:
            conn.execute(
                tx_journal.insert().values(
                    chain_id=session.chain_id,
                    intent=intent,
                    sender=sender,
                    nonce=nonce,
                    tx_hash=tx_hash,
                    raw_tx="0x" + raw.hex(),
                    state=JournalState.SIGNED.value,
                    created_at=now,
                    updated_at=now,
                )
            )

    try:
        receipt = session.send(to=to, data=data, value=value, what=what, on_signed=journal)
    except TransactionFailed as exc:
        tx_hash = exc.details.get("tx_hash")
        if tx_hash:  # mined and reverted (refusals in estimation journal nothing)
            _mark(session, tx_hash, JournalState.REVERTED)
        raise
    _mark(session, receipt.tx_hash, JournalState.MINED, receipt.block_number)
    return receipt
