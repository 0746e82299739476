"""Local Anvil chains: start the real binary on a free loopback port, wait until it answers, stop it
cleanly (state dumped on SIGTERM), never leave it orphaned.

Two lifetimes:

* **attached** (``AnvilProcess(...)`` as a context manager): the chain dies with us — on normal
  exit, exceptions, Ctrl-C, SIGTERM, and even SIGKILL of the parent (``PR_SET_PDEATHSIG``).
* **detached** (``start(detach=True)``, used by ``custody chain up``): a daemon in its own session
  that survives the CLI call; its pid/port/state file are recorded by the workspace and
  ``custody chain down`` stops it.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from custody import _paths
from custody.exceptions import AnvilError

DEFAULT_CHAIN_ID = 31337
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
_PR_SET_PDEATHSIG = 1


def find_anvil() -> Path:
    """The Anvil binary: ``$CUSTODY_ANVIL``, the pinned npm package, or ``anvil`` on PATH."""
    override = os.environ.get("CUSTODY_ANVIL")
    candidates = [Path(override)] if override else []
    candidates.append(_paths.foundry_binary("anvil"))
    on_path = shutil.which("anvil")
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AnvilError(
        "the anvil binary was not found (looked at $CUSTODY_ANVIL, "
        "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil and PATH)",
        hint="run `npm ci` in the repository root, or set CUSTODY_ANVIL",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Can a server listen on ``port``? (SO_REUSEADDR, as Anvil binds: connections of a just-stopped chain
    lingering in TIME_WAIT do not make the port busy, another program listening there does.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def rpc_call(url: str, method: str, params: Sequence[Any] = (), timeout: float = 2.0) -> Any:
    """One raw JSON-RPC call with a hard timeout (no retries); raises OSError/ValueError."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.loads(response.read())
    if "error" in payload:
        raise ValueError(payload["error"])
    return payload["result"]


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: die with the parent, whatever kills it.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class AnvilProcess:
    """One Anvil process on ``127.0.0.1``."""

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int = DEFAULT_CHAIN_ID,
        state_file: Path | None = None,
        fork_url: str | None = None,
        fork_block: int | None = None,
        extra_args: Sequence[str] = (),
        log_file: Path | None = None,
        binary: Path | None = None,
    ) -> None:
        self.binary = binary or find_anvil()
        self.port = port
        self.chain_id = chain_id
        self.state_file = state_file
        self.fork_url = fork_url
        self.fork_block = fork_block
        self.extra_args = list(extra_args)
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil has not been started")
        return f"http://127.0.0.1:{self.port}"

    def _command(self, port: int) -> list[str]:
        cmd = [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--chain-id",
            str(self.chain_id),
            "--mnemonic",
            DEFAULT_MNEMONIC,
            "--accounts",
            "10",
            "--silent",
        ]
        if self.state_file is not None:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            cmd += ["--state", str(self.state_file)]
        if self.fork_url:
            cmd += ["--fork-url", self.fork_url]
            if self.fork_block is not None:
                cmd += ["--fork-block-number", str(self.fork_block)]
        return cmd + self.extra_args

    def start(self, *, detach: bool = False, timeout: float = 15.0) -> AnvilProcess:
        """Start and wait until ``eth_chainId`` answers; retries on a lost free-port race."""
        fixed_port = self.port
        if fixed_port is not None and not port_is_free(fixed_port):
            raise AnvilError(f"port {fixed_port} on 127.0.0.1 is already in use")
        last_error = ""
        for _attempt in range(1 if fixed_port else 3):
            self.port = fixed_port or free_port()
            log = open(self.log_file, "ab") if self.log_file else None
            try:
                self.process = subprocess.Popen(
                    self._command(self.port),
                    stdin=subprocess.DEVNULL,
                    stdout=log or subprocess.DEVNULL,
                    stderr=log or subprocess.PIPE,
                    start_new_session=detach,
                    preexec_fn=None if detach else _set_pdeathsig,
                )
            except OSError as exc:
                raise AnvilError(f"cannot start anvil ({self.binary}): {exc.strerror}") from exc
            finally:
                if log:
                    log.close()
            self.pid = self.process.pid
            try:
                self._wait_ready(timeout)
                self._restore_clock()
                return self
            except AnvilError as exc:
                last_error = str(exc)
                self.stop()
        self.port = fixed_port
        raise AnvilError(f"anvil did not come up: {last_error}")

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                err = b""
                if self.process.stderr is not None:
                    err = self.process.stderr.read() or b""
                tail = err.decode(errors="replace").strip().splitlines()[-3:]
                raise AnvilError(f"anvil exited with code {code}: {' / '.join(tail) or 'no output'}")
            try:
                answer = int(rpc_call(self.url, "eth_chainId", timeout=0.5), 16)
            except (OSError, ValueError):
                time.sleep(0.03)
                continue
            if answer != self.chain_id:
                raise AnvilError(f"port {self.port} answers with chain id {answer}, not our anvil")
            if self.process.poll() is not None:
                raise AnvilError(f"port {self.port} answers, but our anvil exited (another process holds the port)")
            return
        raise AnvilError(f"anvil on port {self.port} did not answer within {timeout:.0f}s")

    def _restore_clock(self) -> None:
        """Anvil loads a saved state but restarts its clock from the wall clock: when the saved chain had
        moved ahead of it (tests and drills fast-forward), new blocks would be older than the last one.
        Set the clock to just after the latest block, so time on a restored chain only moves forward."""
        if self.state_file is None or self.fork_url:
            return
        latest = int(rpc_call(self.url, "eth_getBlockByNumber", ["latest", False], timeout=2.0)["timestamp"], 16)
        if latest >= int(time.time()):
            rpc_call(self.url, "evm_setTime", [latest + 1], timeout=2.0)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (Anvil dumps its state), then SIGKILL if it does not exit in time."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(5)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None
        elif self.pid is not None:
            stop_pid(self.pid, timeout)
        self.pid = None

    def __enter__(self) -> AnvilProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def pid_is_anvil(pid: int) -> bool:
    """True when ``pid`` is alive and is an anvil process (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if not cmdline:
        return False
    exe = cmdline.split(b"\0", 1)[0]
    return os.path.basename(exe) == b"anvil"


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """Stop a detached anvil by pid; returns False when it was not running."""
    if not pid_is_anvil(pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # An exiting process stops looking like anvil (its command line empties) before it closes its sockets:
        # wait until it is gone or a zombie, so that its port is free when this returns.
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            _reap(pid)
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)
    return True


def _is_zombie(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status.rsplit(")", 1)[-1].split()[0] == "Z"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
