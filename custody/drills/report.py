"""The drill report for regulators: JSON (machines, auditors) and one self-contained HTML page (people;
no scripts, no external resources — it opens offline)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#1d232a;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #d8dee4;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #d8dee4;padding:.35em .5em;vertical-align:top;text-align:left}
th{background:#f3f5f7;font-weight:600}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em;word-break:break-all}
.badge{display:inline-block;padding:.2em .7em;border-radius:1em;font-weight:700;color:#fff}.passed{background:#1a7f37}.failed{background:#cf222e}
.skipped{background:#8c959f}tr.failed td{background:#fff1f0}.diff{color:#cf222e}.muted{color:#57606a}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dt{font-weight:600}dd{margin:0}
"""


def write_report(data: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out``; returns both paths."""
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "report.json", out / "report.html"
    data["files"] = {"json": str(json_path), "html": str(html_path)}
    json_path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    html_path.write_text(render_html(data), encoding="utf-8")
    return json_path, html_path


def _e(value: Any) -> str:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    return html.escape("" if value is None else str(value))


def _expected(step: dict[str, Any]) -> str:
    exp = step["expected"]
    parts = ["ok" if exp["ok"] else f"error {exp.get('error') or '(any)'}"]
    if exp.get("message"):
        parts.append(f"message contains “{exp['message']}”")
    for key, value in (exp.get("data") or {}).items():
        parts.append(f"{key} = {value}")
    for b in exp.get("balance", []):
        op = next(k for k in b if k not in ("of", "asset"))
        parts.append(f"balance of {b['of']} ({b['asset']}) {op.replace('_', ' ')} {'' if b[op] is True else b[op]}")
    if exp.get("state"):
        state = dict(exp["state"])
        vault = state.pop("vault")
        parts.append(f"{vault}: " + ", ".join(f"{k} {v}" for k, v in state.items()))
    if "broadcasts" in exp:
        parts.append(f"duplicate-nonce broadcasts = {exp['broadcasts']['duplicate_nonces']}")
    if exp.get("max_seconds") is not None:
        parts.append(f"within {exp['max_seconds']} s")
    return "<br>".join(_e(p) for p in parts)


def _observed(step: dict[str, Any]) -> str:
    obs = step["observed"]
    if obs is None:
        return '<span class="muted">not run (an earlier step failed)</span>'
    head = (
        "ok"
        if obs["ok"]
        else f"{obs['error']}"
        + (f" / {obs['onchain_error']}" if obs.get("onchain_error") and obs["onchain_error"] != obs["error"] else "")
    )
    lines = [f"<strong>{_e(head)}</strong>"]
    if not obs["ok"]:
        lines.append(_e(obs["message"]))
    facts = {k: v for k, v in obs["data"].items() if k in _SHOWN}
    if facts:
        lines.append('<span class="mono">' + "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in facts.items()) + "</span>")
    for d in step["diff"]:
        lines.append(
            f'<span class="diff">✗ {_e(d["field"])}: expected {_e(d["expected"])}, observed {_e(d["observed"])}</span>'
        )
    return "<br>".join(lines)


_SHOWN = (
    "tx_hash",
    "gas_used",
    "swept",
    "custodian",
    "ready_at",
    "operation",
    "signatures",
    "quorum",
    "balance",
    "advanced_s",
    "mode",
    "method",
    "calls",
    "lost",
    "address",
    "resumed",
    "same_transaction",
    "rebroadcasts",
    "owners",
    "threshold",
    "paused",
    "exit_pending",
    "shared_components",
    "duplicate_nonces",
    "guard",
)


def render_html(data: dict[str, Any]) -> str:
    drill, run, chain = data["drill"], data["run"], data["run"]["chain"]
    verdict = data["verdict"]
    rows = []
    for s in data["steps"]:
        actors = "<br>".join(
            f"{_e(a['uri'])}<br><span class='mono muted'>{_e(a.get('address') or a.get('problem'))}</span>"
            + (f" <span class='muted'>({_e(a['role'])})</span>" if a.get("role") else "")
            for a in s["actor"]
        )
        seconds = "" if s["seconds"] is None else f"{s['seconds']:.3f}"
        rows.append(
            f"<tr class='{s['verdict']}'><td>{s['index']}</td><td>{_e(s['name'])}<br><code>{_e(s['action'])}</code>"
            f"<span class='muted'> line {s['line']}</span></td><td>{actors}</td><td>{_expected(s)}</td>"
            f"<td>{_observed(s)}</td><td>{seconds}</td><td><span class='badge {s['verdict']}'>{s['verdict']}</span></td></tr>"
        )
    vaults = "".join(
        f"<tr><td>{_e(v['alias'])}</td><td>{_e(v['name'])}</td><td class='mono'>{_e(v['safe'])}</td>"
        f"<td class='mono'>{_e(v.get('exit_module') or '-')}</td><td>{'created for the drill' if v['created'] else 'existing vault'}"
        f"{'; funded ' + ', '.join(f['amount'] + ' ' + f['asset'] for f in v['funded']) if v['funded'] else ''}</td></tr>"
        for v in data["vaults"]
    )
    rpc = data["rpc"]
    mode = {
        "snapshot": "snapshot of the local chain, restored afterwards",
        "live": "live on the local chain (kept)",
        "fork": f"fork of {chain.get('fork_url')} at block {chain.get('fork_block')} (discarded)",
    }[run["mode"]]
    records = data.get("records") or {}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drill report: {_e(drill["title"])}</title><style>{CSS}</style></head>
<body>
<h1>{_e(drill["title"])} <span class="badge {verdict}">{verdict.upper()}</span></h1>
<p class="muted">{_e(drill["description"])}</p>
<dl>
<dt>Drill</dt><dd>{_e(drill["name"])} — playbook <code>{_e(drill["playbook"])}</code> (SHA-256 <code>{_e(drill["playbook_sha256"])}</code>)</dd>
<dt>Controls</dt><dd>{_e(", ".join(drill["controls"]) or "-")}</dd>
<dt>Run</dt><dd>{_e(run["id"])}: {_e(run["started_at"])} → {_e(run["finished_at"])} ({run["seconds"]} s), {_e(run["tool"])}</dd>
<dt>Chain</dt><dd>chain id {chain["chain_id"]} ({_e(chain["client"])}), blocks {chain["block_start"]}–{chain["block_end"]}; {_e(mode)}</dd>
<dt>Operator</dt><dd class="mono">{_e(run["operator"])} (pays gas)</dd>
<dt>Result</dt><dd>{data["summary"]["passed"]} of {data["summary"]["steps"]} steps as expected, {data["summary"]["failed"]} failed, {data["summary"]["skipped"]} not run</dd>
<dt>Parameters</dt><dd class="mono">{_e(data["params"])}</dd>
</dl>
<h2>Vaults</h2>
<table><tr><th>alias</th><th>name</th><th>Safe</th><th>exit module</th><th>origin</th></tr>{vaults}</table>
<h2>Steps: expected vs observed</h2>
<table><tr><th>#</th><th>step</th><th>who acted</th><th>expected</th><th>observed</th><th>seconds</th><th>verdict</th></tr>
{"".join(rows)}</table>
<h2>RPC</h2>
<p>{rpc["calls"]} JSON-RPC calls through the drill's loopback proxy; {rpc["faults_injected"]} faults injected;
{rpc["broadcasts"]} transaction broadcasts reached the node ({rpc["distinct_transactions"]} distinct transactions);
<strong>{len(rpc["duplicate_nonce_broadcasts"])} nonces with two different transactions</strong>.
Client policy: {rpc["policy"]["timeout_s"]} s per request, {rpc["policy"]["retries"]} retries for idempotent calls,
{rpc["policy"]["receipt_timeout_s"]} s for a receipt.</p>
<h2>Records</h2>
<p>Report hash (keccak256 of the canonical report without records/files): <code>{_e(records.get("report_keccak") or "-")}</code><br>
Audit ledger entry: {_ledger_line(records)}<br>
Attestation badge: {_e(records.get("attestation") or "not issued: " + str(records.get("attestation_skipped") or "unknown"))}</p>
</body></html>
"""


def _ledger_line(records: dict[str, Any]) -> str:
    ledger = records.get("ledger")
    if not ledger:
        return _e("not recorded: " + str(records.get("ledger_error") or "unknown"))
    return (
        f"#{ledger['seq']} of log <code>{_e(ledger['log_id'])}</code>, leaf hash <code>{_e(ledger['leaf_hash'])}</code>"
    )
