"""Read entries back by what they are about (kind, vault Safe, safeTxHash): how other domains consult
the ledger (the risk engine's history, ``risk explain``) without touching its tables."""

from __future__ import annotations

import sqlalchemy as sa

from custody.audit.entries import Entry, EntryKind
from custody.audit.record import ledger_for
from custody.audit.schema import audit_entries, audit_refs
from custody.store import Store


def find(
    store: Store,
    kind: EntryKind | str,
    *,
    chain_id: int | None = None,
    safe: str | None = None,
    safe_tx_hash: str | None = None,
) -> list[Entry]:
    """Live (not superseded) entries of ``kind``, oldest first, optionally about one Safe / safeTxHash."""
    ledger_for(store).ready()
    value = kind.value if isinstance(kind, EntryKind) else kind
    query = (
        sa.select(audit_entries.c.entry)
        .join(audit_refs, audit_refs.c.seq == audit_entries.c.seq)
        .where(audit_refs.c.kind == value, audit_refs.c.superseded_by.is_(None))
        .order_by(audit_entries.c.seq)
    )
    if chain_id is not None:
        query = query.where(audit_refs.c.chain_id == chain_id)
    if safe is not None:
        query = query.where(audit_refs.c.safe == safe.lower())
    if safe_tx_hash is not None:
        query = query.where(audit_refs.c.safe_tx_hash == safe_tx_hash.lower())
    with store.connect() as conn:
        return [Entry.parse(bytes(blob)) for blob in conn.execute(query).scalars()]
