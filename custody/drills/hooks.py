"""Where a finished drill leaves its marks beyond the report: the audit ledger and an attestation badge.

Both are no-ops in this build. When the audit ledger lands (issue 5: an entry of type "drill") and
attestations (issue 6: an EAS badge for the drill), wire them here — the runner already calls
:func:`record_drill` once per drill, after the chain is restored, and embeds what it returns in the
report under ``records``.
"""

from __future__ import annotations

from typing import Any

from custody.session import Session


def record_drill(session: Session | None, report: dict[str, Any]) -> dict[str, Any]:
    """Record a finished drill; returns ``{"ledger": …, "attestation": …}`` for the report.

    ``session`` is the operator's workspace on the chain the drill ran against (None for a drill on a
    fork, whose chain is gone); ``report`` is the full JSON report (verdict, playbook hash, steps).

    TODO(issue 5): append an audit-ledger entry of type "drill" (playbook sha256, verdict, mode, chain
    id and block range, per-step verdicts) and return its id/hash under "ledger".
    TODO(issue 6): issue an attestation badge for the drill (subject: the playbook hash and the
    report's hash) and return its uid under "attestation".
    """
    return {"ledger": None, "attestation": None}
