"""Hook into the audit ledger (issue 5) for reconciliation runs.

The tamper-evident ledger does not exist yet. Reconciliation calls :func:`record_event` with an
entry kind and a canonical payload (sorted keys, no floats, amounts as integer strings) — the
shape the ledger's "reconciliation run" entries will take. Until the ledger lands this is a no-op
that returns ``None``; runs are still recorded in the workspace's ``reconcile_runs`` table.

TODO(issue 5, lead): replace the body with the ledger's append (same transaction as the run row if
the ledger shares the workspace database) and return the entry's sequence number.
"""

from __future__ import annotations

import json
from typing import Any

RECONCILIATION_RUN = "reconciliation_run"


def canonical_json(payload: dict[str, Any]) -> str:
    """Sorted keys, no whitespace, no floats (a float in a payload is a bug: amounts are integer strings)."""

    def reject(value: Any) -> Any:
        raise TypeError(f"not canonical JSON: {type(value).__name__}")

    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=reject)
    if any(isinstance(v, float) for v in _walk(payload)):
        raise TypeError("floats are not allowed in ledger payloads; use integer strings")
    return text


def _walk(value: Any):
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def record_event(session: Any, kind: str, payload: dict[str, Any]) -> int | None:
    """Append an entry to the audit ledger when present; returns its sequence number, or None (no ledger yet)."""
    canonical_json(payload)  # validate the payload now, so the ledger will accept what we pass today
    return None
