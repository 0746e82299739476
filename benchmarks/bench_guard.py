"""CustodyGuard gas: overhead per transfer against the same vault without a guard, for a dedicated guard
and for a clone guard (issue 15), with a no-op guard, a counting guard (the floor for any guard that
keeps spend state) and a Zodiac-Roles-style guard (the same rules kept in storage with refill allowances)
as references, all measured in one run from real receipts.

    .venv/bin/python benchmarks/bench_guard.py [--write]

Targets (issue 3): ≤ 12,000 gas steady state, ≤ 25,000 on the first spend of a day, measured the
honest way: the next day's first spend 24 h after a day with a spend every hour (a full ring to
expire). Also reported: a new hour (ring slot never used by a spend / two hours after the last spend /
warm ring), a 12 h gap, and a spend after 27 idle hours. A new hour writes one ring bucket and reads at
most one (the latest hour that left the window), whatever the gap: the first spend of a day, which reads
a bucket in another slot than the one it writes, is the costliest.
--write updates benchmarks/snapshots/guard.json (tests compare against it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import bench_session, guard_overhead_gas, write_snapshot  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "guard.json"
TARGETS = {"steady": 12_000, "first_of_day": 25_000}
# issue 15 (cheaper vaults): steady state, and the first spend in a new hour (the hour after the last spend,
# its ring slot never used by a spend before; two hours after it; on a warm ring; 12 hours after it) or a new day
LEAN_TARGETS = {
    "steady": 10_000,
    "first_of_day": 20_000,
    "new_hour": 20_000,
    "new_hour_after_2h_gap": 20_000,
    "new_hour_warm": 20_000,
    "after_12h_gap": 20_000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with bench_session() as (session, _anvil, _tmp):
        gas = guard_overhead_gas(session, ROOT / "policies" / "hot.yaml")
    result = {
        "gas": gas,
        "targets": _verdicts(gas, TARGETS),
        "lean_targets": _verdicts(gas, LEAN_TARGETS),
        "clone_lean_targets": _verdicts(gas, LEAN_TARGETS, prefix="clone_overhead_"),
        "floor_note": "counting_overhead_*: a guard that only adds each value to one storage word (one read and "
        "one write per transaction), the least any guard that remembers spends pays; roles_overhead_*: "
        "RolesStyleGuard, Zodiac Roles v2's permission model (target clearances, a scoped transfer with a "
        "recipient condition, 24 h refill allowances) in storage, enforcing the template's ETH and dUSD rules",
        "template": "policies/hot.yaml (1-of-2, ETH + dUSD, 1 freeze window)",
    }
    write_snapshot(SNAPSHOT, result, write=args.write)


def _verdicts(gas: dict[str, int], targets: dict[str, int], prefix: str = "overhead_") -> dict[str, dict]:
    return {
        name: {"overhead": value, "target": targets[kind], "met": value <= targets[kind]}
        for name, value in gas.items()
        for kind in targets
        if name.startswith(prefix) and name.endswith(kind)
    }


if __name__ == "__main__":
    main()
