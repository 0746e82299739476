"""Per-vault anomaly baseline, trained from the vault's own executed history (no network, no service).

Features of a transfer: robust amount z-score (median/MAD of log10 amounts) per asset and per
(asset, destination); hour-of-day and day-of-week profile; velocity over 1 h and 24 h; inter-arrival
time; share of the vault's balance; and, when signing, whether this owner signed before. The model is
a small JSON document; its SHA-256 covers its body, and a file that does not match is an engine error
(fail-closed), never a silently different model.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from custody.exceptions import RiskError
from custody.risk.calls import transfers
from custody.risk.forest import vector
from custody.risk.inputs import Movement, RiskInputs
from custody.risk.verdict import Reason, Severity

if TYPE_CHECKING:  # forest imports this module's feature helpers
    from custody.risk.forest import ForestModel

LAYER = "anomaly"
MODEL_KIND = "custody.risk-baseline/1"
MAD_FLOOR = 0.1  # log10 units: amounts within ~26 % of each other are never "far apart"
Z_WARN = 3.5
MAD_SCALE = 0.6745  # makes MAD-based z comparable to a normal z-score


class ModelError(RiskError):
    """A model file is unreadable or does not match its recorded SHA-256."""


def _log_amount(amount: int) -> float:
    return math.log10(amount + 1)


def _robust(values: list[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=float)
    median = float(np.median(array))
    mad = float(np.median(np.abs(array - median)))
    return {"median": median, "mad": mad, "n": len(values), "max": float(array.max())}


def _max_in_window(times: list[float], seconds: float) -> int:
    best, start = 0, 0
    for end in range(len(times)):
        while times[end] - times[start] > seconds:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass(frozen=True)
class BaselineModel:
    vault: str
    version: int
    trained_at: str
    events: int
    assets: dict[str, dict[str, Any]]
    pairs: dict[str, dict[str, Any]]
    hour_of_day: list[int]
    day_of_week: list[int]
    max_1h: int
    max_24h: int
    median_gap_s: int
    signers: list[str] = field(default_factory=list)
    forest_file: str | None = None  # the optional IsolationForest (custody.risk.forest) beside this model
    forest_sha256: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "kind": MODEL_KIND,
            "vault": self.vault,
            "version": self.version,
            "trained_at": self.trained_at,
            "events": self.events,
            "assets": self.assets,
            "pairs": self.pairs,
            "hour_of_day": self.hour_of_day,
            "day_of_week": self.day_of_week,
            "max_1h": self.max_1h,
            "max_24h": self.max_24h,
            "median_gap_s": self.median_gap_s,
            "signers": self.signers,
            "forest_file": self.forest_file,
            "forest_sha256": self.forest_sha256,
        }

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.body(), sort_keys=True).encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"baseline-{self.version}:{self.sha256[:16]}"


def train(
    vault: str, history: list[Movement] | tuple[Movement, ...], *, version: int = 0, now: dt.datetime | None = None
) -> BaselineModel:
    ordered = sorted(history, key=lambda m: m.time)
    by_asset: dict[str, list[float]] = {}
    by_pair: dict[str, list[float]] = {}
    hours, days = [0] * 24, [0] * 7
    for m in ordered:
        by_asset.setdefault(m.asset, []).append(_log_amount(m.amount))
        by_pair.setdefault(f"{m.asset}|{m.destination.lower()}", []).append(_log_amount(m.amount))
        hours[m.time.hour] += 1
        days[m.time.weekday()] += 1
    times = [m.time.timestamp() for m in ordered]
    gaps = np.diff(np.asarray(times)) if len(times) > 1 else np.asarray([0.0])
    return BaselineModel(
        vault=vault,
        version=version,
        trained_at=(now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        events=len(ordered),
        assets={a: _robust(v) for a, v in by_asset.items()},
        pairs={p: _robust(v) for p, v in by_pair.items() if len(v) >= 5},
        hour_of_day=hours,
        day_of_week=days,
        max_1h=_max_in_window(times, 3600),
        max_24h=_max_in_window(times, 86400),
        median_gap_s=int(np.median(gaps)) if len(gaps) else 0,
        signers=sorted({s.lower() for m in ordered for s in m.signers}),
    )


def save(model: BaselineModel, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model.vault}.v{model.version}.json"
    path.write_text(json.dumps({"sha256": model.sha256, "model": model.body()}, sort_keys=True), encoding="utf-8")
    (folder / f"{model.vault}.current").write_text(path.name, encoding="utf-8")
    return path


def load(folder: Path, vault: str) -> BaselineModel | None:
    """The vault's current model, or None when none was trained. Raises ModelError on a damaged file."""
    pointer = folder / f"{vault}.current"
    if not pointer.exists():
        return None
    path = folder / pointer.read_text(encoding="utf-8").strip()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        body = doc["model"]
        model = BaselineModel(**{k: v for k, v in body.items() if k != "kind"})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"risk model {path} is unreadable: {exc}") from exc
    if model.sha256 != doc.get("sha256"):
        raise ModelError(f"risk model {path} does not match its recorded sha256 {doc.get('sha256')}; it was altered")
    return model


def _z(stats: dict[str, Any] | None, amount: int) -> float:
    if stats is None:
        return 0.0
    mad = max(stats["mad"], MAD_FLOOR)
    return float(MAD_SCALE * (_log_amount(amount) - stats["median"]) / mad)


def _around(counts: list[int], index: int) -> int:
    size = len(counts)
    return counts[(index - 1) % size] + counts[index] + counts[(index + 1) % size]


def score(
    inputs: RiskInputs, model: BaselineModel, forest: ForestModel | None = None
) -> tuple[list[Reason], dict[str, Any], int]:
    """(reasons, features, score 0..1000) for the transaction in ``inputs`` against ``model`` (and the
    optional IsolationForest ``forest``, a :class:`custody.risk.forest.ForestModel`)."""
    now = inputs.now
    moves = transfers(inputs.decoded)
    recent = [m.time for m in inputs.history]
    velocity_1h = 1 + sum(1 for t in recent if 0 <= (now - t).total_seconds() <= 3600)
    velocity_24h = 1 + sum(1 for t in recent if 0 <= (now - t).total_seconds() <= 86400)
    last = max(recent, default=None)
    features: dict[str, Any] = {
        "history_events": model.events,
        "hour_of_week": now.weekday() * 24 + now.hour,
        "hour_of_day_count": _around(model.hour_of_day, now.hour),
        "day_of_week_count": model.day_of_week[now.weekday()],
        "velocity_1h": velocity_1h,
        "velocity_24h": velocity_24h,
        "inter_arrival_s": -1 if last is None else int((now - last).total_seconds()),
    }
    reasons: list[Reason] = []
    if model.events < inputs.settings.min_history:
        features["insufficient_history"] = True
        return reasons, features, 0
    top = 0.0
    for move in moves:
        z_asset = _z(model.assets.get(move.asset), move.amount)
        z_pair = _z(model.pairs.get(f"{move.asset}|{move.destination.lower()}"), move.amount)
        z = max(z_asset, z_pair)
        balance = inputs.balances.get(move.asset)
        share = move.amount / balance if balance else 0.0
        features.update(z_amount_milli=int(z * 1000), share_of_balance_milli=int(min(share, 1000.0) * 1000))
        top = max(top, z / Z_WARN)
        if z > Z_WARN:
            reasons.append(
                Reason(
                    "amount_outlier",
                    LAYER,
                    Severity.WARN,
                    f"amount is {z:.1f} robust deviations above this vault's usual",
                    {"z_milli": int(z * 1000), "asset": move.asset},
                )
            )
        largest = 10 ** model.assets[move.asset]["max"] if move.asset in model.assets else 0
        if share >= 0.5 and move.amount > 1.5 * largest:
            top = max(top, 1.0)
            reasons.append(
                Reason(
                    "balance_drain",
                    LAYER,
                    Severity.WARN,
                    f"moves {share:.0%} of the vault's balance, above anything it moved before",
                    {"share_milli": int(share * 1000), "asset": move.asset},
                )
            )
    if moves and (features["hour_of_day_count"] == 0 or features["day_of_week_count"] == 0):
        top = max(top, 1.0)
        reasons.append(
            Reason(
                "off_hours",
                LAYER,
                Severity.WARN,
                f"no transfer of this vault ever happened around {now:%A %H}:00 UTC",
                {"hour_of_week": features["hour_of_week"]},
            )
        )
    if moves and (
        velocity_1h > max(int(1.5 * model.max_1h) + 1, 4) or velocity_24h > max(int(1.5 * model.max_24h) + 1, 8)
    ):
        top = max(top, 1.0)
        reasons.append(
            Reason(
                "burst",
                LAYER,
                Severity.WARN,
                f"{velocity_1h} transfers in 1 h / {velocity_24h} in 24 h (usual peak {model.max_1h} / "
                f"{model.max_24h})",
                {"velocity_1h": velocity_1h, "velocity_24h": velocity_24h},
            )
        )
    if forest is not None:
        for move in moves:
            flagged, value = forest.flags(vector(move.asset, move.amount, move.destination, now, inputs.history))
            features["forest_score_milli"] = int(value * 1000)
            if flagged:
                top = max(top, 1.0)
                reasons.append(
                    Reason(
                        "isolation_outlier",
                        LAYER,
                        Severity.WARN,
                        "the vault's IsolationForest isolates this transfer from its history",
                        {"score_milli": int(value * 1000), "threshold_milli": int(forest.threshold * 1000)},
                    )
                )
    if inputs.signer is not None:
        known = inputs.signer.lower() in model.signers
        features["signer_known"] = known
        if not known and model.signers:
            top = max(top, 1.0)
            reasons.append(
                Reason(
                    "unusual_signer",
                    LAYER,
                    Severity.WARN,
                    f"{inputs.signer} never signed a transfer of this vault before",
                    {"signer": inputs.signer},
                )
            )
    return reasons, features, int(min(top, 2.0) * 500)
