"""The attest domain's tables: EAS badges this workspace issued and the anchored off-chain batches."""

from __future__ import annotations

import sqlalchemy as sa

from custody.store.core import metadata

# -- attestation badges (EAS): what this workspace issued, on chain or off chain in anchored batches -----
badges = sa.Table(
    "badges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # issue order
    sa.Column("uid", sa.String(66), nullable=False, unique=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),  # onchain | offchain
    sa.Column("vault", sa.String(42)),
    sa.Column("attester", sa.String(42), nullable=False),
    sa.Column("recipient", sa.String(42), nullable=False),
    sa.Column("ref_uid", sa.String(66), nullable=False),
    sa.Column("reference", sa.String(66)),  # safeTxHash, bar id, report hash: what the badge is about
    sa.Column("signer", sa.String(42)),  # approvals: the owner who approved
    sa.Column("tx_hash", sa.String(66)),  # the attest transaction (on chain)
    sa.Column("batch_root", sa.String(66)),  # off chain: the anchored Merkle root
    sa.Column("document", sa.Text),  # off chain: the signed attestation + proof (JSON)
    sa.Column("revoked_tx", sa.String(66)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_badges_reference", badges.c.chain_id, badges.c.step, badges.c.reference)

attest_batches = sa.Table(
    "attest_batches",
    metadata,
    sa.Column("root", sa.String(66), primary_key=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("step", sa.String(32), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("anchor_tx", sa.String(66)),
    sa.Column("anchor_block", sa.BigInteger),
    sa.Column("anchor_time", sa.BigInteger),
    sa.Column("anchor_gas", sa.BigInteger),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
