#!/usr/bin/env python3
"""Daily custody report: every vault's balances, owners and open proposals, and the audit ledger's verdict.

    .venv/bin/python scripts/daily_report.py [--home DIR] [--rpc URL] [--vault NAME ...] [--json]

Written against the public API only (``import custody``; docs/api.md). Exit code: 0 when the audit ledger
verifies, 2 tampered, 3 chain mismatch (as ``custody audit verify``), 1 on any other error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's custody, whatever the install says

import custody


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], prog="daily_report.py")
    parser.add_argument("--home", help="workspace folder [$CUSTODY_HOME, else ./.custody]")
    parser.add_argument("--rpc", metavar="URL", help="chain RPC [$CUSTODY_RPC, else the workspace's local Anvil]")
    parser.add_argument("--vault", action="append", default=[], metavar="VAULT", help="only this vault (repeatable)")
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    return parser.parse_args(argv)


def vault_section(vault: custody.MicroVault) -> dict:
    state = vault.state()
    proposals = vault.proposals()
    return {
        "name": vault.name,
        "risk_class": vault.risk_class,
        "safe": vault.safe,
        "owners": f"{state.threshold}-of-{len(state.owners)}",
        "nonce": state.nonce,
        "balances": {b.symbol: b.amount if b.amount is not None else b.problem for b in state.balances},
        "guard_policy_matches_template": state.recorded_policy_matches,
        "open_proposals": [
            {"id": p.id, "nonce": p.nonce, "description": p.description, "signatures": len(p.signatures)}
            for p in proposals
            if p.status in (custody.ProposalState.PROPOSED, custody.ProposalState.EXECUTING)
        ],
        "executed_proposals": sum(1 for p in proposals if p.status is custody.ProposalState.EXECUTED),
    }


def build_report(ws: custody.Workspace, names: list[str]) -> dict:
    vaults = [ws.vault(name) for name in names] if names else ws.vaults()
    audit = ws.audit.verify()
    return {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "workspace": str(ws.home),
        "chain_id": ws.chain_id,
        "vaults": [vault_section(v) for v in vaults],
        "audit": {"verdict": audit.verdict, "entries": audit.integrity.size, "exit_code": audit.exit_code},
    }


def render(report: dict) -> str:
    lines = [f"custody daily report {report['generated_at']} — workspace {report['workspace']}, "
             f"chain {report['chain_id']}"]  # fmt: skip
    if not report["vaults"]:
        lines.append("  no vaults")
    for v in report["vaults"]:
        balances = ", ".join(f"{amount} {symbol}" for symbol, amount in v["balances"].items())
        policy = {True: "guard policy matches", False: "GUARD POLICY DIFFERS", None: "no guard"}[
            v["guard_policy_matches_template"]
        ]
        lines.append(
            f"{v['name']} ({v['risk_class']}) {v['safe']}: {balances}; {v['owners']}, nonce {v['nonce']}; {policy}"
        )
        for p in v["open_proposals"]:
            lines.append(
                f"  open proposal {p['id']} (nonce {p['nonce']}, {p['signatures']} signature(s)): {p['description']}"
            )
        lines.append(f"  {len(v['open_proposals'])} open, {v['executed_proposals']} executed proposal(s)")
    audit = report["audit"]
    lines.append(f"audit ledger: {audit['verdict']} ({audit['entries']} entries)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with custody.open(home=args.home, rpc=args.rpc) as ws:
            report = build_report(ws, args.vault)
    except custody.CustodyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(report, indent=2, sort_keys=True) if args.json else render(report))
    return report["audit"]["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
