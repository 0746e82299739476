"""The workspace database: one schema, SQLAlchemy Core, SQLite by default or PostgreSQL by URL.

Holds the deployment registry, vault records, proposals and their signatures, log-indexing cursors
(and, as later layers arrive, the audit ledger). The chain stays the source of truth for vault state; these tables record
what we deployed and what is in flight.

SQLite runs in WAL mode with ``synchronous=FULL`` and a busy timeout so that two CLI processes can
share one workspace safely.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from custody.durability import require_durable
from custody.exceptions import WorkspaceError

metadata = sa.MetaData()


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row an ``INSERT`` just wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise WorkspaceError("the database returned no primary key for the inserted row")
    return int(key[0])


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


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

# -- out-of-band confirmation (second channel) ---------------------------------------------------
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


# -- every template text a vault of this workspace was created or changed with, by keccak256 hash --------
# (the guard holds only the hash: verifiers need the text to know which rules — and attesters — applied)
templates = sa.Table(
    "templates",
    metadata,
    sa.Column("template_hash", sa.String(66), primary_key=True),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


def remember_template(conn: Connection, template_hash: str, source: str, path: str) -> None:
    """Keep a template text (idempotent)."""
    exists = conn.execute(
        sa.select(templates.c.template_hash).where(templates.c.template_hash == template_hash)
    ).first()
    if exists is None:
        conn.execute(
            templates.insert().values(template_hash=template_hash, source=source, path=path, recorded_at=utcnow())
        )


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


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """A handle on the workspace database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ledger_key_dir: Path | None = None  # set by the workspace: where the ledger's signing key lives
        try:
            if url.startswith("sqlite"):
                self.engine: Engine = sa.create_engine(url, future=True)
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            else:
                self.engine = sa.create_engine(url, future=True, pool_pre_ping=True)
            metadata.create_all(self.engine)
            with self.engine.connect() as conn:
                self.durability = require_durable(conn, redact_url(url))  # WAL + synchronous=FULL / fsync
        except (OperationalError, SQLAlchemyError) as exc:
            raise WorkspaceError(
                f"cannot open the workspace database {redact_url(url)}: {exc.orig if hasattr(exc, 'orig') else exc}"
            ) from exc

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed on success, rolled back on any exception."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def redact_url(url: str) -> str:
    """Hide a password in a database URL before it reaches a message or log."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"
