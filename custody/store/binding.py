"""The workspace's chain identity (custody/binding.py): genesis hash per chain id and anchored blocks."""

from __future__ import annotations

import sqlalchemy as sa

from custody.store.core import metadata

# -- the chain each chain id of this workspace means: its genesis hash and the hashes of blocks holding
# recorded deployments/vaults (custody/binding.py); checked before any command writes -----------------
chain_bindings = sa.Table(
    "chain_bindings",
    metadata,
    sa.Column("chain_id", sa.BigInteger, primary_key=True),
    sa.Column("genesis_hash", sa.String(66), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

chain_anchors = sa.Table(
    "chain_anchors",
    metadata,
    sa.Column("chain_id", sa.BigInteger, primary_key=True),
    sa.Column("block_number", sa.BigInteger, primary_key=True),
    sa.Column("block_hash", sa.String(66), nullable=False),
)
