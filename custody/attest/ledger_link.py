"""Badges and the audit ledger cite each other: a badge's ``ledgerEntry`` is the RFC 9162 leaf hash of
the ledger entry that recorded the same step.

The leaf hash (``SHA-256(0x00 || canonical entry)``) pins the entry's full content, so a verifier holding
the ledger (the workspace, or an exported audit bundle checked with ``custody audit verify --bundle``)
can find the entry, check that it records the same step (kind, Safe transaction, actor), and prove its
inclusion under a signed tree head. In the other direction, verification walks the ledger's
approval / out-of-band confirmation / execution entries of a vault and flags every one that lacks its
badge where the template in force asked for one.

Writers (:func:`entry_hash`) look the entry up after the step committed; the badge is issued after the
step, never inside it, so a failed attestation never rolls a custody step back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from custody.attest.badges import hex32
from custody.audit.bundle import OFFCHAIN_ATTESTATIONS, read_bundle
from custody.audit.merkle import leaf_hash
from custody.audit.record import ledger_for
from custody.audit.schema import audit_entries, audit_refs
from custody.exceptions import InputError
from custody.session import Session

ZERO32 = bytes(32)

#: the ledger entry kind that records each badge step (steps without an entry are not linked)
STEP_KINDS = {
    "approval": "approval_signed",
    "oob_confirmation": "out_of_band_confirmation",
    "execution": "execution",
    "reconciliation": "reconciliation_run",
    "drill": "drill",
}
#: ledger kinds whose entries must carry a badge when the template's ``attestations.emit`` names the step
LINKED_STEPS = {"approval_signed": "approval", "out_of_band_confirmation": "oob_confirmation", "execution": "execution"}


def _candidates(session: Session, kind: str, safe_tx_hash: str | None) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """(leaf hash, entry) of live (not superseded) entries of ``kind``, newest first."""
    query = (
        sa.select(audit_entries.c.leaf, audit_entries.c.entry)
        .join(audit_refs, audit_refs.c.seq == audit_entries.c.seq)
        .where(audit_refs.c.kind == kind, audit_refs.c.superseded_by.is_(None))
        .order_by(audit_entries.c.seq.desc())
    )
    if safe_tx_hash is not None:
        query = query.where(audit_refs.c.safe_tx_hash == safe_tx_hash.lower())
    with session.store.connect() as conn:
        for leaf, blob in conn.execute(query):
            yield bytes(leaf), orjson.loads(bytes(blob))


def entry_hash(
    session: Session,
    step: str,
    *,
    safe_tx_hash: str | None = None,
    actor: str | None = None,
    payload: dict[str, Any] | None = None,
) -> bytes:
    """The leaf hash of the ledger entry recording ``step`` (32 zero bytes when the ledger has none).

    ``safe_tx_hash`` and ``actor`` select approvals / confirmations / executions; ``payload`` selects
    by payload fields (``{"run_id": 7}`` for a reconciliation run, ``{"report_keccak": …}`` for a drill).
    """
    kind = STEP_KINDS.get(step)
    if kind is None:
        return ZERO32
    ledger_for(session.store).ready()
    for leaf, entry in _candidates(session, kind, safe_tx_hash):
        if entry.get("chain_id") not in (None, session.chain_id):
            continue
        if actor is not None and str(entry.get("actor", "")).lower() != actor.lower():
            continue
        if payload and any((entry.get("payload") or {}).get(k) != v for k, v in payload.items()):
            continue
        return leaf
    return ZERO32


# -- the verifier's view of a ledger ----------------------------------------------------------------------
@dataclass
class LedgerView:
    """Entries by leaf hash, from the workspace's ledger or an exported audit bundle."""

    source: str
    by_leaf: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    superseded: set[int] = field(default_factory=set)
    store: object | None = None  # the workspace store: any other entry is looked up by leaf hash on demand
    documents: list[dict[str, Any]] = field(default_factory=list)  # a bundle's off-chain attestations

    def get(self, leaf: bytes) -> dict[str, Any] | None:
        """The entry with this leaf hash (of any kind)."""
        if leaf in self.by_leaf or self.store is None:
            return self.by_leaf.get(leaf)
        with self.store.connect() as conn:  # type: ignore[attr-defined]
            blob = conn.execute(sa.select(audit_entries.c.entry).where(audit_entries.c.leaf == leaf)).scalar()
        return None if blob is None else orjson.loads(bytes(blob))

    @classmethod
    def from_blobs(cls, source: str, blobs: Iterable[bytes]) -> LedgerView:
        view = cls(source)
        for blob in blobs:
            entry = orjson.loads(blob)
            view.by_leaf[leaf_hash(blob)] = entry
            if entry.get("kind") == "correction":
                seq = (entry.get("refs") or {}).get("supersedes")
                if isinstance(seq, int):
                    view.superseded.add(seq)
        return view

    @classmethod
    def from_workspace(cls, session: Session) -> LedgerView:
        """The workspace ledger's entries a badge can cite (and the corrections that supersede them)."""
        ledger_for(session.store).ready()
        kinds = [*STEP_KINDS.values(), "correction"]
        query = (
            sa.select(audit_entries.c.entry)
            .join(audit_refs, audit_refs.c.seq == audit_entries.c.seq)
            .where(audit_refs.c.kind.in_(kinds))
            .order_by(audit_entries.c.seq)
        )
        with session.store.connect() as conn:
            blobs = [bytes(b) for b in conn.execute(query).scalars()]
        view = cls.from_blobs("workspace ledger", blobs)
        view.store = session.store
        return view

    @classmethod
    def from_bundle(cls, path: str | Path) -> LedgerView:
        """Entries of an audit bundle; the bundle's own integrity is ``custody audit verify --bundle``'s job,
        but a bundle whose files do not match its manifest is refused here too."""

        bundle = read_bundle(path)
        if bundle.problems:
            raise InputError(f"audit bundle {path} is damaged: {bundle.problems[0].message}")
        view = cls.from_blobs(f"audit bundle {Path(path).name}", bundle.entries)
        if OFFCHAIN_ATTESTATIONS in bundle.files:
            try:
                documents = json.loads(bundle.files[OFFCHAIN_ATTESTATIONS])
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputError(f"audit bundle {path}: {OFFCHAIN_ATTESTATIONS} is not JSON: {exc}") from None
            if not isinstance(documents, list) or not all(isinstance(d, dict) for d in documents):
                raise InputError(f"audit bundle {path}: {OFFCHAIN_ATTESTATIONS} is not a list of documents")
            view.documents = documents
        return view

    def live(self, vault: str) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """Live step entries (approval, confirmation, execution) of one vault (its Safe address)."""
        for leaf, entry in self.by_leaf.items():
            if entry.get("kind") not in LINKED_STEPS or entry.get("seq") in self.superseded:
                continue
            if str((entry.get("payload") or {}).get("safe", "")).lower() == vault.lower():
                yield leaf, entry


def mismatch(step: str, fields: dict[str, Any], entry: dict[str, Any]) -> str | None:
    """Why ``entry`` does not record the step a badge with ``fields`` attests (None when it does)."""
    kind = STEP_KINDS.get(step)
    if entry.get("kind") != kind:
        return f"is a {entry.get('kind')} entry, not {kind}"
    refs, payload = entry.get("refs") or {}, entry.get("payload") or {}
    if "safeTxHash" in fields:
        want = hex32(fields["safeTxHash"])
        if str(refs.get("safe_tx_hash", "")).lower() != want:
            return f"records {refs.get('safe_tx_hash')}, not {want}"
    if step == "approval" and str(entry.get("actor", "")).lower() != str(fields["signer"]).lower():
        return f"records an approval by {entry.get('actor')}, not by {fields['signer']}"
    if step == "oob_confirmation" and entry.get("actor") != fields["confirmer"]:
        return f"records a confirmation by {entry.get('actor')!r}, not by {fields['confirmer']!r}"
    if step == "execution":
        tx = hex32(fields["txHash"])
        if str(refs.get("tx_hash", "")).lower() != tx:
            return f"records execution in {refs.get('tx_hash')}, not in {tx}"
    if step == "drill":
        want = hex32(fields["reportHash"])
        if str(payload.get("report_keccak", "")).lower() != want:
            return f"records a drill report {payload.get('report_keccak')}, not {want}"
    return None
