"""The deployment registry: every contract this workspace recorded, by chain and name, with its code
hash and (when known) the transaction that created it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custody.store.core import metadata, utcnow

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("chain_id", sa.BigInteger, primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("address", sa.String(42), nullable=False),
    sa.Column("codehash", sa.String(66), nullable=False),
    sa.Column("tx_hash", sa.String(66)),
    sa.Column("block_number", sa.BigInteger),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def record_deployment(
    conn: Connection,
    chain_id: int,
    name: str,
    *,
    address: str,
    codehash: str,
    tx_hash: str | None = None,
    block_number: int | None = None,
) -> None:
    """Insert or refresh one row of the deployment registry (the creating tx is kept when not given)."""
    row = {"address": address, "codehash": codehash, "recorded_at": utcnow()}
    if tx_hash is not None:
        row.update(tx_hash=tx_hash, block_number=block_number)
    where = (deployments.c.chain_id == chain_id) & (deployments.c.name == name)
    if not conn.execute(deployments.update().where(where).values(**row)).rowcount:
        conn.execute(deployments.insert().values(chain_id=chain_id, name=name, **row))
