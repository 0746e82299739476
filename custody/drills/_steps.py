"""Parsing and validating playbook steps and their expectations (file:line:field problems)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal, InvalidOperation

import yaml

from custody.drills.model import REF, BalanceCheck, Expectation, StateCheck, Step, Value
from custody.drills.spec import ActionSpec, Param
from custody.policy._yaml import Reader, _closest
from custody.policy.template import parse_duration

STEP_KEYS = ("name", "action", "actor", "expect", "note")
EXPECT_KEYS = ("ok", "error", "message", "data", "balance", "state", "broadcasts", "max_seconds")
BALANCE_OPS = ("equals", "at_least", "at_most", "increased_by", "decreased_by", "unchanged")
STATE_KEYS = ("vault", "paused", "threshold", "owners_include", "owners_exclude", "exit_pending")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
URI = re.compile(r"^[a-z][a-z0-9+.-]*:.+$")
HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def decimal_text(text: str) -> bool:
    """A non-negative finite decimal written as text (never a float)."""
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        return False
    return value.is_finite() and value >= 0


class StepParser:
    """Parses steps in order, tracking the aliases earlier steps define (vaults, proposals, keys)."""

    def __init__(self, r: Reader, actions: Mapping[str, ActionSpec], params: Mapping[str, Value], vaults: set[str]):
        self.r = r
        self.actions = actions
        self.params = params
        self.defined: dict[str, set[str]] = {"vault": set(vaults), "proposal": set(), "key": set()}

    # -- values --------------------------------------------------------------------------------
    def _refs_ok(self, node: yaml.Node, where: str, text: str) -> bool:
        """Check ``{param}`` references; True when the text has none (so its kind can be checked now)."""
        refs = REF.findall(text)
        for name, index in refs:
            if name not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                self.r.error(node, where, f"unknown parameter {{{name}}} (parameters: {known})")
            elif index and (not isinstance(self.params[name], tuple) or int(index) >= len(self.params[name])):
                self.r.error(node, where, f"parameter {name} has no item [{index}]")
        return not refs

    def _check(self, node: yaml.Node, where: str, text: str, kind: str, choices: tuple[str, ...] = ()) -> None:
        if not self._refs_ok(node, where, text):
            return
        r = self.r
        if choices and text not in choices:
            r.error(node, where, f"{text!r} is not one of {', '.join(choices)}")
        elif kind in ("vault", "vaults") and text not in self.defined["vault"]:
            r.error(node, where, f"unknown vault {text!r}" + self._known("vault"))
        elif kind == "proposal" and text not in self.defined["proposal"]:
            r.error(node, where, f"unknown proposal {text!r}" + self._known("proposal"))
        elif kind == "address" and not (text in self.defined["vault"] or URI.match(text) or HEX_ADDRESS.match(text)):
            r.error(node, where, f"{text!r} is neither a vault alias, a signer URI nor a 0x address")
        elif kind == "amount" and not decimal_text(text):
            r.error(node, where, f'{text!r} is not a decimal amount (write it as text, e.g. "2.5")')
        elif kind == "int" and not re.fullmatch(r"\d+", text):
            r.error(node, where, f"must be a whole number, got {text!r}")
        elif kind == "bool" and text.lower() not in ("true", "false", "yes", "no", "on", "off"):
            r.error(node, where, f"must be true or false, got {text!r}")
        elif kind == "alias" and not ALIAS.match(text):
            r.error(node, where, f"{text!r} must be 1-24 of a-z, 0-9, '_', '-' starting with a letter")
        elif kind == "duration":
            try:
                parse_duration(text)
            except ValueError as exc:
                self.r.error(node, where, str(exc))

    def _known(self, what: str) -> str:
        names = sorted(self.defined[what])
        return f" (defined so far: {', '.join(names)})" if names else f" (no {what} is defined before this step)"

    def _value(self, node: yaml.Node, where: str, param: Param) -> Value | None:
        if param.kind == "vaults" or (param.kind == "address" and isinstance(node, yaml.SequenceNode)):
            items = self.r.string_list(node, where)
            for i, (item, item_text) in enumerate(zip(node.value, items)):
                self._check(item, f"{where}[{i}]", item_text, "vault" if param.kind == "vaults" else param.kind)
            return items
        text = self.r.text(node, where)
        if text is None:
            return None
        self._check(node, where, text, param.kind, param.choices)
        return text

    def _actor(self, node: yaml.Node | None, where: str, spec: ActionSpec, step: yaml.Node) -> tuple[str, ...]:
        if node is None:
            if spec.actor in ("signers", "signer"):
                self.r.error(step, where, f"action {spec.name} needs an actor (signer URI)")
            return ()
        if spec.actor == "none":
            self.r.error(node, where, f"action {spec.name} takes no actor")
            return ()
        raw = self.r.string_list(node, where) if isinstance(node, yaml.SequenceNode) else (self.r.text(node, where),)
        actors = tuple(a for a in raw if a)
        for text in actors:
            if self._refs_ok(node, where, text) and not URI.match(text):
                self.r.error(
                    node, where, f"actor {text!r} is not a signer URI (anvil:N, keystore:NAME, pkcs11:…, key:NAME)"
                )
            elif text.startswith("key:") and text[4:] not in self.defined["key"] and not REF.search(text):
                self.r.error(node, where, f"key {text[4:]!r} is not generated before this step (generate_key)")
        if spec.actor == "signer" and len(actors) != 1 and not any(REF.search(a) for a in actors):
            self.r.error(node, where, f"action {spec.name} takes exactly one actor")
        return actors

    # -- steps -------------------------------------------------------------------------------------
    def step(self, index: int, node: yaml.Node) -> Step:
        r, where = self.r, f"steps[{index}]"
        line = r.line(node)
        empty = Step(index, "", "", (), {}, Expectation(), line)
        if not isinstance(node, yaml.MappingNode):
            r.error(node, where, "must be a mapping (action: …)")
            return empty
        raw_action = next((v for k, v in node.value if getattr(k, "value", None) == "action"), None)
        action = (r.text(raw_action, f"{where}.action") or "") if raw_action is not None else ""
        spec = self.actions.get(action)
        if raw_action is None:
            r.error(node, f"{where}.action", "is required")
        elif spec is None:
            hint = _closest(action, set(self.actions))
            r.error(
                raw_action,
                f"{where}.action",
                f"unknown action {action!r}" + (f" (did you mean {hint!r}?)" if hint else ""),
            )
        if spec is None:
            r.mapping(node, where, allowed=(*STEP_KEYS, *{k.value for k, _v in node.value}))  # duplicates only
            return replace(empty, action=action)
        names = [p.name for p in spec.params]
        required = ["action", *(p.name for p in spec.params if p.required)]
        m = r.mapping(node, where, allowed=(*STEP_KEYS, *names), required=required)
        actor = self._actor(m.get("actor"), f"{where}.actor", spec, node)
        args: dict[str, Value] = {}
        for param in spec.params:
            if param.name in m:
                value = self._value(m[param.name], f"{where}.{param.name}", param)
                if value is not None:
                    args[param.name] = value
        if spec.one_of and sum(1 for n in spec.one_of if n in m) != 1:
            r.error(node, where, f"action {spec.name} needs exactly one of: {', '.join(spec.one_of)}")
        for param in spec.params:
            if param.kind == "alias" and isinstance(args.get(param.name), str):
                self.defined[param.defines].add(str(args[param.name]))
        expect = self.expect(m["expect"], f"{where}.expect") if "expect" in m else Expectation()
        if spec.implied is not None:
            expect = replace(expect, **spec.implied(args, line))
        name = (r.text(m["name"], f"{where}.name") or "") if "name" in m else ""
        note = (r.text(m["note"], f"{where}.note") or "") if "note" in m else ""
        return Step(index, name or spec.summary, action, actor, args, expect, line, note)

    # -- expectations ----------------------------------------------------------------------------
    def expect(self, node: yaml.Node, where: str) -> Expectation:
        r = self.r
        m = r.mapping(node, where, allowed=EXPECT_KEYS)
        ok = r.boolean(m["ok"], f"{where}.ok") if "ok" in m else None
        error = r.text(m["error"], f"{where}.error") if "error" in m else None
        if error is not None and not IDENT.match(error):
            r.error(
                m["error"],
                f"{where}.error",
                f"{error!r} is not an error name (e.g. CustodyGuardPaused, RpcUnreachable)",
            )
        if error and ok is True:
            r.error(m["ok"], f"{where}.ok", "ok: true contradicts an expected error")
        message = r.text(m["message"], f"{where}.message") if "message" in m else None
        data: list[tuple[str, str]] = []
        if "data" in m:
            if not isinstance(m["data"], yaml.MappingNode):
                r.error(m["data"], f"{where}.data", "must be a mapping of fact: value")
            else:
                for key_node, value_node in m["data"].value:
                    text = r.text(value_node, f"{where}.data.{key_node.value}")
                    if text is not None:
                        data.append((str(key_node.value), text))
        balances: tuple[BalanceCheck, ...] = ()
        if "balance" in m:
            items = m["balance"].value if isinstance(m["balance"], yaml.SequenceNode) else [m["balance"]]
            balances = tuple(b for i, n in enumerate(items) if (b := self.balance(n, f"{where}.balance[{i}]")))
        state = self.state(m["state"], f"{where}.state") if "state" in m else None
        duplicates = None
        if "broadcasts" in m:
            broadcasts = r.mapping(
                m["broadcasts"], f"{where}.broadcasts", allowed=("duplicate_nonces",), required=("duplicate_nonces",)
            )
            if "duplicate_nonces" in broadcasts:
                duplicates = r.integer(
                    broadcasts["duplicate_nonces"], f"{where}.broadcasts.duplicate_nonces", minimum=0
                )
        max_seconds = None
        if "max_seconds" in m:
            text = r.text(m["max_seconds"], f"{where}.max_seconds") or ""
            if decimal_text(text) and Decimal(text) > 0:
                max_seconds = float(text)
            else:
                r.error(m["max_seconds"], f"{where}.max_seconds", f"must be a positive number of seconds, got {text!r}")
        return Expectation(
            ok=False if error else (True if ok is None else ok),
            error=error,
            message=message,
            data=tuple(data),
            balances=balances,
            state=state,
            duplicate_nonces=duplicates,
            max_seconds=max_seconds,
        )

    def balance(self, node: yaml.Node, where: str) -> BalanceCheck | None:
        r = self.r
        m = r.mapping(node, where, allowed=("of", "asset", *BALANCE_OPS), required=("of",))
        ops = [op for op in BALANCE_OPS if op in m]
        if len(ops) != 1:
            r.error(node, where, f"name exactly one of {', '.join(BALANCE_OPS)}")
            return None
        of = r.text(m["of"], f"{where}.of") if "of" in m else None
        if of:
            self._check(m["of"], f"{where}.of", of, "address")
        asset = (r.text(m["asset"], f"{where}.asset") or "ETH") if "asset" in m else "ETH"
        op = ops[0]
        amount = None
        if op == "unchanged":
            if r.boolean(m[op], f"{where}.unchanged") is not True:
                r.error(m[op], f"{where}.unchanged", "write `unchanged: true`")
        else:
            amount = r.text(m[op], f"{where}.{op}")
            if amount is not None:
                self._check(m[op], f"{where}.{op}", amount, "amount")
        return BalanceCheck(of or "", asset, op, amount, r.line(node)) if of else None

    def state(self, node: yaml.Node, where: str) -> StateCheck | None:
        r = self.r
        m = r.mapping(node, where, allowed=STATE_KEYS, required=("vault",))
        vault = r.text(m["vault"], f"{where}.vault") if "vault" in m else None
        if vault:
            self._check(m["vault"], f"{where}.vault", vault, "vault")
        checks: list[tuple[str, Value]] = []
        for key in STATE_KEYS[1:]:
            if key not in m:
                continue
            at = f"{where}.{key}"
            if key in ("paused", "exit_pending"):
                value = r.boolean(m[key], at)
                if value is not None:
                    checks.append((key, "true" if value else "false"))
            elif key == "threshold":
                number = r.integer(m[key], at, minimum=1)
                if number is not None:
                    checks.append((key, str(number)))
            else:
                items = (
                    r.string_list(m[key], at) if isinstance(m[key], yaml.SequenceNode) else (r.text(m[key], at) or "",)
                )
                for item in items:
                    self._check(m[key], at, item, "address")
                checks.append((key, tuple(items)))
        if not checks and vault:
            r.error(node, where, f"name at least one of {', '.join(STATE_KEYS[1:])}")
        return StateCheck(vault, tuple(checks), r.line(node)) if vault else None
