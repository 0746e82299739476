"""A loopback JSON-RPC proxy that injects faults on the wire: for RPC-outage drills and fault tests.

It forwards every request to the upstream node unless a programmed :class:`Fault` matches the
request's method (first matching fault with calls left wins):

=================  ==========================================================================
``refuse``         the connection is reset without an answer (nothing reaches the node)
``timeout``        the request is held, unanswered, for ``hang`` seconds (past the client's timeout)
``error``          a JSON-RPC error (``-32603`` internal error by default) instead of forwarding
``drop``           forwarded to the node, then the connection closes without the answer — the
                   node acted (a transaction was received) but the client never heard back
``hold``           held before forwarding until :meth:`Fault.release` (tests: kill a client mid-call)
``hold_response``  forwarded, then the answer is held until :meth:`Fault.release`
=================  ==========================================================================

Every ``eth_sendRawTransaction`` that reaches the node is recorded with its sender, nonce and hash,
so :meth:`FaultProxy.duplicate_nonces` can prove no two *different* transactions were broadcast with
the same nonce (identical re-sends of the same signed bytes are harmless and allowed).
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from eth_utils import keccak

from custody.chain.transactions import raw_sender_nonce

MODES = ("refuse", "timeout", "error", "drop", "hold", "hold_response")


@dataclass
class Fault:
    """One programmed fault: ``mode`` for ``count`` matching requests (None: until cleared)."""

    mode: str
    method: str | None = None  # a JSON-RPC method name; None or "*" matches every request
    count: int | None = 1
    skip: int = 0  # let this many matching requests through before the fault starts
    hang: float = 30.0  # timeout mode: seconds the request is held before the connection closes
    error_code: int = -32603
    error_message: str = "internal error (injected by the fault proxy)"
    when: Callable[[dict[str, Any]], bool] | None = None  # hold_response: only answers this predicate accepts
    matched: int = 0
    injected: int = 0
    _held: threading.Event = field(default_factory=threading.Event, repr=False)
    _release: threading.Event = field(default_factory=threading.Event, repr=False)
    _forward_on_release: bool = field(default=True, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown fault mode {self.mode!r} (known: {', '.join(MODES)})")

    def matches(self, methods: list[str]) -> bool:
        return self.method in (None, "*") or self.method in methods

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.injected >= self.count

    def wait_held(self, timeout: float = 10.0) -> bool:
        """Block until a request is being held by this fault (hold / hold_response)."""
        return self._held.wait(timeout)

    def release(self, *, forward: bool = True) -> None:
        """Let held requests go on: ``forward`` (hold) / answer (hold_response), or drop them."""
        self._forward_on_release = forward
        self._release.set()

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "method": self.method or "*",
            "count": self.count,
            "skip": self.skip,
            "matched": self.matched,
            "injected": self.injected,
        }


@dataclass(frozen=True)
class Broadcast:
    """An eth_sendRawTransaction that reached the node."""

    sender: str
    nonce: int
    tx_hash: str
    at: float


class FaultProxy:
    """``with FaultProxy(upstream_url) as proxy: connect(proxy.url)`` — then program faults."""

    def __init__(self, upstream: str, *, upstream_timeout: float = 120.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the fault proxy forwards to plain http:// URLs, not {upstream!r}")
        self.upstream = upstream
        self._target = (parts.hostname, parts.port or 80, parts.path or "/")
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._stopping = threading.Event()
        self._local = threading.local()
        self.calls: Counter[str] = Counter()
        self.history: list[tuple[str, ...]] = []  # the methods of every request, in arrival order
        self.broadcasts: list[Broadcast] = []
        self.injected: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fault proxy is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # a short poll interval: shutdown() waits for the serving loop to notice (0.5 s by default, per stop)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for fault in self._faults:
                fault.release(forward=False)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start() if self._server is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- programming ----------------------------------------------------------------------------
    def inject(self, mode: str, *, method: str | None = None, count: int | None = 1, **options: Any) -> Fault:
        fault = Fault(mode, method=method, count=count, **options)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault (held requests are dropped)."""
        with self._lock:
            faults, self._faults = self._faults, []
        for fault in faults:
            fault.release(forward=False)

    def _match(self, methods: list[str]) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.exhausted or not fault.matches(methods):
                    continue
                fault.matched += 1
                if fault.matched <= fault.skip:
                    return None
                fault.injected += 1
                self.injected.append({"mode": fault.mode, "methods": methods, "at": time.time()})
                return fault
        return None

    # -- what went over the wire -------------------------------------------------------------------
    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": sum(self.calls.values()), "faults": len(self.injected), "broadcasts": len(self.broadcasts)}

    def duplicate_nonces(self) -> list[dict[str, Any]]:
        """(sender, nonce) pairs for which the node received more than one *different* transaction."""
        seen: dict[tuple[str, int], set[str]] = {}
        with self._lock:
            for b in self.broadcasts:
                seen.setdefault((b.sender, b.nonce), set()).add(b.tx_hash)
        return [{"sender": s, "nonce": n, "tx_hashes": sorted(h)} for (s, n), h in sorted(seen.items()) if len(h) > 1]

    def _record(self, payload: Any) -> list[str]:
        items = payload if isinstance(payload, list) else [payload]
        methods = [str(i.get("method")) for i in items if isinstance(i, dict)]
        with self._lock:
            self.calls.update(methods)
            self.history.append(tuple(methods))
        return methods

    def _record_broadcasts(self, payload: Any) -> None:

        for item in payload if isinstance(payload, list) else [payload]:
            if not isinstance(item, dict) or item.get("method") != "eth_sendRawTransaction":
                continue
            try:
                raw = bytes.fromhex(str(item["params"][0])[2:])
                sender, nonce = raw_sender_nonce(raw)
            except Exception:  # a malformed transaction: the node will refuse it, nothing to count
                continue
            with self._lock:
                self.broadcasts.append(Broadcast(sender, nonce, "0x" + keccak(raw).hex(), time.time()))

    # -- forwarding ----------------------------------------------------------------------------
    def _forward(self, body: bytes) -> tuple[int, bytes]:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        host, port, path = self._target
        for attempt in range(2):  # a pooled upstream connection may have gone stale
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=self.upstream_timeout)
                self._local.conn = conn
            try:
                conn.request("POST", path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                return response.status, response.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def setup(self) -> None:
        super().setup()
        # answers are written as headers + body: without NODELAY, Nagle + delayed ACKs add ~40 ms per call
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *_args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        proxy = self.owner
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        methods = proxy._record(payload)
        fault = proxy._match(methods)
        mode = fault.mode if fault is not None else None
        if mode == "refuse":
            return self._reset()
        if mode == "timeout" and fault is not None:
            proxy._stopping.wait(fault.hang)
            return self._reset()
        if mode == "error" and fault is not None:
            return self._answer(200, _errors(payload, fault.error_code, fault.error_message))
        if mode == "hold" and fault is not None:
            fault._held.set()
            fault._release.wait()
            if not fault._forward_on_release or proxy._stopping.is_set():
                return self._reset()
        proxy._record_broadcasts(payload)
        try:
            status, answer = proxy._forward(body)
        except (OSError, http.client.HTTPException) as exc:
            return self._answer(502, json.dumps({"error": f"upstream unreachable: {exc}"}).encode())
        if mode == "drop":
            return self._reset()
        if mode == "hold_response" and fault is not None and (fault.when is None or fault.when(_decoded(answer))):
            fault._held.set()
            fault._release.wait()
            if not fault._forward_on_release or proxy._stopping.is_set():
                return self._reset()
        self._answer(status, answer)

    def _answer(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True  # the client went away (timed out or was killed)

    def _reset(self) -> None:
        """Close the connection abortively (RST): the client sees a reset, never an answer."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


def _decoded(answer: bytes) -> dict[str, Any]:
    try:
        value = json.loads(answer)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {"batch": value}


def _errors(payload: Any, code: int, message: str) -> bytes:
    def one(item: Any) -> dict[str, Any]:
        ident = item.get("id") if isinstance(item, dict) else None
        return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}

    body = [one(i) for i in payload] if isinstance(payload, list) else one(payload)
    return json.dumps(body).encode()
