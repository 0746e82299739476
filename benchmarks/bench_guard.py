"""CustodyGuard gas: overhead per transfer against the same vault without a guard, with a no-op
guard as reference, all measured in one run from real receipts.

    .venv/bin/python benchmarks/bench_guard.py [--write]

Targets (issue 3): ≤ 12,000 gas steady state, ≤ 25,000 on the first spend of a day. Reference points
measured elsewhere: no-op guard ~6,100; Zodiac Roles ~18,200 (allow-all target) / ~54,600 (scoped).
--write updates benchmarks/snapshots/guard.json (tests compare against it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import guard_overhead_gas  # noqa: E402
from custody.chain.anvil import AnvilProcess  # noqa: E402
from custody.chain.connection import connect, next_utc_slot  # noqa: E402
from custody.session import Session  # noqa: E402
from custody.workspace import Workspace  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "guard.json"
TARGETS = {"steady": 12_000, "first_of_day": 25_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with AnvilProcess() as anvil, tempfile.TemporaryDirectory() as tmp:
        session = Session(workspace=Workspace(Path(tmp) / "ws"), chain=connect(anvil.url))
        session.infrastructure()
        # business hours on a Tuesday, whatever the wall clock: the templates freeze weekends/nights
        session.chain.set_next_timestamp(next_utc_slot(session.chain.latest_timestamp(), weekday=1, hour=10))
        session.chain.mine()
        gas = guard_overhead_gas(session, ROOT / "policies" / "hot.yaml")
        session.close()
    verdicts = {
        name: {"overhead": value, "target": TARGETS[kind], "met": value <= TARGETS[kind]}
        for name, value in gas.items()
        for kind in TARGETS
        if name.startswith("overhead_") and name.endswith(kind)
    }
    result = {"gas": gas, "targets": verdicts, "template": "policies/hot.yaml (1-of-2, ETH + dUSD, 1 freeze window)"}
    print(json.dumps(result, indent=2))
    if args.write:
        SNAPSHOT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
