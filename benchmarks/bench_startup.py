"""Start-up benchmark: wall time of ``import custody`` and ``custody --help`` in this tree, against the same
commands in a git revision before the public API (``--before REV``) and against two floors measured in the
same run: ``python -c pass`` and ``python -c "import web3"``.

    .venv/bin/python benchmarks/bench_startup.py [--runs N] [--before REV] [--write]

Each figure is the median of N fresh interpreter runs (wall clock, this machine, load included: indicative).
``-X importtime`` gives the cumulative import time of the ``custody`` package itself and whether web3 was
imported. --write updates benchmarks/snapshots/startup.json (committed).
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import write_snapshot  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "startup.json"
PYTHON = sys.executable
COMMANDS = {
    "import_custody": [PYTHON, "-c", "import custody"],
    "custody_help": [PYTHON, "-m", "custody", "--help"],
}
FLOORS = {"python_pass": [PYTHON, "-c", "pass"], "import_web3": [PYTHON, "-c", "import web3"]}


def wall(argv: list[str], cwd: Path, runs: int) -> float:
    """Median wall seconds of ``runs`` fresh processes (one warm-up run first: the page cache, not us)."""
    samples = []
    for i in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed in {cwd}: {done.stderr[-2000:]}")
        if i:
            samples.append(elapsed)
    return round(statistics.median(samples), 3)


def import_profile(argv: list[str], cwd: Path) -> dict:
    """``-X importtime``: cumulative µs of the top-level ``custody`` import, modules imported, web3 or not."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    modules = {row[2].strip(): int(row[1]) for row in rows[1:] if len(row) == 3 and row[1].strip().isdigit()}
    return {"custody_cumulative_us": modules.get("custody"), "modules_imported": len(modules),
            "imports_web3": "web3" in modules, "imports_click": "click" in modules}  # fmt: skip


def checkout(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (git archive: no worktree, no checkout of this one is touched)."""
    blob = subprocess.run(["git", "archive", "--format=tar", rev, "custody"], cwd=ROOT, capture_output=True,
                          check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into


def measure(tree: Path, runs: int) -> dict:
    return {
        name: {"wall_seconds": wall(argv, tree, runs), **import_profile(argv, tree)} for name, argv in COMMANDS.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", default=None, help="git revision without the public API (the baseline tree)")
    parser.add_argument("--write", action="store_true", help="update the committed snapshot")
    args = parser.parse_args()
    result: dict = {
        "runs": args.runs,
        "note": "median wall seconds of fresh interpreters on a shared 2-core machine: indicative, not a gate",
        "floors_wall_seconds": {name: wall(argv, ROOT, args.runs) for name, argv in FLOORS.items()},
        "after": measure(ROOT, args.runs),
    }
    if args.before:
        with tempfile.TemporaryDirectory(prefix="custody-startup-before-") as tmp:
            result["before"] = measure(checkout(args.before, Path(tmp)), args.runs)
            result["before_rev"] = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, text=True,
                                                  capture_output=True, check=True).stdout.strip()  # fmt: skip
    write_snapshot(SNAPSHOT, result, write=args.write)


if __name__ == "__main__":
    main()
