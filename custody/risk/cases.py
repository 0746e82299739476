"""Case files: one per sanctions hit — the transaction, the list version, the decision, who reviews
it and until when it must be reported per jurisdiction (the template's ``risk.reporting_windows``).
Each case is a JSON file under ``<workspace>/risk/cases/`` and a ``risk_case_opened`` ledger entry,
so it travels with every audit export."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from custody.risk.verdict import Decision, Reason


def cases_dir(home: Path) -> Path:
    folder = Path(home) / "cases"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_case(
    home: Path, *, vault: str, proposal_id: int | None, decision: Decision, reason: Reason, windows: dict[str, int]
) -> dict[str, Any]:
    folder = cases_dir(home)
    number = len(list(folder.glob("case-*.json"))) + 1
    opened = dt.datetime.now(dt.UTC).replace(microsecond=0)
    case = {
        "case": f"case-{number:05d}",
        "opened_at": opened.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vault": vault,
        "proposal": proposal_id,
        "safe_tx_hash": decision.safe_tx_hash,
        "stage": decision.stage,
        "decision": decision.verdict.value,
        "reason": reason.code,
        "address": str(reason.facts.get("address", "")),
        "list_version": str(decision.versions.get("sanctions_list", "")),
        "list_entry": str(reason.facts.get("entry", "")),
        "reviewer": None,
        "status": "open",
        "report_by": {j: (opened + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for j, s in windows.items()},
    }
    (folder / f"{case['case']}.json").write_text(json.dumps(case, indent=1, sort_keys=True), encoding="utf-8")
    return case


def open_deposit_case(
    home: Path, *, vault: str, deposit: dict[str, Any], list_version: str, windows: dict[str, int]
) -> dict[str, Any]:
    """A case for funds received from a listed address (no transaction of ours to decide on)."""
    folder = cases_dir(home)
    number = len(list(folder.glob("case-*.json"))) + 1
    opened = dt.datetime.now(dt.UTC).replace(microsecond=0)
    case = {
        "case": f"case-{number:05d}",
        "opened_at": opened.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "vault": vault,
        "proposal": None,
        "safe_tx_hash": None,
        "stage": "deposit",
        "decision": "review",
        "reason": "sanctioned_deposit_counterparty",
        "address": deposit["sender"],
        "list_version": list_version,
        "list_entry": deposit["entry"],
        "deposit": {"asset": deposit["asset"], "amount": deposit["amount"]},
        "reviewer": None,
        "status": "open",
        "report_by": {j: (opened + dt.timedelta(seconds=s)).strftime("%Y-%m-%dT%H:%M:%SZ") for j, s in windows.items()},
    }
    (folder / f"{case['case']}.json").write_text(json.dumps(case, indent=1, sort_keys=True), encoding="utf-8")
    return case


def list_cases(home: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(cases_dir(home).glob("case-*.json"))]
