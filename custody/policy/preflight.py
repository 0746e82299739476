"""Off-chain pre-flight: the CustodyGuard's decision, computed in Python from the vault's on-chain state.

:class:`GuardModel` mirrors ``CustodyGuard.checkTransaction`` check for check, in the same order, so
that it returns the same verdict — the same custom error with the same arguments — that the guard
would. A hypothesis differential test holds the two together on random transactions and clocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector as selector_of
from eth_utils import to_checksum_address

from custody.policy import limits
from custody.policy.calldata import decode_module_call
from custody.policy.compiled import KIND_BITS, KIND_NAMES, GuardConfig
from custody.policy.rolling_window import BUCKETS, RING, SpendState
from custody.types import ZERO_ADDRESS, Address, Operation, format_amount

HOUR = 3600
MONDAY_OFFSET = 259200
REQUIRED_KINDS = sum(KIND_BITS[k] for k in ("owners", "threshold", "modules", "guard", "fallback_handler", "policy"))
TRANSFER_KINDS = KIND_BITS["unlisted_transfer"] | KIND_BITS["over_limit_transfer"]
AT_EXECUTION = 2**256 - 1  # the scheduling delay passed when an operation is checked at execution
# ICustodyGuard.Binding, in declaration order (CustodyGuardSuccessorMismatch's second argument)
SUCCESSOR_BINDINGS = (
    "safe",
    "timelock",
    "multiSend",
    "exitModule",
    "fallbackHandler",
    "deployer",
    "previousGuard",
    "timelockKinds",
)

TRANSFER = selector_of("transfer(address,uint256)")
APPROVE = selector_of("approve(address,uint256)")
MULTISEND = selector_of("multiSend(bytes)")
SCHEDULE = selector_of("schedule(address,uint256,bytes,bytes32,bytes32,uint256)")
SCHEDULE_BATCH = selector_of("scheduleBatch(address[],uint256[],bytes[],bytes32,bytes32,uint256)")
CANCEL = selector_of("cancel(bytes32)")
EXECUTE = selector_of("execute(address,uint256,bytes,bytes32,bytes32)")
EXECUTE_BATCH = selector_of("executeBatch(address[],uint256[],bytes[],bytes32,bytes32)")
EXEC_FROM_MODULE = selector_of("execTransactionFromModule(address,uint256,bytes,uint8)")
PAUSE = selector_of("setPaused(bool)")
EXIT_CANCEL = selector_of("cancel()")
EXIT_CONFIGURE = selector_of("configure((address[],address[],uint256,uint256,bool,address[]))")
UPDATE_DELAY = selector_of("updateDelay(uint256)")
APPROVE_MESSAGE = selector_of("approveMessage(bytes32,bytes32)")
REVOKE_MESSAGE = selector_of("revokeMessage(bytes32)")
ADD_OWNER = selector_of("addOwnerWithThreshold(address,uint256)")
REMOVE_OWNER = selector_of("removeOwner(address,address,uint256)")
SWAP_OWNER = selector_of("swapOwner(address,address,address)")
CHANGE_THRESHOLD = selector_of("changeThreshold(uint256)")
ENABLE_MODULE = selector_of("enableModule(address)")
DISABLE_MODULE = selector_of("disableModule(address,address)")
SET_GUARD = selector_of("setGuard(address)")
SET_FALLBACK_HANDLER = selector_of("setFallbackHandler(address)")

CONFIG_SELECTORS = {
    selector_of("addOwnerWithThreshold(address,uint256)"): KIND_BITS["owners"],
    selector_of("removeOwner(address,address,uint256)"): KIND_BITS["owners"],
    selector_of("swapOwner(address,address,address)"): KIND_BITS["owners"],
    selector_of("changeThreshold(uint256)"): KIND_BITS["threshold"],
    selector_of("enableModule(address)"): KIND_BITS["modules"],
    selector_of("disableModule(address,address)"): KIND_BITS["modules"],
    selector_of("setGuard(address)"): KIND_BITS["guard"],
    selector_of("setFallbackHandler(address)"): KIND_BITS["fallback_handler"],
}
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class GuardBindings:
    """What a (candidate successor) guard is bound to, as ``bindings()`` reports it, and the Safe the
    GuardDeployer registry records for it (zero when the deployer did not deploy it)."""

    registered_safe: str
    safe: str
    timelock: str
    multisend: str
    exit_module: str
    fallback_handler: str
    previous_guard: str
    deployer: str
    timelock_kinds: int


@dataclass(frozen=True)
class Verdict:
    """What the guard decides: allowed, or the custom error (name, arguments) and the rule it enforces."""

    allowed: bool
    error: str | None = None
    args: tuple[Any, ...] = ()
    rule: str | None = None
    message: str = "allowed by the vault's policy"
    known: bool = True  # False: the installed guard is not a CustodyGuard; only the chain can tell

    def as_dict(self) -> dict[str, Any]:
        return {
            "known": self.known,
            "allowed": self.allowed,
            "error": self.error,
            "args": [a if isinstance(a, (int, str, bool)) or a is None else "0x" + bytes(a).hex() for a in self.args],
            "rule": self.rule,
            "message": self.message,
        }


class _Reject(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict


@dataclass
class GuardModel:
    """The guard's logic over a snapshot of its configuration and spend state."""

    safe: str
    timelock: str
    multisend: str
    guard: str
    previous_guard: str
    config: GuardConfig
    states: list[SpendState]
    previous_totals: dict[str, int | None] = field(default_factory=dict)  # token -> windowTotal (None: reverts)
    symbols: dict[str, tuple[str, int]] = field(default_factory=dict)  # token -> (symbol, decimals)
    exit_module: str = ZERO_ADDRESS
    paused: bool = False
    fallback_handler: str = ZERO_ADDRESS
    deployer: str = ZERO_ADDRESS
    message_domain_separators: tuple[bytes, ...] = ()
    timelock_min_delay: int = 0
    # a candidate successor guard's bindings (None: no code / not a guard); read from the chain
    successor: Callable[[str], GuardBindings | None] = field(default=lambda _address: None, repr=False)

    # -- entry point ----------------------------------------------------------------------------
    def check(
        self,
        *,
        to: str,
        value: int,
        data: bytes,
        operation: Operation,
        timestamp: int,
        gas_price: int = 0,
        gas_token: str = ZERO_ADDRESS,
        refund_receiver: str = ZERO_ADDRESS,
        caller: str | None = None,
    ) -> tuple[Verdict, list[SpendState]]:
        """The verdict for one Safe transaction at ``timestamp`` and the spend state it would leave."""
        states = list(self.states)
        try:
            if (caller or self.safe) != self.safe:
                self._reject(
                    "CustodyGuardNotSafe", (caller,), "guard", f"only the vault's Safe may call its guard, not {caller}"
                )
            if gas_price != 0:
                self._reject(
                    "CustodyGuardRefundForbidden",
                    (gas_price, gas_token, refund_receiver),
                    "operation.no_refunds",
                    "gas refunds (non-zero gasPrice) would pay out of the vault outside every limit",
                )
            if operation == Operation.DELEGATECALL:
                if to != self.multisend:
                    self._reject(
                        "CustodyGuardDelegateCallForbidden",
                        (to,),
                        "operation.call_only",
                        f"DELEGATECALL to {to} is forbidden (only MultiSendCallOnly {self.multisend} may be delegate-called)",
                    )
                self._multisend(data, timestamp, states)
            else:
                self._call(to, value, data, timestamp, states)
        except _Reject as rejected:
            return rejected.verdict, list(self.states)
        return Verdict(True), states

    # -- checks, in the guard's order -----------------------------------------------------------
    def _reject(self, error: str | None, args: tuple[Any, ...], rule: str, message: str) -> NoReturn:
        raise _Reject(Verdict(False, error, tuple(args), rule, message))

    def _asset(self, token: str) -> int | None:
        return self.config.asset_index(token)

    def _label(self, token: str) -> tuple[str, int]:
        if token == ZERO_ADDRESS:
            return "ETH", 18
        return self.symbols.get(token, (token, 0))

    def _call(self, to: str, value: int, data: bytes, timestamp: int, states: list[SpendState]) -> None:
        selector = _selector(data)
        if to == self.safe:
            self._reject(
                "CustodyGuardSelfCallForbidden",
                (selector,),
                "timelock",
                f"the vault may not call itself (selector 0x{selector.hex()}): configuration changes go through its timelock",
            )
        if to == self.timelock:
            self._timelock_call(value, data)
            return
        if to == self.guard and value == 0:
            if data == PAUSE + (1).to_bytes(32, "big"):
                return
            if selector == REVOKE_MESSAGE and len(data) == 36:
                return
            if selector == APPROVE_MESSAGE and len(data) == 68:
                self._message(data[4:36], timestamp)
                return
        if to == self.exit_module != ZERO_ADDRESS and value == 0 and data == EXIT_CANCEL:
            return
        if not data:
            index = self._asset(ZERO_ADDRESS)
            if index is None:
                self._reject(
                    "CustodyGuardCallForbidden",
                    (to, b"\x00" * 4, value),
                    "assets",
                    "ETH is not an asset of this vault's policy",
                )
            self._time(timestamp)
            self._destination(index, ZERO_ADDRESS, to)
            self._spend(index, ZERO_ADDRESS, value, timestamp, states)
            return
        if self.config.calls and value == 0 and len(data) >= 4 and (to, selector) in self.config.calls:
            if self.paused:
                self._paused()
            self._time(timestamp)
            return
        index = self._asset(to)
        if index is None or to == ZERO_ADDRESS or value != 0:
            self._reject(
                "CustodyGuardCallForbidden",
                (to, selector, value),
                "assets",
                f"call to {to} (selector 0x{selector.hex()}) is not a transfer of a policy asset",
            )
        if len(data) != 68 or selector not in (TRANSFER, APPROVE):
            self._reject(
                "CustodyGuardTokenCallForbidden",
                (to, selector),
                f"asset.{self._label(to)[0]}",
                f"only transfer/approve of {self._label(to)[0]} are allowed (got selector 0x{selector.hex()}, {len(data)} bytes)",
            )
        raw = int.from_bytes(data[4:36], "big")
        if raw >> 160:
            self._reject(
                "CustodyGuardTokenCallForbidden",
                (to, selector),
                f"asset.{self._label(to)[0]}",
                "malformed destination address",
            )
        destination = to_checksum_address(raw.to_bytes(20, "big"))
        self._time(timestamp)
        self._destination(index, to, destination)
        self._spend(index, to, int.from_bytes(data[36:68], "big"), timestamp, states)

    def _multisend(self, data: bytes, timestamp: int, states: list[SpendState]) -> None:
        if data[:4] != MULTISEND or len(data) < 68:
            self._reject(
                "CustodyGuardCallForbidden",
                (self.multisend, _selector(data), 0),
                "operation.call_only",
                "malformed multiSend call",
            )
        offset = int.from_bytes(data[4:36], "big")
        length = int.from_bytes(self._batch_slice(data, 4 + offset, 36 + offset, "the batch's length word"), "big")
        txs = self._batch_slice(data, 36 + offset, 36 + offset + length, f"a batch of {length} bytes")
        pos = 0
        while pos < len(txs):
            target = to_checksum_address(self._batch_slice(txs, pos + 1, pos + 21, f"the target of the call at {pos}"))
            if txs[pos] != 0:
                self._reject(
                    "CustodyGuardDelegateCallForbidden",
                    (target,),
                    "operation.call_only",
                    f"a batch may not DELEGATECALL {target}",
                )
            value = int.from_bytes(self._batch_slice(txs, pos + 21, pos + 53, f"the value of the call at {pos}"), "big")
            size = int.from_bytes(self._batch_slice(txs, pos + 53, pos + 85, f"the size of the call at {pos}"), "big")
            call = self._batch_slice(txs, pos + 85, pos + 85 + size, f"the {size} bytes of the call at {pos}")
            self._call(target, value, call, timestamp, states)
            pos += 85 + size

    def _batch_slice(self, data: bytes, start: int, end: int, what: str) -> bytes:
        """``data[start:end]`` as the guard's calldata slice reads it: where the slice leaves ``data`` (or its
        bounds overflow), the guard reverts, without a custom error; a Python slice would quietly come out
        short, and a batch could read as empty."""
        if end > len(data):
            self._reject(
                None,
                (),
                "operation.call_only",
                f"malformed multiSend batch: {what} lies outside the {len(data)} bytes there are; the guard reverts",
            )
        return data[start:end]

    def _message(self, domain_separator: bytes, timestamp: int) -> None:
        if domain_separator not in self.message_domain_separators:
            self._reject(
                "CustodyGuardMessageDomainForbidden",
                (domain_separator,),
                "messages.domains",
                f"the policy does not let the vault sign messages for EIP-712 domain 0x{domain_separator.hex()}",
            )
        if self.paused:
            self._paused()
        self._time(timestamp)

    def _timelock_call(self, value: int, data: bytes) -> None:
        selector = _selector(data)
        if value != 0:
            self._reject(
                "CustodyGuardCallForbidden",
                (self.timelock, selector, value),
                "timelock",
                "calls to the timelock carry no ETH",
            )
        if selector in (CANCEL, EXECUTE, EXECUTE_BATCH):
            return
        if selector == SCHEDULE:
            target, val, payload, _p, _s, delay = decode(
                ["address", "uint256", "bytes", "bytes32", "bytes32", "uint256"], data[4:]
            )
            target = to_checksum_address(target)
            self.require_kind(self.classify(target, val, payload, delay), target, payload)
            return
        if selector == SCHEDULE_BATCH:
            targets, values, payloads, _p, _s, delay = decode(
                ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32", "uint256"], data[4:]
            )
            if not len(targets) == len(values) == len(payloads):
                self._reject(
                    "CustodyGuardCallForbidden",
                    (self.timelock, selector, value),
                    "timelock",
                    "a scheduleBatch whose targets, values and payloads differ in length",
                )
            for target, val, payload in zip(targets, values, payloads):
                target = to_checksum_address(target)
                self.require_kind(self.classify(target, val, payload, delay), target, payload)
            return
        self._reject(
            "CustodyGuardCallForbidden",
            (self.timelock, selector, value),
            "timelock",
            f"timelock function 0x{selector.hex()} is not allowed (roles and delay change only through scheduled operations)",
        )

    def require_kind(self, kind: int, target: str, payload: bytes) -> None:
        """Reject unless the policy lists ``kind`` among the timelock operations."""
        if kind & self.config.timelock_kinds == 0:
            name = KIND_NAMES.get(kind, "an operation no policy can allow")
            self._reject(
                "CustodyGuardTimelockKindForbidden",
                (kind, target, _selector(payload)),
                "timelock.operations",
                f"the policy does not allow '{name}' through the timelock",
            )

    def check_timelock_call(self, target: str, value: int, payload: bytes, timestamp: int) -> Verdict:
        """The guard's ``checkTimelockCall``: may the timelock execute this call of a ready operation now?"""
        try:
            kind = self.classify(target, value, payload, AT_EXECUTION)
            self.require_kind(kind, target, payload)
            if kind & TRANSFER_KINDS:
                if self.paused:
                    self._paused()
                self._time(timestamp)
        except _Reject as rejected:
            return rejected.verdict
        return Verdict(True)

    def classify(self, target: str, value: int, payload: bytes, delay: int = AT_EXECUTION) -> int:
        """Kind bit of one timelock call (0 = unknown, never allowed); rejects with the precise reason when a
        configuration change has the right kind but an unacceptable argument (as the guard reverts)."""
        selector = _selector(payload)
        if target == self.safe:
            if selector != EXEC_FROM_MODULE or value != 0 or len(payload) < 4 + 128:
                return 0
            to, inner_value, inner, operation = decode_module_call(payload[4:])
            if operation != 0:
                return 0
            if to == self.safe:
                return self._config_kind(inner, delay)
            if to in (self.timelock, self.guard, self.exit_module, self.fallback_handler):
                return 0
            if self._listed_transfer(to, inner_value, inner):
                return KIND_BITS["over_limit_transfer"]
            return KIND_BITS["unlisted_transfer"] if _is_transfer(inner_value, inner) else 0
        if value != 0:
            return 0
        if target == self.guard:
            return KIND_BITS["policy"] if selector == PAUSE and len(payload) == 36 else 0
        if target == self.timelock:
            if selector != UPDATE_DELAY or len(payload) != 36:
                return 0
            new_delay = int.from_bytes(payload[4:36], "big")
            if not limits.MIN_TIMELOCK_DELAY <= new_delay <= limits.MAX_TIMELOCK_DELAY:
                self._reject(
                    "CustodyGuardDelayOutOfRange",
                    (new_delay, limits.MIN_TIMELOCK_DELAY, limits.MAX_TIMELOCK_DELAY),
                    "timelock.delay",
                    f"a timelock delay of {new_delay}s is outside {limits.MIN_TIMELOCK_DELAY}s-{limits.MAX_TIMELOCK_DELAY}s",
                )
            return KIND_BITS["policy"]
        if target == self.exit_module != ZERO_ADDRESS and selector in (EXIT_CONFIGURE, EXIT_CANCEL):
            return KIND_BITS["policy"]
        return 0

    def _config_kind(self, inner: bytes, delay: int) -> int:
        selector = _selector(inner)
        length = len(inner)
        if selector in (ENABLE_MODULE, DISABLE_MODULE, SET_GUARD, SET_FALLBACK_HANDLER):
            count = 2 if selector == DISABLE_MODULE else 1
            if length < 4 + 32 * count or any(
                int.from_bytes(inner[4 + 32 * k : 36 + 32 * k], "big") >> 160 for k in range(count)
            ):
                return 0
        if selector == ADD_OWNER:
            return KIND_BITS["owners"] if length == 68 else 0
        if selector in (REMOVE_OWNER, SWAP_OWNER):
            return KIND_BITS["owners"] if length == 100 else 0
        if selector == CHANGE_THRESHOLD:
            return KIND_BITS["threshold"] if length == 36 else 0
        if selector == ENABLE_MODULE:
            if length != 36:
                return 0
            module = _word_address(inner, 0)
            if module != self.exit_module or module == ZERO_ADDRESS:
                self._reject(
                    "CustodyGuardModuleForbidden",
                    (module,),
                    "timelock.operations.modules",
                    f"{module} is not this vault's exit module: a foreign module would move funds without the guard",
                )
            return KIND_BITS["modules"]
        if selector == DISABLE_MODULE:
            if length != 68:
                return 0
            module = _word_address(inner, 1)
            if module == self.timelock:
                self._reject(
                    "CustodyGuardModuleForbidden",
                    (module,),
                    "timelock.operations.modules",
                    "the timelock is the vault's only configuration path and can never be disabled",
                )
            return KIND_BITS["modules"]
        if selector == SET_GUARD:
            if length != 36:
                return 0
            self._successor(_word_address(inner, 0), delay)
            return KIND_BITS["guard"]
        if selector == SET_FALLBACK_HANDLER:
            if length != 36:
                return 0
            handler = _word_address(inner, 0)
            if handler not in (self.fallback_handler, ZERO_ADDRESS):
                self._reject(
                    "CustodyGuardFallbackHandlerForbidden",
                    (handler,),
                    "timelock.operations.fallback_handler",
                    f"only the vault's CustodyFallbackHandler {self.fallback_handler} (or none) may answer for it, "
                    f"not {handler}",
                )
            return KIND_BITS["fallback_handler"]
        return 0

    def _successor(self, guard: str, delay: int) -> None:
        if guard == ZERO_ADDRESS:
            required = limits.ZERO_GUARD_DELAY_FACTOR * self.timelock_min_delay
            if delay != AT_EXECUTION and delay < required:
                self._reject(
                    "CustodyGuardZeroGuardDelay",
                    (delay, required),
                    "timelock.operations.guard",
                    f"removing the guard needs a delay of at least {required}s ({limits.ZERO_GUARD_DELAY_FACTOR}x the "
                    f"timelock's), not {delay}s",
                )
            return
        facts = self.successor(guard)
        registered = facts.registered_safe if facts is not None else ZERO_ADDRESS
        if facts is None or registered != self.safe:
            self._reject(
                "CustodyGuardSuccessorNotRegistered",
                (guard, registered),
                "timelock.operations.guard",
                f"{guard} was not deployed by this vault's GuardDeployer for this vault"
                + (f" (it was for {registered})" if registered != ZERO_ADDRESS else ""),
            )
        assert facts is not None
        expected = (
            ("safe", facts.safe, self.safe),
            ("timelock", facts.timelock, self.timelock),
            ("multiSend", facts.multisend, self.multisend),
            ("exitModule", facts.exit_module, self.exit_module),
            ("fallbackHandler", facts.fallback_handler, self.fallback_handler),
            ("deployer", facts.deployer, self.deployer),
            ("previousGuard", facts.previous_guard, self.guard),
        )
        for binding, theirs, ours in expected:
            if theirs != ours:
                self._reject(
                    "CustodyGuardSuccessorMismatch",
                    (guard, SUCCESSOR_BINDINGS.index(binding)),
                    "timelock.operations.guard",
                    f"replacement guard {guard} has {binding} {theirs}, this vault needs {ours}",
                )
        if facts.timelock_kinds & REQUIRED_KINDS != REQUIRED_KINDS:
            self._reject(
                "CustodyGuardSuccessorMismatch",
                (guard, SUCCESSOR_BINDINGS.index("timelockKinds")),
                "timelock.operations.guard",
                f"replacement guard {guard} would not let the owners schedule every configuration change",
            )

    def _listed_transfer(self, to: str, value: int, data: bytes) -> bool:
        if value == 0 and len(data) >= 4 and (to, data[:4]) in self.config.calls:
            return True
        token: str
        if not data:
            token, destination = ZERO_ADDRESS, to
        else:
            if value != 0 or len(data) != 68 or data[:4] not in (TRANSFER, APPROVE) or to == ZERO_ADDRESS:
                return False
            raw = int.from_bytes(data[4:36], "big")
            if raw >> 160:
                return False
            token, destination = to, _word_address(data, 0)
        index = self._asset(token)
        return index is not None and (
            self.config.unrestricted_mask >> index & 1 == 1 or self._allows(destination, index)
        )

    def _time(self, timestamp: int) -> None:
        if self.config.freeze_windows:
            week_second = (timestamp + MONDAY_OFFSET) % 604800
            for k, (start, end) in enumerate(self.config.freeze_windows):
                if start <= week_second < end:
                    day, rest = divmod(start, 86400)
                    self._reject(
                        "CustodyGuardFrozen",
                        (k, week_second),
                        f"freeze_windows[{k}]",
                        f"transfers are frozen: freeze window {k} ({DAYS[day]} {rest // 3600:02d}:{rest % 3600 // 60:02d} UTC, "
                        f"{(end - start) // 60} min) is in force",
                    )
        if self.config.allowed_end != 0:
            day_second = timestamp % 86400
            if not self.config.allowed_start <= day_second < self.config.allowed_end:
                self._reject(
                    "CustodyGuardOutsideAllowedHours",
                    (day_second, self.config.allowed_start, self.config.allowed_end),
                    "allowed_hours",
                    f"transfers are only allowed {_hm(self.config.allowed_start)}-{_hm(self.config.allowed_end)} UTC "
                    f"(now {_hm(day_second)})",
                )

    def _allows(self, destination: str, index: int) -> bool:
        for entry in self.config.destinations:
            if entry.account == destination:
                return entry.asset_mask >> index & 1 == 1
        return False

    def _destination(self, index: int, token: str, destination: str) -> None:
        if self.config.unrestricted_mask >> index & 1:
            return
        if not self._allows(destination, index):
            symbol = self._label(token)[0]
            self._reject(
                "CustodyGuardDestinationNotAllowed",
                (token, destination),
                f"asset.{symbol}.allowlist",
                f"{destination} is not on the {symbol} allowlist",
            )

    def _spend(self, index: int, token: str, amount: int, timestamp: int, states: list[SpendState]) -> None:
        asset = self.config.assets[index]
        symbol, decimals = self._label(token)
        if self.paused:
            self._paused()
        if amount > asset.per_tx_limit:
            self._reject(
                "CustodyGuardPerTxLimitExceeded",
                (token, amount, asset.per_tx_limit),
                f"asset.{symbol}.per_tx_limit",
                f"{format_amount(amount, decimals)} {symbol} exceeds the per-transaction limit of "
                f"{format_amount(asset.per_tx_limit, decimals)} {symbol}",
            )
        state = states[index]
        # the guard never lets its clock run backwards: an earlier block time counts in the latest hour seen
        now_hour = max(timestamp // HOUR, state.hour) if state.seeded else timestamp // HOUR
        buckets = list(state.buckets)
        if not state.seeded:
            total = current = self._seed(token, asset.daily_limit)
        else:
            total, current = state.total, state.current
            if state.hour != now_hour:
                total = self._roll(state, buckets, now_hour)
                current = 0
        if total + amount > asset.daily_limit:
            remaining = asset.daily_limit - total
            self._reject(
                "CustodyGuardDailyLimitExceeded",
                (token, amount, total, asset.daily_limit),
                f"asset.{symbol}.daily_limit",
                f"{format_amount(amount, decimals)} {symbol} would exceed the rolling 24 h limit of "
                f"{format_amount(asset.daily_limit, decimals)} {symbol} ({format_amount(total, decimals)} {symbol} already "
                f"sent, {format_amount(max(remaining, 0), decimals)} {symbol} remaining)",
            )
        states[index] = replace(
            state, total=total + amount, current=current + amount, hour=now_hour, seeded=True, buckets=tuple(buckets)
        )

    def _paused(self) -> None:
        self._reject(
            "CustodyGuardPaused",
            (),
            "pause",
            "the vault is paused: no owner-signed transfer or call until its timelock unpauses it",
        )

    def _roll(self, state: SpendState, buckets: list[tuple[int, int]], now_hour: int) -> int:
        if now_hour - state.hour >= BUCKETS:
            return 0
        total = state.window_total(now_hour)  # before the finished hour overwrites the bucket that left
        buckets[state.hour % RING] = (state.current, state.hour)
        return total

    def _seed(self, token: str, daily: int) -> int:
        if self.previous_guard == ZERO_ADDRESS:
            return 0
        carried = self.previous_totals.get(token)
        return daily if carried is None else min(carried, daily)


def _hm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def _selector(data: bytes) -> bytes:
    """The call's selector as the guard reads it (``_selector``/``_memSelector``): zero for calldata shorter
    than four bytes, not the bytes it has."""
    return data[:4] if len(data) >= 4 else b"\x00" * 4


def _word_address(data: bytes, index: int) -> Address:
    """The ``index``-th argument word after the selector, as an address (its upper bits checked by the caller)."""
    return Address(to_checksum_address(data[16 + 32 * index : 36 + 32 * index]))


def _is_transfer(value: int, data: bytes) -> bool:
    """A plain value transfer: ETH without calldata, or exactly transfer/approve(address,uint256) of a token."""
    if not data:
        return True
    return (
        value == 0
        and len(data) == 68
        and data[:4] in (TRANSFER, APPROVE)
        and int.from_bytes(data[4:36], "big") >> 160 == 0
    )
