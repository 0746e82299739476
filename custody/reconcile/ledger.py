"""Hook into the audit ledger for reconciliation runs.

Reconciliation calls :func:`record_event` with the run's canonical payload (sorted keys, no floats,
amounts as integer strings) inside the transaction that stores the run in ``reconcile_runs``; the
entry (kind ``reconciliation_run``, refs carrying the bar list's SHA-256 and the block) commits with
the run or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from custody.audit import record as audit

RECONCILIATION_RUN = "reconciliation_run"


def canonical_json(payload: dict[str, Any]) -> str:
    """Sorted keys, no whitespace, no floats (a float in a payload is a bug: amounts are integer strings)."""

    def reject(value: Any) -> Any:
        raise TypeError(f"not canonical JSON: {type(value).__name__}")

    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=reject)
    if any(isinstance(v, float) for v in _walk(payload)):
        raise TypeError("floats are not allowed in ledger payloads; use integer strings")
    return text


def _walk(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def record_event(session: Any, kind: str, payload: dict[str, Any], *, conn: Any = None) -> int | None:
    """Append a ``reconciliation_run`` entry to the audit ledger (inside ``conn``'s transaction — the one
    that records the run — when given); returns its sequence number."""

    if kind != RECONCILIATION_RUN:
        raise ValueError(f"unknown reconciliation ledger event {kind!r}")
    canonical_json(payload)
    if conn is None:
        with audit.ledger_for(session.store).writing() as own:
            return audit.reconciliation_run(own, session, payload).seq
    return audit.reconciliation_run(conn, session, payload).seq
