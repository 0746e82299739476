"""Connections to a chain: web3 with bounded waits, retries only where idempotent, errors translated once
(the policy itself is :class:`custody.chain.rpc.RpcPolicy`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import requests
from web3 import Web3
from web3.exceptions import Web3Exception

from custody.chain.rpc import PolicyHTTPProvider, RpcPolicy, describe_failure
from custody.exceptions import ChainError, ChainIdMismatch, RpcUnreachable

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0


def _network_error(exc: BaseException) -> bool:
    if isinstance(exc, RpcUnreachable):
        return False  # translated already (by the provider)
    return isinstance(
        exc, (requests.ConnectionError, requests.Timeout, requests.HTTPError, ConnectionError, TimeoutError)
    )


@dataclass
class Chain:
    """A web3 connection plus what we learned about the endpoint."""

    w3: Web3
    url: str
    chain_id: int
    client: str
    poll_latency: float = 0.1
    receipt_timeout: float = 120.0
    policy: RpcPolicy = field(default_factory=RpcPolicy)
    # per-connection cache of contract objects and of immutable on-chain facts (e.g. guard configs)
    contract_factories: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @property
    def is_anvil(self) -> bool:
        return self.client.lower().startswith("anvil")

    def rpc(self, method: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        """A raw JSON-RPC call; RPC-level errors raise :class:`ChainError`."""
        response = self.call(self.w3.provider.make_request, method, list(params))
        if "error" in response:
            error = response["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise ChainError(f"{method} failed: {message}", rpc_error=error)
        return response["result"]

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a web3 call, translating transport failures into :class:`RpcUnreachable`."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _network_error(exc):
                raise RpcUnreachable(f"RPC {self.url} is unreachable: {_short(exc)}", url=self.url) from exc
            raise

    # -- Anvil-only helpers (tests, drills, pilot) ------------------------------------------------
    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> None:
        """Back to ``snapshot_id``, fee market included.

        Anvil's ``evm_revert`` restores blocks, state and the clock but keeps the base fee it computed
        for the next block from the *reverted* history: after many reverted blocks every later block is
        priced as if they had happened (a chain that went through a long test suite sits at the EIP-1559
        floor, where a transaction signed again comes out byte-identical). The next base fee is set
        back to what the restored head implies, as on a chain that never saw the reverted blocks.
        """
        if not self.rpc("evm_revert", [snapshot_id]):
            raise ChainError(f"evm_revert to snapshot {snapshot_id} failed")
        head = self.call(self.w3.eth.get_block, "latest")
        if head.get("baseFeePerGas") is not None:
            following = next_base_fee(int(head["baseFeePerGas"]), int(head["gasUsed"]), int(head["gasLimit"]))
            self.rpc("anvil_setNextBlockBaseFeePerGas", [hex(following)])
        # cached on-chain facts may describe contracts that no longer exist after the revert
        self.contract_factories.clear()

    def set_next_timestamp(self, timestamp: int) -> None:
        self.rpc("anvil_setNextBlockTimestamp", [timestamp])

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", [hex(blocks)])

    def latest_timestamp(self) -> int:
        return int(self.call(self.w3.eth.get_block, "latest")["timestamp"])


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int) -> int:
    """EIP-1559: the base fee of the block after one with ``base_fee``, ``gas_used`` and ``gas_limit``
    (elasticity 2, change denominator 8)."""
    target = gas_limit // 2
    if target == 0 or gas_used == target:
        return base_fee
    if gas_used > target:
        return base_fee + max(base_fee * (gas_used - target) // target // 8, 1)
    return base_fee - base_fee * (target - gas_used) // target // 8


def next_utc_slot(now: int, *, weekday: int, hour: int, min_ahead: int = 86400) -> int:
    """Unix time of the next ``weekday`` (0 = Monday) at ``hour``:00 UTC at least ``min_ahead`` s after ``now``."""
    monday = now - (now + 259200) % 604800  # Monday 00:00 UTC of the current week
    slot = monday + weekday * 86400 + hour * 3600
    while slot < now + min_ahead:
        slot += 604800
    return slot


def _short(exc: BaseException) -> str:
    return describe_failure(exc)


def connect(
    url: str,
    *,
    expected_chain_id: int | None = None,
    timeout: float | None = None,
    policy: RpcPolicy | None = None,
) -> Chain:
    """Connect to ``url`` and check it answers (and serves ``expected_chain_id`` if given).

    ``policy`` (default: :meth:`RpcPolicy.from_env`) sets timeouts and retries; ``timeout`` overrides
    its per-request timeout. On a local Anvil receipts are polled every 5 ms.
    """
    if not url.startswith(("http://", "https://")):
        raise RpcUnreachable(f"RPC URL {url!r} must start with http:// or https://", url=url)
    policy = policy or RpcPolicy.from_env()
    if timeout is not None:
        policy = replace(policy, timeout=timeout)
    # web3 retries silently by default (a 1 s timeout surfaced after ~7 s, and evm_* calls were
    # repeated); our provider retries only idempotent methods, a bounded number of times.
    w3 = Web3(PolicyHTTPProvider(url, policy))
    # We build, estimate and sign every transaction ourselves and never use ENS names; these
    # middlewares would add an eth_chainId round trip to every single call.
    for name in ("validation", "ens_name_to_address", "gas_price_strategy", "gas_estimate"):
        w3.middleware_onion.remove(name)
    chain = Chain(
        w3=w3,
        url=url,
        chain_id=0,
        client="",
        poll_latency=policy.poll_latency,
        receipt_timeout=policy.receipt_timeout,
        policy=policy,
    )
    try:
        chain.chain_id = chain.call(lambda: w3.eth.chain_id)
        chain.client = chain.call(lambda: w3.client_version)
    except RpcUnreachable:
        raise
    except (Web3Exception, ValueError) as exc:
        raise RpcUnreachable(f"RPC {url} did not answer eth_chainId: {_short(exc)}", url=url) from exc
    if expected_chain_id is not None and chain.chain_id != expected_chain_id:
        raise ChainIdMismatch(
            f"RPC {url} serves chain id {chain.chain_id}, expected {expected_chain_id}",
            url=url,
            expected=expected_chain_id,
            actual=chain.chain_id,
        )
    if chain.is_anvil:
        local = policy.for_local_chain()
        chain.poll_latency, chain.receipt_timeout = local.poll_latency, local.receipt_timeout
    return chain


def translate_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for adapter functions taking a :class:`Chain` first: network errors → RpcUnreachable."""

    @functools.wraps(fn)
    def wrapper(chain: Chain, *args: Any, **kwargs: Any) -> T:
        try:
            return fn(chain, *args, **kwargs)
        except Exception as exc:
            if _network_error(exc):
                raise RpcUnreachable(f"RPC {chain.url} is unreachable: {_short(exc)}", url=chain.url) from exc
            raise

    return wrapper
