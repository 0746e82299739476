"""Figures in docs/*.md generated from the committed snapshots (never typed by hand), like benchmarks/figures.py
does for README.md.

    python -m benchmarks.doc_figures            # show which docs blocks differ from the snapshots
    python -m benchmarks.doc_figures --write    # rewrite them

A block sits between ``<!-- figures:NAME -->`` and ``<!-- /figures:NAME -->`` in its docs file;
tests/test_doc_figures.py fails when a block and its snapshot disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from benchmarks.figures import ROOT, _n, _pattern, _snapshot


def barlist_memory() -> str:
    data = _snapshot("barlist-memory")
    met = "within" if data["within_budget"] else "**over**"
    return (
        f"A {data['bar_list_bytes'] / 1e6:.1f} MB bar list ({_n(data['bars'])} bars) reconciled against "
        f"{_n(data['events'])} indexed on-chain events peaked at **{data['full_reconcile_peak_rss_mb']} MB** resident "
        f"in the committed run ({met} the {data['budget_mb']} MB budget), the interpreter and its imports included; "
        f"{data['read_validate_peak_rss_mb']} MB once the list was read, validated and hashed."
    )


DOCS: dict[str, dict[str, Callable[[], str]]] = {"docs/reconcile.md": {"barlist-memory": barlist_memory}}


def blocks(text: str, names) -> dict[str, str]:
    found = {}
    for name in names:
        match = _pattern(name).search(text)
        if match:
            found[name] = match.group(2)
    return found


def render(text: str, makers: dict[str, Callable[[], str]], where: str) -> str:
    for name, make in makers.items():
        text, count = _pattern(name).subn(lambda m, body=make(): m.group(1) + body + m.group(3), text)
        if count != 1:
            raise SystemExit(f"{where} has {count} blocks named {name!r} (expected exactly one)")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the docs blocks from the snapshots")
    args = parser.parse_args(argv)
    stale_any = False
    for relative, makers in DOCS.items():
        path = ROOT / relative
        text = path.read_text(encoding="utf-8")
        new = render(text, makers, relative)
        stale = [n for n in makers if blocks(text, makers).get(n) != blocks(new, makers).get(n)]
        if stale and args.write:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {relative}: {', '.join(stale)}")
        elif stale:
            print(f"stale figures in {relative}: {', '.join(stale)} (run python -m benchmarks.doc_figures --write)")
            stale_any = True
    return 1 if stale_any else 0


if __name__ == "__main__":
    sys.exit(main())
