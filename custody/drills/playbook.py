"""Drill playbooks: YAML in ``playbooks/``, validated with file:line:field errors (like policy templates).

A playbook names its setup (vaults created from templates, funded — skipped for the subject vault
when ``--vault`` names an existing one), then steps. Each step is an action from the registry
(:mod:`custody.drills.spec`), who acts, its arguments and the expected outcome::

    version: 1
    name: emergency-exit
    title: Emergency exit to the regulated fallback custodian
    controls: [DORA-Art11]
    params: {custodian: "0x9965…A4dc", initiators: [anvil:4, anvil:7]}
    setup:
      clock: {weekday: tuesday, hour: 10}
      rpc: {timeout: 1s, retries: 2, receipt_timeout: 5s}
      vaults:
        - {as: main, template: templates/drill-vault.yaml, fund: {ETH: "40"}}
    steps:
      - name: the first council member signs
        action: sign_exit
        actor: "{initiators[0]}"
        vault: main
        custodian: "{custodian}"
        expect: {ok: true}

``{name}`` / ``{name[i]}`` insert a parameter (``--param name=value`` overrides its default).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml

from custody.drills._steps import StepParser, decimal_text
from custody.drills.catalogue import registry
from custody.drills.model import Playbook, RpcOverrides, Setup, Value, VaultSetup
from custody.exceptions import PlaybookError
from custody.policy._yaml import Problem, Reader
from custody.policy.model import DAYS
from custody.policy.template import parse_duration

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
PARAM = re.compile(r"^[a-z_][a-z0-9_]{0,47}$")


def load_playbook(path: str | Path) -> Playbook:
    """Read and validate a playbook; raises :class:`PlaybookError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"cannot read playbook {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    playbook, problems = _parse(path, text)
    if problems:
        lines = "; ".join(str(p) for p in problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        raise PlaybookError(
            f"playbook {path} has {len(problems)} problem(s): {lines}", problems=[p.as_dict() for p in problems]
        )
    assert playbook is not None
    return playbook


def check_playbook(path: str | Path) -> list[Problem]:
    """Every problem in a playbook (empty when valid)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Problem(str(path), 1, "<document>", f"cannot read: {getattr(exc, 'strerror', None) or exc}")]
    return _parse(path, text)[1]


def _parse(path: Path, text: str) -> tuple[Playbook | None, list[Problem]]:

    r = Reader(str(path), text)
    if r.root is None:
        return None, r.problems
    top = r.mapping(
        r.root,
        "",
        allowed=(
            "version",
            "name",
            "title",
            "description",
            "controls",
            "params",
            "setup",
            "steps",
            "continue_on_failure",
        ),
        required=("version", "name", "title", "steps"),
    )
    version = r.integer(top.get("version"), "version") if "version" in top else None
    if version is not None and version != 1:
        r.error(top["version"], "version", f"unsupported playbook version {version} (this tool reads version 1)")
    name = r.text(top.get("name"), "name") if "name" in top else ""
    if name and not NAME.match(name):
        r.error(top["name"], "name", f"{name!r} must be 1-48 of a-z, 0-9, '-'")
    title = (r.text(top.get("title"), "title") or "") if "title" in top else ""
    description = (r.text(top["description"], "description") or "") if "description" in top else ""
    controls = r.string_list(top["controls"], "controls") if "controls" in top else ()
    params = _params(r, top.get("params"))
    cont = bool(r.boolean(top["continue_on_failure"], "continue_on_failure")) if "continue_on_failure" in top else False
    setup = _setup(r, path, top.get("setup"))
    aliases = {v.alias for v in setup.vaults}
    parser = StepParser(r, registry(), params, aliases)
    steps = tuple(parser.step(i, node) for i, node in enumerate(r.sequence(top.get("steps"), "steps")))
    if "steps" in top and not steps and not r.problems:
        r.error(top["steps"], "steps", "a playbook needs at least one step")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    playbook = Playbook(
        path=path,
        name=name or "",
        title=title,
        description=description,
        controls=controls,
        params=params,
        setup=setup,
        steps=steps,
        continue_on_failure=cont,
        sha256=digest,
    )
    return playbook, r.problems


def _params(r: Reader, node: yaml.Node | None) -> dict[str, Value]:
    if node is None:
        return {}
    params: dict[str, Value] = {}
    if not isinstance(node, yaml.MappingNode):
        r.error(node, "params", "must be a mapping of name: value")
        return params
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if not PARAM.match(key):
            r.error(key_node, f"params.{key}", "parameter names are a-z, 0-9, '_' (starting with a letter or '_')")
            continue
        if isinstance(value_node, yaml.SequenceNode):
            params[key] = r.string_list(value_node, f"params.{key}")
        else:
            params[key] = r.text(value_node, f"params.{key}") or ""
    return params


def _setup(r: Reader, path: Path, node: yaml.Node | None) -> Setup:
    if node is None:
        return Setup()
    m = r.mapping(node, "setup", allowed=("vaults", "clock", "rpc"))
    clock = None
    if "clock" in m:
        c = r.mapping(m["clock"], "setup.clock", allowed=("weekday", "hour"), required=("weekday", "hour"))
        day = (r.text(c.get("weekday"), "setup.clock.weekday") or "").lower() if "weekday" in c else ""
        hour = r.integer(c.get("hour"), "setup.clock.hour", minimum=0) if "hour" in c else None
        if day and day not in DAYS:
            r.error(c["weekday"], "setup.clock.weekday", f"{day!r} is not a weekday ({', '.join(DAYS)})")
        elif hour is not None and hour > 23:
            r.error(c["hour"], "setup.clock.hour", f"must be 0-23, got {hour}")
        elif day and hour is not None:
            clock = (DAYS.index(day), hour)
    rpc: RpcOverrides = {}
    if "rpc" in m:
        fields = r.mapping(m["rpc"], "setup.rpc", allowed=("timeout", "retries", "receipt_timeout"))
        for key, value in fields.items():
            where = f"setup.rpc.{key}"
            if key == "retries":
                number = r.integer(value, where, minimum=0)
                if number is not None:
                    rpc["retries"] = number
                continue
            raw = r.text(value, where)
            try:
                seconds = parse_duration(raw or "")
            except ValueError as exc:
                r.error(value, where, str(exc))
                continue
            if seconds <= 0:
                r.error(value, where, "must be at least 1s")
            if key == "timeout":
                rpc["timeout"] = seconds
            else:
                rpc["receipt_timeout"] = seconds
    vaults: list[VaultSetup] = []
    for i, item in enumerate(r.sequence(m["vaults"], "setup.vaults") if "vaults" in m else []):
        where = f"setup.vaults[{i}]"
        v = r.mapping(item, where, allowed=("as", "template", "subject", "fund"), required=("as", "template"))
        alias = r.text(v.get("as"), f"{where}.as") or "" if "as" in v else ""
        if alias and not ALIAS.match(alias):
            r.error(v["as"], f"{where}.as", f"{alias!r} must be 1-24 of a-z, 0-9, '_', '-' starting with a letter")
        elif alias in {x.alias for x in vaults}:
            r.error(v["as"], f"{where}.as", f"vault alias {alias!r} is used twice")
        template = Path(r.text(v.get("template"), f"{where}.template") or "") if "template" in v else Path()
        if "template" in v:
            template = template if template.is_absolute() else (path.parent / template).resolve()
            if not template.is_file():
                r.error(v["template"], f"{where}.template", f"template file {template} does not exist")
        subject = bool(r.boolean(v["subject"], f"{where}.subject")) if "subject" in v else False
        fund: list[tuple[str, str]] = []
        if "fund" in v:
            if not isinstance(v["fund"], yaml.MappingNode):
                r.error(v["fund"], f"{where}.fund", "must be a mapping of asset: amount")
            for key_node, amount_node in (
                getattr(v["fund"], "value", []) if isinstance(v["fund"], yaml.MappingNode) else []
            ):
                asset = str(key_node.value)
                amount = r.text(amount_node, f"{where}.fund.{asset}")
                if amount is not None and not decimal_text(amount):
                    r.error(amount_node, f"{where}.fund.{asset}", f"{amount!r} is not a positive decimal amount")
                fund.append((asset, amount or "0"))
        vaults.append(VaultSetup(alias, template, subject, tuple(fund), r.line(item)))
    if sum(v.subject for v in vaults) > 1:
        r.error(m.get("vaults"), "setup.vaults", "at most one vault can be the subject (replaced by --vault)")
    return Setup(vaults=tuple(vaults), clock=clock, rpc=rpc)
