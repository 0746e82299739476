"""Read a vault's enforced policy back from its CustodyGuard, and evaluate transactions against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from custody.chain.logs import rpc_batch
from custody.contracts.deploy import codehash, read_many
from custody.exceptions import ChainError
from custody.policy.compiled import GuardConfig
from custody.policy.preflight import GuardBindings, GuardModel, Verdict
from custody.policy.rolling_window import SpendState
from custody.session import Session
from custody.types import ZERO_ADDRESS, Address, Operation
from custody.vault.decode import token_info

GUARD_SLOT = int.from_bytes(keccak(text="guard_manager.guard.address"), "big")


def installed_guard(session: Session, safe: str) -> Address | None:
    raw = session.chain.call(session.chain.w3.eth.get_storage_at, safe, GUARD_SLOT)
    value = int.from_bytes(raw, "big")
    return None if value == 0 else Address(to_checksum_address(value.to_bytes(20, "big")))


@dataclass(frozen=True)
class GuardInfo:
    address: Address
    config: GuardConfig
    policy_hash: bytes
    template_hash: bytes
    safe: Address
    timelock: Address
    multisend: Address
    previous_guard: Address
    version: str
    exit_module: Address
    fallback_handler: Address
    deployer: Address
    message_domain_separators: tuple[bytes, ...]


def _states(session: Session, guard: str, count: int) -> list[SpendState]:
    if count == 0:
        return []
    contract = session.contract("CustodyGuard", guard)
    return [
        _spend_state(raw) for raw in read_many(session.chain, [contract.functions.spendState(i) for i in range(count)])
    ]


def _spend_state(raw: Sequence[Any]) -> SpendState:
    spent, before, hour, _live, seeded, ring = raw
    return SpendState.from_stored(int(spent), int(before), int(hour), bool(seeded), [(int(a), int(b)) for a, b in ring])


def read_guard(session: Session, guard: str) -> GuardInfo:
    """The guard's configuration (immutable for a given deployed guard: cached per connection)."""
    cache = session.chain.contract_factories
    key = ("guard-info", guard.lower())
    if key not in cache:
        cache[key] = _read_guard(session, guard)
    info: GuardInfo = cache[key]
    return info


def _read_guard(session: Session, guard: str) -> GuardInfo:
    contract = session.contract("CustodyGuard", guard)
    (info,) = read_many(session.chain, [contract.functions.info()])
    version, bindings, policy_hash, template_hash, _paused, separators, cfg = info
    safe, timelock, multisend, exit_module, handler, previous, deployer, _kinds = bindings
    return GuardInfo(
        address=Address(to_checksum_address(guard)),
        config=GuardConfig.from_chain(cfg),
        policy_hash=bytes(policy_hash),
        template_hash=bytes(template_hash),
        safe=Address(to_checksum_address(safe)),
        timelock=Address(to_checksum_address(timelock)),
        multisend=Address(to_checksum_address(multisend)),
        previous_guard=Address(to_checksum_address(previous)),
        version=version,
        exit_module=Address(to_checksum_address(exit_module)),
        fallback_handler=Address(to_checksum_address(handler)),
        deployer=Address(to_checksum_address(deployer)),
        message_domain_separators=tuple(bytes(x) for x in separators),
    )


def guard_paused(session: Session, guard: str) -> bool:
    """Whether the guard has frozen the vault (read live: it changes, unlike the rest of ``info()``)."""
    info = session.chain.call(session.contract("CustodyGuard", guard).functions.info().call)
    return bool(info[4])


def _previous_window_totals(
    session: Session, info: GuardInfo, tokens: Sequence[str], now_hour: int
) -> dict[str, int | None]:
    """What the predecessor guard's ``windowTotal`` would answer at ``now_hour`` (None: it would revert)."""
    if info.previous_guard == ZERO_ADDRESS or not tokens:
        return {}
    if codehash(session.chain, info.previous_guard) is None:
        return dict.fromkeys(tokens)
    try:
        previous = read_guard(session, info.previous_guard)
        states = _states(session, info.previous_guard, len(previous.config.assets))
    except Exception:
        return dict.fromkeys(tokens)
    totals: dict[str, int | None] = {}
    for token in tokens:
        index = previous.config.asset_index(token)
        totals[token] = 0 if index is None else states[index].window_total(now_hour)
    return totals


def guard_model(session: Session, safe: str, *, timestamp: int) -> GuardModel | None:
    """A :class:`GuardModel` of the guard installed on ``safe`` (None when the vault has none)."""
    guard = installed_guard(session, safe)
    if guard is None:
        return None
    info = read_guard(session, guard)
    reads = session.contract("CustodyGuard", guard).functions
    spend_reads = [reads.spendState(i) for i in range(len(info.config.assets))]
    delay_read = session.contract("VaultTimelock", info.timelock).functions.getMinDelay()
    # what changes between calls, in one JSON-RPC batch: spend windows, the pause flag (in info()), the delay
    *raw_states, live_info, min_delay = read_many(session.chain, [*spend_reads, reads.info(), delay_read])
    states = [_spend_state(raw) for raw in raw_states]
    paused = bool(live_info[4])
    unseeded = [a.token for a, s in zip(info.config.assets, states) if not s.seeded]
    symbols = _symbols(session, info)
    return GuardModel(
        safe=info.safe,
        timelock=info.timelock,
        multisend=info.multisend,
        guard=info.address,
        previous_guard=info.previous_guard,
        config=info.config,
        states=states,
        previous_totals=_previous_window_totals(session, info, unseeded, timestamp // 3600),
        symbols=symbols,
        exit_module=info.exit_module,
        paused=paused,
        fallback_handler=info.fallback_handler,
        deployer=info.deployer,
        message_domain_separators=info.message_domain_separators,
        timelock_min_delay=int(min_delay),
        successor=lambda candidate: successor_bindings(session, info.deployer, candidate),
    )


def successor_bindings(session: Session, deployer: str, guard: str) -> GuardBindings | None:
    """What the GuardDeployer registry and the candidate guard itself say about ``guard`` (None: not a guard)."""
    if codehash(session.chain, guard) is None or codehash(session.chain, deployer) is None:
        return None
    try:
        registered = session.chain.call(session.contract("GuardDeployer", deployer).functions.safeOf(guard).call)
        raw = session.chain.call(session.contract("CustodyGuard", guard).functions.bindings().call)
    except (ContractLogicError, BadFunctionCallOutput, ChainError):
        return None
    safe, timelock, multisend, exit_module, handler, previous, guard_deployer, kinds = raw
    return GuardBindings(
        registered_safe=to_checksum_address(registered),
        safe=to_checksum_address(safe),
        timelock=to_checksum_address(timelock),
        multisend=to_checksum_address(multisend),
        exit_module=to_checksum_address(exit_module),
        fallback_handler=to_checksum_address(handler),
        previous_guard=to_checksum_address(previous),
        deployer=to_checksum_address(guard_deployer),
        timelock_kinds=int(kinds),
    )


def _symbols(session: Session, info: GuardInfo) -> dict[str, tuple[str, int]]:
    cache = session.chain.contract_factories
    key = ("guard-symbols", info.address.lower())
    if key not in cache:
        symbols: dict[str, tuple[str, int]] = {}
        for asset in info.config.assets:
            if asset.token != ZERO_ADDRESS:
                try:
                    token = token_info(session.chain, asset.token)
                except (ContractLogicError, BadFunctionCallOutput):
                    token = None
                if token is not None:
                    symbols[asset.token] = (token.symbol, token.decimals)
        cache[key] = symbols
    cached: dict[str, tuple[str, int]] = cache[key]
    return cached


def next_block_timestamp(session: Session) -> int:
    """Best prediction of the timestamp the next block will carry: the node's pending block (a chain whose
    clock runs behind or ahead of the wall clock, a local Anvil started at another time, is judged by its
    own clock), else the wall clock; never before the latest block."""
    import time

    try:  # both blocks in one round trip
        latest, pending = rpc_batch(
            session.chain, [("eth_getBlockByNumber", [tag, False]) for tag in ("latest", "pending")]
        )
    except ChainError:  # a node that refuses the pending tag: the wall clock
        return max(session.chain.latest_timestamp() + 1, int(time.time()))
    after_latest = int(latest["timestamp"], 16) + 1
    return max(after_latest, int(time.time()) if pending is None else int(pending["timestamp"], 16))


def preflight(
    session: Session,
    safe: str,
    *,
    to: str,
    value: int,
    data: bytes,
    operation: Operation,
    timestamp: int | None = None,
) -> Verdict:
    """The guard's verdict on a Safe transaction (allowed when the vault has no guard)."""
    when = timestamp if timestamp is not None else next_block_timestamp(session)
    guard = installed_guard(session, safe)
    if guard is None:
        return Verdict(True, message="the vault has no guard")
    try:
        model = guard_model(session, safe, timestamp=when)
    except ChainError:
        return Verdict(
            True,
            known=False,
            message=f"the installed guard {guard} is not a CustodyGuard; its verdict can only be seen on chain",
        )
    if model is None:
        return Verdict(True, message="the vault has no guard")
    verdict, _states_after = model.check(to=to, value=value, data=data, operation=operation, timestamp=when)
    return verdict
