"""ExitModule gas from real receipts (same run): initiate (2-of-3 council signatures), cancel (an
owner), initiate again, finalize moving ETH + 3 ERC-20s to the fallback custodian.

    .venv/bin/python benchmarks/bench_exit.py [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import exit_gas  # noqa: E402
from custody.chain.anvil import AnvilProcess  # noqa: E402
from custody.chain.connection import connect, next_utc_slot  # noqa: E402
from custody.session import Session  # noqa: E402
from custody.workspace import Workspace  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "exit.json"
TEMPLATE = ROOT / "tests" / "fixtures" / "policies" / "resilient.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    with AnvilProcess() as anvil, tempfile.TemporaryDirectory() as tmp:
        session = Session(workspace=Workspace(Path(tmp) / "ws"), chain=connect(anvil.url))
        session.infrastructure()
        session.chain.set_next_timestamp(next_utc_slot(session.chain.latest_timestamp(), weekday=1, hour=10))
        session.chain.mine()
        gas = exit_gas(session, TEMPLATE.read_text(), tmp)
        session.close()
    result = {"gas": gas, "template": "tests/fixtures/policies/resilient.yaml + 2 extra ERC-20s"}
    print(json.dumps(result, indent=2))
    if args.write:
        SNAPSHOT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main()
