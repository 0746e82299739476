"""Out-of-band confirmation (the second channel): confirmers, the keys they hold, open challenges and
recorded confirmations."""

from __future__ import annotations

import sqlalchemy as sa

from custody.store.core import metadata

oob_confirmers = sa.Table(
    "oob_confirmers",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("totp_last_step", sa.BigInteger),  # the last TOTP time step accepted: codes are single-use
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
)

# the signing keys a confirmer holds (``oob enroll NAME --key ADDRESS``): a key that proposed a transfer
# disqualifies its holder from confirming it
oob_confirmer_keys = sa.Table(
    "oob_confirmer_keys",
    metadata,
    sa.Column("name", sa.String(64), sa.ForeignKey("oob_confirmers.name"), primary_key=True),
    sa.Column("address", sa.String(42), primary_key=True),
)

oob_challenges = sa.Table(
    "oob_challenges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("proposal_id", sa.Integer, sa.ForeignKey("proposals.id"), nullable=False),
    sa.Column("safe_tx_hash", sa.String(66), nullable=False),
    sa.Column("confirmer", sa.String(64), sa.ForeignKey("oob_confirmers.name"), nullable=False),
    sa.Column("salt", sa.String(34), nullable=False),
    sa.Column("issued_by", sa.String(128), nullable=False),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("state", sa.String(16), nullable=False),  # open | used | burnt
)

oob_confirmations = sa.Table(
    "oob_confirmations",
    metadata,
    sa.Column("proposal_id", sa.Integer, sa.ForeignKey("proposals.id"), primary_key=True),
    sa.Column("confirmer", sa.String(64), sa.ForeignKey("oob_confirmers.name"), primary_key=True),
    sa.Column("safe_tx_hash", sa.String(66), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),  # totp | code
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
)
