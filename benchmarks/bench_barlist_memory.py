"""Peak memory of reading and reconciling a 50 MB bar list, measured on the process that does it.

The parent generates a CSV bar list of at least ``--megabytes`` MB and the matching events in the indexer's storage
format (benchmarks/bench_reconcile.py's synthetic data: a few discrepancies of each kind seeded), then runs the
work in a child process: read + validate the list streamed (custody/reconcile/stream.py) with the CLI's rich
progress bar drawn on the child's stderr, load the events, reconcile, look up the cited events' tx hashes — what
`custody reconcile` does after indexing. The child reads its own peak resident set from the kernel (``VmHWM``) once
the list is read and at the end; the parent, which built the data, is never counted (``ru_maxrss`` would be: Linux
carries it over fork + exec). The budget (issue 17: ≤ 300 MB) is for the whole run, interpreter and imports
included.

    .venv/bin/python benchmarks/bench_barlist_memory.py [--megabytes 50] [--write]

--write updates benchmarks/snapshots/barlist-memory.json (committed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_reconcile import SEEDS, synthetic  # noqa: E402

SNAPSHOT = ROOT / "benchmarks" / "snapshots" / "barlist-memory.json"
BUDGET_MB = 300
BYTES_PER_BAR = 68  # a generated row is 66-70 bytes


def child(folder: Path, token: str, at_block: int) -> None:
    """Runs in the measured process: what `custody reconcile` does with the list, the events and the engine."""
    from rich.console import Console

    from custody.cli._progress import byte_progress
    from custody.reconcile import index
    from custody.reconcile.engine import reconcile
    from custody.reconcile.ingest import load_bar_list
    from custody.workspace import Workspace

    started = time.perf_counter()
    updates = []
    stream = Console(stderr=True, force_terminal=True, width=120)  # draw the bar although stderr is a file
    with byte_progress("reading the bar list", stream=stream) as update:

        def counted(done: int, total: int) -> None:
            updates.append(done)
            update(done, total)

        bars = load_bar_list(folder / "bars.csv", progress=counted)
    read_s = time.perf_counter() - started
    read_peak_mb = _high_water_mb()
    workspace = Workspace(folder / "ws")
    record = index.load_record(workspace.store, 31337, token, at_block)
    result = reconcile(bars, record)
    hashes = record.tx_hashes((e.block, e.log_index) for f in result.findings for e in f.events)
    workspace.close()
    print(json.dumps({
        "bars": len(bars), "counts": result.counts(), "progress_updates": len(updates), "tx_hashes": len(hashes),
        "read_validate_seconds": round(read_s, 2), "peak_rss_after_read_mb": round(read_peak_mb, 1),
        "peak_rss_mb": round(_high_water_mb(), 1), "total_seconds": round(time.perf_counter() - started, 2),
    }))  # fmt: skip


def _high_water_mb() -> float:
    """This process's peak resident set (VmHWM). Not getrusage: Linux carries ru_maxrss over fork + exec, so a
    child of a large parent would report the parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(folder: Path, data: dict) -> dict:
    out, err = folder / "child.out", folder / "child.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, __file__, "--child", str(folder), data["token"], str(data["at_block"])],
            stdout=stdout, stderr=stderr, cwd=ROOT,
        )  # fmt: skip
        process.wait()
    if process.returncode != 0:
        raise SystemExit(f"the measured child failed ({process.returncode}):\n{err.read_text()[-3000:]}")
    report = json.loads(out.read_text())
    drawn = err.read_text()
    report["progress_bar_drawn"] = "reading the bar list" in drawn and "MB" in drawn
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=50.0)
    parser.add_argument("--write", action="store_true", help="update the committed snapshot")
    parser.add_argument("--child", nargs=3, metavar=("FOLDER", "TOKEN", "BLOCK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), args.child[1], int(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        n_bars = int(args.megabytes * 1_000_000 / BYTES_PER_BAR) + 1
        print(f"generating {n_bars:,} bars and their events …", file=sys.stderr)
        data = synthetic(folder, n_bars)
        size = data["bars_csv"].stat().st_size
        if size < args.megabytes * 1_000_000:
            raise SystemExit(f"generated only {size:,} bytes")
        report = measure(folder, data)
    expected = {"allocated_not_in_list": SEEDS, "listed_not_allocated": SEEDS, "duplicate_allocation": SEEDS,
                "weight_mismatch": SEEDS, "backing_shortfall": 1}  # fmt: skip
    assert report["counts"] == expected, report["counts"]
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "2-core machine shared with other sessions; times vary with their load, memory less so"},
        "bar_list_bytes": size,
        "bars": report["bars"],
        "events": data["events"],
        "read_validate_peak_rss_mb": report["peak_rss_after_read_mb"],
        "budget_mb": BUDGET_MB,
        "full_reconcile_peak_rss_mb": report["peak_rss_mb"],
        "within_budget": report["peak_rss_mb"] <= BUDGET_MB,
        "note": "peak resident set of the whole process (interpreter and imports included) reading, validating and "
                "hashing the list streamed, loading as many indexed on-chain events, reconciling and looking up the "
                "cited events' tx hashes",
        "progress_updates": report["progress_updates"],
        "progress_bar_drawn": report["progress_bar_drawn"],
        "read_validate_seconds": report["read_validate_seconds"],
        "total_seconds": report["total_seconds"],
        "findings": report["counts"],
    }  # fmt: skip
    print(json.dumps(result, indent=2, sort_keys=True))
    if args.write:
        SNAPSHOT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        print(f"wrote {SNAPSHOT}", file=sys.stderr)
    if not result["within_budget"] or not result["progress_bar_drawn"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
