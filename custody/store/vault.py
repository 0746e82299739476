"""The vault domain's tables: vault records, proposals and their signatures, timelock operations,
emergency exit requests and the journal of transactions in flight."""

from __future__ import annotations

import sqlalchemy as sa

from custody.store.core import metadata

vaults = sa.Table(
    "vaults",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("risk_class", sa.String(16), nullable=False),
    sa.Column("safe", sa.String(42), nullable=False),
    sa.Column("timelock", sa.String(42), nullable=False),
    sa.Column("guard", sa.String(42)),
    sa.Column("exit_module", sa.String(42)),
    sa.Column("policy_path", sa.Text, nullable=False),
    sa.Column("policy_hash", sa.String(66), nullable=False),
    sa.Column("policy_source", sa.Text, nullable=False),
    sa.Column("created_tx", sa.String(66), nullable=False),
    sa.Column("created_block", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("chain_id", "name", name="uq_vault_name"),
    sa.UniqueConstraint("chain_id", "safe", name="uq_vault_safe"),
)

proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("vault_id", sa.Integer, sa.ForeignKey("vaults.id"), nullable=False),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("safe", sa.String(42), nullable=False),
    sa.Column("safe_tx_hash", sa.String(66), nullable=False, unique=True),
    sa.Column("to", sa.String(42), nullable=False),
    sa.Column("value", sa.Numeric(78, 0), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("operation", sa.SmallInteger, nullable=False),
    sa.Column("safe_tx_gas", sa.Numeric(78, 0), nullable=False),
    sa.Column("base_gas", sa.Numeric(78, 0), nullable=False),
    sa.Column("gas_price", sa.Numeric(78, 0), nullable=False),
    sa.Column("gas_token", sa.String(42), nullable=False),
    sa.Column("refund_receiver", sa.String(42), nullable=False),
    sa.Column("nonce", sa.BigInteger, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("proposer", sa.String(128), nullable=False, default=""),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("exec_tx_hash", sa.String(66)),
    sa.Column("exec_raw_tx", sa.Text),
    sa.Column("exec_block", sa.BigInteger),
    sa.Column("exec_gas_used", sa.BigInteger),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

signatures = sa.Table(
    "signatures",
    metadata,
    sa.Column("proposal_id", sa.Integer, sa.ForeignKey("proposals.id"), primary_key=True),
    sa.Column("signer", sa.String(42), primary_key=True),
    sa.Column("signature", sa.String(132), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
timelock_ops = sa.Table(
    "timelock_ops",
    metadata,
    sa.Column("op_id", sa.String(66), primary_key=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("vault_id", sa.Integer, sa.ForeignKey("vaults.id"), nullable=False),
    sa.Column("proposal_id", sa.Integer, sa.ForeignKey("proposals.id"), nullable=False),
    sa.Column("cancel_proposal_id", sa.Integer, sa.ForeignKey("proposals.id")),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("calls", sa.Text, nullable=False),  # JSON: [{"target", "value", "payload", "description"}]
    sa.Column("predecessor", sa.String(66), nullable=False),
    sa.Column("salt", sa.String(66), nullable=False),
    sa.Column("delay", sa.BigInteger, nullable=False),
    sa.Column("new_guard", sa.String(42)),
    sa.Column("policy_path", sa.Text),
    sa.Column("policy_source", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),  # proposed | scheduled | executed | cancelled
    sa.Column("ready_at", sa.BigInteger),
    sa.Column("executed_tx", sa.String(66)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


# -- emergency exit requests (ExitModule), signatures collected across calls ----------------------
exit_requests = sa.Table(
    "exit_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("vault_id", sa.Integer, sa.ForeignKey("vaults.id"), nullable=False),
    sa.Column("module", sa.String(42), nullable=False),
    sa.Column("nonce", sa.BigInteger, nullable=False),
    sa.Column("custodian", sa.String(42), nullable=False),
    sa.Column("deadline", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(66), nullable=False, unique=True),
    sa.Column("state", sa.String(16), nullable=False),  # collecting | initiated | cancelled | finalized
    sa.Column("initiate_tx", sa.String(66)),
    sa.Column("finalize_tx", sa.String(66)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

exit_signatures = sa.Table(
    "exit_signatures",
    metadata,
    sa.Column("request_id", sa.Integer, sa.ForeignKey("exit_requests.id"), primary_key=True),
    sa.Column("signer", sa.String(42), primary_key=True),
    sa.Column("signature", sa.String(132), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


# -- transactions in flight: the signed bytes are journaled before broadcast, so an interrupted send
# resumes by re-sending exactly those bytes (exit initiate/finalize, timelock completion; proposals
# journal theirs in ``proposals.exec_raw_tx``) -------------------------------------------------------
tx_journal = sa.Table(
    "tx_journal",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("intent", sa.String(200), nullable=False),  # what it is for, e.g. exit-initiate:<digest>
    sa.Column("sender", sa.String(42), nullable=False),
    sa.Column("nonce", sa.BigInteger, nullable=False),
    sa.Column("tx_hash", sa.String(66), nullable=False, unique=True),
    sa.Column("raw_tx", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # signed | mined | reverted | dropped
    sa.Column("block_number", sa.BigInteger),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
