"""The template's ``attestations`` section: who may attest which custody step, which steps emit a badge
as they happen, and how each emitted step is attested::

    attestations:
      attesters:
        - {address: 0x…, label: custody-operations, steps: [approval, oob_confirmation, execution]}
      emit: [approval, execution]          # each attested on chain (its own EAS attestation), or
      emit: {approval: batched, execution: onchain}
      anchor_every: 100                    # batched badges waiting before the flows anchor them
      controls: [SOC2-CC7.2]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from custody.policy.model import (
    ATTESTATION_STEPS,
    AUTO_BADGE_STEPS,
    BADGE_MODES,
    DEFAULT_ANCHOR_EVERY,
    MAX_ANCHOR_EVERY,
    AttestationRule,
    Attester,
)

if TYPE_CHECKING:  # typing only: template imports this module to parse the section
    from custody.policy.template import _PolicyReader


def parse_attestations(r: _PolicyReader, node: yaml.Node | None) -> AttestationRule:
    a = r.mapping(
        node, "attestations", allowed={"attesters", "emit", "anchor_every", "controls"}, required={"attesters"}
    )
    attesters = _parse_attesters(r, a["attesters"]) if "attesters" in a else []
    emit, batched = _parse_emit(r, a.get("emit"), attesters)
    anchor_every = DEFAULT_ANCHOR_EVERY
    if "anchor_every" in a:
        field = "attestations.anchor_every"
        value = r.integer(a["anchor_every"], field, minimum=1)
        if value is not None and value > MAX_ANCHOR_EVERY:
            r.error(a["anchor_every"], field, f"must be at most {MAX_ANCHOR_EVERY:,} badges per anchor, got {value:,}")
        elif value is not None:
            anchor_every = value
        if not batched:
            r.error(a["anchor_every"], field, "applies to batched steps, and emit batches none")
    controls = r.controls(a.get("controls"), "attestations.controls")
    return AttestationRule(tuple(attesters), emit, controls, batched, anchor_every)


def _parse_attesters(r: _PolicyReader, node: yaml.Node) -> list[Attester]:
    attesters: list[Attester] = []
    for i, entry in enumerate(r.sequence(node, "attestations.attesters")):
        f = f"attestations.attesters[{i}]"
        e = r.mapping(entry, f, allowed={"address", "label", "steps"}, required={"address", "steps"})
        address = r.address(e["address"], f"{f}.address") if "address" in e else None
        label = (r.text(e["label"], f"{f}.label") or "") if "label" in e else ""
        steps = r.string_list(e["steps"], f"{f}.steps") if "steps" in e else ()
        for j, name in enumerate(steps):
            if name not in ATTESTATION_STEPS:
                r.error(e["steps"], f"{f}.steps[{j}]", f"unknown step {name!r} (known: {', '.join(ATTESTATION_STEPS)})")
        if address is not None:
            if address in {x.address for x in attesters}:
                r.error(entry, f, f"attester {address} is listed twice")
            else:
                attesters.append(Attester(address, label, tuple(steps)))
    return attesters


def _parse_emit(
    r: _PolicyReader, node: yaml.Node | None, attesters: list[Attester]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``emit``: a list of steps (each attested on chain) or a mapping of step to ``onchain`` / ``batched``.
    Returns (the emitted steps, the batched ones)."""
    if node is None:
        return (), ()
    modes: dict[str, str] = {}
    places: dict[str, tuple[yaml.Node, str]] = {}  # step -> (node, field) to report it at
    if isinstance(node, yaml.MappingNode):
        for name, value in r.mapping(node, "attestations.emit", allowed=AUTO_BADGE_STEPS).items():
            field = f"attestations.emit.{name}"
            mode = r.text(value, field)
            if mode is not None and mode not in BADGE_MODES:
                r.error(value, field, f"is {mode!r}; an emitted step is attested {' or '.join(BADGE_MODES)}")
            modes[name], places[name] = mode or "onchain", (value, field)
    else:
        for j, name in enumerate(r.string_list(node, "attestations.emit")):
            if name not in AUTO_BADGE_STEPS:
                r.error(
                    node,
                    f"attestations.emit[{j}]",
                    f"only {', '.join(AUTO_BADGE_STEPS)} are emitted automatically, not {name!r}",
                )
                continue
            modes[name], places[name] = "onchain", (node, f"attestations.emit[{j}]")
    for name, (where, field) in places.items():
        if not any(name in x.steps for x in attesters):
            r.error(where, field, f"no attester is authorised for {name!r}")
    return tuple(modes), tuple(name for name, mode in modes.items() if mode == "batched")
