"""The engine: run every layer on one set of inputs within a deadline, fail-closed.

Any exception while gathering inputs or scoring, and any decision that misses the template's
``risk.timeout_ms``, becomes a Deny (``engine_error`` / ``engine_timeout``) unless the template's
``risk.on_error`` says ``warn``. The work runs in a worker thread so a hanging RPC cannot hold the
signer past the deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from custody.policy.risk_section import DEFAULT_SETTINGS, RiskSettings
from custody.risk import anomaly, firewall, poisoning, sanctions
from custody.risk.inputs import RiskInputs
from custody.risk.verdict import ENGINE_VERSION, Decision, Reason, Severity, band


@dataclass(frozen=True)
class Prepared:
    """What :func:`decide` scores: the inputs, the active sanctions list and the vault's model."""

    inputs: RiskInputs
    listed: sanctions.SanctionsList
    model: anomaly.BaselineModel
    forest: Any = None  # custody.risk.forest.ForestModel when the vault trained one (optional extra)


def _override(reasons: list[Reason], settings: RiskSettings) -> list[Reason]:
    levels = settings.rule_severity
    return [
        Reason(r.code, r.layer, Severity(levels[r.code]), r.message, r.facts) if r.code in levels else r
        for r in reasons
    ]


def score(prepared: Prepared) -> tuple[list[Reason], dict[str, int], dict[str, Any]]:
    """All layers on prepared inputs (pure: no I/O). Returns (reasons, scores per layer, features)."""
    inputs = prepared.inputs
    layers = {
        "firewall": firewall.check(inputs),
        "poisoning": poisoning.check(inputs),
        "sanctions": sanctions.check(inputs, prepared.listed),
    }
    found, features, anomaly_score = anomaly.score(inputs, prepared.model, prepared.forest)
    layers["anomaly"] = found
    reasons = _override([r for rs in layers.values() for r in rs], inputs.settings)
    weight = {Severity.INFO: 100, Severity.WARN: 500, Severity.DENY: 1000}
    scores = {name: max((weight[r.severity] for r in rs), default=0) for name, rs in layers.items()}
    scores["anomaly"] = max(scores["anomaly"], anomaly_score)
    return reasons, scores, features


def versions(prepared: Prepared | None) -> dict[str, Any]:
    found: dict[str, Any] = {"engine": ENGINE_VERSION, "rules": firewall.RULES_VERSION}
    if prepared is not None:
        found.update(
            sanctions_list=prepared.listed.version,
            sanctions_sha256=prepared.listed.sha256,
            model=prepared.model.label,
            model_sha256=prepared.model.sha256,
            forest_sha256=prepared.model.forest_sha256 if prepared.forest is not None else None,
        )
    return found


def _failure(code: str, message: str, settings: RiskSettings) -> Reason:
    severity = Severity.WARN if settings.on_error == "warn" else Severity.DENY
    return Reason(code, "engine", severity, message, {"on_error": settings.on_error})


def decide(
    stage: str, safe_tx_hash: str, prepare: Callable[[], Prepared], *, settings: RiskSettings | None = None
) -> Decision:
    """Prepare and score within the deadline; any failure or a late answer is ``on_error`` (Deny by default)."""
    settings = settings or DEFAULT_SETTINGS
    start = time.perf_counter()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            prepared = prepare()
            outcome["prepared"] = prepared
            outcome["scored"] = score(prepared)
        except Exception as exc:  # fail-closed: every failure becomes a decision, never a pass
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"risk-{stage}", daemon=True)
    worker.start()
    worker.join(settings.timeout_ms / 1000)
    prepared = outcome.get("prepared")
    if worker.is_alive():
        reasons = [_failure("engine_timeout", f"no decision within {settings.timeout_ms} ms", settings)]
        features: dict[str, Any] = {}
        scores, prepared = {"engine": 1000}, None
    elif "error" in outcome:
        exc = outcome["error"]
        text = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        reasons = [_failure("engine_error", text[:300], settings)]
        scores, features = {"engine": 1000}, {}
    else:
        reasons, scores, features = outcome["scored"]
    latency = int((time.perf_counter() - start) * 1_000_000)
    return Decision(
        stage=stage,
        verdict=band(reasons),
        reasons=tuple(reasons),
        scores=scores,
        features=features,
        versions=versions(prepared),
        latency_us=latency,
        safe_tx_hash=safe_tx_hash,
    )
