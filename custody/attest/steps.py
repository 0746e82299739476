"""Badges for steps that are not Safe transactions: inventory tags, reconciliation sign-offs, drills, KYC."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from eth_utils import keccak

from custody.attest import badges
from custody.attest.batch import BatchItem, BatchResult, issue_batch
from custody.attest.ledger_link import entry_hash
from custody.exceptions import InputError
from custody.reconcile.index import ensure_tables, reconcile_runs
from custody.reconcile.ingest import load_bar_list
from custody.session import Session
from custody.signers.base import Signer
from custody.types import parse_address


def tag_bars(
    session: Session,
    bars_path: str | Path,
    *,
    token: str,
    vault: str,
    attester: Signer,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """One off-chain inventory-tag attestation per bar of a bar list, anchored as one batch.

    Each tag binds the bar's id (keccak of refiner code and serial, as the CollateralToken uses), serial,
    refiner, fine weight (milli-ounces) and the sha256 of the bar list file it was read from.
    """

    token = parse_address(token, what="token")
    vault = parse_address(vault, what="vault")
    bars = load_bar_list(bars_path)
    list_hash = bytes.fromhex(bars.sha256)
    items = [
        BatchItem(
            recipient=token,
            fields={
                "vault": vault,
                "token": token,
                "barId": bars.bar_ids[i],
                "serial": bars.serials[i],
                "refiner": bars.refiners[i],
                "fineWeight": bars.fine_milli[i],
                "barListHash": list_hash,
            },
            reference="0x" + bars.bar_ids[i].hex(),
        )
        for i in range(len(bars))
    ]
    return issue_batch(session, "inventory_tag", attester=attester, items=items, progress=progress)


def sign_off_reconciliation(session: Session, run_id: int, *, vault: str, attester: Signer) -> badges.Badge:
    """An on-chain badge for a recorded reconciliation run: supply, verified backing, verdict, report hash."""

    ensure_tables(session.store)
    with session.store.connect() as conn:
        run = (
            conn.execute(
                sa.select(reconcile_runs).where(
                    reconcile_runs.c.id == run_id, reconcile_runs.c.chain_id == session.chain_id
                )
            )
            .mappings()
            .first()
        )
    if run is None:
        raise InputError(f"no reconciliation run {run_id} on chain {session.chain_id} in this workspace")
    fields = {
        "vault": parse_address(vault, what="vault"),
        "token": run["token"],
        "barListHash": bytes.fromhex(run["bars_sha256"]),
        "reportHash": keccak(run["summary"].encode("utf-8")),
        "supply": int(run["supply"]),
        "backing": int(run["verified_backing"]),
        "backed": not run["backing_short"],
        "ledgerEntry": entry_hash(session, "reconciliation", payload={"run_id": run_id}),
    }
    return badges.issue(
        session,
        "reconciliation",
        attester=attester,
        recipient=fields["token"],
        fields=fields,
        reference="0x" + fields["reportHash"].hex(),
    )


def drill_badge(
    session: Session, *, vault: str, playbook: str, report_hash: bytes, passed: bool, attester: Signer
) -> badges.Badge:
    """An on-chain badge that a drill was run: the playbook, whether it passed, the report's keccak256
    (:func:`custody.drills.hooks.report_hash`), linked to the drill's audit-ledger entry."""
    vault = parse_address(vault, what="vault")
    fields = {
        "vault": vault,
        "playbook": playbook,
        "reportHash": report_hash,
        "passed": passed,
        "ledgerEntry": entry_hash(session, "drill", payload={"report_keccak": "0x" + report_hash.hex()}),
    }
    return badges.issue(
        session, "drill", attester=attester, recipient=vault, fields=fields, reference="0x" + report_hash.hex()
    )


def kyc_badge(
    session: Session,
    *,
    vault: str,
    subject: str,
    jurisdiction: str,
    evidence: bytes,
    attester: Signer,
    expiration: int = 0,
) -> badges.Badge:
    """A signer's KYC badge: the evidence itself stays off chain, only its sha256 is attested."""
    subject = parse_address(subject, what="KYC subject")
    fields = {
        "vault": parse_address(vault, what="vault"),
        "subject": subject,
        "jurisdiction": jurisdiction,
        "evidenceHash": hashlib.sha256(evidence).digest(),
    }
    return badges.issue(session, "kyc", attester=attester, recipient=subject, fields=fields, expiration=expiration)
