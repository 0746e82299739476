"""Audit-ledger tables (SQLAlchemy Core; the workspace database: SQLite by default, PostgreSQL by URL).

* ``audit_state`` — one row (id 1): the log's id, size, last leaf hash and compact Merkle frontier.
  Every append first *updates* this row, which takes the writer lock (SQLite: the database's RESERVED
  lock, waited for up to the busy timeout; PostgreSQL: the row lock, with a ``lock_timeout``), so two
  processes can never append the same sequence number or fork the log.
* ``audit_entries`` — the log itself: sequence number, leaf hash, canonical entry bytes. Append-only.
* ``audit_refs`` — a lookup index over entries that point at the chain (vault, tx, block, log index)
  and which correction superseded them. Derived data: verification never trusts it.
* ``audit_heads`` — signed tree heads; ``audit_anchors`` — where heads were published.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite: the rowid itself (clustered)

audit_state = sa.Table(
    "audit_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("log_id", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("last_leaf", sa.LargeBinary(32), nullable=False),
    sa.Column("frontier", sa.LargeBinary, nullable=False),
    sa.Column("writer", sa.String(120), nullable=False, default=""),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
    sa.Column("leaf", sa.LargeBinary(32), nullable=False),
    sa.Column("entry", sa.LargeBinary, nullable=False),
)

audit_refs = sa.Table(
    "audit_refs",
    metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("chain_id", sa.BigInteger),
    sa.Column("safe", sa.String(42)),  # lowercase
    sa.Column("tx_hash", sa.String(66)),
    sa.Column("block_number", sa.BigInteger),
    sa.Column("log_index", sa.Integer),
    sa.Column("safe_tx_hash", sa.String(66)),
    sa.Column("superseded_by", sa.BigInteger),
    sa.Index("ix_audit_refs_block", "chain_id", "safe", "block_number"),
)

audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("log_id", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("key_id", sa.String(120), nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
    sa.Index("ix_audit_heads_size", "size"),
)

audit_anchors = sa.Table(
    "audit_anchors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("head_id", sa.Integer, sa.ForeignKey("audit_heads.id"), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),  # ledger_anchor | eas_timestamp
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("contract", sa.String(42), nullable=False),
    sa.Column("operator", sa.String(42), nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("block_number", sa.BigInteger, nullable=False),
    sa.Column("reference", sa.String(66)),  # method-specific id (e.g. an EAS timestamp's data hash)
)


def ensure_tables(conn: Connection) -> None:
    """Create the audit tables if missing (inside the caller's transaction)."""
    metadata.create_all(conn, checkfirst=True)
