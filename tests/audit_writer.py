"""A ledger writer process for the crash and two-writer tests.

    python -m tests.audit_writer URL UNTIL [--tag T] [--key-dir D] [--heads-every N] [--count N]

Appends synthetic entries one per transaction until the ledger has UNTIL entries (or ``--count`` of its
own), printing ``ack SEQ`` after each commit returned (the entry is then durable), and signs a head every
N appends. Killed with SIGKILL at random points by the crash test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from custody.audit.keys import Ed25519LedgerKey
from custody.audit.ledger import Ledger
from custody.harness.synthetic import synthetic_item
from custody.store import Store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("until", type=int)
    parser.add_argument("--tag", default="")
    parser.add_argument("--key-dir")
    parser.add_argument("--heads-every", type=int, default=0)
    parser.add_argument("--count", type=int, default=0)
    args = parser.parse_args()
    ledger = Ledger(Store(args.url), lock_timeout=30)
    ledger.state()  # creates the tables and the state row on first use
    key = Ed25519LedgerKey.load_or_create(Path(args.key_dir)) if args.key_dir else None
    written = 0
    print("ready", flush=True)
    while True:
        with ledger.writing() as conn:
            size = ledger._read_state(conn).size
            if (args.count and written >= args.count) or (not args.count and size >= args.until):
                break
            item = synthetic_item(size)
            if args.tag:
                item = {**item, "actor": args.tag, "refs": {**item["refs"], "safe_tx_hash": None}}
            entry = ledger.append(conn, **item)
        sys.stdout.write(f"ack {entry.seq}\n")
        sys.stdout.flush()
        written += 1
        if key is not None and args.heads_every and written % args.heads_every == 0:
            ledger.sign_head(key)
    print("done", flush=True)


if __name__ == "__main__":
    main()
