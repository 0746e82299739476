"""Attestation gas from real receipts (same run): on-chain badges (EAS delegated attestations: KYC,
approval, execution) and batch mode (off-chain EAS attestations anchored by one timestamp of their
Merkle root) for batches of 1, 100 and 1,000, amortized per step, with EAS multiTimestamp (one
timestamp per item) measured in the same run as the baseline.

    .venv/bin/python benchmarks/bench_attest.py [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import attest_gas, attest_summary, bench_session  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "attest.json"
TEMPLATE = ROOT / "tests" / "fixtures" / "policies" / "attested.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with bench_session() as (session, _anvil, _tmp):
        started = time.perf_counter()
        gas = attest_gas(session, TEMPLATE)
        seconds = round(time.perf_counter() - started, 1)
    summary = attest_summary(gas)
    result = {"gas": gas, "template": "tests/fixtures/policies/attested.yaml"}
    print(json.dumps({**result, "derived": summary, "seconds": seconds}, indent=2))
    target = summary["batch_1000_per_step"] <= 5_000
    print(
        f"batch mode at 1,000: {summary['batch_1000_per_step']} gas per step (target <= 5,000: {'met' if target else 'MISSED'})"
    )
    if args.write:
        SNAPSHOT.write_text(json.dumps({**result, "derived": summary}, indent=2, sort_keys=True) + "\n")
        print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
