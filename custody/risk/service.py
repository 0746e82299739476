"""Risk operations behind ``custody risk``: explain, score, train, lists, cases, eval."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from custody.audit import record as audit
from custody.exceptions import RiskError
from custody.risk import anomaly, cases, forest, sanctions
from custody.risk.gate import decisions, history, inbound, models_dir, risk_home, settings_of
from custody.session import Session
from custody.vault import proposals
from custody.vault.service import get_vault


def explain(session: Session, ref: str) -> dict[str, Any]:
    proposal = proposals.get_proposal(session, ref)
    recorded = decisions(session, proposal.safe_tx_hash)
    return {
        "proposal": proposal.id,
        "safe_tx_hash": proposal.safe_tx_hash,
        "state": proposal.state.value,
        "decisions": recorded,
    }


def score(session: Session, ref: str) -> dict[str, Any]:
    return proposals.score_risk(session, proposals.get_proposal(session, ref)).as_dict()


def train(session: Session, vault_ref: str, *, with_forest: bool = False) -> dict[str, Any]:
    """Train the vault's baseline from its executed history; the model file's SHA-256 goes to the ledger."""
    vault = get_vault(session, vault_ref)
    folder = models_dir(session)
    previous = anomaly.load(folder, vault.name)
    moves = history(session, vault.safe)
    model = anomaly.train(vault.name, moves, version=(previous.version + 1) if previous else 1)
    trees = forest.train(moves) if with_forest else None
    if trees is not None:
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{vault.name}.v{model.version}.forest.joblib"
        model = dataclasses.replace(model, forest_file=name, forest_sha256=forest.dump(trees, folder / name))
    path = anomaly.save(model, folder)
    facts = {
        "model": model.label,
        "version": model.version,
        "sha256": model.sha256,
        "events": model.events,
        "file": path.name,
        "forest_sha256": model.forest_sha256,
    }
    with session.store.begin() as conn:
        audit.risk_model_trained(conn, session, vault=vault.name, safe=vault.safe, payload=facts)
    return {"vault": vault.name, **facts}


def show_list(session: Session) -> dict[str, Any]:
    listed = sanctions.active(session.workspace.home)
    return {
        "source": listed.source,
        "date": listed.date,
        "sha256": listed.sha256,
        "count": len(listed.addresses),
        "version": listed.version,
    }


def import_list(session: Session, path: str, *, date: str | None = None) -> dict[str, Any]:
    """Load a newer SDN XML/CSV (or custody JSON) offline; the diff against the previous list is ledgered."""
    new = sanctions.read_file(path, date=date)
    if not new.addresses:
        raise RiskError(f"{path} holds no EVM digital-currency addresses; the active list was left as it was")
    diff = sanctions.install(session.workspace.home, new)
    payload = {
        "source": new.source,
        "date": new.date,
        "sha256": new.sha256,
        "count": len(new.addresses),
        "previous_sha256": diff.previous.sha256,
        "previous_date": diff.previous.date,
        "additions": diff.additions,
        "delistings": diff.delistings,
    }
    with session.store.begin() as conn:
        audit.risk_list_changed(conn, session, payload=payload)
    return payload


def list_cases(session: Session) -> list[dict[str, Any]]:
    return cases.list_cases(risk_home(session))


def export_cases(session: Session, out: str) -> dict[str, Any]:
    found = list_cases(session)
    Path(out).write_text(json.dumps({"format": "custody.risk-cases/1", "cases": found}, indent=1), encoding="utf-8")
    return {"file": out, "cases": len(found)}


def screen_deposits(session: Session, vault_ref: str) -> dict[str, Any]:
    """Screen every indexed deposit's sender against the active list; a case file per new hit."""

    vault = get_vault(session, vault_ref)
    listed = sanctions.active(session.workspace.home)
    opened = {(c["address"].lower(), c.get("safe_tx_hash")) for c in list_cases(session)}
    hits = []
    for deposit in inbound(session, vault.safe):
        entry = listed.hit(deposit.sender)
        if entry is None:
            continue
        key = (deposit.sender.lower(), None)
        hit = {"sender": deposit.sender, "asset": deposit.asset, "amount": str(deposit.amount), "entry": entry}
        if key not in opened:
            case = cases.open_deposit_case(
                risk_home(session),
                vault=vault.name,
                deposit=hit,
                list_version=listed.version,
                windows=settings_of(vault).reporting_windows,
            )
            with session.store.begin() as conn:
                audit.risk_case_opened(conn, session, vault=vault.name, case=case)
            opened.add(key)
            hit["case"] = case["case"]
        hits.append(hit)
    return {"vault": vault.name, "list_version": listed.version, "hits": hits}
