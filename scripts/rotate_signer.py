#!/usr/bin/env python3
"""Rotate a vault signer: swap an owner for a new one through the vault's timelock.

    # 1. schedule: propose the swap, sign it with enough owners, execute (the timelock delay starts)
    .venv/bin/python scripts/rotate_signer.py VAULT --old ADDRESS --new ADDRESS|URI --signer URI [--signer URI ...]
    # 2. after the delay: complete the scheduled swap (anyone may)
    .venv/bin/python scripts/rotate_signer.py VAULT --complete PROPOSAL_ID

--new takes an address, or a signer URI (``keystore:officer-4``) whose address becomes the owner. Written
against the public API only (``import custody``; docs/api.md). Exit code 0 done, 1 refused (e.g. the delay
has not passed; the message says when it does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's custody, whatever the install says

import custody


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], prog="rotate_signer.py")
    parser.add_argument("vault", metavar="VAULT", help="vault id, name or Safe address")
    parser.add_argument("--home", help="workspace folder [$CUSTODY_HOME, else ./.custody]")
    parser.add_argument("--rpc", metavar="URL", help="chain RPC [$CUSTODY_RPC, else the workspace's local Anvil]")
    parser.add_argument("--old", metavar="ADDRESS", help="the owner to remove")
    parser.add_argument("--new", metavar="ADDRESS|URI", help="the owner to add (an address or a signer URI)")
    parser.add_argument("--signer", action="append", default=[], metavar="URI", help="current owner (repeatable)")
    parser.add_argument("--proposer", metavar="URI|NAME", help="who proposes [the first --signer]")
    parser.add_argument("--complete", type=int, metavar="PROPOSAL_ID", help="complete a scheduled rotation")
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    args = parser.parse_args(argv)
    if args.complete is None and not (args.old and args.new and args.signer):
        parser.error("scheduling a rotation needs --old, --new and at least one --signer (or use --complete ID)")
    return args


def schedule(ws: custody.Workspace, args: argparse.Namespace) -> dict:
    vault = ws.vault(args.vault)
    new = ws.signer(args.new).address if ":" in args.new else args.new
    proposal = vault.rotate_owner(args.old, new, proposer=args.proposer or args.signer[0])
    for uri in args.signer[: vault.threshold]:
        proposal.sign(uri)
    receipt = proposal.execute()
    op = proposal.timelock_operation
    return {"vault": vault.name, "proposal": proposal.id, "old": args.old, "new": new, "scheduled_tx": receipt.tx_hash,
            "delay": op.delay if op else None, "ready_at": op.ready_at if op else None, "state": "scheduled"}  # fmt: skip


def complete(ws: custody.Workspace, args: argparse.Namespace) -> dict:
    vault = ws.vault(args.vault)
    proposal = ws.proposal(args.complete)
    if proposal.vault != vault:
        raise custody.InputError(f"proposal {proposal.id} belongs to vault {proposal.vault.name}, not {vault.name}")
    receipt = proposal.execute()
    return {"vault": vault.name, "proposal": proposal.id, "completed_tx": receipt.tx_hash, "owners": vault.owners,
            "threshold": vault.threshold, "state": "executed"}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with custody.open(home=args.home, rpc=args.rpc) as ws:
            done = complete(ws, args) if args.complete is not None else schedule(ws, args)
    except custody.CustodyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        print(json.dumps(done, indent=2, sort_keys=True))
    elif done["state"] == "scheduled":
        print(f"scheduled: swap {done['old']} for {done['new']} on {done['vault']} (proposal {done['proposal']}, "
              f"tx {done['scheduled_tx']}); complete it after unix time {done['ready_at']} with "
              f"`rotate_signer.py {done['vault']} --complete {done['proposal']}`")  # fmt: skip
    else:
        print(f"rotated: {done['vault']} owners are now {', '.join(done['owners'])} ({done['threshold']} required)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
