#!/usr/bin/env python3
"""Refill the hot vault from the warm vault up to a target ETH balance: propose, sign, execute.

    .venv/bin/python scripts/refill_hot.py --target 10 --signer keystore:treasury-1 --signer keystore:treasury-2 \\
        [--hot hot-ops] [--warm warm-treasury] [--max AMOUNT] [--proposer URI] [--dry-run] [--json]

The hot vault's Safe must be on the warm vault's allowlist (its policy decides; a refusal names the rule).
The amount is the shortfall, capped at --max (default: the warm policy's per-transaction ETH limit). Written
against the public API only (``import custody``; docs/api.md). Exit code 0 done (or nothing to do), 1 refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's custody, whatever the install says

import custody


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], prog="refill_hot.py")
    parser.add_argument("--home", help="workspace folder [$CUSTODY_HOME, else ./.custody]")
    parser.add_argument("--rpc", metavar="URL", help="chain RPC [$CUSTODY_RPC, else the workspace's local Anvil]")
    parser.add_argument("--hot", default="hot-ops", metavar="VAULT", help="the vault to refill [hot-ops]")
    parser.add_argument("--warm", default="warm-treasury", metavar="VAULT", help="the vault paying [warm-treasury]")
    parser.add_argument("--target", required=True, metavar="AMOUNT", help="ETH balance the hot vault should hold")
    parser.add_argument("--max", dest="cap", metavar="AMOUNT", help="largest refill [warm per-transaction limit]")
    parser.add_argument("--signer", action="append", default=[], metavar="URI", help="warm owner signer (repeatable)")
    parser.add_argument("--proposer", metavar="URI|NAME", help="who proposes [the first --signer]")
    parser.add_argument("--dry-run", action="store_true", help="only say what would be refilled")
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    return parser.parse_args(argv)


def eth_rule(vault: custody.MicroVault):
    return next(a for a in vault.policy.assets if a.token is None)


def refill(ws: custody.Workspace, args: argparse.Namespace) -> dict:
    hot, warm = ws.vault(args.hot), ws.vault(args.warm)
    have = hot.balance().balance or 0
    target = custody.parse_amount(args.target, 18, symbol="ETH", allow_zero=True)
    cap = custody.parse_amount(args.cap, 18, symbol="ETH") if args.cap else eth_rule(warm).per_tx_limit
    amount = min(max(target - have, 0), cap)
    done = {"hot": hot.name, "warm": warm.name, "hot_balance": custody.format_amount(have, 18),
            "target": custody.format_amount(target, 18), "refill": custody.format_amount(amount, 18),
            "proposal": None, "tx_hash": None}  # fmt: skip
    if amount == 0 or args.dry_run:
        return done
    if not args.signer:
        raise custody.InputError("name the warm vault's owners with --signer URI (repeatable)")
    proposal = warm.propose_transfer(
        hot.safe, custody.format_amount(amount, 18), proposer=args.proposer or args.signer[0],
        description=f"refill {hot.name} to {done['target']} ETH",
    )  # fmt: skip
    done["proposal"] = proposal.id
    for uri in args.signer[: warm.threshold]:
        proposal.sign(uri)
    receipt = proposal.execute()
    done["tx_hash"], done["hot_balance_after"] = receipt.tx_hash, hot.balance().amount
    return done


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with custody.open(home=args.home, rpc=args.rpc) as ws:
            done = refill(ws, args)
    except custody.CustodyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(done, indent=2, sort_keys=True))
    elif done["refill"] == "0":
        print(f"{done['hot']} holds {done['hot_balance']} ETH (target {done['target']}): nothing to refill")
    elif done["tx_hash"] is None:
        print(f"would refill {done['hot']} with {done['refill']} ETH from {done['warm']} (dry run)")
    else:
        print(f"refilled {done['hot']} with {done['refill']} ETH from {done['warm']} (proposal {done['proposal']}, "
              f"tx {done['tx_hash']}); it now holds {done['hot_balance_after']} ETH")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
