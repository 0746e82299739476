"""The workspace database's core: engine, connections, schema creation. It defines no table.

SQLite runs in WAL mode with ``synchronous=FULL`` and a busy timeout so that two CLI processes can
share one workspace safely; PostgreSQL is opened by URL. Every table of the shared schema registers on
:data:`metadata` from its domain's module (custody/store/*.py, imported by the package ``custody.store``
before any :class:`Store` can be opened), and :class:`Store` creates whatever is missing on open.

Higher layers keep per-store state in a typed :class:`StoreSlot` they declare themselves (the audit
domain: its ledger handle), so this module names none of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from custody.durability import require_durable
from custody.exceptions import WorkspaceError

metadata = sa.MetaData()

_T = TypeVar("_T")


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row an ``INSERT`` just wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise WorkspaceError("the database returned no primary key for the inserted row")
    return int(key[0])


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class StoreSlot(Generic[_T]):
    """A typed place for per-store state owned by a higher layer, declared once by its owner as a module
    constant (``LEDGER: StoreSlot[Ledger] = StoreSlot("audit ledger")``). Each store holds its own value,
    which lives and dies with the store — a registry beside the store would keep a value that refers back
    to its store (a ledger handle does) alive for ever."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"StoreSlot({self.name!r})"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """A handle on the workspace database."""

    def __init__(self, url: str, *, ledger_key_dir: Path | None = None) -> None:
        self.url = url
        self.ledger_key_dir = ledger_key_dir  # a workspace's store: where its ledger's signing key lives
        self._slots: dict[StoreSlot[Any], Any] = {}
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

    def slot(self, slot: StoreSlot[_T], create: Callable[[], _T]) -> _T:
        """This store's value of ``slot``, made by ``create`` the first time it is asked for."""
        if slot not in self._slots:
            self._slots[slot] = create()
        value: _T = self._slots[slot]
        return value

    def close(self) -> None:
        self.engine.dispose()


def redact_url(url: str) -> str:
    """Hide a password in a database URL before it reaches a message or log."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"
