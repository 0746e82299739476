"""Where a finished drill leaves its marks beyond the report: the audit ledger and an attestation badge.

The runner calls :func:`record_drill` once per drill, after the chain is restored, and embeds what it
returns in the report under ``records``. The report is fixed by its hash first: ``report_keccak`` is
keccak256 of the canonical JSON of the report without ``records`` and ``files`` (the two parts written
afterwards), so a regulator holding ``report.json`` recomputes it with :func:`report_hash` and finds the
same value in the ledger entry and in the badge.

* **Ledger**: one ``drill`` entry in the operator's workspace ledger (also for a drill on a fork): the
  playbook's SHA-256 and controls, verdict, mode, chain id and block range, whether the chain was
  restored, the per-step verdicts and the report hash.
* **Badge**: an on-chain EAS ``drill`` badge by the operator's attester key (``--attester`` /
  ``$CUSTODY_ATTESTER``) about the drill's subject vault — an existing vault named with ``--vault``, or
  the playbook's subject vault in ``--live`` mode — when that vault's template authorises the attester
  for ``drill`` steps. Vaults a drill created on a snapshot or fork are gone afterwards, so nothing
  about them can be attested; the report says why no badge was issued.
"""

from __future__ import annotations

import logging
from typing import Any

from eth_utils import keccak

from custody.attest.steps import drill_badge
from custody.audit import record as audit
from custody.audit.entries import canonical_json
from custody.exceptions import CustodyError
from custody.session import Session
from custody.vault.service import get_vault
from custody.workspace import Workspace

log = logging.getLogger(__name__)


def report_hash(report: dict[str, Any]) -> str:
    """keccak256 of the report's canonical JSON, without the parts written after recording."""
    core = {k: v for k, v in report.items() if k not in ("records", "files")}
    return "0x" + keccak(canonical_json(_plain(core))).hex()


def _plain(value: Any) -> Any:
    """Canonical JSON allows no floats: timings become decimal strings (as written in the report)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)  # canonical JSON integers are 64-bit; amounts beyond are decimal strings
    if value is None or isinstance(value, (str, bool, int)):
        return value
    return str(value)


def record_drill(workspace: Workspace, session: Session | None, report: dict[str, Any]) -> dict[str, Any]:
    """Record a finished drill; returns ``{"report_keccak", "ledger", "attestation", ...}`` for the report.

    ``session`` is the operator's workspace on the chain the drill ran against (None for a drill on a
    fork, whose chain is gone).
    """
    digest = report_hash(report)
    out: dict[str, Any] = {"report_keccak": digest, "ledger": None, "attestation": None}
    run, drill = report["run"], report["drill"]
    chain = run["chain"]
    subject = _subject(report)
    try:
        entry = audit.drill(
            workspace.store,
            chain_id=chain.get("chain_id"),
            name=drill["name"],
            outcome=report["verdict"],
            actor=run.get("operator") or "operator",
            vault=subject["name"] if subject else None,
            refs={"block": chain.get("block_start")},
            details={
                "playbook_sha256": drill["playbook_sha256"],
                "controls": list(drill.get("controls") or []),
                "mode": run["mode"],
                "run_id": run["id"],
                "block_start": chain.get("block_start"),
                "block_end": chain.get("block_end"),
                "restored": bool(chain.get("restored")),
                "report_keccak": digest,
                "safe": subject["safe"] if subject else None,
                "steps": [{"index": s["index"], "name": s["name"], "verdict": s["verdict"]} for s in report["steps"]],
            },
        )
        out["ledger"] = audit.ledger_for(workspace.store).reference(entry.seq)
    except CustodyError as exc:
        log.warning("drill %s not recorded in the audit ledger: %s", drill["name"], exc.message)
        out["ledger_error"] = exc.message
    out.update(_badge(session, report, subject, digest))
    return out


def _subject(report: dict[str, Any]) -> dict[str, Any] | None:
    """The vault the drill was about that still exists afterwards (an existing vault, or any in live mode)."""
    rows = report.get("vaults") or []
    live = report["run"]["mode"] == "live"
    kept = [r for r in rows if not r.get("created") or live]
    return kept[0] if kept else None


def _badge(
    session: Session | None, report: dict[str, Any], subject: dict[str, Any] | None, digest: str
) -> dict[str, Any]:

    if session is None:
        return {"attestation_skipped": "the drill ran on a fork: there is no chain to attest on"}
    if subject is None:
        return {
            "attestation_skipped": "the drill's vaults existed only on the snapshot; rehearse on an existing "
            "vault (--vault) or --live for a badge"
        }
    attester = session.attester()
    if attester is None:
        return {"attestation_skipped": "no attester key configured (--attester / $CUSTODY_ATTESTER)"}
    try:
        rule = get_vault(session, subject["safe"]).policy().attestations
        if rule is None or not rule.authorised(attester.address, "drill"):
            return {
                "attestation_skipped": f"attester {attester.address} is not authorised for drill badges by "
                f"vault {subject['name']}'s template"
            }
        badge = drill_badge(
            session,
            vault=subject["safe"],
            playbook=report["drill"]["name"],
            report_hash=bytes.fromhex(digest[2:]),
            passed=report["verdict"] == "passed",
            attester=attester,
        )
    except CustodyError as exc:
        log.warning("drill badge not issued: %s", exc.message)
        return {"attestation_skipped": exc.message}
    return {"attestation": badge.uid}
