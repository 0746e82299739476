"""The ``risk:`` section of a policy template: what the pre-sign risk engine's bands require.

::

    risk:
      on_error: deny            # what an engine error or timeout yields: deny (default) | warn
      timeout_ms: 2000          # decision deadline; past it the decision is on_error
      warn:                     # a Warn verdict executes only with ...
        out_of_band: true       #   an out-of-band confirmation by someone other than the proposer
        extra_signers: 1        #   this many owner signatures beyond the threshold
      deny:
        proceed: timelock       # a Deny is never signed; the only way on is the timelock path
      rules: {message_signing: warn, first_time_destination: warn}   # severity per reason code
      lookalike: {prefix: 4, suffix: 4, max_edit_distance: 2}
      address_book: [{address: 0x…, label: …}]   # known counterparties besides the allowlist
      delegates: [0x…]          # who may propose besides the owners
      dust_wei: "1000000000000" # inbound ETH at or below this counts as dust (poisoning precursor)
      anomaly: {min_history: 30}
      sanctions: {oracle: 0x…}  # a Chainalysis-style isSanctioned(address) oracle on this chain
      reporting_windows: {US: 30d, EU: 14d}   # when a sanctions case must be reported, per jurisdiction

Absent keys take the defaults shown (a template without the section gets all of them): fail-closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from custody.types import Address

if TYPE_CHECKING:  # typing only: template imports this module to parse the section
    from custody.policy.template import _PolicyReader

SEVERITIES = ("info", "warn", "deny")
ON_ERROR = ("deny", "warn")
MAX_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class RiskSettings:
    on_error: str = "deny"
    timeout_ms: int = 2000
    warn_out_of_band: bool = True
    warn_extra_signers: int = 1
    deny_proceed: str = "timelock"
    rule_severity: dict[str, str] = field(default_factory=dict)
    lookalike_prefix: int = 4
    lookalike_suffix: int = 4
    max_edit_distance: int = 2
    address_book: dict[str, str] = field(default_factory=dict)  # checksummed address -> label
    delegates: tuple[str, ...] = ()
    dust_wei: int = 10**12
    min_history: int = 30
    oracle: Address | None = None
    reporting_windows: dict[str, int] = field(default_factory=dict)  # jurisdiction -> seconds


DEFAULT_SETTINGS = RiskSettings()


def parse_risk_section(
    reader: _PolicyReader, node: yaml.Node | None, *, duration: Callable[[yaml.Node | None, str], int | None]
) -> RiskSettings | None:
    """Read the section with ``reader`` (a template reader collecting problems); None after problems."""
    before = len(reader.problems)
    top = reader.mapping(
        node,
        "risk",
        allowed={
            "on_error",
            "timeout_ms",
            "warn",
            "deny",
            "rules",
            "lookalike",
            "address_book",
            "delegates",
            "dust_wei",
            "anomaly",
            "sanctions",
            "reporting_windows",
        },
    )
    values: dict[str, Any] = {}
    if "on_error" in top:
        raw = reader.text(top["on_error"], "risk.on_error")
        if raw is not None and raw not in ON_ERROR:
            reader.error(top["on_error"], "risk.on_error", f"must be one of {', '.join(ON_ERROR)}, got {raw!r}")
        values["on_error"] = raw
    if "timeout_ms" in top:
        ms = reader.integer(top["timeout_ms"], "risk.timeout_ms", minimum=1)
        if ms is not None and ms > MAX_TIMEOUT_MS:
            reader.error(top["timeout_ms"], "risk.timeout_ms", f"must be at most {MAX_TIMEOUT_MS}, got {ms}")
        values["timeout_ms"] = ms
    if "warn" in top:
        warn = reader.mapping(top["warn"], "risk.warn", allowed={"out_of_band", "extra_signers"})
        if "out_of_band" in warn:
            values["warn_out_of_band"] = reader.boolean(warn["out_of_band"], "risk.warn.out_of_band")
        if "extra_signers" in warn:
            values["warn_extra_signers"] = reader.integer(warn["extra_signers"], "risk.warn.extra_signers", minimum=0)
    if "deny" in top:
        deny = reader.mapping(top["deny"], "risk.deny", allowed={"proceed"})
        if "proceed" in deny:
            raw = reader.text(deny["proceed"], "risk.deny.proceed")
            if raw is not None and raw != "timelock":
                reader.error(
                    deny["proceed"], "risk.deny.proceed", f"the only path past a Deny is 'timelock', got {raw!r}"
                )
    if "rules" in top:
        rules = {}
        node_rules = top["rules"]
        if isinstance(node_rules, yaml.MappingNode):
            for key_node, value_node in node_rules.value:
                code = str(key_node.value)
                level = reader.text(value_node, f"risk.rules.{code}")
                if level is not None and level not in SEVERITIES:
                    reader.error(value_node, f"risk.rules.{code}", f"must be one of {', '.join(SEVERITIES)}")
                rules[code] = level
        else:
            reader.error(node_rules, "risk.rules", "must be a mapping (reason code: info|warn|deny)")
        values["rule_severity"] = rules
    if "lookalike" in top:
        look = reader.mapping(top["lookalike"], "risk.lookalike", allowed={"prefix", "suffix", "max_edit_distance"})
        for key, attr in (("prefix", "lookalike_prefix"), ("suffix", "lookalike_suffix")):
            if key in look:
                size = reader.integer(look[key], f"risk.lookalike.{key}", minimum=2)
                if size is not None and size > 20:
                    reader.error(look[key], f"risk.lookalike.{key}", "must be at most 20 hex characters")
                values[attr] = size
        if "max_edit_distance" in look:
            values["max_edit_distance"] = reader.integer(
                look["max_edit_distance"], "risk.lookalike.max_edit_distance", minimum=0
            )
    if "address_book" in top:
        book = {}
        for i, item in enumerate(reader.sequence(top["address_book"], "risk.address_book")):
            entry = reader.labelled(item, f"risk.address_book[{i}]")
            if entry is not None:
                book[entry.address] = entry.label
        values["address_book"] = book
    if "delegates" in top:
        delegates = []
        for i, item in enumerate(reader.sequence(top["delegates"], "risk.delegates")):
            address = reader.address(item, f"risk.delegates[{i}]")
            if address is not None:
                delegates.append(address)
        values["delegates"] = tuple(delegates)
    if "dust_wei" in top:
        values["dust_wei"] = reader.integer(top["dust_wei"], "risk.dust_wei", minimum=0)
    if "anomaly" in top:
        anomaly = reader.mapping(top["anomaly"], "risk.anomaly", allowed={"min_history"})
        if "min_history" in anomaly:
            values["min_history"] = reader.integer(anomaly["min_history"], "risk.anomaly.min_history", minimum=5)
    if "sanctions" in top:
        sanctions = reader.mapping(top["sanctions"], "risk.sanctions", allowed={"oracle"})
        if "oracle" in sanctions:
            values["oracle"] = reader.address(sanctions["oracle"], "risk.sanctions.oracle")
    if "reporting_windows" in top:
        windows = {}
        node_windows = top["reporting_windows"]
        if isinstance(node_windows, yaml.MappingNode):
            for key_node, value_node in node_windows.value:
                seconds = duration(value_node, f"risk.reporting_windows.{key_node.value}")
                if seconds is not None:
                    windows[str(key_node.value)] = seconds
        else:
            reader.error(node_windows, "risk.reporting_windows", "must be a mapping (jurisdiction: duration)")
        values["reporting_windows"] = windows
    if len(reader.problems) > before or any(v is None for k, v in values.items() if k != "oracle"):
        return None
    return RiskSettings(**values)
