"""The append-only ledger: one writer at a time, entries hashed into an RFC 9162 Merkle log, signed heads.

Appends happen inside a database transaction the caller may share (so a service writes its state
change and the entry recording it atomically): :meth:`Ledger.append` first updates the single
``audit_state`` row — that write takes the writer lock (SQLite's RESERVED lock, waited for up to
``lock_timeout``; PostgreSQL's row lock under ``SET LOCAL lock_timeout``) — then reads the size, the
last leaf hash and the Merkle frontier, inserts the entries and moves the state on. A second writer
therefore always sees the first one's committed entries; it can never reuse a sequence number or
link to a stale head. If the lock cannot be had in time, :class:`LedgerLocked` is raised.

Heads are signed CT-style when the ledger has a ``key_source`` (every workspace ledger: its Ed25519 key):
each append transaction also inserts a signed head of the new size, so entries and the head covering
them commit together — no committed entry is ever outside a signed head, and verification treats an
unsigned tail as tampering (``unsigned_entries``). See docs/ledger-tamper-model.md.
"""

from __future__ import annotations

import os
import secrets
import socket
import time as _time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import IntegrityError, OperationalError

from custody._perf import gc_paused
from custody.audit.entries import FORMAT_VERSION, Entry, EntryKind, canonical_json, utc_time
from custody.audit.keys import LedgerKey, SignedHead, head_message
from custody.audit.merkle import ConsistencyProof, Frontier, InclusionProof, MerkleTree, leaf_hash, leaf_hashes
from custody.audit.schema import audit_entries, audit_heads, audit_refs, audit_state, ensure_tables
from custody.exceptions import AuditError, LedgerLocked
from custody.store import Store, StoreSlot

ZERO_LEAF = bytes(32)


@dataclass
class _Tables:
    """Whether a store's audit tables and state row are known to exist (committed), for every ledger on it."""

    ready: bool = False


_TABLES: StoreSlot[_Tables] = StoreSlot("audit tables")


@dataclass(frozen=True)
class LedgerState:
    log_id: str
    size: int
    last_leaf: bytes
    frontier: Frontier

    @property
    def root(self) -> bytes:
        return self.frontier.root()


class Ledger:
    """The workspace's audit ledger (any :class:`Store`: SQLite or PostgreSQL, same code)."""

    def __init__(
        self, store: Store, *, lock_timeout: float = 10.0, key_source: Callable[[], LedgerKey] | None = None
    ) -> None:
        self.store = store
        self.lock_timeout = lock_timeout
        self.key_source = key_source  # set: a signed head in every append transaction (CT-style)
        self._key: LedgerKey | None = None

    @property
    def signs_every_append(self) -> bool:
        return self.key_source is not None

    def _head_key(self) -> LedgerKey:
        if self._key is None:
            self._key = self.key_source()  # type: ignore[misc]
        return self._key

    def _ready(self, conn: Connection | None = None) -> None:
        """Create the tables and the state row on first use — inside ``conn``'s transaction if given, so a
        service's first append does not need a second connection while it holds the write lock."""
        tables = self.store.slot(_TABLES, _Tables)
        if tables.ready:
            return
        if conn is None:
            with self.store.begin() as own:
                self._create(own)
        elif not self._create(conn):
            return  # created inside a transaction that may still roll back: check again next time
        tables.ready = True

    def ready(self) -> Ledger:
        """Make sure the ledger's tables exist (once per store); readers that query them directly call it."""
        self._ready()
        return self

    @staticmethod
    def _create(conn: Connection) -> bool:
        """Make sure tables and state exist; True if they existed already (committed earlier)."""
        if sa.inspect(conn).has_table("audit_state"):
            if conn.execute(sa.select(audit_state.c.id).where(audit_state.c.id == 1)).first() is not None:
                return True
        else:
            ensure_tables(conn)
        try:
            with conn.begin_nested():
                conn.execute(
                    audit_state.insert().values(
                        id=1, log_id=secrets.token_hex(16), size=0, last_leaf=ZERO_LEAF, frontier=b"", writer=""
                    )
                )
        except IntegrityError:
            pass  # another process initialised it first
        return False

    # -- writing -------------------------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A transaction of its own for appends (the ledger's state moves only if it commits)."""
        with self.store.begin() as conn:
            yield conn

    def _lock(self, conn: Connection) -> LedgerState:
        millis = max(1, int(self.lock_timeout * 1000))
        try:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{millis}ms'")
            elif conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA busy_timeout = {millis}")
            self._ready(conn)
            # This UPDATE is the writer lock: nothing below runs until every other writer has committed.
            conn.execute(
                audit_state.update()
                .where(audit_state.c.id == 1)
                .values(writer=f"{socket.gethostname()}:{os.getpid()}"[:120])
            )
        except OperationalError as exc:
            text = str(exc.orig).lower()
            if "locked" in text or "lock timeout" in text or "busy" in text:
                raise LedgerLocked(
                    f"the audit ledger is locked by another writer (waited {self.lock_timeout:g} s); try again",
                    hint="another custody process is appending; appends are serialised so the log cannot fork",
                ) from exc
            raise
        return self._read_state(conn)

    def _read_state(self, conn: Connection) -> LedgerState:
        row = conn.execute(sa.select(audit_state).where(audit_state.c.id == 1)).mappings().one()
        size = int(row["size"])
        return LedgerState(
            row["log_id"], size, bytes(row["last_leaf"]), Frontier.from_bytes(size, bytes(row["frontier"]))
        )

    def append(
        self,
        conn: Connection,
        kind: EntryKind | str,
        *,
        actor: str,
        vault: str | None = None,
        chain_id: int | None = None,
        refs: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        time: str | None = None,
    ) -> Entry:
        """Append one entry inside ``conn``'s transaction; returns it (with its sequence number)."""
        item = {
            "kind": kind,
            "actor": actor,
            "vault": vault,
            "chain_id": chain_id,
            "refs": refs,
            "payload": payload,
            "time": time,
        }
        return self.append_many(conn, [item])[0]

    def append_many(self, conn: Connection, items: Iterable[Mapping[str, Any]], *, entries: bool = True) -> list[Entry]:
        """Append several entries under one lock, in order (bulk loads, indexer chunks).

        Returns the entries (``entries=False``: an empty list, for bulk callers that do not need them)."""
        state = self._lock(conn)
        frontier, prev = state.frontier, state.last_leaf
        rows: list[tuple[Any, ...]] = []
        refs_rows: list[tuple[Any, ...]] = []
        superseded: list[tuple[int, int]] = []
        out: list[Entry] = []
        now = utc_time()
        with gc_paused():
            for item in items:
                kind = _kind(item["kind"])
                refs = {k: v for k, v in (item.get("refs") or {}).items() if v is not None}
                doc: dict[str, Any] = {
                    "actor": str(item.get("actor") or ""),
                    "chain_id": item.get("chain_id"),
                    "kind": kind,
                    "payload": dict(item.get("payload") or {}),
                    "prev": prev.hex(),
                    "refs": refs,
                    "seq": frontier.size,
                    "time": item.get("time") or now,
                    "v": FORMAT_VERSION,
                    "vault": item.get("vault"),
                }
                blob = canonical_json(doc)
                leaf = leaf_hash(blob)
                frontier.push(leaf)
                prev = leaf
                seq = doc["seq"]
                rows.append((seq, leaf, blob))
                if "tx_hash" in refs or "block" in refs or "safe_tx_hash" in refs:
                    refs_rows.append(_ref_row(doc))
                if kind == "correction" and "supersedes" in refs:
                    superseded.append((int(refs["supersedes"]), seq))
                if entries:
                    out.append(Entry.from_dict(doc))
            if not rows:
                return out
            _insert(conn, "audit_entries", ("seq", "leaf", "entry"), rows)
            if refs_rows:
                _insert(conn, "audit_refs", _REF_COLUMNS, refs_rows)
        for old, new in superseded:
            conn.execute(audit_refs.update().where(audit_refs.c.seq == old).values(superseded_by=new))
        conn.execute(
            audit_state.update()
            .where(audit_state.c.id == 1)
            .values(size=frontier.size, last_leaf=prev, frontier=frontier.to_bytes())
        )
        if self.key_source is not None:  # the head covering these entries commits with them
            key, when, root = self._head_key(), int(_time.time()), frontier.root()
            conn.execute(
                audit_heads.insert().values(
                    log_id=state.log_id,
                    size=frontier.size,
                    root=root,
                    time=when,
                    key_id=key.key_id,
                    signature=key.sign(head_message(state.log_id, frontier.size, root, when)),
                )
            )
        return out

    def record(self, kind: EntryKind | str, **fields: Any) -> Entry:
        """Append one entry in a transaction of its own."""
        with self.writing() as conn:
            return self.append(conn, kind, **fields)

    # -- reading -------------------------------------------------------------------------------------
    def state(self) -> LedgerState:
        self._ready()
        with self.store.connect() as conn:
            return self._read_state(conn)

    @property
    def size(self) -> int:
        return self.state().size

    def rows(
        self, start: int = 0, end: int | None = None, *, batch: int = 50_000
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """(seq, stored leaf, entry bytes) in sequence order, fetched in batches through the DBAPI."""
        self._ready()
        with self.store.connect() as conn:
            raw = _dbapi(conn)
            # PostgreSQL: a server-side cursor, so a million entries stream instead of landing in memory at once
            cursor = raw.cursor(name="audit_rows") if conn.dialect.name == "postgresql" else raw.cursor()
            sql = "SELECT seq, leaf, entry FROM audit_entries WHERE seq >= {p}" + (
                " AND seq < {p}" if end is not None else ""
            )
            sql += " ORDER BY seq"
            marker = "?" if conn.dialect.name == "sqlite" else "%s"
            cursor.execute(sql.format(p=marker), (start,) if end is None else (start, end))
            while True:
                chunk = cursor.fetchmany(batch)
                if not chunk:
                    break
                for seq, leaf, blob in chunk:
                    yield seq, bytes(leaf), bytes(blob)
            cursor.close()

    def entry(self, seq: int) -> Entry:
        self._ready()
        with self.store.connect() as conn:
            blob = conn.execute(sa.select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar()
        if blob is None:
            raise AuditError(f"the ledger has no entry {seq} (size {self.size})")
        return Entry.parse(bytes(blob))

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[Entry]:
        for _seq, _leaf, blob in self.rows(start, end):
            yield Entry.parse(blob)

    def reference(self, seq: int) -> dict[str, Any]:
        """How other records (attestations, reports) cite an entry: log id, sequence number, leaf hash."""
        self._ready()
        with self.store.connect() as conn:
            blob = conn.execute(sa.select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar()
        if blob is None:
            raise AuditError(f"the ledger has no entry {seq} (size {self.size})")
        return {"log_id": self.state().log_id, "seq": seq, "leaf_hash": "0x" + leaf_hash(bytes(blob)).hex()}

    def tree(self, size: int | None = None) -> MerkleTree:
        """The Merkle tree recomputed from the stored entry bytes (not from stored leaf hashes)."""
        return MerkleTree(leaf_hashes(blob for _s, _l, blob in self.rows(0, size)))

    # -- heads and proofs ------------------------------------------------------------------------------
    def sign_head(self, key: LedgerKey, *, at: int | None = None) -> SignedHead:
        """Sign (size, root, time) of the current log with ``key`` and store the head."""
        state = self.state()
        if state.size == 0:
            raise AuditError("the audit ledger is empty; there is no tree head to sign yet")
        when = int(_time.time()) if at is None else at
        root = state.root
        signature = key.sign(head_message(state.log_id, state.size, root, when))
        with self.store.begin() as conn:
            inserted = conn.execute(
                audit_heads.insert().values(
                    log_id=state.log_id, size=state.size, root=root, time=when, key_id=key.key_id, signature=signature
                )
            ).inserted_primary_key
            if inserted is None:
                raise AuditError("the database returned no id for the new tree head")
            head_id = inserted[0]
        return SignedHead(state.log_id, state.size, root, when, key.key_id, signature, head_id)

    def add_heads(self, heads: Iterable[SignedHead]) -> None:
        """Store already-signed heads (bulk; used by imports and generated test ledgers)."""
        self._ready()
        rows = [
            {
                "log_id": h.log_id,
                "size": h.size,
                "root": h.root,
                "time": h.time,
                "key_id": h.key_id,
                "signature": h.signature,
            }
            for h in heads
        ]
        if rows:
            with self.store.begin() as conn:
                conn.execute(audit_heads.insert(), rows)

    def heads(self) -> list[SignedHead]:
        self._ready()
        with self.store.connect() as conn:
            rows = conn.execute(sa.select(audit_heads).order_by(audit_heads.c.size, audit_heads.c.id)).mappings()
            return [_head(r) for r in rows]

    def latest_head(self) -> SignedHead | None:
        self._ready()
        with self.store.connect() as conn:
            row = (
                conn.execute(sa.select(audit_heads).order_by(audit_heads.c.size.desc(), audit_heads.c.id.desc()))
                .mappings()
                .first()
            )
        return None if row is None else _head(row)

    def head_at(self, size: int) -> SignedHead:
        self._ready()
        with self.store.connect() as conn:
            row = (
                conn.execute(sa.select(audit_heads).where(audit_heads.c.size == size).order_by(audit_heads.c.id.desc()))
                .mappings()
                .first()
            )
        if row is None:
            raise AuditError(f"no signed tree head of size {size}; sign one with `custody audit head --sign`")
        return _head(row)

    def inclusion_proof(self, seq: int, size: int | None = None) -> InclusionProof:
        size = self.size if size is None else size
        if not 0 <= seq < size <= self.size:
            raise AuditError(f"entry {seq} is not in a tree of size {size} (the ledger has {self.size} entries)")
        tree = self.tree(size)
        return InclusionProof(seq, size, tree.levels[0][seq], tuple(tree.inclusion_path(seq, size)))

    def consistency_proof(self, first: int, second: int | None = None) -> ConsistencyProof:
        second = self.size if second is None else second
        if not 0 < first <= second <= self.size:
            raise AuditError(
                f"no consistency proof from size {first} to size {second} (the ledger has {self.size} entries)"
            )
        tree = self.tree(second)
        return ConsistencyProof(first, second, tuple(tree.consistency_path(first, second)))


_REF_COLUMNS = (
    "seq",
    "kind",
    "chain_id",
    "safe",
    "tx_hash",
    "block_number",
    "log_index",
    "safe_tx_hash",
    "superseded_by",
)


def _dbapi(conn: Connection) -> DBAPIConnection:
    """The DBAPI connection under ``conn`` (bulk paths bypass SQLAlchemy's per-row processing)."""
    raw = conn.connection.dbapi_connection
    if raw is None:
        raise AuditError("the database connection is closed")
    return raw


def _insert(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Bulk insert through the DBAPI cursor of ``conn`` (same transaction; no per-row SQLAlchemy processing)."""
    marker = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    cursor = _dbapi(conn).cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _kind(value: EntryKind | str) -> str:
    try:
        return EntryKind(value).value
    except ValueError:
        raise AuditError(f"{value!r} is not a ledger entry kind") from None


def _head(row: Mapping[Any, Any]) -> SignedHead:
    return SignedHead(
        log_id=row["log_id"],
        size=int(row["size"]),
        root=bytes(row["root"]),
        time=int(row["time"]),
        key_id=row["key_id"],
        signature=bytes(row["signature"]),
        id=row["id"],
    )


def _ref_row(doc: dict[str, Any]) -> tuple[Any, ...]:
    """A row of ``audit_refs`` (from an entry's dict) in :data:`_REF_COLUMNS` order."""
    refs, payload = doc["refs"], doc["payload"]
    safe = payload.get("safe") or refs.get("safe")
    return (
        doc["seq"],
        doc["kind"],
        doc["chain_id"],
        safe.lower() if isinstance(safe, str) else None,
        refs.get("tx_hash"),
        refs.get("block"),
        refs.get("log_index"),
        refs.get("safe_tx_hash"),
        None,
    )
