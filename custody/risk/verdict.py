"""What the engine answers: a verdict band, the reasons behind it, scores, features and versions."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

ENGINE_VERSION = "1.0.0"


class Verdict(str, enum.Enum):
    ACCEPT = "accept"
    WARN = "warn"
    DENY = "deny"


class Severity(str, enum.Enum):
    """How much one reason weighs: ``info`` is reported but does not change an Accept."""

    INFO = "info"
    WARN = "warn"
    DENY = "deny"


_RANK = {Severity.INFO: 0, Severity.WARN: 1, Severity.DENY: 2}


@dataclass(frozen=True)
class Reason:
    """One finding: a stable machine code, its layer, how much it weighs and the facts that drove it."""

    code: str
    layer: str  # firewall | poisoning | sanctions | anomaly | engine
    severity: Severity
    message: str
    facts: dict[str, Any] = field(default_factory=dict)  # strings / ints / bools only (ledger-safe)

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "layer": self.layer,
            "severity": self.severity.value,
            "message": self.message,
            "facts": dict(self.facts),
        }


def band(reasons: list[Reason]) -> Verdict:
    top = max((_RANK[r.severity] for r in reasons), default=0)
    return (Verdict.ACCEPT, Verdict.WARN, Verdict.DENY)[top]


@dataclass(frozen=True)
class Decision:
    """The engine's answer for one stage (propose / sign / execute) of one Safe transaction."""

    stage: str
    verdict: Verdict
    reasons: tuple[Reason, ...]
    scores: dict[str, int]  # per layer, 0..1000 (integers: the ledger has no floats)
    features: dict[str, Any]  # the feature values the anomaly layer used (scaled integers / strings)
    versions: dict[str, Any]  # engine, rules, sanctions list (+ sha256), model (+ sha256)
    latency_us: int
    safe_tx_hash: str

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def blocking(self) -> list[Reason]:
        wanted = Severity.DENY if self.verdict is Verdict.DENY else Severity.WARN
        return [r for r in self.reasons if r.severity is wanted]

    def summary(self) -> str:
        worst = self.blocking()
        if not worst:
            return f"{self.verdict.value.upper()}"
        return f"{self.verdict.value.upper()}: " + "; ".join(f"{r.code} ({r.message})" for r in worst)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "verdict": self.verdict.value,
            "reasons": [r.as_dict() for r in self.reasons],
            "scores": dict(self.scores),
            "features": dict(self.features),
            "versions": dict(self.versions),
            "latency_us": self.latency_us,
            "safe_tx_hash": self.safe_tx_hash,
        }
