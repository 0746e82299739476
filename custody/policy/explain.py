"""Rule → compliance control mapping of a policy (what each rule enforces and why)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custody.policy.model import DAYS
from custody.policy.template import Policy
from custody.types import format_amount


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    description: str
    controls: tuple[str, ...]
    enforced_by: str  # where the rule is enforced

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "description": self.description,
            "controls": list(self.controls),
            "enforced_by": self.enforced_by,
        }


def _hm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def rules(policy: Policy) -> list[Rule]:
    out = [
        Rule(
            "owners",
            "quorum",
            f"{policy.threshold}-of-{len(policy.owners)} owner signatures: "
            + ", ".join(o.label or o.address for o in policy.owners),
            policy.owners_controls,
            "Safe (threshold)",
        ),
        Rule(
            "timelock",
            "timelock",
            f"{policy.timelock_delay}s delay before any of: {', '.join(policy.timelock_operations)}",
            policy.timelock_controls,
            "VaultTimelock + CustodyGuard",
        ),
    ]
    for asset in policy.assets:
        base = f"asset.{asset.symbol}"
        where = "CustodyGuard"
        if asset.allowlist:
            out.append(
                Rule(
                    f"{base}.allowlist",
                    "allowlist",
                    f"{asset.symbol} may only go to: " + ", ".join(e.label or e.address for e in asset.allowlist),
                    asset.controls,
                    where,
                )
            )
        out.append(
            Rule(
                f"{base}.per_tx_limit",
                "limit",
                f"at most {format_amount(asset.per_tx_limit, asset.decimals)} {asset.symbol} per transaction",
                asset.controls,
                where,
            )
        )
        out.append(
            Rule(
                f"{base}.daily_limit",
                "limit",
                f"at most {format_amount(asset.daily_limit, asset.decimals)} {asset.symbol} per rolling 24 h",
                asset.controls,
                where,
            )
        )
        if asset.out_of_band_above is not None:
            out.append(
                Rule(
                    f"{base}.out_of_band",
                    "out_of_band",
                    f"transfers of at least {format_amount(asset.out_of_band_above, asset.decimals)} {asset.symbol} "
                    "need an out-of-band confirmation by someone other than the proposer",
                    policy.out_of_band.controls if policy.out_of_band else asset.controls,
                    "custody tx execute",
                )
            )
    for i, w in enumerate(policy.freeze_windows):
        out.append(
            Rule(
                f"freeze_windows[{i}]",
                "freeze_window",
                f"no transfers {DAYS[w.day].title()} {_hm(w.start_minute)}-{_hm(w.end_minute)} UTC"
                + (f" ({w.reason})" if w.reason else ""),
                w.controls,
                "CustodyGuard",
            )
        )
    if policy.allowed_hours:
        h = policy.allowed_hours
        out.append(
            Rule(
                "allowed_hours",
                "allowed_hours",
                f"transfers only {_hm(h.start_minute)}-{_hm(h.end_minute)} UTC",
                h.controls,
                "CustodyGuard",
            )
        )
    if policy.out_of_band and policy.out_of_band.risky_operations:
        out.append(
            Rule(
                "out_of_band.risky_operations",
                "out_of_band",
                "risky operations (delegatecall, configuration changes) need an out-of-band confirmation",
                policy.out_of_band.controls,
                "custody tx execute",
            )
        )
    for call in policy.contract_calls:
        out.append(
            Rule(
                f"contract_calls.{call.label or call.target}.{call.signature.split('(')[0]}",
                "contract_call",
                f"may call {call.signature} on {call.label or call.target} ({call.target})",
                call.controls,
                "CustodyGuard",
            )
        )
    if policy.exit:
        e = policy.exit
        initiators = f"{e.quorum} of the council" if e.council else f"{e.quorum} owners"
        out.append(
            Rule(
                "exit",
                "emergency_exit",
                f"emergency exit initiated by {initiators}, escrow {e.escrow_delay}s, only to: "
                + ", ".join(c.label or c.address for c in e.custodians),
                e.controls,
                "ExitModule",
            )
        )
    if policy.attestations:
        a = policy.attestations
        who = "; ".join(f"{x.label or x.address}: {', '.join(x.steps)}" for x in a.attesters)
        modes = {"onchain": "on chain", "batched": f"batched, anchored every {a.anchor_every}"}
        listed = ", ".join(f"{step} ({modes[a.mode(step)]})" for step in a.emit)
        emitted = f"; badges emitted automatically for {listed}" if a.emit else ""
        out.append(
            Rule(
                "attestations",
                "attestation",
                f"custody steps attested (EAS) only by: {who}{emitted}",
                a.controls,
                "custody attest verify",
            )
        )
    return out


def controls_index(items: list[Rule]) -> dict[str, list[str]]:
    """Control id → rule ids serving it."""
    index: dict[str, list[str]] = {}
    for rule in items:
        for control in rule.controls:
            index.setdefault(control, []).append(rule.id)
    return dict(sorted(index.items()))
