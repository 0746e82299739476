"""Expected vs observed: what a step did, and the per-field diff when it is not what the playbook said."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from custody.drills.actions_ops import vault_state
from custody.drills.context import DrillContext
from custody.drills.model import BalanceCheck, Expectation, StateCheck, substitute
from custody.exceptions import CustodyError, DrillError
from custody.types import format_amount, parse_amount

_CUSTOM_ERROR = re.compile(r"\b([A-Z][A-Za-z0-9]+)\(")


@dataclass(frozen=True)
class Observed:
    """What a step did: ok with facts, or which error (exception kinds and on-chain custom error)."""

    ok: bool
    seconds: float
    data: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kinds: tuple[str, ...] = ()
    onchain_error: str | None = None
    message: str | None = None

    @classmethod
    def failure(cls, exc: BaseException, seconds: float) -> Observed:
        kinds = tuple(k.__name__ for k in type(exc).__mro__ if k not in (BaseException, Exception, object))
        message = exc.message if isinstance(exc, CustodyError) else f"{type(exc).__name__}: {exc}"
        return cls(
            ok=False,
            seconds=seconds,
            error=type(exc).__name__,
            error_kinds=kinds,
            onchain_error=onchain_error(exc),
            message=message,
        )

    def summary(self) -> str:
        if self.ok:
            return "ok"
        onchain = f" / {self.onchain_error}" if self.onchain_error and self.onchain_error != self.error else ""
        return f"{self.error}{onchain}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "seconds": round(self.seconds, 3), "data": dict(self.data)}
        if not self.ok:
            out.update(
                error=self.error,
                error_kinds=list(self.error_kinds),
                onchain_error=self.onchain_error,
                message=self.message,
            )
        return out


def onchain_error(exc: BaseException) -> str | None:
    """The contract's custom error behind a failure (the guard's verdict, a decoded revert), if any."""
    if not isinstance(exc, CustodyError):
        return None
    verdict = exc.details.get("verdict")
    if isinstance(verdict, dict) and verdict.get("error"):
        return str(verdict["error"])
    reason = exc.details.get("reason")
    match = _CUSTOM_ERROR.search(str(reason)) if reason else None
    return match.group(1) if match else None


@dataclass(frozen=True)
class Diff:
    field: str
    expected: str
    observed: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "expected": self.expected, "observed": self.observed}

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, observed {self.observed}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def baselines(ctx: DrillContext, expect: Expectation, params: Mapping[str, Any]) -> dict[int, int]:
    """Balances read before a step, for relative checks (increased_by, decreased_by, unchanged)."""

    out: dict[int, int] = {}
    for i, check in enumerate(expect.balances):
        if check.op in ("increased_by", "decreased_by", "unchanged"):
            who = ctx.address(str(substitute(check.of, params)))
            out[i] = ctx.balance(who, ctx.asset(str(substitute(check.asset, params))))
    return out


def evaluate(
    ctx: DrillContext, expect: Expectation, observed: Observed, before: Mapping[int, int], params: Mapping[str, Any]
) -> list[Diff]:
    """Every way ``observed`` differs from ``expect`` (empty: the step passed)."""

    diffs: list[Diff] = []
    if expect.ok and not observed.ok:
        diffs.append(Diff("outcome", "ok", observed.summary()))
    elif not expect.ok and observed.ok:
        diffs.append(Diff("outcome", f"error {expect.error or '(any)'}", "ok"))
    elif expect.error and expect.error not in (*observed.error_kinds, observed.onchain_error):
        diffs.append(Diff("error", expect.error, observed.summary()))
    if expect.message and (observed.message is None or expect.message.lower() not in observed.message.lower()):
        diffs.append(Diff("message", f"containing {expect.message!r}", repr(observed.message)))
    for key, wanted in expect.data:
        wanted = str(substitute(wanted, params))
        got = _text(observed.data.get(key)) if key in observed.data else "(absent)"
        if got != wanted:
            diffs.append(Diff(f"data.{key}", wanted, got))
    # a check that cannot be evaluated (an unknown asset, a vault the step failed to create) is a diff of
    # its own: the outcome diffs above stay in the report
    for i, check in enumerate(expect.balances):
        try:
            diff = _balance(ctx, check, before.get(i), params)
        except CustodyError as exc:
            wanted = "unchanged" if check.amount is None else f"{check.op.replace('_', ' ')} {check.amount}"
            diff = Diff(f"balance of {check.of} ({check.asset})", wanted, f"could not be checked: {exc.message}")
        if diff is not None:
            diffs.append(diff)
    if expect.state is not None:
        try:
            diffs.extend(_state(ctx, expect.state, params))
        except CustodyError as exc:
            diffs.append(Diff(f"state of {expect.state.vault}", "checkable", f"could not be checked: {exc.message}"))
    if expect.duplicate_nonces is not None:
        found = len(ctx.proxy.duplicate_nonces()) if ctx.proxy is not None else None
        if found != expect.duplicate_nonces:
            diffs.append(Diff("broadcasts.duplicate_nonces", str(expect.duplicate_nonces), _text(found)))
    if expect.max_seconds is not None and observed.seconds > expect.max_seconds:
        diffs.append(Diff("seconds", f"at most {expect.max_seconds:g}", f"{observed.seconds:.2f}"))
    return diffs


def _balance(ctx: DrillContext, check: BalanceCheck, before: int | None, params: Mapping[str, Any]) -> Diff | None:

    of = str(substitute(check.of, params))
    asset = ctx.asset(str(substitute(check.asset, params)))
    now = ctx.balance(ctx.address(of), asset)
    where = f"balance of {of} ({asset.symbol})"
    if check.amount is not None:
        amount = parse_amount(
            str(substitute(check.amount, params)), asset.decimals, symbol=asset.symbol, allow_zero=True
        )
    elif check.op == "unchanged":
        amount = 0  # `unchanged` carries no amount: the wanted change is zero
    else:  # the playbook parser gives every other check an amount
        raise DrillError(f"{where}: {check.op} names no amount (line {check.line})")

    def show(units: int) -> str:
        return format_amount(units, asset.decimals)

    def sign(change: int) -> str:
        return ("+" if change >= 0 else "-") + show(abs(change))

    if check.op == "equals" and now != amount:
        return Diff(where, f"= {check.amount}", show(now))
    if check.op == "at_least" and now < amount:
        return Diff(where, f">= {check.amount}", show(now))
    if check.op == "at_most" and now > amount:
        return Diff(where, f"<= {check.amount}", show(now))
    if check.op in ("increased_by", "decreased_by", "unchanged"):
        assert before is not None
        delta = now - before
        wanted = 0 if check.op == "unchanged" else (amount if check.op == "increased_by" else -amount)
        if delta != wanted:
            return Diff(where, f"change {sign(wanted)}", f"change {sign(delta)} (now {show(now)})")
    return None


def _state(ctx: DrillContext, check: StateCheck, params: Mapping[str, Any]) -> list[Diff]:

    state = vault_state(ctx, check.vault)
    diffs = []
    owners = {o.lower() for o in state["owners"]}
    for key, wanted in check.checks:
        wanted = substitute(wanted, params)
        if key in ("owners_include", "owners_exclude"):
            items = wanted if isinstance(wanted, tuple) else (wanted,)
            for item in items:
                address = ctx.address(item)
                present = address.lower() in owners
                if present != (key == "owners_include"):
                    diffs.append(Diff(f"state.{key}", f"{item} ({address})", f"owners {', '.join(state['owners'])}"))
        elif key == "threshold" and Decimal(str(state["threshold"])) != Decimal(str(wanted)):
            diffs.append(Diff("state.threshold", str(wanted), str(state["threshold"])))
        elif key in ("paused", "exit_pending") and _text(state[key]) != str(wanted).lower():
            diffs.append(Diff(f"state.{key}", str(wanted).lower(), _text(state[key])))
    return diffs
