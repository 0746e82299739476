"""README figures generated from the committed snapshots (never typed by hand).

    python -m benchmarks.figures            # show which README blocks differ from the snapshots
    python -m benchmarks.figures --write    # rewrite them

A block sits between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->`` in README.md; its text is
exactly what :data:`BLOCKS` renders from ``benchmarks/snapshots/``. tests/test_readme_figures.py fails
when a block and its snapshot disagree, so a benchmark re-run with ``--write`` and no README update (or
a figure edited by hand) cannot go unnoticed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SNAPSHOTS = ROOT / "benchmarks" / "snapshots"


def _snapshot(name: str) -> dict:
    return json.loads((SNAPSHOTS / f"{name}.json").read_text())


def _n(value: int) -> str:
    return f"{value:,}"


def guard_overhead() -> str:
    gas = _snapshot("guard")["gas"]
    targets = _snapshot("guard")["targets"]

    def target(key: str) -> str:
        return f"≤ {_n(targets[key]['target'])}" if key in targets else "—"

    rows = [
        ("ETH, steady state", "overhead_eth_steady"),
        ("ERC-20, steady state", "overhead_erc20_steady"),
        ("ETH, first spend of a day (after a 27 h idle gap: the whole window expired)", "overhead_eth_first_of_day"),
        ("ERC-20, first spend of a day (after a 27 h idle gap)", "overhead_erc20_first_of_day"),
        ("ETH, first spend in a new hour, ring slot written for the first time", "overhead_eth_new_hour"),
        ("ETH, first spend in a new hour, warm ring slot", "overhead_eth_new_hour_warm"),
        ("reference: no-op guard (same run)", "noop_overhead_eth_steady"),
    ]
    lines = ["| transfer | guard overhead (gas) | target |", "|---|---|---|"]
    lines += [f"| {label} | {_n(gas[key])} | {target(key)} |" for label, key in rows]
    return "\n".join(lines)


def exit_gas() -> str:
    gas = _snapshot("exit")["gas"]
    rows = [
        ("initiate, 2-of-3 council signatures", "initiate_2_of_3"),
        ("cancel by an owner", "cancel_by_owner"),
        ("initiate again (a new request)", "initiate_again"),
        ("finalize: ETH + 3 ERC-20 to the custodian", "finalize_eth_and_3_erc20"),
    ]
    return "\n".join(["| operation | gas |", "|---|---|", *(f"| {label} | {_n(gas[key])} |" for label, key in rows)])


def foundation() -> str:
    data = _snapshot("foundation")
    gas, rates = data["gas"], data["rates_per_second"]
    return (
        f"Last committed figures (guarded 2-of-3 cold vault): vault creation {_n(gas['vault_create_2of3'])} gas "
        "(Safe, timelock,\na guard whose policy is compiled into its code, and the vault's ExitModule clone); "
        f"2-of-3 ETH transfer\n{_n(gas['eth_transfer_2of3_first'])} (first) / {_n(gas['eth_transfer_2of3_steady'])} "
        f"(steady state); custody runs at about {rates['ratio_custody_over_raw']:.2f} of the raw loop's rate "
        f"({rates['custody_propose_sign2_execute']} vs\n{rates['raw_safe_eth_py_loop']} flows/s in the committed run)."
    )


BLOCKS: dict[str, Callable[[], str]] = {"guard-overhead": guard_overhead, "exit-gas": exit_gas,
                                        "foundation": foundation}  # fmt: skip


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- figures:{re.escape(name)} -->\n)(.*?)(\n<!-- /figures:{re.escape(name)} -->)", re.S)


def blocks(text: str) -> dict[str, str]:
    """The current text of every figure block in ``text`` (missing blocks are absent)."""
    found = {}
    for name in BLOCKS:
        match = _pattern(name).search(text)
        if match:
            found[name] = match.group(2)
    return found


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        text, count = _pattern(name).subn(lambda m, body=make(): m.group(1) + body + m.group(3), text)
        if count != 1:
            raise SystemExit(f"README.md has {count} blocks named {name!r} (expected exactly one)")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the README blocks from the snapshots")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new = render(text)
    stale = [name for name in BLOCKS if blocks(text).get(name) != blocks(new).get(name)]
    if args.write and stale:
        README.write_text(new, encoding="utf-8")
        print(f"rewrote {', '.join(stale)}")
    elif stale:
        print(f"stale README figures: {', '.join(stale)} (run python -m benchmarks.figures --write)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
