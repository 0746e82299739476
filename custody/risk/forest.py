"""Optional batch model: scikit-learn's IsolationForest over per-transfer feature vectors, trained on
the vault's own history (``pip install custody[risk-ml]``; ``scripts/bootstrap`` installs it).

Features of a transfer, each computed against the history before it: log10 amount, deviation from the
median log10 amount sent to the same destination, hour of day (sine, cosine), weekend, velocity over
1 h and 24 h, log inter-arrival time, new destination. The flag threshold is the training score at the
0.2 % quantile. The fitted estimator is stored with joblib; its file's SHA-256 is recorded in the
baseline model (whose own SHA-256 goes to the ledger) and checked before the file is loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from custody.exceptions import RiskError
from custody.risk.inputs import Movement

FEATURES = (
    "log_amount",
    "pair_deviation",
    "hour_sin",
    "hour_cos",
    "weekend",
    "velocity_1h",
    "velocity_24h",
    "log_gap",
    "new_destination",
)
MIN_ROWS = 30
FLAG_QUANTILE = 0.002


def available() -> bool:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return False
    return True


def _sklearn() -> Any:
    try:
        from sklearn.ensemble import IsolationForest
    except ImportError as exc:
        raise RiskError("the IsolationForest model needs scikit-learn: pip install 'custody[risk-ml]'") from exc
    return IsolationForest


def vector(
    asset: str, amount: int, destination: str, now: dt.datetime, history: list[Movement] | tuple[Movement, ...]
) -> list[float]:
    same = [
        math.log10(m.amount + 1) for m in history if m.destination.lower() == destination.lower() and m.asset == asset
    ]
    log_amount = math.log10(amount + 1)
    hour = now.hour + now.minute / 60
    times = [m.time for m in history if m.time <= now]
    gap = (now - max(times)).total_seconds() if times else 86400 * 30
    return [
        log_amount,
        log_amount - float(np.median(same)) if same else 0.0,
        math.sin(2 * math.pi * hour / 24),
        math.cos(2 * math.pi * hour / 24),
        1.0 if now.weekday() >= 5 else 0.0,
        float(sum(1 for t in times if (now - t).total_seconds() <= 3600)),
        float(sum(1 for t in times if (now - t).total_seconds() <= 86400)),
        math.log10(gap + 1),
        0.0 if same else 1.0,
    ]


@dataclass(frozen=True)
class ForestModel:
    estimator: Any
    threshold: float
    rows: int

    def score(self, row: list[float]) -> float:
        return float(self.estimator.score_samples(np.asarray([row]))[0])

    def flags(self, row: list[float]) -> tuple[bool, float]:
        value = self.score(row)
        return value < self.threshold, value


def train(history: list[Movement] | tuple[Movement, ...], *, seed: int = 0) -> ForestModel | None:
    """Fit on every transfer after the first ten (each against the transfers before it); None if too few."""
    ordered = sorted(history, key=lambda m: m.time)
    rows = [vector(m.asset, m.amount, m.destination, m.time, ordered[:i]) for i, m in enumerate(ordered) if i >= 10]
    if len(rows) < MIN_ROWS:
        return None
    matrix = np.asarray(rows)
    estimator = _sklearn()(n_estimators=50, random_state=seed).fit(matrix)
    threshold = float(np.quantile(estimator.score_samples(matrix), FLAG_QUANTILE))
    return ForestModel(estimator, threshold, len(rows))


def dump(model: ForestModel, path: Path) -> str:
    """Write the model; returns the SHA-256 of the file's bytes."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump({"estimator": model.estimator, "threshold": model.threshold, "rows": model.rows}, buffer)
    blob = buffer.getvalue()
    path.write_bytes(blob)
    return hashlib.sha256(blob).hexdigest()


def load(path: Path, sha256: str) -> ForestModel:
    """Load a model file only if its bytes hash to ``sha256`` (a pickle is never read unverified)."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise RiskError(f"risk forest model {path} is unreadable: {exc.strerror}") from exc
    if hashlib.sha256(blob).hexdigest() != sha256:
        raise RiskError(f"risk forest model {path} does not match its recorded sha256 {sha256}; it was altered")
    import joblib

    data = joblib.load(io.BytesIO(blob))
    return ForestModel(data["estimator"], float(data["threshold"]), int(data["rows"]))
