"""Pre-sign risk engine: detection quality and decision latency.

Offline (the acceptance figure): ``custody risk eval`` — generated benign histories for every template in
policies/ plus injected red-team cases — precision, recall, false-positive rate per detector and the p95
of the engine's decision latency (inputs prepared, all layers, worker-thread deadline included).
Live (for reference): the full gate on a local Anvil (chain reads, ledger history, recording) for a
proposal of the cold template, decided 50 times with ``risk score``.

    .venv/bin/python benchmarks/bench_risk.py [--write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import bench_session, write_snapshot  # noqa: E402
from custody.risk.evaluation import run_evaluation  # noqa: E402
from custody.vault import proposals, service  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "risk.json"
PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def live_latency(decisions: int = 50) -> dict:
    with bench_session() as (session, _anvil, _tmp):
        vault, _ = service.create_vault(session, ROOT / "policies" / "cold.yaml")
        session.send(to=vault.safe, value=10**20, what="fund")
        proposal = proposals.propose_transfer(session, vault.id, to=PRIME_BROKER, amount="1", proposer="bench")
        latencies = [proposals.score_risk(session, proposal).latency_us / 1000 for _ in range(decisions)]
    array = np.asarray(latencies)
    return {
        "n": decisions,
        "p50": round(float(np.percentile(array, 50)), 3),
        "p95": round(float(np.percentile(array, 95)), 3),
    }


def _forest_run() -> dict:
    """The same evaluation with the optional IsolationForest in the anomaly layer (custody[risk-ml])."""
    from custody.risk import forest

    if not forest.available():
        return {"available": False}
    report = run_evaluation(use_forest=True)
    return {
        "available": True, "benign_flagged": report["benign_flagged"],
        "anomaly": {k: round(v, 5) if isinstance(v, float) else v for k, v in report["detectors"]["anomaly"].items()},
        "isolation_forest": {k: round(v, 5) if isinstance(v, float) else v
                             for k, v in report["detectors"]["isolation_forest"].items()},
        "latency_ms": {k: round(v, 3) if isinstance(v, float) else v for k, v in report["latency_ms"].items()},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    report = run_evaluation()
    detectors = {
        name: {k: round(v, 5) if isinstance(v, float) else v for k, v in m.items()}
        for name, m in report["detectors"].items()
    }
    latency = {k: round(v, 3) if isinstance(v, float) else v for k, v in report["latency_ms"].items()}
    result = {
        "offline": {**report, "detectors": detectors, "latency_ms": latency},
        "live_gate_latency_ms": live_latency(),
        "with_isolation_forest": _forest_run(),
        "targets": {
            "lookalike_recall_4_4": report["red_team"]["lookalike_4_4"]["caught"]
            == report["red_team"]["lookalike_4_4"]["cases"],
            "lookalike_fpr_below_1pct": report["detectors"]["lookalike"]["fpr"] < 0.01,
            "anomaly_benign_flagged_at_most_0_5pct": report["benign_flagged"]["anomaly"] <= 0.005 * report["benign"],
            "anomaly_recall_at_least_80pct": report["detectors"]["anomaly"]["recall"] >= 0.8,
            "p95_at_most_50ms_offline": report["latency_ms"]["p95"] <= 50,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_snapshot(SNAPSHOT, result, write=args.write)
    missed = [name for name, ok in result["targets"].items() if not ok]
    print("targets: " + ("all met" if not missed else "MISSED " + ", ".join(missed)))


if __name__ == "__main__":
    main()
