"""The workspace database keeps what it acknowledged: settings read back at run time, and a power cut.

* every pooled connection runs with the promised settings (SQLite: WAL + ``synchronous=FULL``;
  PostgreSQL: ``fsync``, ``synchronous_commit``, ``full_page_writes`` on), and a database that would
  lose commits is refused with the setting named;
* a power-loss test that goes beyond killing the client: an LD_PRELOAD shim (tests/native/powerloss.c)
  keeps, per file, only the content some fsync made durable. A ledger writer is killed mid-stream,
  the files are cut back to their last synced content, and every acknowledged entry must still be
  there. A control writer with ``synchronous=OFF`` loses acknowledged rows under the same cut, so the
  simulation does catch a database that only writes to the page cache.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from custody.audit.integrity import check_rows
from custody.audit.ledger import Ledger
from custody.exceptions import WorkspaceError
from custody.harness.synthetic import synthetic_item
from custody.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHIM_SOURCE = ROOT / "tests" / "native" / "powerloss.c"
EXPECTED = {
    "sqlite": {"journal_mode": "wal", "synchronous": "FULL"},
    "postgresql": {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"},
}


def test_every_connection_runs_with_the_promised_durability(ledger_store: Store):
    from custody.durability import settings

    assert ledger_store.durability == EXPECTED[ledger_store.dialect]
    # each new pooled connection gets the settings (the SQLite PRAGMAs are per connection)
    with ledger_store.connect() as first, ledger_store.connect() as second, ledger_store.connect() as third:
        assert [settings(c) for c in (first, second, third)] == [EXPECTED[ledger_store.dialect]] * 3
    with ledger_store.begin() as conn:  # and inside a write transaction
        assert settings(conn) == EXPECTED[ledger_store.dialect]


def test_a_postgresql_session_without_synchronous_commit_is_refused(postgres):
    url = postgres.fresh_schema_url() + "%20-csynchronous_commit%3Doff"
    with pytest.raises(WorkspaceError, match=r"would lose acknowledged commits .*synchronous_commit=off \(needs"):
        Store(url)


def _shim(tmp_path: Path) -> Path:
    out = tmp_path / "powerloss.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(out), str(SHIM_SOURCE), "-ldl"], check=True)
    return out


def _mark_durable(folder: Path) -> None:
    """The starting state counts as synced (it was written and closed before the writer started)."""
    for path in folder.iterdir():
        shutil.copyfile(path, path.with_name(path.name + ".durable"))


def _power_cut(folder: Path) -> list[str]:
    """Every file back to its last fsynced content; files never synced disappear. Returns the synced files."""
    synced = sorted(p.name[: -len(".durable")] for p in folder.glob("*.durable"))
    for path in list(folder.iterdir()):
        if path.name.endswith(".durable") or path.name.endswith(".tmp"):
            continue
        durable = path.with_name(path.name + ".durable")
        if durable.exists():
            os.replace(durable, path)
        else:
            path.unlink()
    for leftover in folder.glob("*.durable*"):
        leftover.unlink()
    return synced


def _run_and_kill(command: list[str], folder: Path, shim: Path, acks: int) -> list[int]:
    env = {**os.environ, "LD_PRELOAD": str(shim), "POWERLOSS_DIR": str(folder), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    acknowledged: list[int] = []
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for line in proc.stdout:
            if line.startswith("ack"):
                acknowledged.append(int(line.split()[1]))
                if len(acknowledged) == acks:
                    break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()  # type: ignore[union-attr]
    assert len(acknowledged) == acks
    return acknowledged


def test_power_loss_keeps_every_acknowledged_ledger_entry(tmp_path: Path):
    shim, folder = _shim(tmp_path), tmp_path / "data"
    folder.mkdir()
    url = f"sqlite:///{folder / 'ledger.db'}"
    store = Store(url)
    Ledger(store).state()
    store.close()
    _mark_durable(folder)
    acknowledged = _run_and_kill([sys.executable, "-m", "tests.audit_writer", url, "100000"], folder, shim, 300)
    synced = _power_cut(folder)
    ledger = Ledger(Store(url))
    size = ledger.size
    lost = set(acknowledged) - set(range(size))
    assert not lost, f"{len(lost)} acknowledged entries lost in the power cut (ledger size {size})"
    result = check_rows(ledger.rows(), ledger.heads(), log_id=ledger.state().log_id)
    assert result.ok, result.problems[:3]
    assert all(ledger.entry(seq).payload == synthetic_item(seq)["payload"] for seq in acknowledged[-5:])
    ledger.store.close()
    assert "ledger.db-wal" in synced  # the commits were made durable by fsyncs of the WAL, which the shim saw


CONTROL_WRITER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=OFF")
db.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY)")
print("ready", flush=True)
n = 0
while True:
    db.execute("BEGIN"); db.execute("INSERT INTO t VALUES (?)", (n,)); db.execute("COMMIT")
    print(f"ack {n}", flush=True)
    n += 1
"""


def test_control_synchronous_off_loses_acknowledged_rows_under_the_same_cut(tmp_path: Path):
    import sqlite3

    shim, folder = _shim(tmp_path), tmp_path / "data"
    folder.mkdir()
    db = folder / "control.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
    _mark_durable(folder)
    acknowledged = _run_and_kill([sys.executable, "-c", CONTROL_WRITER, str(db)], folder, shim, 300)
    _power_cut(folder)
    with sqlite3.connect(db) as conn:
        kept = {n for (n,) in conn.execute("SELECT n FROM t")}
    assert len(set(acknowledged) - kept) > 0  # acknowledged, then lost: what synchronous=FULL prevents
