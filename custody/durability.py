"""The durability the workspace database promises, read back from live connections.

A committed ledger entry or journaled transaction must survive a power loss, not only a killed
process. That needs, on SQLite, the write-ahead log with ``synchronous=FULL`` (every commit fsyncs the
WAL) and, on PostgreSQL, ``fsync=on``, ``synchronous_commit`` not ``off`` and ``full_page_writes=on``.
:func:`require_durable` reads the settings a connection really runs with (a URL option, a role or
database default, a server config can all change them) and refuses a database that does not keep the
promise, naming every setting that is wrong.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from custody.exceptions import WorkspaceError

SQLITE_SYNCHRONOUS = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}
# setting -> values that keep a commit on disk once it is acknowledged
SQLITE_REQUIRED = {"journal_mode": {"wal"}, "synchronous": {"FULL", "EXTRA"}}
POSTGRES_REQUIRED = {
    "fsync": {"on"},
    "synchronous_commit": {"on", "local", "remote_write", "remote_apply"},
    "full_page_writes": {"on"},
}


def settings(conn: Connection) -> dict[str, str]:
    """The durability settings of this connection (SQLite PRAGMAs / PostgreSQL GUCs), as text."""
    if conn.dialect.name == "sqlite":
        mode = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower()
        sync = str(conn.exec_driver_sql("PRAGMA synchronous").scalar())
        return {"journal_mode": mode, "synchronous": SQLITE_SYNCHRONOUS.get(sync, sync)}
    if conn.dialect.name == "postgresql":
        return {name: str(conn.exec_driver_sql(f"SHOW {name}").scalar()) for name in POSTGRES_REQUIRED}
    return {}


def problems(values: dict[str, str], dialect: str) -> list[str]:
    """One sentence per setting that breaks the promise."""
    required = SQLITE_REQUIRED if dialect == "sqlite" else POSTGRES_REQUIRED if dialect == "postgresql" else {}
    return [
        f"{name}={values.get(name)!s} (needs {' or '.join(sorted(allowed))})"
        for name, allowed in required.items()
        if values.get(name) not in allowed
    ]


def require_durable(conn: Connection, where: str) -> dict[str, str]:
    """The settings of ``conn``, or :class:`WorkspaceError` naming each one that loses commits on a crash."""
    values = settings(conn)
    wrong = problems(values, conn.dialect.name)
    if wrong:
        raise WorkspaceError(
            f"the workspace database {where} would lose acknowledged commits on a crash or power loss: "
            + "; ".join(wrong),
            hint="the ledger and the transaction journal rely on durable commits",
        )
    return values
