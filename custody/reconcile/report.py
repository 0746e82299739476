"""The HTML report: one self-contained file (charts embedded as base64 PNG) that opens offline.

Charts: supply vs backing over time (supply from Transfer events, on-chain allocation from batch
events, verified backing from allocations of listed bars) and findings by kind. Tables: totals, the
list change, custodian/location totals, and the findings with their evidence.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from pathlib import Path

from matplotlib.figure import Figure

from custody.reconcile.barlist import BarList, format_units
from custody.reconcile.engine import Reconciliation
from custody.reconcile.findings import SEVERITY, FindingKind, Severity
from custody.reconcile.index import ZERO, EventKind, OnchainRecord

MAX_POINTS = 4000
MAX_FINDINGS_SHOWN = 1000
_OZ = 10**18


def history(bars: BarList, record: OnchainRecord) -> dict[str, tuple[list[int], list[int]]]:
    """Step series (blocks, values in base units) of supply, on-chain allocation and verified backing."""
    series: dict[str, tuple[list[int], list[int]]] = {}
    t = record.transfers
    deltas = [
        (b, a if f == ZERO else -a)
        for b, a, f, to in zip(t.blocks, t.amounts, t.accounts, t.counterparties)
        if f == ZERO or to == ZERO
    ]
    series["supply"] = _cumulative(deltas)
    b = record.batches
    series["on-chain allocation"] = _cumulative(
        [(blk, a if k == EventKind.BATCH_ALLOCATED else -a) for blk, a, k in zip(b.blocks, b.amounts, b.kinds)]
    )
    listed = bars.index()
    fine = bars.fine_milli
    live: Counter[bytes] = Counter()
    verified_deltas = []
    for blk, kind, bid, w in zip(record.bars.blocks, record.bars.kinds, record.bars.keys, record.bars.amounts):
        j = listed.get(bid)
        if j is None:
            continue
        counted = min(w, fine[j] * 10**15)
        if kind == EventKind.ALLOCATED:
            live[bid] += 1
            if live[bid] == 1:
                verified_deltas.append((blk, counted))
        elif live[bid] > 0:
            live[bid] -= 1
            if live[bid] == 0:
                verified_deltas.append((blk, -counted))
    series["verified backing"] = _cumulative(verified_deltas)
    return series


def _cumulative(deltas: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    blocks: list[int] = []
    values: list[int] = []
    total = 0
    for block, delta in deltas:
        total += delta
        if blocks and blocks[-1] == block:
            values[-1] = total
        else:
            blocks.append(block)
            values.append(total)
    if len(blocks) > MAX_POINTS:  # keep the shape, drop points (the last one always stays)
        step = len(blocks) / MAX_POINTS
        keep = sorted({int(i * step) for i in range(MAX_POINTS)} | {len(blocks) - 1})
        blocks, values = [blocks[i] for i in keep], [values[i] for i in keep]
    return blocks, values


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def charts(bars: BarList, record: OnchainRecord, result: Reconciliation) -> dict[str, str]:
    """Chart name → data: URI of a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = {}
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 3.6))
    series = history(bars, record)
    firsts = [blocks[0] for blocks, _ in series.values() if blocks]
    start = min(firsts) - 1 if firsts else result.at_block
    for (name, (blocks, values)), style in zip(series.items(), ("-", "--", ":")):
        xs = [start, *blocks, max(result.at_block, blocks[-1] if blocks else start)]
        ys = [0, *values, values[-1] if values else 0]
        ax.step(xs, [v / _OZ for v in ys], style, where="post", label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.set_xlabel("block")
    ax.set_ylabel("fine troy oz")
    ax.set_title("Supply vs backing over time")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    out["supply_vs_backing"] = _png(fig)
    plt.close(fig)

    counts = result.counts()
    fig, ax = plt.subplots(figsize=(8, max(1.6, 0.45 * len(counts) + 0.8)))
    if counts:
        kinds = list(counts)
        colours = ["#c0392b" if SEVERITY[FindingKind(k)] is Severity.CRITICAL else "#e67e22" for k in kinds]
        ax.barh(kinds, [counts[k] for k in kinds], color=colours)
        ax.invert_yaxis()
    else:
        ax.text(0.5, 0.5, "no findings", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("findings")
    ax.set_title("Findings by kind (red: critical, orange: warning)")
    out["findings_by_kind"] = _png(fig)
    plt.close(fig)
    return out


def _e(value: object) -> str:
    return html.escape(str(value))


def _table(headers: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(bars: BarList, record: OnchainRecord, result: Reconciliation, *, title: str) -> str:
    images = charts(bars, record, result)
    t = result.totals
    verdict = "BACKING SHORT" if result.backing_short else ("DISCREPANCIES" if result.findings else "RECONCILED")
    totals = _table(
        ["", "fine oz", "base units"],
        [
            ["token supply", format_units(t.supply), t.supply],
            ["allocated on-chain", format_units(t.onchain_allocated), t.onchain_allocated],
            ["verified backing (listed ∩ allocated)", format_units(t.verified_backing), t.verified_backing],
            ["bar list total", format_units(t.listed), t.listed],
            ["shortfall", format_units(t.shortfall), t.shortfall],
        ],
    )
    facts = _table(
        ["", ""],
        [
            ["token", record.token],
            ["chain id", record.chain_id],
            ["block", result.at_block],
            ["bar list", bars.source],
            ["bar list SHA-256", bars.sha256],
            ["bars listed / allocated / verified", f"{t.bars_listed} / {t.bars_allocated} / {t.bars_verified}"],
        ],
    )
    diff = ""
    if result.diff is not None:
        d = result.diff
        diff = "<h2>Change since the previous list</h2>" + _table(
            ["since block", "added", "removed", "altered", "moved", "list change (oz)", "minted (oz)", "burned (oz)"],
            [
                [
                    d.since_block,
                    d.added,
                    d.removed,
                    d.altered,
                    d.moved,
                    format_units(d.list_change),
                    format_units(d.minted),
                    format_units(d.burned),
                ]
            ],
        )
    custodians = _table(
        ["custodian", "vault location", "bars", "fine oz", "bars allocated", "allocated fine oz"],
        [
            [
                c["custodian"],
                c["vault_location"],
                c["bars"],
                c["fine_oz"],
                c["bars_allocated"],
                format_units(int(c["allocated_fine"])),
            ]
            for c in result.custodians
        ],
    )
    shown = result.findings[:MAX_FINDINGS_SHOWN]
    findings = _table(
        ["severity", "kind", "finding", "bar", "evidence (event, block, tx)"],
        [
            [
                f.severity.value,
                f.kind.value,
                f.message,
                f.bar_id or "",
                "; ".join(f"{e.event} block {e.block} tx {e.tx_hash or '?'}" for e in f.events[:5]),
            ]
            for f in shown
        ],
    )
    more = (
        f"<p>{len(result.findings) - len(shown)} more findings in the JSON output.</p>"
        if len(shown) < len(result.findings)
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Collateral reconciliation — {_e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
.verdict {{ font-size: 1.3em; font-weight: bold; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Collateral reconciliation</h1>
<p class="verdict">{_e(verdict)} — {len(result.findings)} finding(s), {result.critical} critical</p>
{facts}
<h2>Supply and backing</h2>
{totals}
<img alt="supply vs backing over time" src="{images["supply_vs_backing"]}">
<h2>Findings</h2>
<img alt="findings by kind" src="{images["findings_by_kind"]}">
{findings}{more}
{diff}
<h2>Custodian and location totals</h2>
{custodians}
</body></html>
"""


def write_html(path: Path, bars: BarList, record: OnchainRecord, result: Reconciliation, *, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(bars, record, result, title=title), encoding="utf-8")
    return path
