"""Off-chain pre-flight: the CustodyGuard's decision, computed in Python from the vault's on-chain state.

:class:`GuardModel` mirrors ``CustodyGuard.checkTransaction`` check for check, in the same order, so
that it returns the same verdict — the same custom error with the same arguments — that the guard
would. A hypothesis differential test holds the two together on random transactions and clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector as selector_of
from eth_utils import to_checksum_address

from custody.policy.compiled import KIND_BITS, KIND_NAMES, GuardConfig
from custody.types import ZERO_ADDRESS, Operation, format_amount

BUCKETS = 25
HOUR = 3600
MONDAY_OFFSET = 259200

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
class SpendState:
    """One asset's rolling window as stored by the guard."""

    total: int = 0
    current: int = 0
    hour: int = 0
    seeded: bool = False
    buckets: tuple[tuple[int, int], ...] = ((0, 0),) * BUCKETS  # (amount, hour) per slot

    def window_total(self, now_hour: int) -> int:
        """``windowTotal`` of the guard: what still counts at ``now_hour``."""
        if not self.seeded:
            return 0
        if now_hour == self.hour:
            return self.total
        if now_hour - self.hour >= BUCKETS:
            return 0
        total = self.total
        h = self.hour - 24
        while h + BUCKETS <= now_hour:
            amount, tag = self.buckets[h % BUCKETS]
            if tag == h:
                total -= amount
            h += 1
        return total


@dataclass(frozen=True)
class Verdict:
    """What the guard decides: allowed, or the custom error (name, arguments) and the rule it enforces."""

    allowed: bool
    error: str | None = None
    args: tuple = ()
    rule: str | None = None
    message: str = "allowed by the vault's policy"
    known: bool = True  # False: the installed guard is not a CustodyGuard; only the chain can tell

    def as_dict(self) -> dict:
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
                    "CustodyGuardRefundForbidden", (gas_price, gas_token, refund_receiver), "operation.no_refunds",
                    "gas refunds (non-zero gasPrice) would pay out of the vault outside every limit",
                )  # fmt: skip
            if operation == Operation.DELEGATECALL:
                if to != self.multisend:
                    self._reject(
                        "CustodyGuardDelegateCallForbidden", (to,), "operation.call_only",
                        f"DELEGATECALL to {to} is forbidden (only MultiSendCallOnly {self.multisend} may be delegate-called)",
                    )  # fmt: skip
                self._multisend(data, timestamp, states)
            else:
                self._call(to, value, data, timestamp, states)
        except _Reject as rejected:
            return rejected.verdict, list(self.states)
        return Verdict(True), states

    # -- checks, in the guard's order -----------------------------------------------------------
    def _reject(self, error: str, args: tuple, rule: str, message: str) -> None:
        raise _Reject(Verdict(False, error, tuple(args), rule, message))

    def _asset(self, token: str) -> int | None:
        return self.config.asset_index(token)

    def _label(self, token: str) -> tuple[str, int]:
        if token == ZERO_ADDRESS:
            return "ETH", 18
        return self.symbols.get(token, (token, 0))

    def _call(self, to: str, value: int, data: bytes, timestamp: int, states: list[SpendState]) -> None:
        selector = data[:4] if len(data) >= 4 else b"\x00" * 4
        if to == self.safe:
            self._reject(
                "CustodyGuardSelfCallForbidden", (selector,), "timelock",
                f"the vault may not call itself (selector 0x{selector.hex()}): configuration changes go through its timelock",
            )  # fmt: skip
        if to == self.timelock:
            self._timelock_call(value, data)
            return
        if to == self.guard and value == 0 and data == PAUSE + (1).to_bytes(32, "big"):
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
                "CustodyGuardCallForbidden", (to, selector, value), "assets",
                f"call to {to} (selector 0x{selector.hex()}) is not a transfer of a policy asset",
            )  # fmt: skip
        if len(data) != 68 or selector not in (TRANSFER, APPROVE):
            self._reject(
                "CustodyGuardTokenCallForbidden", (to, selector), f"asset.{self._label(to)[0]}",
                f"only transfer/approve of {self._label(to)[0]} are allowed (got selector 0x{selector.hex()}, {len(data)} bytes)",
            )  # fmt: skip
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
                (self.multisend, data[:4].ljust(4, b"\x00"), 0),
                "operation.call_only",
                "malformed multiSend call",
            )
        offset = int.from_bytes(data[4:36], "big")
        length = int.from_bytes(data[4 + offset : 36 + offset], "big")
        txs = data[36 + offset : 36 + offset + length]
        pos = 0
        while pos < len(txs):
            target = to_checksum_address(txs[pos + 1 : pos + 21])
            if txs[pos] != 0:
                self._reject(
                    "CustodyGuardDelegateCallForbidden",
                    (target,),
                    "operation.call_only",
                    f"a batch may not DELEGATECALL {target}",
                )
            value = int.from_bytes(txs[pos + 21 : pos + 53], "big")
            size = int.from_bytes(txs[pos + 53 : pos + 85], "big")
            self._call(target, value, txs[pos + 85 : pos + 85 + size], timestamp, states)
            pos += 85 + size

    def _timelock_call(self, value: int, data: bytes) -> None:
        selector = data[:4] if len(data) >= 4 else b"\x00" * 4
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
            target, val, payload, _p, _s, _d = decode(
                ["address", "uint256", "bytes", "bytes32", "bytes32", "uint256"], data[4:]
            )
            self._scheduled(to_checksum_address(target), val, payload)
            return
        if selector == SCHEDULE_BATCH:
            targets, values, payloads, _p, _s, _d = decode(
                ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32", "uint256"], data[4:]
            )
            for target, val, payload in zip(targets, values, payloads):
                self._scheduled(to_checksum_address(target), val, payload)
            return
        self._reject(
            "CustodyGuardCallForbidden",
            (self.timelock, selector, value),
            "timelock",
            f"timelock function 0x{selector.hex()} is not allowed",
        )

    def _scheduled(self, target: str, value: int, payload: bytes) -> None:
        kind = self.classify(target, value, payload)
        if kind & self.config.timelock_kinds == 0:
            name = KIND_NAMES.get(kind, "unknown operation")
            self._reject(
                "CustodyGuardTimelockKindForbidden", (kind, target, payload[:4].ljust(4, b"\x00")), "timelock.operations",
                f"the policy does not allow scheduling '{name}' on the timelock",
            )  # fmt: skip

    def classify(self, target: str, value: int, payload: bytes) -> int:
        """Kind bit of a scheduled timelock operation (0 = unknown, never allowed)."""
        selector = payload[:4] if len(payload) >= 4 else b"\x00" * 4
        if target == self.safe:
            if selector != EXEC_FROM_MODULE or value != 0:
                return 0
            to, inner_value, inner, operation = decode(["address", "uint256", "bytes", "uint8"], payload[4:])
            to = to_checksum_address(to)
            if to == self.safe:
                return CONFIG_SELECTORS.get(inner[:4], 0) if len(inner) >= 4 else 0
            if operation != 0:
                return KIND_BITS["delegatecall"]
            return (
                KIND_BITS["over_limit_transfer"]
                if self._listed_transfer(to, inner_value, inner)
                else KIND_BITS["unlisted_transfer"]
            )
        if value == 0 and (target in (self.guard, self.timelock) or (target == self.exit_module != ZERO_ADDRESS)):
            return KIND_BITS["policy"]
        return 0

    def _listed_transfer(self, to: str, value: int, data: bytes) -> bool:
        if value == 0 and len(data) >= 4 and (to, data[:4]) in self.config.calls:
            return True
        if not data:
            token, destination = ZERO_ADDRESS, to
        else:
            if value != 0 or len(data) != 68 or data[:4] not in (TRANSFER, APPROVE) or to == ZERO_ADDRESS:
                return False
            token, destination = to, to_checksum_address(decode(["address"], data[4:36])[0])
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
                        "CustodyGuardFrozen", (k, week_second), f"freeze_windows[{k}]",
                        f"transfers are frozen: freeze window {k} ({DAYS[day]} {rest // 3600:02d}:{rest % 3600 // 60:02d} UTC, "
                        f"{(end - start) // 60} min) is in force",
                    )  # fmt: skip
        if self.config.allowed_end != 0:
            day_second = timestamp % 86400
            if not self.config.allowed_start <= day_second < self.config.allowed_end:
                self._reject(
                    "CustodyGuardOutsideAllowedHours", (day_second, self.config.allowed_start, self.config.allowed_end),
                    "allowed_hours",
                    f"transfers are only allowed {_hm(self.config.allowed_start)}-{_hm(self.config.allowed_end)} UTC "
                    f"(now {_hm(day_second)})",
                )  # fmt: skip

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
                "CustodyGuardDestinationNotAllowed", (token, destination), f"asset.{symbol}.allowlist",
                f"{destination} is not on the {symbol} allowlist",
            )  # fmt: skip

    def _spend(self, index: int, token: str, amount: int, timestamp: int, states: list[SpendState]) -> None:
        asset = self.config.assets[index]
        symbol, decimals = self._label(token)
        if self.paused:
            self._paused()
        if amount > asset.per_tx_limit:
            self._reject(
                "CustodyGuardPerTxLimitExceeded", (token, amount, asset.per_tx_limit), f"asset.{symbol}.per_tx_limit",
                f"{format_amount(amount, decimals)} {symbol} exceeds the per-transaction limit of "
                f"{format_amount(asset.per_tx_limit, decimals)} {symbol}",
            )  # fmt: skip
        state = states[index]
        now_hour = timestamp // HOUR
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
                "CustodyGuardDailyLimitExceeded", (token, amount, total, asset.daily_limit), f"asset.{symbol}.daily_limit",
                f"{format_amount(amount, decimals)} {symbol} would exceed the rolling 24 h limit of "
                f"{format_amount(asset.daily_limit, decimals)} {symbol} ({format_amount(total, decimals)} {symbol} already "
                f"sent, {format_amount(max(remaining, 0), decimals)} {symbol} remaining)",
            )  # fmt: skip
        states[index] = replace(
            state, total=total + amount, current=current + amount, hour=now_hour, seeded=True, buckets=tuple(buckets)
        )

    def _paused(self) -> None:
        self._reject(
            "CustodyGuardPaused", (), "pause",
            "the vault is paused: no owner-signed transfer or call until its timelock unpauses it",
        )  # fmt: skip

    def _roll(self, state: SpendState, buckets: list[tuple[int, int]], now_hour: int) -> int:
        if now_hour - state.hour >= BUCKETS:
            return 0
        if state.current:
            buckets[state.hour % BUCKETS] = (state.current, state.hour)
        total = state.total
        h = state.hour - 24
        while h + BUCKETS <= now_hour:
            amount, tag = buckets[h % BUCKETS]
            if tag == h:
                total -= amount
            h += 1
        return total

    def _seed(self, token: str, daily: int) -> int:
        if self.previous_guard == ZERO_ADDRESS:
            return 0
        carried = self.previous_totals.get(token)
        return daily if carried is None else min(carried, daily)


def _hm(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
