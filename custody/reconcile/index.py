"""Indexing CollateralToken events into the workspace database, and loading them for reconciliation.

The generic engine (:mod:`custody.chain.logs`) fetches, decodes, keeps the cursor and handles reorgs;
this module only says which events to follow and how a decoded log becomes a row of
``collateral_events`` (its storage format, also what the benchmark generates synthetically).

Amounts are uint256 (a 400 oz bar is 4e20 base units, beyond SQLite's 64-bit integers), so they are
stored as decimal text and summed in Python — exact, never through SQL floats.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custody.chain.logs import DecodedLog, LogIndexer, SyncResult, layouts_from_abi
from custody.contracts import load_artifact
from custody.contracts.deploy import codehash
from custody.exceptions import ReconcileError
from custody.session import Session
from custody.store import Store, deployments

ZERO = "0x0000000000000000000000000000000000000000"

metadata = sa.MetaData()


class EventKind(enum.IntEnum):
    """What a ``collateral_events`` row records (stored as a small integer)."""

    ALLOCATED = 1  # BarAllocated(barId, batch, fineWeight)
    DEALLOCATED = 2  # BarDeallocated(barId, batch, fineWeight)
    BATCH_ALLOCATED = 3  # BatchAllocated(batch, barCount, totalFineWeight)
    BATCH_DEALLOCATED = 4  # BatchDeallocated(batch, barCount, totalFineWeight)
    MINTED = 5  # Minted(to, provenance, amount)
    BURNED = 6  # Burned(from, provenance, amount)
    TRANSFER = 7  # Transfer(from, to, value)


collateral_events = sa.Table(
    "collateral_events",
    metadata,
    sa.Column("chain_id", sa.BigInteger, primary_key=True),
    sa.Column("token", sa.String(42), primary_key=True),  # lowercase
    sa.Column("block_number", sa.BigInteger, primary_key=True),
    sa.Column("log_index", sa.Integer, primary_key=True),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("kind", sa.SmallInteger, nullable=False),
    sa.Column("bar_id", sa.LargeBinary(32)),  # bar events
    sa.Column("batch", sa.LargeBinary(32)),  # bar/batch events: the batch; mint/burn: the provenance cited
    sa.Column("account", sa.String(42)),  # mint: to; burn: from; transfer: from
    sa.Column("counterparty", sa.String(42)),  # transfer: to
    sa.Column("amount", sa.String(78), nullable=False),  # decimal: fine weight, batch total, token amount
    sa.Column("bar_count", sa.Integer),  # batch events
)

EVENTS = ("BarAllocated", "BarDeallocated", "BatchAllocated", "BatchDeallocated", "Minted", "Burned", "Transfer")


def ensure_tables(store: Store) -> None:
    metadata.create_all(store.engine, checkfirst=True)


def layouts() -> dict:
    return layouts_from_abi(load_artifact("CollateralToken").abi, EVENTS)


def stream_name(chain_id: int, token: str) -> str:
    return f"collateral:{chain_id}:{token.lower()}"


def _row(chain_id: int, log: DecodedLog) -> dict:
    v = log.values
    row = {
        "chain_id": chain_id, "token": log.address, "block_number": log.block_number, "log_index": log.log_index,
        "tx_hash": log.tx_hash, "bar_id": None, "batch": None, "account": None, "counterparty": None, "bar_count": None,
    }  # fmt: skip
    name = log.event
    if name in ("BarAllocated", "BarDeallocated"):
        kind = EventKind.ALLOCATED if name == "BarAllocated" else EventKind.DEALLOCATED
        row.update(kind=kind, bar_id=v[0], batch=v[1], amount=str(v[2]))
    elif name in ("BatchAllocated", "BatchDeallocated"):
        kind = EventKind.BATCH_ALLOCATED if name == "BatchAllocated" else EventKind.BATCH_DEALLOCATED
        row.update(kind=kind, batch=v[0], bar_count=v[1], amount=str(v[2]))
    elif name in ("Minted", "Burned"):
        row.update(kind=EventKind.MINTED if name == "Minted" else EventKind.BURNED, account=v[0], batch=v[1])
        row["amount"] = str(v[2])
    else:  # Transfer
        row.update(kind=EventKind.TRANSFER, account=v[0], counterparty=v[1], amount=str(v[2]))
    return row


def indexer(session: Session, token: str, *, chunk_blocks: int = 2_000) -> LogIndexer:
    ensure_tables(session.store)
    if codehash(session.chain, token) is None:
        raise ReconcileError(f"no contract at {token} on chain {session.chain_id}; is this the token's chain?")
    return LogIndexer(
        chain=session.chain,
        store=session.store,
        stream=stream_name(session.chain_id, token),
        addresses=[token],
        layouts=layouts(),
        start_block=deployment_block(session, token),
        chunk_blocks=chunk_blocks,
    )


def deployment_block(session: Session, token: str) -> int:
    """Where indexing starts: the recorded deployment block, else found by bisecting eth_getCode."""
    with session.store.connect() as conn:
        recorded = conn.execute(
            sa.select(deployments.c.block_number).where(
                deployments.c.chain_id == session.chain_id,
                sa.func.lower(deployments.c.address) == token.lower(),
                deployments.c.block_number.is_not(None),
            )
        ).scalar()
    if recorded is not None:
        return int(recorded)
    chain = session.chain
    low, high = 0, int(chain.rpc("eth_blockNumber"), 16)
    try:
        while low < high:
            mid = (low + high) // 2
            if chain.rpc("eth_getCode", [token, hex(mid)]) in ("0x", "0x0", None):
                low = mid + 1
            else:
                high = mid
    except Exception:  # a node without historical state: index from genesis (slower, still correct)
        return 0
    return low


def sync(session: Session, token: str, *, to_block: int | None = None, chunk_blocks: int = 2_000) -> SyncResult:
    """Bring the token's index up to ``to_block`` (default: the head); resumable and reorg-safe."""
    chain_id = session.chain_id
    token_key = token.lower()

    def sink(conn: Connection, logs: list[DecodedLog]) -> None:
        if logs:
            conn.execute(collateral_events.insert(), [_row(chain_id, log) for log in logs])

    def rollback(conn: Connection, first_invalid: int) -> None:
        conn.execute(
            collateral_events.delete().where(
                collateral_events.c.chain_id == chain_id,
                collateral_events.c.token == token_key,
                collateral_events.c.block_number >= first_invalid,
            )
        )

    return indexer(session, token, chunk_blocks=chunk_blocks).sync(sink, rollback, to_block=to_block)


# -- loading for reconciliation ---------------------------------------------------------------------
@dataclass(frozen=True)
class EventColumns:
    """One group of events, column by column, in chain order (block, log index)."""

    kinds: list[int]
    blocks: list[int]
    log_indexes: list[int]
    keys: list[bytes | None]  # bar id (bar events) or batch (batch events) or provenance (mint/burn)
    batches: list[bytes | None]  # batch of a bar event
    accounts: list[str | None]
    counterparties: list[str | None]
    amounts: list[int]

    def __len__(self) -> int:
        return len(self.kinds)


@dataclass(frozen=True)
class OnchainRecord:
    """Everything the token recorded up to ``at_block``, as loaded from the index."""

    chain_id: int
    token: str
    at_block: int
    bars: EventColumns  # ALLOCATED / DEALLOCATED
    batches: EventColumns  # BATCH_ALLOCATED / BATCH_DEALLOCATED
    supply: EventColumns  # MINTED / BURNED
    transfers: EventColumns  # TRANSFER
    _store: Store | None = field(default=None, repr=False, compare=False)

    def tx_hashes(self, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """(block, log index) → tx hash, for the few events a report cites."""
        wanted = sorted(set(keys))
        if not wanted or self._store is None:
            return {}
        found: dict[tuple[int, int], str] = {}
        c = collateral_events.c
        with self._store.connect() as conn:
            for start in range(0, len(wanted), 400):
                part = wanted[start : start + 400]
                blocks = sorted({b for b, _ in part})
                rows = conn.execute(
                    sa.select(c.block_number, c.log_index, c.tx_hash).where(
                        c.chain_id == self.chain_id, c.token == self.token, c.block_number.in_(blocks)
                    )
                )
                found.update({(int(b), int(i)): h for b, i, h in rows if (int(b), int(i)) in set(part)})
        return found


_GROUPS = {
    "bars": (EventKind.ALLOCATED, EventKind.DEALLOCATED),
    "batches": (EventKind.BATCH_ALLOCATED, EventKind.BATCH_DEALLOCATED),
    "supply": (EventKind.MINTED, EventKind.BURNED),
    "transfers": (EventKind.TRANSFER,),
}
_KEY_COLUMN = {"bars": "bar_id", "batches": "batch", "supply": "batch", "transfers": "bar_id"}


def _blobs(values: tuple | list) -> list[bytes | None]:
    if not values or all(isinstance(v, bytes) for v in values[:1]):
        return list(values)  # SQLite hands BLOBs back as bytes already
    return [bytes(v) if v is not None else None for v in values]  # e.g. memoryview from PostgreSQL


def load_record(
    store: Store, chain_id: int, token: str, at_block: int, *, groups: Iterable[str] = tuple(_GROUPS)
) -> OnchainRecord:
    """Load the indexed events of ``token`` up to ``at_block`` (inclusive), grouped, in chain order."""
    ensure_tables(store)
    token_key = token.lower()
    wanted = set(groups)
    loaded = {}
    with store.connect() as conn:
        for group, kinds in _GROUPS.items():
            if group not in wanted:
                loaded[group] = EventColumns([], [], [], [], [], [], [], [])
                continue
            key_column = _KEY_COLUMN[group]
            second = "batch" if group == "bars" else "NULL"
            sql = (
                f"SELECT kind, block_number, log_index, {key_column}, {second}, account, counterparty, amount "
                "FROM collateral_events WHERE chain_id = :chain AND token = :token AND block_number <= :block "
                f"AND kind IN ({', '.join(str(int(k)) for k in kinds)}) ORDER BY block_number, log_index"
            )
            rows = conn.execute(sa.text(sql), {"chain": chain_id, "token": token_key, "block": at_block}).all()
            columns = list(zip(*rows)) if rows else [[] for _ in range(8)]
            loaded[group] = EventColumns(
                kinds=list(columns[0]),
                blocks=list(columns[1]),
                log_indexes=list(columns[2]),
                keys=_blobs(columns[3]),
                batches=_blobs(columns[4]),
                accounts=list(columns[5]),
                counterparties=list(columns[6]),
                amounts=list(map(int, columns[7])),
            )
    return OnchainRecord(chain_id=chain_id, token=token_key, at_block=at_block, _store=store, **loaded)


def supply_at(store: Store, chain_id: int, token: str, block: int) -> int:
    """Total supply at ``block`` from indexed Transfer events (mints minus burns), exact."""
    transfers = load_record(store, chain_id, token, block, groups=["transfers"]).transfers
    minted = sum(a for a, f in zip(transfers.amounts, transfers.accounts) if f == ZERO)
    burned = sum(a for a, t in zip(transfers.amounts, transfers.counterparties) if t == ZERO)
    return minted - burned


# -- reconciliation runs -----------------------------------------------------------------------------
reconcile_runs = sa.Table(
    "reconcile_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("chain_id", sa.BigInteger, nullable=False),
    sa.Column("token", sa.String(42), nullable=False),  # lowercase
    sa.Column("at_block", sa.BigInteger, nullable=False),
    sa.Column("bars_sha256", sa.String(64), nullable=False),
    sa.Column("bars_source", sa.Text, nullable=False),
    sa.Column("previous_sha256", sa.String(64)),
    sa.Column("since_block", sa.BigInteger),
    sa.Column("supply", sa.String(78), nullable=False),
    sa.Column("verified_backing", sa.String(78), nullable=False),
    sa.Column("findings", sa.Integer, nullable=False),
    sa.Column("critical", sa.Integer, nullable=False),
    sa.Column("backing_short", sa.Boolean, nullable=False),
    sa.Column("summary", sa.Text, nullable=False),  # canonical JSON of the run's summary
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
