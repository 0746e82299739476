"""Policy templates: the declarative definition of a micro-vault, validated with file/line/field errors.

A template is YAML (see ``policies/`` for one per risk class). Every rule carries the compliance
control ids it serves. :func:`load_policy` returns a frozen :class:`Policy` or raises
:class:`TemplateError` listing *every* problem found; :func:`check_policy` returns the problems.
The model it produces (and re-exports) lives in :mod:`custody.policy.model`; this module parses and
validates.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from custody.exceptions import AddressError, AmountError, TemplateError
from custody.policy import limits
from custody.policy._yaml import Problem, Reader
from custody.policy.attest_section import parse_attestations
from custody.policy.model import (
    DAYS,
    ETH,
    MANDATORY_TIMELOCK_OPERATIONS,
    RISK_CLASSES,
    RISK_FLOORS,
    TIMELOCK_OPERATIONS,
    AllowedHours,
    AssetRule,
    ContractCall,
    ExitRule,
    FreezeWindow,
    Labelled,
    MessageDomain,
    OutOfBand,
    Policy,
)
from custody.policy.risk_section import DEFAULT_SETTINGS, parse_risk_section
from custody.types import ZERO_ADDRESS, Address, parse_address, parse_amount

MAX_TIMELOCK_DELAY = limits.MAX_TIMELOCK_DELAY
# What the on-chain CustodyGuard can hold (its policy lives in fixed immutable tables).
MAX_ASSETS = limits.MAX_ASSETS
MAX_DESTINATIONS = limits.MAX_DESTINATIONS
MAX_WINDOWS = limits.MAX_WINDOWS
MAX_CALLS = limits.MAX_CALLS
MAX_MESSAGE_DOMAINS = limits.MAX_MESSAGE_DOMAINS
MAX_LIMIT = 2**96 - 1
_SIGNATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\((?:[a-z0-9\[\]()]+(?:,[a-z0-9\[\]()]+)*)?\)$")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)?$")
_UNITS = {None: 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_CLOCK = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_CONTROL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$")


def parse_duration(raw: str) -> int:
    match = _DURATION.match(raw.strip().lower())
    if not match:
        raise ValueError(f"{raw!r} is not a duration (use e.g. 90s, 30m, 24h, 2d, 1w or plain seconds)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _clock(raw: str) -> int:
    match = _CLOCK.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a UTC time of day (HH:MM, 00:00-24:00)")
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    if minutes > 1440:
        raise ValueError(f"{raw!r} is past 24:00")
    return minutes


class _PolicyReader(Reader):
    def controls(self, node: yaml.Node | None, field: str) -> tuple[str, ...]:
        if node is None:
            return ()
        values = self.string_list(node, field)
        for i, control in enumerate(values):
            if not _CONTROL.match(control):
                self.error(
                    node, f"{field}[{i}]", f"control id {control!r} must be 1-64 characters of A-Z a-z 0-9 _ . : / -"
                )
        return values

    def address(self, node: yaml.Node | None, field: str, *, allow_zero: bool = False) -> Address | None:
        raw = self.text(node, field)
        if raw is None:
            return None
        if not raw:
            self.error(node, field, "is required")
            return None
        try:
            return parse_address(raw, what="address", allow_zero=allow_zero)
        except AddressError as exc:
            self.error(node, field, exc.message)
            return None

    def labelled(self, node: yaml.Node | None, field: str) -> Labelled | None:
        if isinstance(node, yaml.ScalarNode):
            address = self.address(node, field)
            return Labelled(address, "") if address else None
        keys = self.mapping(node, field, allowed={"address", "label"}, required={"address"})
        address = self.address(keys.get("address"), f"{field}.address") if "address" in keys else None
        label = self.text(keys["label"], f"{field}.label") if "label" in keys else ""
        return Labelled(address, label or "") if address else None

    def labelled_list(self, node: yaml.Node | None, field: str, noun: str) -> list[Labelled]:
        """A sequence of labelled addresses, each address once (a repeat is refused naming the ``noun``)."""
        entries: list[Labelled] = []
        seen: set[str] = set()
        for i, item in enumerate(self.sequence(node, field)):
            entry = self.labelled(item, f"{field}[{i}]")
            if entry is None:
                continue
            if entry.address in seen:
                self.error(item, f"{field}[{i}]", f"{noun} {entry.address} is listed twice")
                continue
            seen.add(entry.address)
            entries.append(entry)
        return entries

    def duration(self, node: yaml.Node | None, field: str) -> int | None:
        raw = self.text(node, field)
        if raw is None:
            return None
        try:
            return parse_duration(raw)
        except ValueError as exc:
            self.error(node, field, str(exc))
            return None

    def clock(self, node: yaml.Node | None, field: str) -> int | None:
        raw = self.text(node, field)
        if raw is None:
            return None
        try:
            return _clock(raw)
        except ValueError as exc:
            self.error(node, field, str(exc))
            return None

    def amount(self, node: yaml.Node | None, field: str, decimals: int, symbol: str) -> int | None:
        raw = self.text(node, field)
        if raw is None or not self.exact_scalar(node, field, raw):
            return None
        try:
            return parse_amount(raw, decimals, symbol=symbol)
        except AmountError as exc:
            self.error(node, field, exc.message)
            return None


TOP_KEYS = {
    "version",
    "name",
    "risk_class",
    "description",
    "owners",
    "timelock",
    "assets",
    "freeze_windows",
    "allowed_hours",
    "out_of_band",
    "exit",
    "contract_calls",
    "attestations",
    "messages",
    "risk",
    "guard",
}

# How a vault's guard is deployed: a full CustodyGuard (cheapest checks) or a clone of the shared
# CustodyGuardClone implementation (cheapest creation); benchmarks/snapshots/vault-cost.json has both.
GUARD_DEPLOYMENTS = ("dedicated", "clone")


@dataclass(frozen=True)
class _Header:
    name: str | None
    risk: str | None
    description: str


@dataclass(frozen=True)
class _Owners:
    owners: list[Labelled]
    threshold: int | None
    controls: tuple[str, ...]


@dataclass(frozen=True)
class _Timelock:
    delay: int | None
    operations: tuple[str, ...]
    controls: tuple[str, ...]


def _parse(file: str, text: str) -> tuple[Policy | None, list[Problem]]:
    r = _PolicyReader(file, text)
    if r.root is None:
        if not r.problems:
            r.error(None, "<document>", "the template is empty")
        return None, r.problems
    top = r.mapping(r.root, "", allowed=TOP_KEYS, required={"version", "name", "risk_class", "owners", "timelock"})

    header = _parse_header(r, top)
    risk = header.risk
    owners = _parse_owners(r, top["owners"], risk) if "owners" in top else _Owners([], None, ())
    timelock = (
        _parse_timelock(r, top["timelock"], risk)
        if "timelock" in top
        else _Timelock(None, MANDATORY_TIMELOCK_OPERATIONS, ())
    )
    assets = _parse_assets(r, top["assets"], risk) if "assets" in top else []
    windows = _parse_freeze_windows(r, top["freeze_windows"]) if "freeze_windows" in top else []
    hours = _parse_allowed_hours(r, top["allowed_hours"]) if "allowed_hours" in top else None
    oob_rule = _parse_out_of_band(r, top["out_of_band"]) if "out_of_band" in top else None
    exit_rule = _parse_exit(r, top.get("exit"), owners.owners) if "exit" in top else None
    calls = _parse_calls(r, top["contract_calls"], assets) if "contract_calls" in top else []
    domains = _parse_messages(r, top["messages"], assets) if "messages" in top else []
    attest_rule = parse_attestations(r, top["attestations"]) if "attestations" in top else None
    risk_settings = parse_risk_section(r, top["risk"], duration=r.duration) if "risk" in top else DEFAULT_SETTINGS
    guard_deployment = _parse_guard(r, top["guard"]) if "guard" in top else "dedicated"

    name, threshold, delay = header.name, owners.threshold, timelock.delay
    if r.problems or name is None or risk is None or threshold is None or delay is None:
        return None, r.problems
    policy = Policy(
        name=name,
        risk_class=risk,
        description=header.description,
        owners=tuple(owners.owners),
        threshold=threshold,
        owners_controls=owners.controls,
        timelock_delay=delay,
        timelock_operations=timelock.operations,
        timelock_controls=timelock.controls,
        assets=tuple(assets),
        freeze_windows=tuple(windows),
        allowed_hours=hours,
        out_of_band=oob_rule,
        exit=exit_rule,
        contract_calls=tuple(calls),
        attestations=attest_rule,
        message_domains=tuple(domains),
        source_path=file,
        source_text=text,
        risk=risk_settings or DEFAULT_SETTINGS,
        guard_deployment=guard_deployment,
    )
    return policy, []


def _parse_guard(r: _PolicyReader, node: yaml.Node) -> str:
    """guard: how the vault's guard is deployed (``deployment: dedicated`` or ``clone``)."""
    g = r.mapping(node, "guard", allowed={"deployment"}, required={"deployment"})
    if "deployment" not in g:
        return "dedicated"
    deployment = r.text(g["deployment"], "guard.deployment")
    if deployment is not None and deployment not in GUARD_DEPLOYMENTS:
        r.error(
            g["deployment"], "guard.deployment", f"must be one of {', '.join(GUARD_DEPLOYMENTS)}, got {deployment!r}"
        )
    return deployment if deployment in GUARD_DEPLOYMENTS else "dedicated"


def _parse_header(r: _PolicyReader, top: dict[str, yaml.Node]) -> _Header:
    """version, name, risk_class and description (risk is None when missing or not a known class)."""
    if "version" in top:
        version = r.integer(top["version"], "version")
        if version is not None and version != 1:
            r.error(top["version"], "version", f"unsupported template version {version} (this toolkit reads version 1)")
    name = r.text(top["name"], "name") if "name" in top else None
    if name is not None and not re.match(r"^[a-z0-9][a-z0-9-]{0,47}$", name):
        r.error(top["name"], "name", "must be 1-48 characters of a-z, 0-9 and '-', starting with a letter or digit")
    risk = r.text(top["risk_class"], "risk_class") if "risk_class" in top else None
    if risk is not None and risk not in RISK_CLASSES:
        r.error(top["risk_class"], "risk_class", f"must be one of {', '.join(RISK_CLASSES)}, got {risk!r}")
        risk = None
    description = (r.text(top["description"], "description") or "") if "description" in top else ""
    return _Header(name, risk, description)


def _parse_owners(r: _PolicyReader, node: yaml.Node, risk: str | None) -> _Owners:
    """owners: the signers (each once), the threshold (within the owners and the risk class's floor)."""
    owners: list[Labelled] = []
    threshold = None
    owners_controls: tuple[str, ...] = ()
    o = r.mapping(node, "owners", allowed={"threshold", "signers", "controls"}, required={"threshold", "signers"})
    if "signers" in o:
        owners = r.labelled_list(o["signers"], "owners.signers", "owner")
    if "signers" in o and not owners and not any(p.field.startswith("owners.signers") for p in r.problems):
        r.error(o["signers"], "owners.signers", "needs at least one owner")
    if "threshold" in o:
        threshold = r.integer(o["threshold"], "owners.threshold", minimum=1)
        if threshold is not None and owners and threshold > len(owners):
            r.error(
                o["threshold"],
                "owners.threshold",
                f"threshold {threshold} is greater than the {len(owners)} owner(s)",
            )
        if threshold is not None and risk and threshold < RISK_FLOORS[risk].threshold:
            r.error(
                o["threshold"],
                "owners.threshold",
                f"a {risk} vault needs a threshold of at least {RISK_FLOORS[risk].threshold}, got {threshold}",
            )
    owners_controls = r.controls(o.get("controls"), "owners.controls")
    return _Owners(owners, threshold, owners_controls)


def _parse_timelock(r: _PolicyReader, node: yaml.Node, risk: str | None) -> _Timelock:
    """timelock: the delay (within 30 days and the risk class's floor) and the operations it must hold."""
    delay = None
    operations: tuple[str, ...] = MANDATORY_TIMELOCK_OPERATIONS
    timelock_controls: tuple[str, ...] = ()
    t = r.mapping(node, "timelock", allowed={"delay", "operations", "controls"}, required={"delay"})
    if "delay" in t:
        delay = r.duration(t["delay"], "timelock.delay")
        if delay is not None and delay > MAX_TIMELOCK_DELAY:
            r.error(t["delay"], "timelock.delay", f"delay {delay}s exceeds the 30-day maximum")
        if delay is not None and risk and delay < RISK_FLOORS[risk].timelock_delay:
            r.error(
                t["delay"],
                "timelock.delay",
                f"a {risk} vault needs a timelock delay of at least {RISK_FLOORS[risk].timelock_delay}s, got {delay}s",
            )
    if "operations" in t:
        listed = r.string_list(t["operations"], "timelock.operations")
        for i, op in enumerate(listed):
            if op == "delegatecall":
                r.error(
                    t["operations"],
                    f"timelock.operations[{i}]",
                    "'delegatecall' is not an operation kind: code run in the vault's context through the "
                    "timelock could rewrite its guard, modules or owners, so the guard never lets it pass",
                )
            elif op not in TIMELOCK_OPERATIONS:
                r.error(
                    t["operations"],
                    f"timelock.operations[{i}]",
                    f"unknown operation {op!r} (known: {', '.join(TIMELOCK_OPERATIONS)})",
                )
        missing = [op for op in MANDATORY_TIMELOCK_OPERATIONS if op not in listed]
        if missing:
            r.error(
                t["operations"],
                "timelock.operations",
                f"must include the configuration changes {', '.join(missing)} (they can only happen through the timelock)",
            )
        operations = tuple(dict.fromkeys(listed))
    timelock_controls = r.controls(t.get("controls"), "timelock.controls")
    return _Timelock(delay, operations, timelock_controls)


def _parse_assets(r: _PolicyReader, node: yaml.Node, risk: str | None) -> list[AssetRule]:
    """assets: one rule block per asset, within the guard's capacity (MAX_ASSETS, MAX_DESTINATIONS)."""
    assets: list[AssetRule] = []
    seen_assets: set[str] = set()
    asset_nodes = r.sequence(node, "assets")
    for i, asset_node in enumerate(asset_nodes):
        rule = _parse_asset(r, asset_node, f"assets[{i}]", risk, seen_assets)
        if rule is not None:
            assets.append(rule)

    if len(asset_nodes) > MAX_ASSETS:
        r.error(node, "assets", f"{len(asset_nodes)} assets; the on-chain guard enforces at most {MAX_ASSETS}")
    destinations = {e.address for a in assets for e in a.allowlist}
    if len(destinations) > MAX_DESTINATIONS:
        r.error(
            node,
            "assets",
            f"{len(destinations)} distinct allowlisted destinations; the on-chain guard holds at most {MAX_DESTINATIONS}",
        )
    return assets


def _parse_asset(
    r: _PolicyReader, asset_node: yaml.Node, f: str, risk: str | None, seen_assets: set[str]
) -> AssetRule | None:
    """One asset's rule block: kind, token, limits, allowlist and out-of-band threshold (None when invalid)."""
    a = r.mapping(
        asset_node,
        f,
        allowed={
            "asset",
            "address",
            "symbol",
            "decimals",
            "per_tx_limit",
            "daily_limit",
            "allowlist",
            "out_of_band_above",
            "controls",
        },
        required={"asset", "per_tx_limit", "daily_limit"},
    )
    kind = r.text(a["asset"], f"{f}.asset") if "asset" in a else None
    token: Address | None = None
    symbol = ETH
    decimals = 18
    if kind == "ETH":
        for extra in ("address", "decimals"):
            if extra in a:
                r.error(a[extra], f"{f}.{extra}", "is only for ERC-20 assets (asset: erc20)")
    elif kind == "erc20":
        token = r.address(a["address"], f"{f}.address") if "address" in a else None
        if "address" not in a:
            r.error(asset_node, f"{f}.address", "is required for an ERC-20 asset")
        if "decimals" in a:
            d = r.integer(a["decimals"], f"{f}.decimals", minimum=0)
            if d is not None and d > 36:
                r.error(a["decimals"], f"{f}.decimals", f"decimals {d} is implausible (0-36)")
            decimals = d if d is not None and d <= 36 else 18
        else:
            r.error(asset_node, f"{f}.decimals", "is required for an ERC-20 asset")
        symbol = (r.text(a["symbol"], f"{f}.symbol") or "") if "symbol" in a else ""
        if not symbol:
            r.error(asset_node, f"{f}.symbol", "is required for an ERC-20 asset")
    elif kind is not None:
        r.error(a["asset"], f"{f}.asset", f"must be ETH or erc20, got {kind!r}")
    key = ETH if kind == "ETH" else (token or "")
    if key and key in seen_assets:
        r.error(asset_node, f, f"asset {key} has two rule blocks; merge them")
    seen_assets.add(key)
    per_tx = r.amount(a["per_tx_limit"], f"{f}.per_tx_limit", decimals, symbol) if "per_tx_limit" in a else None
    daily = r.amount(a["daily_limit"], f"{f}.daily_limit", decimals, symbol) if "daily_limit" in a else None
    if per_tx is not None and daily is not None and per_tx > daily:
        r.error(a["per_tx_limit"], f"{f}.per_tx_limit", "per-transaction limit is greater than the daily limit")
    if daily is not None and daily > MAX_LIMIT:
        r.error(a["daily_limit"], f"{f}.daily_limit", "daily limit does not fit the guard's 96-bit amounts")
    allow = r.labelled_list(a["allowlist"], f"{f}.allowlist", "destination") if "allowlist" in a else []
    if risk and RISK_FLOORS[risk].allowlist_required and not allow:
        r.error(asset_node, f"{f}.allowlist", f"a {risk} vault must allowlist its destinations")
    oob = None
    if "out_of_band_above" in a:
        raw = r.text(a["out_of_band_above"], f"{f}.out_of_band_above")
        if raw is not None and r.exact_scalar(a["out_of_band_above"], f"{f}.out_of_band_above", raw):
            try:
                oob = parse_amount(raw, decimals, symbol=symbol, allow_zero=True)
            except AmountError as exc:
                r.error(a["out_of_band_above"], f"{f}.out_of_band_above", exc.message)
    elif risk and RISK_FLOORS[risk].out_of_band_required:
        r.error(
            asset_node,
            f"{f}.out_of_band_above",
            f"a {risk} vault must require out-of-band confirmation (set out_of_band_above)",
        )
    controls = r.controls(a.get("controls"), f"{f}.controls")
    if kind not in ("ETH", "erc20") or per_tx is None or daily is None:
        return None
    return AssetRule(
        symbol=symbol,
        token=token,
        decimals=decimals,
        per_tx_limit=per_tx,
        daily_limit=daily,
        allowlist=tuple(allow),
        out_of_band_above=oob,
        controls=controls,
        line=Reader.line(asset_node),
    )


def _parse_freeze_windows(r: _PolicyReader, node: yaml.Node) -> list[FreezeWindow]:
    """freeze_windows: weekly windows that do not overlap, within MAX_WINDOWS."""
    windows: list[tuple[int, FreezeWindow]] = []
    window_nodes = r.sequence(node, "freeze_windows")
    for i, window_node in enumerate(window_nodes):
        f = f"freeze_windows[{i}]"
        w = r.mapping(
            window_node, f, allowed={"day", "start", "end", "reason", "controls"}, required={"day", "start", "end"}
        )
        day_text = (r.text(w["day"], f"{f}.day") or "").lower() if "day" in w else ""
        if day_text and day_text not in DAYS:
            r.error(w["day"], f"{f}.day", f"must be a weekday name (monday … sunday), got {day_text!r}")
        start = r.clock(w["start"], f"{f}.start") if "start" in w else None
        end = r.clock(w["end"], f"{f}.end") if "end" in w else None
        if start is not None and end is not None and end <= start:
            r.error(w["end"], f"{f}.end", "must be after start (split a window that crosses midnight into two)")
        reason = (r.text(w["reason"], f"{f}.reason") or "") if "reason" in w else ""
        controls = r.controls(w.get("controls"), f"{f}.controls")
        if day_text in DAYS and start is not None and end is not None and end > start:
            window = FreezeWindow(DAYS.index(day_text), start, end, reason, controls)
            for other_index, other in windows:
                if window.week_start < other.week_end and other.week_start < window.week_end:
                    r.error(window_node, f, f"overlaps freeze_windows[{other_index}]")
            windows.append((i, window))

    if len(window_nodes) > MAX_WINDOWS:
        r.error(
            node,
            "freeze_windows",
            f"{len(window_nodes)} windows; the on-chain guard holds at most {MAX_WINDOWS}",
        )
    return [window for _, window in windows]


def _parse_allowed_hours(r: _PolicyReader, node: yaml.Node) -> AllowedHours | None:
    """allowed_hours: one UTC window of the day."""
    hours = None
    h = r.mapping(node, "allowed_hours", allowed={"start", "end", "controls"}, required={"start", "end"})
    start = r.clock(h["start"], "allowed_hours.start") if "start" in h else None
    end = r.clock(h["end"], "allowed_hours.end") if "end" in h else None
    if start is not None and end is not None and end <= start:
        r.error(h["end"], "allowed_hours.end", "must be after start")
    if start is not None and end is not None and end > start:
        hours = AllowedHours(start, end, r.controls(h.get("controls"), "allowed_hours.controls"))
    return hours


def _parse_out_of_band(r: _PolicyReader, node: yaml.Node) -> OutOfBand:
    """out_of_band: whether risky operations need an out-of-band confirmation, and which are excluded."""
    ob = r.mapping(node, "out_of_band", allowed={"risky_operations", "controls", "exclude"})
    risky = r.boolean(ob["risky_operations"], "out_of_band.risky_operations") if "risky_operations" in ob else False
    excluded = r.string_list(ob["exclude"], "out_of_band.exclude") if "exclude" in ob else ()
    oob_rule = OutOfBand(bool(risky), r.controls(ob.get("controls"), "out_of_band.controls"), excluded)
    return oob_rule


def _parse_calls(r: _PolicyReader, node: yaml.Node | None, assets: list[AssetRule]) -> list[ContractCall]:
    from eth_utils import function_signature_to_4byte_selector

    calls: list[ContractCall] = []
    tokens = {a.token for a in assets if a.token}
    for i, entry in enumerate(r.sequence(node, "contract_calls")):
        f = f"contract_calls[{i}]"
        c = r.mapping(
            entry, f, allowed={"address", "functions", "label", "controls"}, required={"address", "functions"}
        )
        target = r.address(c["address"], f"{f}.address") if "address" in c else None
        if target is not None and target in tokens:
            r.error(
                c["address"],
                f"{f}.address",
                f"{target} is a policy asset; its transfers are governed by the asset rules",
            )
            target = None
        label = (r.text(c["label"], f"{f}.label") or "") if "label" in c else ""
        controls = r.controls(c.get("controls"), f"{f}.controls")
        for j, sig_node in enumerate(r.sequence(c["functions"], f"{f}.functions") if "functions" in c else []):
            signature = r.text(sig_node, f"{f}.functions[{j}]")
            if signature is None:
                continue
            signature = signature.replace(" ", "")
            if not _SIGNATURE.match(signature):
                r.error(
                    sig_node,
                    f"{f}.functions[{j}]",
                    f"{signature!r} is not a function signature like mint(address,uint256)",
                )
                continue
            if target is None:
                continue
            selector = function_signature_to_4byte_selector(signature)
            if any(x.target == target and x.selector == selector for x in calls):
                r.error(sig_node, f"{f}.functions[{j}]", f"{signature} on {target} is listed twice")
                continue
            calls.append(ContractCall(target, signature, selector, label, controls))
    if len(calls) > MAX_CALLS:
        r.error(
            node, "contract_calls", f"{len(calls)} contract functions; the on-chain guard holds at most {MAX_CALLS}"
        )
    return calls


def _parse_messages(r: _PolicyReader, node: yaml.Node | None, assets: list[AssetRule]) -> list[MessageDomain]:
    """``messages.domains``: the EIP-712 domains the vault may sign for (ERC-1271)."""
    m = r.mapping(node, "messages", allowed={"domains", "controls"}, required={"domains"})
    controls = r.controls(m.get("controls"), "messages.controls")
    tokens = {a.token for a in assets if a.token}
    domains: list[MessageDomain] = []
    entries = r.sequence(m["domains"], "messages.domains") if "domains" in m else []
    for i, entry in enumerate(entries):
        f = f"messages.domains[{i}]"
        d = r.mapping(
            entry,
            f,
            allowed={"name", "version", "verifying_contract", "label", "controls"},
            required={"name", "verifying_contract"},
        )
        name = r.text(d["name"], f"{f}.name") if "name" in d else None
        version = r.text(d["version"], f"{f}.version") if "version" in d else None
        verifier = r.address(d["verifying_contract"], f"{f}.verifying_contract") if "verifying_contract" in d else None
        if verifier is not None and verifier in tokens:
            r.error(
                d["verifying_contract"],
                f"{f}.verifying_contract",
                f"{verifier} is a policy asset: a signed permit or transfer authorization would move it past "
                "the limits, so the guard refuses its domain",
            )
            verifier = None
        label = (r.text(d["label"], f"{f}.label") or "") if "label" in d else ""
        entry_controls = r.controls(d.get("controls"), f"{f}.controls")
        if name is None or verifier is None:
            continue
        domain = MessageDomain(name, version, verifier, label, entry_controls or controls)
        if any(x.verifying_contract == verifier and x.name == name and x.version == version for x in domains):
            r.error(entry, f, f"domain {name!r} of {verifier} is listed twice")
            continue
        domains.append(domain)
    if len(entries) > MAX_MESSAGE_DOMAINS:
        r.error(
            m["domains"],
            "messages.domains",
            f"{len(entries)} message domains; the on-chain guard holds at most {MAX_MESSAGE_DOMAINS}",
        )
    return domains


def _parse_exit(r: _PolicyReader, node: yaml.Node | None, owners: list[Labelled]) -> ExitRule | None:
    e = r.mapping(
        node,
        "exit",
        allowed={"fallback_custodians", "quorum", "council", "escrow_delay", "owners_can_cancel", "controls"},
        required={"fallback_custodians", "quorum", "escrow_delay"},
    )
    custodians: list[Labelled] = []
    for i, c in enumerate(
        r.sequence(e["fallback_custodians"], "exit.fallback_custodians") if "fallback_custodians" in e else []
    ):
        entry = r.labelled(c, f"exit.fallback_custodians[{i}]")
        if entry is not None:
            if entry.address in {x.address for x in custodians}:
                r.error(c, f"exit.fallback_custodians[{i}]", f"custodian {entry.address} is listed twice")
            else:
                custodians.append(entry)
    if (
        "fallback_custodians" in e
        and not custodians
        and not any(p.field.startswith("exit.fallback_custodians") for p in r.problems)
    ):
        r.error(e["fallback_custodians"], "exit.fallback_custodians", "needs at least one pre-approved custodian")
    council: list[Address] = []
    for i, c in enumerate(r.sequence(e["council"], "exit.council") if "council" in e else []):
        address = r.address(c, f"exit.council[{i}]")
        if address is not None:
            council.append(address)
    quorum = r.integer(e["quorum"], "exit.quorum", minimum=1) if "quorum" in e else None
    initiators = len(council) if council else len(owners)
    if quorum is not None and initiators and quorum > initiators:
        who = "council members" if council else "owners"
        r.error(e["quorum"], "exit.quorum", f"quorum {quorum} is greater than the {initiators} {who}")
    delay = r.duration(e["escrow_delay"], "exit.escrow_delay") if "escrow_delay" in e else None
    if delay is not None and delay < limits.MIN_ESCROW_DELAY:
        r.error(e["escrow_delay"], "exit.escrow_delay", "escrow delay must be at least 1h so an exit can be cancelled")
    if delay is not None and delay > limits.MAX_ESCROW_DELAY:
        r.error(e["escrow_delay"], "exit.escrow_delay", f"escrow delay {delay}s exceeds the 365-day maximum")
    cancel = r.boolean(e["owners_can_cancel"], "exit.owners_can_cancel") if "owners_can_cancel" in e else True
    controls = r.controls(e.get("controls"), "exit.controls")
    if quorum is None or delay is None or not custodians:
        return None
    return ExitRule(tuple(custodians), quorum, tuple(council), delay, bool(cancel), controls)


def check_policy_text(text: str, file: str = "<template>") -> list[Problem]:
    return _parse(file, text)[1]


def check_policy(path: str | Path) -> list[Problem]:
    """Every problem in the template at ``path`` (empty when valid)."""
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return [Problem(file, 1, "<document>", f"cannot read the template: {exc.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return [Problem(file, line, "<document>", "the template is not valid UTF-8")]
    return check_policy_text(text, file)


@functools.lru_cache(maxsize=128)
def load_policy_text(text: str, file: str = "<template>") -> Policy:
    """Parse and validate a template text (cached: a :class:`Policy` is immutable, and vault records,
    badge checks and pre-flight all re-read the same few texts)."""
    policy, problems = _parse(file, text)
    if problems or policy is None:
        raise TemplateError(
            f"policy template {file} has {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems),
            problems=[p.as_dict() for p in problems],
        )
    return policy


def load_policy(path: str | Path) -> Policy:
    """Load and validate a template; raises :class:`TemplateError` listing every problem."""
    problems = check_policy(path)
    if problems:
        raise TemplateError(
            f"policy template {path} has {len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems),
            problems=[p.as_dict() for p in problems],
        )
    return load_policy_text(Path(path).read_text(encoding="utf-8"), str(path))


__all__ = [
    "ETH",
    "RISK_CLASSES",
    "ZERO_ADDRESS",
    "AllowedHours",
    "AssetRule",
    "ExitRule",
    "FreezeWindow",
    "Labelled",
    "MessageDomain",
    "OutOfBand",
    "Policy",
    "Problem",
    "check_policy",
    "check_policy_text",
    "load_policy",
    "load_policy_text",
    "parse_duration",
]
