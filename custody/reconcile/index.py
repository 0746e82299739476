"""Indexing CollateralToken events into the workspace database, and loading them for reconciliation.

The generic engine (:mod:`custody.chain.logs`) fetches, decodes, keeps the cursor and handles reorgs;
this module only says which events to follow and how a decoded log becomes a row of
``collateral_events`` (its storage format, also what the benchmark generates synthetically).

Amounts are uint256 (a 400 oz bar is 4e20 base units, beyond SQLite's 64-bit integers), so they are
stored as decimal text and summed in Python — exact, never through SQL floats.
"""

from __future__ import annotations

import enum
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPICursor

from custody._perf import gc_paused
from custody.chain.logs import DecodedLog, LogIndexer, SyncResult, layouts_from_abi
from custody.contracts import load_artifact
from custody.contracts.deploy import codehash
from custody.exceptions import ReconcileError
from custody.reconcile.barlist import PackedIds
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
    sa.Column("kind", sa.SmallInteger, primary_key=True),  # in the key: each kind is one contiguous range
    sa.Column("block_number", sa.BigInteger, primary_key=True),
    sa.Column("log_index", sa.Integer, primary_key=True),
    sa.Column("tx_hash", sa.String(66), nullable=False),
    sa.Column("bar_id", sa.LargeBinary(32)),  # bar events
    sa.Column("batch", sa.LargeBinary(32)),  # bar/batch events: the batch; mint/burn: the provenance cited
    sa.Column("account", sa.String(42)),  # mint: to; burn: from; transfer: from
    sa.Column("counterparty", sa.String(42)),  # transfer: to
    sa.Column("amount", sa.String(78), nullable=False),  # decimal: fine weight, batch total, token amount
    sa.Column("bar_count", sa.Integer),  # batch events
    sqlite_with_rowid=False,  # clustered by the key: loading a kind in chain order is one sequential scan
)

EVENTS = ("BarAllocated", "BarDeallocated", "BatchAllocated", "BatchDeallocated", "Minted", "Burned", "Transfer")


def ensure_tables(store: Store) -> None:
    metadata.create_all(store.engine, checkfirst=True)


def layouts() -> dict[str, Any]:
    return layouts_from_abi(load_artifact("CollateralToken").abi, EVENTS)


def stream_name(chain_id: int, token: str) -> str:
    return f"collateral:{chain_id}:{token.lower()}"


ROW_COLUMNS = (
    "chain_id",
    "token",
    "kind",
    "block_number",
    "log_index",
    "tx_hash",
    "bar_id",
    "batch",
    "account",
    "counterparty",
    "amount",
    "bar_count",
)
_KIND = {
    "BarAllocated": EventKind.ALLOCATED,
    "BarDeallocated": EventKind.DEALLOCATED,
    "BatchAllocated": EventKind.BATCH_ALLOCATED,
    "BatchDeallocated": EventKind.BATCH_DEALLOCATED,
    "Minted": EventKind.MINTED,
    "Burned": EventKind.BURNED,
    "Transfer": EventKind.TRANSFER,
}


def _row(chain_id: int, log: DecodedLog) -> tuple[Any, ...]:
    """A decoded log as a ``collateral_events`` row, in :data:`ROW_COLUMNS` order."""
    v = log.values
    kind = _KIND[log.event]
    head = (chain_id, log.address, int(kind), log.block_number, log.log_index, log.tx_hash)
    if kind <= EventKind.DEALLOCATED:  # bar id, batch, weight
        return (*head, v[0], v[1], None, None, str(v[2]), None)
    if kind <= EventKind.BATCH_DEALLOCATED:  # batch, count, total
        return (*head, None, v[0], None, None, str(v[2]), v[1])
    if kind <= EventKind.BURNED:  # account, provenance, amount
        return (*head, None, v[1], v[0], None, str(v[2]), None)
    return (*head, None, None, v[0], v[1], str(v[2]), None)  # Transfer(from, to, value)


def insert_rows(store: Store, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Plain DBAPI executemany (several times faster than Core's for tens of thousands of rows)."""
    style = store.engine.dialect.paramstyle
    mark = "?" if style == "qmark" else ":{}" if style == "named" else "%s"
    marks = ", ".join(mark.format(n) if style == "named" else mark for n in range(len(ROW_COLUMNS)))
    sql = f"INSERT INTO collateral_events ({', '.join(ROW_COLUMNS)}) VALUES ({marks})"
    cursor = conn.connection.cursor()
    try:
        if style == "named":
            cursor.executemany(sql, [{str(n): value for n, value in enumerate(row)} for row in rows])
        else:
            cursor.executemany(sql, rows)
    finally:
        cursor.close()


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
            insert_rows(session.store, conn, [_row(chain_id, log) for log in logs])

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
    """One group of events, column by column, in chain order (block, log index). Columns a group does
    not use are empty.

    Compact, because a token can have a million bar events: kinds, blocks and log indexes are typed arrays,
    the bar ids of the bar group one buffer (:class:`~custody.reconcile.barlist.PackedIds`), and equal amounts
    (bars of the same fine weight) one int object each."""

    kinds: Sequence[int]
    blocks: Sequence[int]
    log_indexes: Sequence[int]
    keys: Sequence[bytes]  # bar id (bar events), batch (batch events), provenance cited (mint/burn)
    accounts: list[str]  # mint: to; burn: from; transfer: from
    counterparties: list[str]  # transfer: to
    amounts: list[int]

    def __len__(self) -> int:
        return len(self.amounts)


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
        wanted = set(keys)
        if not wanted or self._store is None:
            return {}
        found: dict[tuple[int, int], str] = {}
        c = collateral_events.c
        blocks = sorted({b for b, _ in wanted})
        with self._store.connect() as conn:
            for start in range(0, len(blocks), 500):
                rows = conn.execute(
                    sa.select(c.block_number, c.log_index, c.tx_hash).where(
                        c.chain_id == self.chain_id,
                        c.token == self.token,
                        c.block_number.in_(blocks[start : start + 500]),
                    )
                )
                found.update({(int(b), int(i)): h for b, i, h in rows if (int(b), int(i)) in wanted})
        return found


# group → (kinds, the columns it needs: key column, with accounts, with counterparties)
_GROUPS = {
    "bars": ((EventKind.ALLOCATED, EventKind.DEALLOCATED), "bar_id", False, False),
    "batches": ((EventKind.BATCH_ALLOCATED, EventKind.BATCH_DEALLOCATED), "batch", False, False),
    "supply": ((EventKind.MINTED, EventKind.BURNED), "batch", True, False),
    "transfers": ((EventKind.TRANSFER,), None, True, True),
}


def _placeholders(style: str, names: list[str]) -> dict[str, str]:
    if style == "qmark":
        return dict.fromkeys(names, "?")
    if style in ("pyformat", "format"):
        return {n: f"%({n})s" if style == "pyformat" else "%s" for n in names}
    return {n: f":{n}" for n in names}


def _cursor(store: Store, conn: Connection, sql: str, params: dict[str, Any]) -> DBAPICursor:
    """Plain DBAPI cursor (SQLAlchemy's Row objects cost more than the query for a million rows)."""
    style = store.engine.dialect.paramstyle
    marks = _placeholders(style, list(params))
    text = sql.format(**marks)
    args: tuple[Any, ...] | dict[str, Any] = tuple(params.values()) if style in ("qmark", "format") else params
    cursor = conn.connection.cursor()
    cursor.execute(text, args)
    return cursor


FETCH_ROWS = 5_000  # rows held as tuples at a time while a group is loaded into its columns
_SHARED_AMOUNTS = 1 << 16  # distinct amounts kept as one int object each (fine weights repeat; transfers not)


class _Builder:
    """Accumulates one kind's rows, batch by batch, into compact columns."""

    def __init__(self, packed_keys: bool) -> None:
        self.kinds, self.blocks, self.log_indexes = array("b"), array("q"), array("q")
        self.packed: bytearray | None = bytearray() if packed_keys else None
        self.keys: list[bytes] = []
        self.accounts: list[str] = []
        self.counterparties: list[str] = []
        self.amounts: list[int] = []

    def add(
        self, rows: Sequence[tuple[Any, ...]], amounts: dict[str, int], key: bool, account: bool, counterparty: bool
    ) -> None:
        kinds, blocks, logs, keys, accounts, counterparties, texts = zip(*rows)
        self.kinds.extend(kinds)
        self.blocks.extend(blocks)
        self.log_indexes.extend(logs)
        if key:
            blobs = keys if isinstance(keys[0], bytes) else [bytes(v) for v in keys]  # memoryview from some drivers
            if self.packed is not None and all(len(b) == 32 for b in blobs):
                self.packed += b"".join(blobs)
            else:
                if self.packed is not None:  # not all 32 bytes (never for bar ids): back to a plain list
                    self.keys = list(PackedIds(self.packed))
                    self.packed = None
                self.keys += blobs
        if account:
            self.accounts += accounts
        if counterparty:
            self.counterparties += counterparties
        shared = amounts.get
        room = len(amounts) < _SHARED_AMOUNTS
        append = self.amounts.append
        for text in texts:
            value = shared(text)
            if value is None:
                value = int(text)
                if room:
                    amounts[text] = value
                    room = len(amounts) < _SHARED_AMOUNTS
            append(value)

    def columns(self) -> EventColumns:
        keys = PackedIds(self.packed) if self.packed is not None else self.keys
        return EventColumns(
            self.kinds, self.blocks, self.log_indexes, keys, self.accounts, self.counterparties, self.amounts
        )


def _empty() -> EventColumns:
    return EventColumns(array("b"), array("q"), array("q"), [], [], [], [])


def _typed_array(code: str, column: Sequence[int]) -> array[int]:
    """A column as a typed array: the array itself when it is one (every column :class:`_Builder` makes)."""
    return column if isinstance(column, array) else array(code, column)


def _merge(runs: list[EventColumns]) -> EventColumns:
    """Two kinds' runs, each in chain order, merged into one chain-ordered group."""
    runs = [r for r in runs if len(r)]
    if len(runs) < 2:
        return runs[0] if runs else _empty()
    a, b = runs
    blocks = np.concatenate([np.frombuffer(_typed_array("q", r.blocks), dtype=np.int64) for r in (a, b)])
    logs = np.concatenate([np.frombuffer(_typed_array("q", r.log_indexes), dtype=np.int64) for r in (a, b)])
    order = np.lexsort((logs, blocks))
    del blocks, logs
    positions = order.tolist()

    def typed(code: str, x: Sequence[int], y: Sequence[int]) -> array[int]:
        parts = [np.frombuffer(_typed_array(code, column), dtype=code) for column in (x, y)]
        merged = np.concatenate(parts)[order]
        return array(code, merged.tobytes())

    def listed(x: Sequence[Any], y: Sequence[Any]) -> list[Any]:
        both = [*x, *y]
        return list(map(both.__getitem__, positions)) if both else []

    if isinstance(a.keys, PackedIds) and isinstance(b.keys, PackedIds):
        ids = np.concatenate([np.frombuffer(k.buffer, dtype="V32") for k in (a.keys, b.keys)])[order]
        keys: Sequence[bytes] = PackedIds(ids.tobytes())
    else:
        keys = listed(a.keys, b.keys)
    return EventColumns(
        typed("b", a.kinds, b.kinds),
        typed("q", a.blocks, b.blocks),
        typed("q", a.log_indexes, b.log_indexes),
        keys,
        listed(a.accounts, b.accounts),
        listed(a.counterparties, b.counterparties),
        listed(a.amounts, b.amounts),
    )


def load_record(
    store: Store, chain_id: int, token: str, at_block: int, *, groups: Iterable[str] = tuple(_GROUPS)
) -> OnchainRecord:
    """Load the indexed events of ``token`` up to ``at_block`` (inclusive), grouped, in chain order.

    Rows are fetched a batch at a time into compact columns (:class:`EventColumns`): memory holds the
    columns plus one batch of row tuples, never every row at once."""
    ensure_tables(store)
    wanted = set(groups)
    loaded: dict[str, EventColumns] = {}
    amounts: dict[str, int] = {}
    with gc_paused(), store.connect() as conn:
        for group, (kinds, key, with_account, with_counterparty) in _GROUPS.items():
            if group not in wanted:
                loaded[group] = _empty()
                continue
            columns = [
                "kind",
                "block_number",
                "log_index",
                key or "NULL",
                "account" if with_account else "NULL",
                "counterparty" if with_counterparty else "NULL",
                "amount",
            ]
            runs: list[EventColumns] = []
            for kind in kinds:  # one run per kind, each in chain order (the table is clustered that way)
                sql = (
                    f"SELECT {', '.join(columns)} FROM collateral_events WHERE chain_id = {{chain}} AND token = "
                    f"{{token}} AND kind = {int(kind)} AND block_number <= {{block}} ORDER BY block_number, log_index"
                )
                builder = _Builder(packed_keys=group == "bars")
                cursor = _cursor(store, conn, sql, {"chain": chain_id, "token": token.lower(), "block": at_block})
                try:
                    while rows := cursor.fetchmany(FETCH_ROWS):
                        builder.add(rows, amounts, key is not None, with_account, with_counterparty)
                finally:
                    cursor.close()
                runs.append(builder.columns())
            loaded[group] = _merge(runs)
    return OnchainRecord(
        chain_id=chain_id,
        token=token.lower(),
        at_block=at_block,
        bars=loaded["bars"],
        batches=loaded["batches"],
        supply=loaded["supply"],
        transfers=loaded["transfers"],
        _store=store,
    )


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
