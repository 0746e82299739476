"""Start-up benchmark: wall time of ``import custody``, ``custody --help`` and a read command (``custody vault
list`` on a running local chain holding one vault) in this tree, against the same commands in an earlier git
revision (``--before REV``) and against floors measured in the same run: ``python -c pass``, ``python -c
"import web3"`` and ``python -c "import custody.vault.service"`` (the domain module ``vault list`` calls; the
CLI cannot load less than it).

    .venv/bin/python benchmarks/bench_startup.py [--runs N] [--before REV] [--write]

Each figure is the median of N fresh interpreter runs (wall clock, this machine, load included: indicative).
``-X importtime`` gives the cumulative import time of the ``custody`` package itself, how many modules were
imported and which heavy libraries among them. Targets (issue 13 point 6): ``custody --help`` ≤ 0.3 s and
``vault list`` ≤ 1 s. --write updates benchmarks/snapshots/startup.json (committed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scenarios import write_snapshot  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "startup.json"
PYTHON = sys.executable
COMMANDS = {
    "import_custody": [PYTHON, "-c", "import custody"],
    "custody_help": [PYTHON, "-m", "custody", "--help"],
    "vault_list": [PYTHON, "-m", "custody", "vault", "list", "--json"],
}
FLOORS = {
    "python_pass": [PYTHON, "-c", "pass"],
    "import_web3": [PYTHON, "-c", "import web3"],
    "import_vault_service": [PYTHON, "-c", "import custody.vault.service"],
}
TARGETS_SECONDS = {"custody_help": 0.3, "vault_list": 1.0}
#: libraries worth naming when a command imports them (each costs a noticeable share of a second)
HEAVY = ("web3", "eth_account", "sqlalchemy", "numpy", "sklearn", "safe_eth", "eth", "pkcs11", "rich")


def wall(argv: list[str], cwd: Path, runs: int, env: dict[str, str]) -> float:
    """Median wall seconds of ``runs`` fresh processes (one warm-up run first: the page cache, not us)."""
    samples = []
    for i in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed in {cwd}: {done.stderr[-2000:]}")
        if i:
            samples.append(elapsed)
    return round(statistics.median(samples), 3)


def import_profile(argv: list[str], cwd: Path, env: dict[str, str]) -> dict:
    """``-X importtime``: cumulative µs of the top-level ``custody`` import, modules imported, heavy ones."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    modules = {row[2].strip(): int(row[1]) for row in rows[1:] if len(row) == 3 and row[1].strip().isdigit()}
    return {
        "custody_cumulative_us": modules.get("custody"),
        "modules_imported": len(modules),
        "imports_web3": "web3" in modules,
        "imports_click": "click" in modules,
        "heavy_imported": [name for name in HEAVY if any(m == name or m.startswith(name + ".") for m in modules)],
    }


def checkout(rev: str, into: Path) -> Path:
    """The tree of ``rev`` (git archive: no worktree, no checkout of this one is touched)."""
    blob = subprocess.run(
        ["git", "archive", "--format=tar", rev, "custody"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return into


@contextmanager
def workspace_with_a_vault() -> Iterator[dict[str, str]]:
    """A fresh workspace whose local chain is up and holds one vault (policies/hot.yaml): the environment for
    ``vault list``. The chain is stopped afterwards."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    with tempfile.TemporaryDirectory(prefix="custody-startup-ws-") as home:
        env = {**base, "CUSTODY_HOME": home}

        def custody(*args: str) -> None:
            argv = [PYTHON, "-m", "custody", *args]
            done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise SystemExit(f"custody {' '.join(args)} failed: {done.stderr[-2000:]}")

        custody("chain", "up", "--json")
        try:
            custody("vault", "create", str(ROOT / "policies" / "hot.yaml"), "--json")
            yield env
        finally:
            custody("chain", "down", "--json")


def measure(trees: dict[str, Path], runs: int, env: dict[str, str]) -> dict[str, dict]:
    """Each command in each tree, the trees taking turns command by command (the load of a shared machine
    drifts: both trees see the same drift)."""
    result: dict[str, dict] = {tree: {} for tree in trees}
    for name, argv in COMMANDS.items():
        for tree, path in trees.items():
            result[tree][name] = {"wall_seconds": wall(argv, path, runs, env), **import_profile(argv, path, env)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--before", default=None, help="git revision to compare with (the baseline tree)")
    parser.add_argument("--write", action="store_true", help="update the committed snapshot")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with workspace_with_a_vault() as env, tempfile.TemporaryDirectory(prefix="custody-startup-before-") as tmp:
        trees = {"after": ROOT, **({"before": checkout(args.before, Path(tmp))} if args.before else {})}
        result: dict = {
            "runs": args.runs,
            "note": "median wall seconds of fresh interpreters on a shared 2-core machine: indicative, not a gate",
            "targets_seconds": TARGETS_SECONDS,
            "floors_wall_seconds": {name: wall(argv, ROOT, args.runs, env) for name, argv in FLOORS.items()},
            **measure(trees, args.runs, env),
        }
    # how busy the machine was (1-minute load average at the start and at the end; it has 2 cores)
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    if args.before:
        result["before_rev"] = subprocess.run(
            ["git", "rev-parse", "--short", args.before], cwd=ROOT, text=True, capture_output=True, check=True
        ).stdout.strip()
    print(json.dumps({k: v["wall_seconds"] for k, v in result["after"].items()}), file=sys.stderr)
    write_snapshot(SNAPSHOT, result, write=args.write)


if __name__ == "__main__":
    main()
