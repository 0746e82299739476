"""The chain layer's RPC policy in one place: per-request timeouts, which calls are retried, and how
failures become exceptions.

* **Bounded waits.** Every HTTP request carries a timeout (connect and read); no call can hang.
  Waiting for a receipt is a loop of such requests with its own deadline (``receipt_timeout``).
* **Retries only where idempotent.** Reads (``eth_call``, ``eth_getBalance``, receipts, …) and
  ``eth_sendRawTransaction`` — re-sending the *same signed bytes* cannot create a second transaction;
  the node answers "already known" or, once mined, "nonce too low" (see
  :func:`custody.chain.transactions.send_raw`) — get ``retries`` more attempts after a transport
  failure (refused, reset, timed out, HTTP 429/5xx) or a transient JSON-RPC error (``-32005`` limit
  exceeded, ``-32603`` internal error that is not a revert), with exponential backoff. Anything else
  (``evm_mine``, ``evm_increaseTime``, ``anvil_*``, snapshots) is sent exactly once.
* **Translated once, here.** After the last attempt the failure is raised as
  :class:`~custody.exceptions.RpcUnreachable`, keeping the cause. The worst case of one call is
  ``(retries + 1) × timeout + backoff × (2^retries − 1)``.

Defaults: 10 s per request, 2 retries, 0.25 s backoff, 120 s for a receipt (30 s and 5 ms polling on a
local Anvil). ``$CUSTODY_RPC_TIMEOUT``, ``$CUSTODY_RPC_RETRIES`` and ``$CUSTODY_RECEIPT_TIMEOUT``
override them.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any

import requests
from web3 import HTTPProvider

from custody.exceptions import InputError, RpcUnreachable

log = logging.getLogger("custody.chain.rpc")

# JSON-RPC methods that can be repeated without changing anything (eth_sendRawTransaction: the same
# signed bytes are the same transaction — a node accepts it at most once).
IDEMPOTENT_METHODS = frozenset(
    {
        "eth_chainId",
        "net_version",
        "web3_clientVersion",
        "eth_blockNumber",
        "eth_gasPrice",
        "eth_maxPriorityFeePerGas",
        "eth_feeHistory",
        "eth_getBalance",
        "eth_getCode",
        "eth_getStorageAt",
        "eth_getTransactionCount",
        "eth_getBlockByNumber",
        "eth_getBlockByHash",
        "eth_getTransactionByHash",
        "eth_getTransactionReceipt",
        "eth_getLogs",
        "eth_call",
        "eth_estimateGas",
        "eth_syncing",
        "eth_sendRawTransaction",
    }
)
TRANSIENT_RPC_CODES = frozenset({-32005, -32603})  # limit exceeded / internal error (when not a revert)
RETRY_HTTP_STATUS = frozenset({429, 500, 502, 503, 504})

TIMEOUT_ENV = "CUSTODY_RPC_TIMEOUT"
RETRIES_ENV = "CUSTODY_RPC_RETRIES"
RECEIPT_TIMEOUT_ENV = "CUSTODY_RECEIPT_TIMEOUT"


@dataclass(frozen=True)
class RpcPolicy:
    """How long to wait for the node and how often to try again (see the module docstring)."""

    timeout: float = 10.0  # seconds per HTTP request (connect + read)
    retries: int = 2  # extra attempts for idempotent methods
    backoff: float = 0.25  # seconds before the first retry, doubled for each further one
    receipt_timeout: float = 120.0  # seconds to wait for a sent transaction to be mined
    poll_latency: float = 0.1  # seconds between receipt polls

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.retries < 0 or self.backoff < 0 or self.receipt_timeout <= 0:
            raise InputError(
                f"RPC policy needs timeout > 0, retries >= 0, backoff >= 0, receipt_timeout > 0 (got {self})"
            )

    @classmethod
    def from_env(cls, base: RpcPolicy | None = None) -> RpcPolicy:
        """``base`` (or the defaults) with ``$CUSTODY_RPC_TIMEOUT`` / ``_RETRIES`` / ``$CUSTODY_RECEIPT_TIMEOUT`` applied."""
        policy = base or cls()
        changes: dict[str, Any] = {}
        for env, name, kind in (
            (TIMEOUT_ENV, "timeout", float),
            (RETRIES_ENV, "retries", int),
            (RECEIPT_TIMEOUT_ENV, "receipt_timeout", float),
        ):
            raw = os.environ.get(env)
            if raw:
                try:
                    changes[name] = kind(raw)
                except ValueError as exc:
                    raise InputError(f"${env} must be a number, got {raw!r}") from exc
        return replace(policy, **changes) if changes else policy

    def for_local_chain(self) -> RpcPolicy:
        """A local Anvil mines at once: poll fast, give up on a receipt sooner."""
        return replace(
            self, poll_latency=min(self.poll_latency, 0.005), receipt_timeout=min(self.receipt_timeout, 30.0)
        )

    def attempts(self, methods: list[str]) -> int:
        return 1 + self.retries if methods and all(m in IDEMPOTENT_METHODS for m in methods) else 1

    @property
    def worst_case(self) -> float:
        """The longest one idempotent call can take before RpcUnreachable."""
        return float((self.retries + 1) * self.timeout + self.backoff * (2**self.retries - 1))


def _transient(raw: bytes) -> str | None:
    """The message of a transient JSON-RPC error in a response body (single or batch), else None."""
    if b'"error"' not in raw:
        return None
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    for item in payload if isinstance(payload, list) else [payload]:
        error = item.get("error") if isinstance(item, dict) else None
        if isinstance(error, dict) and error.get("code") in TRANSIENT_RPC_CODES:
            message = str(error.get("message", ""))
            if "revert" not in message.lower():
                return f"{message} (code {error.get('code')})"
    return None


def describe_failure(exc: BaseException) -> str:
    """A short phrase for a transport failure: 'connection refused', 'timed out', 'HTTP 503', …"""
    text = str(exc)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if isinstance(exc, (requests.Timeout, TimeoutError)) or "timed out" in text.lower():
        return "timed out"
    if "RemoteDisconnected" in text or "Connection aborted" in text or "reset by peer" in text.lower():
        return "connection closed without an answer"
    return text.splitlines()[0][:200] if text else type(exc).__name__


class PolicyHTTPProvider(HTTPProvider):
    """web3's HTTP provider with :class:`RpcPolicy` applied to single and batch requests."""

    def __init__(self, url: str, policy: RpcPolicy) -> None:
        super().__init__(url, request_kwargs={"timeout": policy.timeout}, exception_retry_configuration=None)
        self.policy = policy

    def _make_request(self, method: Any, request_data: bytes) -> bytes:
        return self._post([str(method)], request_data)

    def make_batch_request(self, batch_requests: list[tuple[Any, Any]]) -> Any:
        from web3._utils.batching import sort_batch_response_by_response_ids

        request_data = self.encode_batch_rpc_request(batch_requests)
        raw = self._post([str(m) for m, _params in batch_requests], request_data)
        # a batch decodes to a list of responses (decode_rpc_response is typed for a single one)
        response: Any = self.decode_rpc_response(raw)
        if not isinstance(response, list):
            return response  # the node answered the whole batch with one error
        return sort_batch_response_by_response_ids(response)

    def _post(self, methods: list[str], request_data: bytes) -> bytes:
        attempts = self.policy.attempts(methods)
        what = methods[0] if len(methods) == 1 else f"a batch of {len(methods)} calls"
        failure = ""
        cause: BaseException | None = None
        endpoint = self.endpoint_uri
        if endpoint is None:
            raise RpcUnreachable("no RPC endpoint is configured", method=what, attempts=0)
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.policy.backoff * 2 ** (attempt - 1))
                log.info("retrying %s (attempt %d of %d) after: %s", what, attempt + 1, attempts, failure)
            try:
                raw = self._request_session_manager.make_post_request(
                    endpoint, request_data, **self.get_request_kwargs()
                )
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else 0
                if status not in RETRY_HTTP_STATUS:
                    raise RpcUnreachable(
                        f"RPC {self.endpoint_uri} answered HTTP {status} to {what}", url=str(self.endpoint_uri)
                    ) from exc
                failure, cause = describe_failure(exc), exc
                continue
            except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError) as exc:
                failure, cause = describe_failure(exc), exc
                continue
            transient = _transient(raw) if attempts > 1 else None
            if transient is None:
                return raw
            failure, cause = transient, None
        verb = "is unreachable" if cause is not None else "keeps failing"
        raise RpcUnreachable(
            f"RPC {self.endpoint_uri} {verb}: {failure}", url=str(self.endpoint_uri), method=what, attempts=attempts
        ) from cause
