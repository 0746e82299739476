"""The workspace folder (``./.custody`` or ``$CUSTODY_HOME``) and the chain it remembers.

Layout::

    .custody/
      custody.db          deployment registry, vaults, proposals, signatures (SQLite; or $CUSTODY_DB)
      chain.json          the local Anvil this workspace runs: pid, port, chain id, state file
      chain-port          the port `chain up` uses for this workspace, chosen once, so a saved --rpc stays valid
      anvil-state.json    Anvil's state, dumped on `custody chain down` and loaded on `chain up`
      anvil.log           Anvil's output
      keystores/          v3 keystores created by `custody key new|import`
      audit/              the audit ledger's Ed25519 key (ledger-ed25519.pem, 0600; entries live in the database)
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from custody.chain.anvil import AnvilProcess, free_port, pid_is_anvil, port_is_free, rpc_call, stop_pid
from custody.chain.connection import Chain, connect
from custody.exceptions import AnvilError, ChainNotRunning, WorkspaceError
from custody.store import Store

HOME_ENV = "CUSTODY_HOME"
DB_ENV = "CUSTODY_DB"
RPC_ENV = "CUSTODY_RPC"
STABLE_PORTS = range(20_000, 32_000)  # below the ephemeral range, above the well-known services


@dataclass(frozen=True)
class ChainRecord:
    """A detached local chain started by this workspace."""

    pid: int
    port: int
    chain_id: int
    state_file: str
    log_file: str
    started_at: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Workspace:
    def __init__(self, home: str | os.PathLike[str] | None = None, *, db_url: str | None = None) -> None:
        self.home = Path(home or os.environ.get(HOME_ENV) or ".custody").expanduser().resolve()
        self._db_url = db_url or os.environ.get(DB_ENV)
        self._store: Store | None = None

    # -- paths -------------------------------------------------------------------------------
    @property
    def chain_file(self) -> Path:
        return self.home / "chain.json"

    @property
    def port_file(self) -> Path:
        return self.home / "chain-port"

    def stable_port(self) -> int:
        """The port this workspace's chain always uses, chosen at the first `chain up`: derived from the
        workspace path, below Linux's ephemeral range (32768+), where outgoing connections would take it."""
        try:
            return int(self.port_file.read_text().strip())
        except FileNotFoundError:
            pass
        except ValueError as exc:
            raise WorkspaceError(f"{self.port_file} is corrupt; delete it and run `custody chain up`") from exc
        start = STABLE_PORTS.start + int(hashlib.sha256(str(self.home).encode()).hexdigest(), 16) % len(STABLE_PORTS)
        for offset in range(64):
            candidate = STABLE_PORTS.start + (start - STABLE_PORTS.start + offset) % len(STABLE_PORTS)
            if port_is_free(candidate):
                return candidate
        return free_port()

    @property
    def state_file(self) -> Path:
        return self.home / "anvil-state.json"

    @property
    def log_file(self) -> Path:
        return self.home / "anvil.log"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystores"

    @property
    def db_url(self) -> str:
        return self._db_url or f"sqlite:///{self.home / 'custody.db'}"

    def ensure(self) -> Workspace:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"cannot create the workspace folder {self.home}: {exc.strerror}") from exc
        return self

    @property
    def store(self) -> Store:
        if self._store is None:
            self.ensure()
            self._store = Store(self.db_url, ledger_key_dir=self.home / "audit")  # CT-style signed heads
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the workspace's local chain ---------------------------------------------------------
    def chain_record(self) -> ChainRecord | None:
        """The recorded chain if its process is alive and answering; stale records are removed."""
        if not self.chain_file.exists():
            return None
        try:
            record = ChainRecord(**json.loads(self.chain_file.read_text()))
        except (ValueError, TypeError) as exc:
            raise WorkspaceError(f"{self.chain_file} is corrupt; delete it and run `custody chain up`") from exc
        if pid_is_anvil(record.pid):
            try:
                rpc_call(record.url, "eth_chainId", timeout=2.0)
                return record
            except (OSError, ValueError):
                pass
        self.chain_file.unlink(missing_ok=True)
        return None

    def chain_up(self, *, port: int | None = None, chain_id: int = 31337) -> tuple[ChainRecord, bool]:
        """Start (or find) this workspace's detached Anvil; returns (record, started_now)."""
        existing = self.chain_record()
        if existing is not None:
            return existing, False
        self.ensure()
        port = port or self.stable_port()
        if not _port_frees_up(port):
            raise AnvilError(
                f"port {port}, which workspace {self.home} keeps for its chain, is in use by another program",
                hint="stop that program, or choose another port once with `custody chain up --port N`",
            )
        process = AnvilProcess(port=port, chain_id=chain_id, state_file=self.state_file, log_file=self.log_file)
        process.start(detach=True)
        self.port_file.write_text(f"{process.port}\n")
        assert process.pid is not None and process.port is not None
        record = ChainRecord(
            pid=process.pid,
            port=process.port,
            chain_id=chain_id,
            state_file=str(self.state_file),
            log_file=str(self.log_file),
            started_at=time.time(),
        )
        tmp = self.chain_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record), indent=2))
        tmp.replace(self.chain_file)
        return record, True

    def chain_down(self) -> ChainRecord | None:
        """Stop the workspace's Anvil (its state is dumped to the state file first)."""
        record = self.chain_record()
        if record is None:
            return None
        stop_pid(record.pid)
        self.chain_file.unlink(missing_ok=True)
        return record

    def connect(self, rpc: str | None = None, *, autostart: bool = True) -> tuple[Chain, bool]:
        """Connect to ``rpc`` / ``$CUSTODY_RPC``, else this workspace's Anvil (started if needed).

        Returns (chain, started_now).
        """
        url = rpc or os.environ.get(RPC_ENV)
        if url:
            return connect(url), False
        record = self.chain_record()
        started = False
        if record is None:
            if not autostart:
                raise ChainNotRunning(
                    f"no local chain is running for workspace {self.home}",
                    hint="run `custody chain up` or pass --rpc URL",
                )
            record, started = self.chain_up()
        return connect(record.url, expected_chain_id=record.chain_id), started


#: how long `chain up` waits for its port: the connections of a chain stopped a moment ago (a client's
#: pooled keep-alive socket leaves the server side in FIN-WAIT-2) keep the port busy briefly
PORT_RELEASE_SECONDS = 5.0


def _port_frees_up(port: int) -> bool:
    deadline = time.monotonic() + PORT_RELEASE_SECONDS
    while not port_is_free(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True
