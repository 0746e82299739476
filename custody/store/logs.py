"""Log indexing state (custody/chain/logs.py): cursors per stream and indexed block hashes."""

from __future__ import annotations

import sqlalchemy as sa

from custody.store.core import metadata

# Generic log indexing (custody/chain/logs.py): one cursor per stream (an indexer's name for what it
# follows), and the hash of every indexed block that had a log or ended a chunk, for reorg detection.
log_cursors = sa.Table(
    "log_cursors",
    metadata,
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("next_block", sa.BigInteger, nullable=False),  # first block not indexed yet
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

log_blocks = sa.Table(
    "log_blocks",
    metadata,
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("block_number", sa.BigInteger, primary_key=True),
    sa.Column("block_hash", sa.String(66), nullable=False),
)
