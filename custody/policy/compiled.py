"""Templates compiled to the CustodyGuard's on-chain configuration — one encoding, one hash.

``compile_policy(policy)`` produces exactly the ``ICustodyGuard.Config`` struct the guard is deployed
with; ``GuardConfig.policy_hash`` is ``keccak256(abi.encode(config))``, which the guard computes in its
constructor and exposes as ``POLICY_HASH`` — so a template file can be checked against a live vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

from custody.policy.template import Policy
from custody.types import ZERO_ADDRESS, Address

KIND_BITS = {
    "owners": 1 << 0,
    "threshold": 1 << 1,
    "modules": 1 << 2,
    "guard": 1 << 3,
    "fallback_handler": 1 << 4,
    "policy": 1 << 5,
    "unlisted_transfer": 1 << 6,
    "over_limit_transfer": 1 << 7,
}
KIND_NAMES = {bit: name for name, bit in KIND_BITS.items()}

CONFIG_ABI = (
    "((address,uint96,uint96)[],(address,uint8)[],uint8,(uint32,uint32)[],uint32,uint32,uint16,bytes32,"
    "(address,bytes4)[],(address,bytes32,bytes32)[])"
)
DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
DOMAIN_TYPEHASH_NO_VERSION = keccak(text="EIP712Domain(string name,uint256 chainId,address verifyingContract)")
ZERO32 = b"\x00" * 32


@dataclass(frozen=True)
class GuardAsset:
    token: Address  # ZERO_ADDRESS = native ETH
    per_tx_limit: int
    daily_limit: int


@dataclass(frozen=True)
class GuardDestination:
    account: Address
    asset_mask: int


@dataclass(frozen=True)
class GuardMessageDomain:
    """An EIP-712 domain the guard lets the vault sign for; ``version_hash`` zero = no version field."""

    verifying_contract: Address
    name_hash: bytes
    version_hash: bytes

    def separator(self, chain_id: int) -> bytes:
        """The domain separator the guard computes on chain ``chain_id`` (EIP-712 ``hashStruct``)."""
        if self.version_hash == ZERO32:
            return keccak(
                encode(
                    ["bytes32", "bytes32", "uint256", "address"],
                    [DOMAIN_TYPEHASH_NO_VERSION, self.name_hash, chain_id, self.verifying_contract],
                )
            )
        return keccak(
            encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [DOMAIN_TYPEHASH, self.name_hash, self.version_hash, chain_id, self.verifying_contract],
            )
        )


@dataclass(frozen=True)
class GuardConfig:
    assets: tuple[GuardAsset, ...]
    destinations: tuple[GuardDestination, ...]
    unrestricted_mask: int
    freeze_windows: tuple[tuple[int, int], ...]  # seconds since Monday 00:00 UTC, [start, end)
    allowed_start: int  # seconds after 00:00 UTC
    allowed_end: int  # 0 = unrestricted
    timelock_kinds: int
    template_hash: bytes
    calls: tuple[tuple[Address, bytes], ...] = ()  # (target, 4-byte selector)
    message_domains: tuple[GuardMessageDomain, ...] = ()

    def as_tuple(self) -> tuple[Any, ...]:
        """The struct as web3/eth-abi expect it."""
        return (
            [(a.token, a.per_tx_limit, a.daily_limit) for a in self.assets],
            [(d.account, d.asset_mask) for d in self.destinations],
            self.unrestricted_mask,
            [tuple(w) for w in self.freeze_windows],
            self.allowed_start,
            self.allowed_end,
            self.timelock_kinds,
            self.template_hash,
            [(t, sel) for t, sel in self.calls],
            [(d.verifying_contract, d.name_hash, d.version_hash) for d in self.message_domains],
        )

    @property
    def policy_hash(self) -> bytes:
        return keccak(encode([CONFIG_ABI], [self.as_tuple()]))

    def asset_index(self, token: str) -> int | None:
        for i, asset in enumerate(self.assets):
            if asset.token == token:
                return i
        return None

    @classmethod
    def from_chain(cls, raw: tuple[Any, ...]) -> GuardConfig:
        """Rebuild from ``CustodyGuard.config()`` output."""
        assets, destinations, unrestricted, windows, start, end, kinds, template_hash, calls, domains = raw
        return cls(
            assets=tuple(GuardAsset(Address(to_checksum_address(t)), int(p), int(d)) for t, p, d in assets),
            destinations=tuple(GuardDestination(Address(to_checksum_address(a)), int(m)) for a, m in destinations),
            unrestricted_mask=int(unrestricted),
            freeze_windows=tuple((int(s), int(e)) for s, e in windows),
            allowed_start=int(start),
            allowed_end=int(end),
            timelock_kinds=int(kinds),
            template_hash=bytes(template_hash),
            calls=tuple((Address(to_checksum_address(t)), bytes(sel)) for t, sel in calls),
            message_domains=tuple(
                GuardMessageDomain(Address(to_checksum_address(v)), bytes(n), bytes(h)) for v, n, h in domains
            ),
        )


def compile_policy(policy: Policy) -> GuardConfig:
    """The guard configuration for ``policy`` (validated templates only)."""
    assets = tuple(GuardAsset(a.token or ZERO_ADDRESS, a.per_tx_limit, a.daily_limit) for a in policy.assets)
    masks: dict[str, int] = {}
    unrestricted = 0
    for i, asset in enumerate(policy.assets):
        if not asset.allowlist:
            unrestricted |= 1 << i
        for entry in asset.allowlist:
            masks[entry.address] = masks.get(entry.address, 0) | (1 << i)
    destinations = tuple(GuardDestination(Address(a), m) for a, m in masks.items())
    windows = tuple((w.week_start, w.week_end) for w in policy.freeze_windows)
    hours = policy.allowed_hours
    kinds = 0
    for name in policy.timelock_operations:
        kinds |= KIND_BITS[name]
    return GuardConfig(
        assets=assets,
        destinations=destinations,
        unrestricted_mask=unrestricted,
        freeze_windows=windows,
        allowed_start=hours.start_minute * 60 if hours else 0,
        allowed_end=hours.end_minute * 60 if hours else 0,
        timelock_kinds=kinds,
        template_hash=policy.template_hash,
        calls=tuple((c.target, c.selector) for c in policy.contract_calls),
        message_domains=tuple(
            GuardMessageDomain(d.verifying_contract, d.name_hash, d.version_hash) for d in policy.message_domains
        ),
    )


EXIT_CONFIG_ABI = "(address[],address[],uint256,uint256,bool,address[])"
NO_EXIT: tuple[list[str], list[str], int, int, bool, list[str]] = ([], [], 0, 0, False, [])


def compile_exit(policy: Policy) -> tuple[Any, ...] | None:
    """The ExitModule configuration (IExitModule.ExitConfig) for ``policy``, or None without ``exit:``."""
    if policy.exit is None:
        return None
    e = policy.exit
    tokens = [a.token for a in policy.assets if a.token is not None]
    return (
        [c.address for c in e.custodians],
        list(e.council),
        e.quorum,
        e.escrow_delay,
        e.owners_can_cancel,
        tokens,
    )
