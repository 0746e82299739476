"""The audit HTML report: one self-contained file (charts as base64 PNG, no external resources).

Sections: the verdict and the signed head, entries per kind, a timeline (entries over time), per-vault
flows (deposits observed and executions, per asset), approvals per signer, corrections, and the full
entry timeline table. Every value shown goes through :func:`custody.audit.export.redact`.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from custody.audit.export import redact

MAX_ROWS = 2_000


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _charts(entries: list[dict[str, Any]], flows: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts = []
    kinds = Counter(e["kind"] for e in entries)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    names = sorted(kinds, key=lambda kind: kinds[kind])
    ax.barh(names, [kinds[n] for n in names], color="#4a7ab5")
    ax.set_xlabel("entries")
    ax.set_title("Ledger entries by kind")
    charts.append(("Entries by kind", _png(fig)))
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(8, 3))
    for kind in sorted({e["kind"] for e in entries}):
        points = [(e["seq"], e["refs"]["block"]) for e in entries if e["kind"] == kind and "block" in e["refs"]]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], ".", markersize=5, label=kind)
    ax.set_xlabel("sequence number")
    ax.set_ylabel("block referenced")
    ax.set_title("Timeline: entries and the blocks they reference")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    charts.append(("Timeline", _png(fig)))
    plt.close(fig)
    if flows:
        labels = [f"{v} / {a}" for (v, a) in flows]
        fig, ax = plt.subplots(figsize=(8, 0.5 + 0.4 * len(labels)))
        ins = [flows[k]["in_count"] for k in flows]
        outs = [flows[k]["out_count"] for k in flows]
        ax.barh(labels, ins, color="#5a9e6f", label="deposits observed")
        ax.barh(labels, [-o for o in outs], color="#c0504d", label="executions (outgoing)")
        ax.axvline(0, color="black", linewidth=0.6)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_title("Per-vault flows (count of movements)")
        charts.append(("Per-vault flows", _png(fig)))
        plt.close(fig)
    return charts


def flows_by_vault(entries: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(vault, asset) → counts and integer sums of deposits in and executed value out."""
    superseded = {e["refs"].get("supersedes") for e in entries if e["kind"] == "correction"}
    flows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"in_count": 0, "in_total": 0, "out_count": 0, "out_total": 0}
    )
    for e in entries:
        if e["seq"] in superseded:
            continue
        p = e["payload"]
        if e["kind"] == "deposit_observed":
            f = flows[(e.get("vault") or "?", p.get("asset", "?"))]
            f["in_count"] += 1
            f["in_total"] += int(p.get("amount", "0"))
        elif e["kind"] == "execution" and p.get("success"):
            data = p.get("data", "0x")
            asset, amount = "ETH", int(p.get("value", "0"))
            if data.startswith("0xa9059cbb") and len(data) >= 138:  # ERC-20 transfer(address,uint256)
                asset, amount = p.get("to", "?").lower(), int(data[74:138], 16)
            if amount == 0:
                continue  # a contract call that moves nothing (configuration, issuer calls)
            f = flows[(e.get("vault") or "?", asset)]
            f["out_count"] += 1
            f["out_total"] += amount
    return dict(flows)


def approvals_by_signer(entries: list[dict[str, Any]]) -> Counter[str]:
    return Counter(e["payload"].get("signer", e["actor"]) for e in entries if e["kind"] == "approval_signed")


def write_html(
    path: str | Path, entries: list[dict[str, Any]], verdict: dict[str, Any], *, title: str = "custody audit report"
) -> Path:
    entries = [redact(e) for e in entries]
    flows = flows_by_vault(entries)
    approvals = approvals_by_signer(entries)
    esc = html.escape
    head = verdict.get("integrity", {}).get("latest_head") or {}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title)}</title><style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}"
        ".ok{color:#207020}.bad{color:#b02020}code{font-size:11px}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f"<p>Verdict: <b class='{'ok' if verdict.get('exit_code') == 0 else 'bad'}'>{esc(str(verdict.get('verdict')))}</b>"
        f" (exit code {verdict.get('exit_code')}); first bad sequence: {esc(str(verdict.get('first_bad_sequence')))}."
        f" Entries: {len(entries)}; root <code>{esc(str(verdict.get('root', '')))}</code>.</p>",
        f"<p>Latest signed head: size {esc(str(head.get('size')))}, time {esc(str(head.get('time')))}, key "
        f"<code>{esc(str(head.get('key_id')))}</code></p>",
    ]
    for name, uri in _charts(entries, flows):
        parts.append(f"<h2>{esc(name)}</h2><img alt='{esc(name)}' src='{uri}'>")
    parts.append("<h2>Per-vault flows</h2><table><tr><th>vault</th><th>asset</th><th>deposits</th>"
                 "<th>deposited (base units)</th><th>executions</th><th>sent (base units)</th></tr>")  # fmt: skip
    for (vault, asset), f in sorted(flows.items()):
        parts.append(f"<tr><td>{esc(vault)}</td><td>{esc(asset)}</td><td>{f['in_count']}</td><td>{f['in_total']}</td>"
                     f"<td>{f['out_count']}</td><td>{f['out_total']}</td></tr>")  # fmt: skip
    parts.append("</table><h2>Approvals per signer</h2><table><tr><th>signer</th><th>approvals</th></tr>")
    for signer, count in approvals.most_common():
        parts.append(f"<tr><td><code>{esc(str(signer))}</code></td><td>{count}</td></tr>")
    parts.append("</table>")
    problems = (verdict.get("integrity") or {}).get("problems", []) + ((verdict.get("chain") or {}).get("problems", []))
    if problems:
        parts.append("<h2>Problems</h2><table><tr><th>sequence</th><th>code</th><th>message</th></tr>")
        for p in problems:
            parts.append(
                f"<tr><td>{esc(str(p['sequence']))}</td><td>{esc(p['code'])}</td><td>{esc(p['message'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append(f"<h2>Timeline</h2><p>{'All' if len(entries) <= MAX_ROWS else f'The last {MAX_ROWS} of'} "
                 f"{len(entries)} entries.</p><table><tr><th>seq</th><th>time</th><th>kind</th><th>actor</th><th>vault</th>"
                 "<th>references</th><th>facts</th></tr>")  # fmt: skip
    for e in entries[-MAX_ROWS:]:
        refs = ", ".join(f"{k}={v}" for k, v in sorted(e["refs"].items()))
        facts = ", ".join(f"{k}={v}" for k, v in sorted(e["payload"].items()) if k not in ("data", "calls"))
        parts.append(f"<tr><td>{e['seq']}</td><td>{esc(e['time'])}</td><td>{esc(e['kind'])}</td><td>{esc(e['actor'])}</td>"
                     f"<td>{esc(str(e.get('vault') or ''))}</td><td><code>{esc(refs)}</code></td><td>{esc(facts[:400])}</td></tr>")  # fmt: skip
    parts.append("</table></body></html>")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(parts), encoding="utf-8")
    return target
