"""Drill playbooks as values: steps, expectations, setup, parameters (parsed by :mod:`custody.drills.playbook`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict

from custody.exceptions import PlaybookError

REF = re.compile(r"\{([a-z_][a-z0-9_]*)(?:\[(\d+)\])?\}")
Value = str | tuple[str, ...]


@dataclass(frozen=True)
class BalanceCheck:
    of: str
    asset: str
    op: str  # one of BALANCE_OPS
    amount: str | None  # None for `unchanged`
    line: int

    def as_dict(self) -> dict[str, Any]:
        return {"of": self.of, "asset": self.asset, self.op: True if self.amount is None else self.amount}


@dataclass(frozen=True)
class StateCheck:
    vault: str
    checks: tuple[tuple[str, Value], ...]  # (key, expected) in file order
    line: int

    def as_dict(self) -> dict[str, Any]:
        return {"vault": self.vault, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.checks}}


@dataclass(frozen=True)
class Expectation:
    ok: bool = True
    error: str | None = None
    message: str | None = None
    data: tuple[tuple[str, str], ...] = ()
    balances: tuple[BalanceCheck, ...] = ()
    state: StateCheck | None = None
    duplicate_nonces: int | None = None
    max_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok}
        if self.error:
            out["error"] = self.error
        if self.message:
            out["message"] = self.message
        if self.data:
            out["data"] = dict(self.data)
        if self.balances:
            out["balance"] = [b.as_dict() for b in self.balances]
        if self.state is not None:
            out["state"] = self.state.as_dict()
        if self.duplicate_nonces is not None:
            out["broadcasts"] = {"duplicate_nonces": self.duplicate_nonces}
        if self.max_seconds is not None:
            out["max_seconds"] = self.max_seconds
        return out


@dataclass(frozen=True)
class Step:
    index: int
    name: str
    action: str
    actor: tuple[str, ...]
    args: Mapping[str, Value]
    expect: Expectation
    line: int
    note: str = ""


@dataclass(frozen=True)
class VaultSetup:
    alias: str
    template: Path
    subject: bool
    fund: tuple[tuple[str, str], ...]
    line: int


class RpcOverrides(TypedDict, total=False):
    """A playbook's ``setup.rpc``: the :class:`~custody.chain.rpc.RpcPolicy` fields a drill may change."""

    timeout: float  # seconds
    retries: int
    receipt_timeout: float  # seconds


@dataclass(frozen=True)
class Setup:
    vaults: tuple[VaultSetup, ...] = ()
    clock: tuple[int, int] | None = None  # (weekday 0 = Monday, hour UTC)
    rpc: RpcOverrides = field(default_factory=RpcOverrides)

    @property
    def subject(self) -> VaultSetup | None:
        return next((v for v in self.vaults if v.subject), self.vaults[0] if self.vaults else None)


@dataclass(frozen=True)
class Playbook:
    path: Path
    name: str
    title: str
    description: str
    controls: tuple[str, ...]
    params: Mapping[str, Value]
    setup: Setup
    steps: tuple[Step, ...]
    continue_on_failure: bool
    sha256: str

    def with_params(self, overrides: Mapping[str, str]) -> Playbook:
        """A copy with parameter overrides (lists: comma-separated); unknown names are refused."""
        params = dict(self.params)
        for name, raw in overrides.items():
            if name not in params:
                known = ", ".join(sorted(params)) or "none"
                raise PlaybookError(f"playbook {self.name} has no parameter {name!r} (parameters: {known})")
            default = params[name]
            params[name] = tuple(p.strip() for p in raw.split(",") if p.strip()) if isinstance(default, tuple) else raw
        return replace(self, params=params)


def substitute(value: Value, params: Mapping[str, Value]) -> Value:
    """Insert parameters: a whole-value ``{p}`` may be a list; inside text only single values fit."""
    if isinstance(value, tuple):
        out: list[str] = []
        for item in value:
            resolved = substitute(item, params)
            out.extend(resolved if isinstance(resolved, tuple) else (resolved,))
        return tuple(out)
    whole = REF.fullmatch(value)
    if whole:
        return _lookup(whole, params)

    def one(match: re.Match[str]) -> str:
        found = _lookup(match, params)
        if isinstance(found, tuple):
            raise PlaybookError(f"parameter {match.group(1)} is a list and cannot be part of the text {value!r}")
        return found

    return REF.sub(one, value)


def _lookup(match: re.Match[str], params: Mapping[str, Value]) -> Value:
    name, index = match.group(1), match.group(2)
    if name not in params:
        raise PlaybookError(f"unknown parameter {name!r}")
    found = params[name]
    if index is None:
        return found
    if not isinstance(found, tuple) or int(index) >= len(found):
        raise PlaybookError(f"parameter {name} has no item [{index}]")
    return found[int(index)]
