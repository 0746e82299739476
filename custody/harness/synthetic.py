"""Synthetic ledgers for tests and benchmarks: realistic entries appended through the real code path.

``fill`` appends ``count`` entries in transactions of ``batch`` through :meth:`Ledger.append_many`
(the same lock, hashing and frontier code as every service append) and signs a head every
``head_every`` entries with ``key`` — heads are computed from the frontier as the log grows, exactly
as :meth:`Ledger.sign_head` would, and stored in bulk.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from custody.audit.entries import EntryKind
from custody.audit.keys import LedgerKey, SignedHead, head_message
from custody.audit.ledger import Ledger
from custody.audit.merkle import leaf_hash

_SAFE = "0x" + "5afe" * 10
_KINDS = (
    EntryKind.PROPOSAL_CREATED,
    EntryKind.APPROVAL_SIGNED,
    EntryKind.APPROVAL_SIGNED,
    EntryKind.EXECUTION,
    EntryKind.DEPOSIT_OBSERVED,
)


def synthetic_item(n: int) -> dict[str, Any]:
    """Entry fields for synthetic entry ``n`` (deterministic: a crash test can check what was acknowledged)."""
    kind = _KINDS[n % len(_KINDS)]
    return {
        "kind": kind,
        "actor": f"officer-{n % 7}",
        "vault": f"vault-{n % 13}",
        "chain_id": 31337,
        "time": "2026-01-06T10:00:00Z",
        "refs": {
            "safe_tx_hash": "0x" + f"{n:064x}",
            "tx_hash": None if kind is not EntryKind.EXECUTION else "0x" + f"{n * 7:064x}",
            "block": 100 + n,
        },
        "payload": {
            "n": n,
            "safe": _SAFE,
            "to": "0x" + "23" * 20,
            "value": str(n * 10**15),
            "nonce": n // 5,
            "description": f"synthetic transfer {n}",
        },
    }


def items(start: int, count: int) -> Iterator[dict[str, Any]]:
    for n in range(start, start + count):
        yield synthetic_item(n)


def fill(
    ledger: Ledger, count: int, *, key: LedgerKey | None = None, head_every: int = 0, batch: int = 10_000
) -> float:
    """Append ``count`` synthetic entries (and heads); returns the seconds spent appending."""
    started = time.perf_counter()
    heads: list[SignedHead] = []
    done = 0
    log_id = ledger.state().log_id
    while done < count:
        size = min(batch, count - done)
        with ledger.writing() as conn:
            state = ledger._read_state(conn)
            entries = ledger.append_many(conn, items(state.size, size))
        if key is not None and head_every:
            frontier = state.frontier
            for entry in entries:
                frontier.push(leaf_hash(entry.canonical()))
                if frontier.size % head_every == 0:
                    root, when = frontier.root(), 1_767_693_600 + frontier.size
                    signature = key.sign(head_message(log_id, frontier.size, root, when))
                    heads.append(SignedHead(log_id, frontier.size, root, when, key.key_id, signature))
        done += size
    ledger.add_heads(heads)
    return time.perf_counter() - started
