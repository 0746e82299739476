"""The pilot's attestation steps: KYC badges for the signers (before they approve anything), the
automatic approval / confirmation / execution badges of its transfers, a batch of inventory tags for
the collateral bars, a reconciliation sign-off, and a verification of all of it — once with the
workspace, once as an outside auditor with chain data, the templates and the exported documents only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from custody.attest import badges, steps
from custody.attest import batch as attest_batch
from custody.attest.ledger_link import LedgerView
from custody.attest.verify import Verifier
from custody.exceptions import AttestationError
from custody.session import Session

Step = Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]]
OPERATIONS_ATTESTER = "anvil:7"  # custody-operations in the shipped templates
COMPLIANCE_ATTESTER = "anvil:9"  # compliance: KYC only


def kyc_section(step: Step, session: Session, vaults: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """KYC badges for every owner of the pilot's vaults, and the operations attester switched on."""

    def kyc() -> dict[str, Any]:
        compliance = session.signer(COMPLIANCE_ATTESTER)
        out = {}
        for label, v in vaults.items():
            for owner in v["owners"]:
                badge = steps.kyc_badge(
                    session,
                    vault=v["safe"],
                    subject=owner,
                    jurisdiction="CH",
                    evidence=f"pilot identity file of {owner}".encode(),
                    attester=compliance,
                    expiration=session.chain.latest_timestamp() + 365 * 86400,
                )
                out[f"{label}:{owner}"] = badge.uid
        return {"attester": compliance.address, "badges": out}

    result = step("attest: KYC badges for every vault signer (compliance attester)", kyc)
    session.attester_uri = OPERATIONS_ATTESTER  # from here on the flows emit their badges
    operations = session.attester()
    if operations is None:  # attester_uri was set just above, so this never happens
        raise AttestationError(f"the operations attester {OPERATIONS_ATTESTER} did not load")
    result["operations_attester"] = operations.address
    return result


def attest_section(
    step: Step,
    session: Session,
    vaults: dict[str, dict[str, Any]],
    collateral: dict[str, Any],
    templates: list[Path],
    folder: Path,
) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    operations = session.attester()
    assert operations is not None
    issuer_vault = collateral["safe"]
    documents_file = folder / "inventory-tags.json"

    def tags() -> dict[str, Any]:
        bars = Path(collateral["bar_lists"][-1])
        result = steps.tag_bars(session, bars, token=collateral["token"], vault=issuer_vault, attester=operations)
        attest_batch.write_documents(result.documents, documents_file)
        return {
            **{k: v for k, v in result.summary().items() if k != "uids"},
            "documents": str(documents_file),
            "bar_list": str(bars),
        }

    batch = step("attest: inventory tags for every collateral bar (one batch, one anchoring tx)", tags)

    def sign_off() -> dict[str, Any]:
        badge = steps.sign_off_reconciliation(
            session, collateral["clean_with_previous"]["run_id"], vault=issuer_vault, attester=operations
        )
        return {"uid": badge.uid, "tx_hash": badge.tx_hash, "backed": badge.fields["backed"]}

    reconciliation = step("attest: sign off the clean reconciliation on chain", sign_off)

    transfer_file = folder / "transfer-badges.json"

    def anchor_transfers() -> dict[str, Any]:
        anchored = attest_batch.anchor_pending(session)
        if anchored is None:
            return {"size": 0}
        attest_batch.write_documents(anchored.documents, transfer_file)
        return {**{k: v for k, v in anchored.summary().items() if k != "uids"}, "documents": str(transfer_file)}

    transfer_badges = step("attest: anchor the transfers' batched badges (one EAS timestamp)", anchor_transfers)

    def verify() -> dict[str, Any]:
        verifier = Verifier(session)
        reports = {label: verifier.verify_vault(v["safe"]) for label, v in vaults.items()}
        reports["issuer"] = verifier.verify_vault(issuer_vault)
        exported = [f for f in (documents_file, transfer_file) if f.exists()]
        auditor = Verifier(
            session,
            use_workspace=False,
            templates=templates,
            documents=[d for f in exported for d in attest_batch.read_documents(f)],
        ).verify_vault(issuer_vault)
        out = {label: r.as_dict()["summary"] for label, r in reports.items()}
        out["auditor_issuer_vault"] = auditor.as_dict()["summary"]
        failures = [f for r in [*reports.values(), auditor] for f in r.failures()]
        if failures:
            raise AttestationError("pilot: badges failed verification: " + "; ".join(failures[:5]))
        out["by_step"] = _by_step(session)
        return out

    verified = step("attest: verify every badge (workspace) and the issuer vault's as an outside auditor", verify)
    return {
        "inventory_tags": batch,
        "transfer_badges": transfer_badges,
        "reconciliation": reconciliation,
        "verified": verified,
    }


def _by_step(session: Session) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in badges.stored(session):
        counts[row["step"]] = counts.get(row["step"], 0) + 1
    return counts


def auditor_section(
    step: Step, session: Session, vaults: dict[str, str], templates: list[Path], bundle: Path
) -> dict[str, Any]:
    """An outside auditor's check of every badge of ``vaults`` (label -> Safe) from chain data, the
    templates and the exported audit bundle only: ledger links resolve, no ledger step lacks its badge."""

    def verify() -> dict[str, Any]:
        ledger = LedgerView.from_bundle(bundle)
        verifier = Verifier(session, use_workspace=False, templates=templates, ledger=ledger)
        reports = {label: verifier.verify_vault(safe) for label, safe in vaults.items()}
        failures = [f for r in reports.values() for f in r.failures()]
        if failures:
            raise AttestationError("pilot: the auditor's badge verification failed: " + "; ".join(failures[:5]))
        linked = sum(
            1
            for r in reports.values()
            for c in r.checks
            if any(n.startswith("recorded in the audit bundle") for n in c.notes)
        )
        return {
            "bundle": str(bundle),
            "ledger_entries_linked": linked,
            "by_vault": {label: r.as_dict()["summary"] for label, r in reports.items()},
            "steps": sorted({c.step for r in reports.values() for c in r.checks if c.step}),
        }

    return step("auditor: every badge vs chain, templates and the audit bundle (ledger links, unbadged steps)", verify)
