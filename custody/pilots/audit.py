"""The pilot's audit section (custody/pilots/main.py calls it last).

Every step of the pilot already wrote its ledger entries as it happened (infrastructure, vault
creation, proposals, approvals, the out-of-band confirmation, executions, the collateral issuer's
proposals and the reconciliation runs). This section then indexes every vault's on-chain history,
verifies the ledger against the chain, signs a tree head with the workspace's Ed25519 ledger key and
anchors it on chain (LedgerAnchor), writes the HTML report and the bundle to ``<pilot>/audit-report/`` (the ledger key stays apart, in ``<pilot>/audit/``), and
verifies the bundle offline (and against the chain).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from custody.audit import service
from custody.audit.indexer import index_vaults
from custody.audit.record import ledger_for
from custody.exceptions import LedgerChainMismatch, LedgerTampered
from custody.session import Session

Step = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]


def audit_section(step: Step, session: Session, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    ledger = ledger_for(session.store)
    key = service.ledger_key(session.workspace)

    def index() -> dict[str, Any]:
        results = [r.as_dict() for r in index_vaults(session)]
        return {"vaults": results, "entries": sum(r["entries"] for r in results)}

    indexed = step("audit: index every vault's on-chain history into the ledger", index)

    def verify() -> dict[str, Any]:
        report = service.verify(store=session.store, chain=session.chain)
        data = report.as_dict()
        if report.exit_code != 0:
            problems = data["integrity"]["problems"] + (data["chain"] or {}).get("problems", [])
            error = LedgerTampered if report.tampered else LedgerChainMismatch
            raise error(
                f"pilot: the ledger does not verify ({report.verdict}): {problems[:3]}",
                first_bad_sequence=report.first_bad_sequence,
            )
        return {
            "verdict": report.verdict,
            "exit_code": report.exit_code,
            "entries": report.integrity.size,
            "executions_checked": data["chain"]["executions_checked"],
            "onchain_executions": data["chain"]["onchain_executions"],
        }

    verified = step("audit: verify the ledger (tree, heads, entries against the chain)", verify)

    def anchor() -> dict[str, Any]:
        done = service.anchor(session, key)
        return {
            "size": done.head.size,
            "root": done.head.root.hex(),
            "key_id": done.head.key_id,
            "tx_hash": done.tx_hash,
            "block": done.block_number,
            "contract": done.contract,
        }

    anchored = step("audit: sign a tree head and anchor it on chain", anchor)

    def export() -> dict[str, Any]:
        verdict = service.verify(store=session.store, chain=session.chain).as_dict()  # with the chain checks
        html = service.export(session.store, "html", folder / "audit-report.html", verdict=verdict, chain=session.chain)
        bundle = service.export(session.store, "bundle", folder / "audit-bundle.tar.gz")
        offline = service.verify(bundle=bundle["path"])
        online = service.verify(bundle=bundle["path"], chain=session.chain)
        if offline.exit_code != 0 or online.exit_code != 0:
            raise LedgerTampered(
                f"pilot: the exported bundle does not verify ({offline.verdict}/{online.verdict})",
                first_bad_sequence=offline.first_bad_sequence,
            )
        return {
            "html": html["path"],
            "bundle": bundle["path"],
            "bundle_offline": offline.verdict,
            "bundle_online": online.verdict,
            "anchors_checked": None if online.chain is None else online.chain.anchors_checked,
        }

    exported = step("audit: HTML report and bundle; verify the bundle offline and against the chain", export)
    kinds = Counter(e.kind for e in ledger.entries())
    return {
        "entries": ledger.size,
        "kinds": dict(sorted(kinds.items())),
        "indexed": indexed["entries"],
        "verdict": verified["verdict"],
        "exit_code": verified["exit_code"],
        "executions_checked": verified["executions_checked"],
        "onchain_executions": verified["onchain_executions"],
        "head": {k: anchored[k] for k in ("size", "root", "key_id")},
        "anchor": {k: anchored[k] for k in ("tx_hash", "block", "contract")},
        **exported,
    }
