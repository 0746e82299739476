"""ExitModule gas from real receipts (same run): initiate (2-of-3 council signatures), cancel (an
owner), initiate again, finalize moving ETH + 3 ERC-20s to the fallback custodian.

    .venv/bin/python benchmarks/bench_exit.py [--write]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import bench_session, exit_gas, write_snapshot  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "exit.json"
TEMPLATE = ROOT / "tests" / "fixtures" / "policies" / "resilient.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with bench_session() as (session, _anvil, tmp):
        gas = exit_gas(session, TEMPLATE.read_text(), tmp)
    result = {"gas": gas, "template": "tests/fixtures/policies/resilient.yaml + 2 extra ERC-20s"}
    write_snapshot(SNAPSHOT, result, write=args.write)


if __name__ == "__main__":
    main()
