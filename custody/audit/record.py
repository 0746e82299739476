"""Recording points: one small, explicit call per custody operation, inside the operation's own step.

Each function appends one entry through the open database transaction ``conn`` of the state change it
records (the entry and the change commit together, or neither does). Chain actions are recorded right
after their receipt, with the tx hash and block. Payloads are built from allow-listed facts only —
addresses, hashes, amounts as integer strings, names people chose for roles — never secrets: signer
URIs are reduced to their backend scheme (no paths, no PIN sources), out-of-band confirmations name the
method, never the code. Free text (descriptions, reasons) is stored with e-mail addresses and phone
numbers removed: the ledger is meant to be handed to outsiders and cannot be edited later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from custody.audit.entries import Entry, EntryKind
from custody.audit.export import scrub_text
from custody.audit.facts import BadgeFacts, DecisionFacts, ProposalFacts, TimelockOpFacts, VaultFacts
from custody.audit.keys import Ed25519LedgerKey
from custody.audit.ledger import Ledger
from custody.exceptions import SignerError
from custody.policy.template import load_policy_text
from custody.store import Store, StoreSlot, vaults

if TYPE_CHECKING:
    from custody.chain.transactions import Receipt
    from custody.safe.safe_tx import SafeTx
    from custody.session import Session

ZERO_HASH = "0x" + "00" * 32


_LEDGER: StoreSlot[Ledger] = StoreSlot("audit ledger")


def ledger_for(store: Store) -> Ledger:
    """The ledger of a workspace database (one handle per store). A workspace's store knows its key folder:
    its ledger signs a head in every append transaction with the workspace's Ed25519 ledger key."""
    return store.slot(_LEDGER, lambda: _store_ledger(store))


def _store_ledger(store: Store) -> Ledger:
    key_dir = store.ledger_key_dir
    source = None if key_dir is None else (lambda: Ed25519LedgerKey.load_or_create(key_dir))
    return Ledger(store, key_source=source)


def append(
    conn: Connection, session: Session, kind: EntryKind, *, actor: str, vault: str | None = None, **fields: Any
) -> Entry:
    return ledger_for(session.store).append(conn, kind, actor=actor, vault=vault, chain_id=session.chain_id, **fields)


def _operator(session: Session) -> str:
    """The account acting for the operator (the gas payer), or "operator" when none is configured."""

    try:
        return session.sender.address
    except SignerError:
        return "operator"


def _vault_name(conn: Connection, vault_id: int) -> str | None:
    return conn.execute(sa.select(vaults.c.name).where(vaults.c.id == vault_id)).scalar()


def _tx_facts(safe_tx: SafeTx) -> dict[str, Any]:
    return {
        "safe": safe_tx.safe,
        "to": safe_tx.to,
        "value": str(safe_tx.value),
        "data": "0x" + safe_tx.data.hex(),
        "operation": int(safe_tx.operation),
        "nonce": safe_tx.nonce,
    }


def _scheme(source: str) -> str:
    """A signer's backend scheme only (``pkcs11``, ``keystore``, …): URIs can hold paths and PIN sources."""
    return source.split(":", 1)[0][:32]


# -- infrastructure and vaults --------------------------------------------------------------------------
def infrastructure_deployed(conn: Connection, store: Store, chain_id: int, deployed: Iterable[Any], actor: str) -> None:
    """Contracts deployed now (``Deployed`` items that carry a tx hash)."""
    for item in deployed:
        if item.tx_hash is not None:
            ledger_for(store).append(
                conn,
                EntryKind.INFRASTRUCTURE_DEPLOYED,
                actor=actor,
                chain_id=chain_id,
                refs={"tx_hash": item.tx_hash, "block": item.block_number},
                payload={
                    "contract": item.name,
                    "address": item.address,
                    "codehash": item.codehash,
                    "gas_used": item.gas_used,
                },
            )


def vault_created(conn: Connection, session: Session, values: dict[str, Any], facts: dict[str, Any]) -> Entry:
    return append(
        conn,
        session,
        EntryKind.VAULT_CREATED,
        actor=_operator(session),
        vault=values["name"],
        refs={"tx_hash": values["created_tx"], "block": values["created_block"]},
        payload={
            "safe": values["safe"],
            "timelock": values["timelock"],
            "guard": values["guard"],
            "risk_class": values["risk_class"],
            "policy_hash": values["policy_hash"],
            "gas_used": facts.get("gas_used"),
            "resumed": bool(facts.get("resumed")),
        },
    )


# -- proposals, approvals, confirmations, executions --------------------------------------------------------
def proposal_created(
    conn: Connection,
    session: Session,
    vault_id: int,
    safe_tx: SafeTx,
    *,
    proposal_id: int,
    description: str,
    proposer: str,
    revived: bool = False,
) -> Entry:
    return append(
        conn,
        session,
        EntryKind.PROPOSAL_CREATED,
        actor=proposer or _operator(session),
        vault=_vault_name(conn, vault_id),
        refs={"safe_tx_hash": "0x" + safe_tx.safe_tx_hash.hex()},
        payload={
            **_tx_facts(safe_tx),
            "proposal": proposal_id,
            "description": scrub_text(description),
            "revived": revived,
        },
    )


def proposal_discarded(conn: Connection, session: Session, proposal: ProposalFacts) -> Entry:
    return append(
        conn,
        session,
        EntryKind.PROPOSAL_DISCARDED,
        actor=proposal.proposer or _operator(session),
        vault=_vault_name(conn, proposal.vault_id),
        refs={"safe_tx_hash": proposal.safe_tx_hash},
        payload={"proposal": proposal.id, "safe": proposal.safe_tx.safe, "nonce": proposal.safe_tx.nonce},
    )


def approval_signed(
    conn: Connection, session: Session, proposal: ProposalFacts, signer: str, source: str, kind: str
) -> Entry:
    return append(
        conn,
        session,
        EntryKind.APPROVAL_SIGNED,
        actor=signer,
        vault=_vault_name(conn, proposal.vault_id),
        refs={"safe_tx_hash": proposal.safe_tx_hash},
        payload={
            "proposal": proposal.id,
            "safe": proposal.safe_tx.safe,
            "signer": signer,
            "via": _scheme(source),
            "signature_kind": kind,
            "nonce": proposal.safe_tx.nonce,
        },
    )


def out_of_band_confirmed(
    conn: Connection, session: Session, proposal: ProposalFacts, confirmer: str, method: str, reason: str
) -> Entry:
    return append(
        conn,
        session,
        EntryKind.OUT_OF_BAND_CONFIRMATION,
        actor=confirmer,
        vault=_vault_name(conn, proposal.vault_id),
        refs={"safe_tx_hash": proposal.safe_tx_hash},
        payload={
            "proposal": proposal.id,
            "safe": proposal.safe_tx.safe,
            "confirmer": confirmer,
            "method": method,
            "reason": scrub_text(reason),
            "proposer": proposal.proposer,
        },
    )


def confirmer_enrolled(conn: Connection, store: Store, name: str) -> Entry:
    """An out-of-band confirmer was enrolled (its name and method; the TOTP secret never)."""
    return ledger_for(store).append(
        conn,
        EntryKind.CONFIRMER_ENROLLED,
        actor="operator",
        vault=None,
        chain_id=None,
        payload={"confirmer": name, "method": "totp"},
    )


def executed(conn: Connection, session: Session, proposal: ProposalFacts, receipt: Receipt, *, success: bool) -> Entry:
    return append(
        conn,
        session,
        EntryKind.EXECUTION,
        actor=_operator(session),
        vault=_vault_name(conn, proposal.vault_id),
        refs={"safe_tx_hash": proposal.safe_tx_hash, "tx_hash": receipt.tx_hash, "block": receipt.block_number},
        payload={
            **_tx_facts(proposal.safe_tx),
            "proposal": proposal.id,
            "success": success,
            "gas_used": receipt.gas_used,
            "signers": sorted(s.signer for s in proposal.signatures),
        },
    )


# -- attestation badges (EAS) ------------------------------------------------------------------------------
def _vault_by_safe(conn: Connection, safe: str | None) -> str | None:
    if not safe:
        return None
    return conn.execute(sa.select(vaults.c.name).where(sa.func.lower(vaults.c.safe) == safe.lower())).scalar()


def attestation_issued(
    conn: Connection, session: Session, badge: BadgeFacts, receipt: Receipt, *, reference: str | None
) -> Entry:
    """An on-chain badge was issued (the badge cites the step's entry in ``ledgerEntry``; this cites the badge)."""
    return append(
        conn,
        session,
        EntryKind.ATTESTATION_ISSUED,
        actor=badge.attester,
        vault=_vault_by_safe(conn, badge.vault),
        refs={"tx_hash": receipt.tx_hash, "block": receipt.block_number, "uid": badge.uid},
        payload={
            "uid": badge.uid,
            "step": badge.step,
            "attester": badge.attester,
            "recipient": badge.recipient,
            "ref_uid": badge.ref_uid,
            "reference": reference,
            "safe": badge.vault,
            "gas_used": receipt.gas_used,
        },
    )


def attestation_batch_anchored(
    conn: Connection,
    session: Session,
    *,
    step: str,
    root: str,
    size: int,
    attester: str,
    tx_hash: str,
    block: int,
    gas_used: int,
) -> Entry:
    """A batch of off-chain attestations (by ``attester``, comma-separated when several) was anchored by
    one EAS timestamp of its Merkle root."""
    return append(
        conn,
        session,
        EntryKind.ATTESTATION_BATCH_ANCHORED,
        actor=attester,
        refs={"tx_hash": tx_hash, "block": block, "root": root},
        payload={"step": step, "root": root, "size": size, "attester": attester, "gas_used": gas_used},
    )


def attestation_revoked(
    conn: Connection,
    session: Session,
    *,
    uid: str,
    step: str | None,
    attester: str,
    safe: str | None,
    mode: str,
    receipt: Receipt,
) -> Entry:
    return append(
        conn,
        session,
        EntryKind.ATTESTATION_REVOKED,
        actor=attester,
        vault=_vault_by_safe(conn, safe),
        refs={"tx_hash": receipt.tx_hash, "block": receipt.block_number, "uid": uid},
        payload={"uid": uid, "step": step, "attester": attester, "mode": mode, "safe": safe},
    )


# -- emergency exits -------------------------------------------------------------------------------------------
_EXIT_KINDS = {
    "signed": EntryKind.EXIT_SIGNED,
    "initiated": EntryKind.EXIT_INITIATED,
    "cancelled": EntryKind.EXIT_CANCELLED,
    "finalized": EntryKind.EXIT_FINALIZED,
}


def exit_step(
    conn: Connection,
    session: Session,
    vault: VaultFacts,
    step: str,
    *,
    nonce: int,
    custodian: str | None = None,
    actor: str | None = None,
    receipt: Receipt | None = None,
    request_id: int | None = None,
    signers: Iterable[str] = (),
) -> Entry:
    """An emergency-exit step (signed / initiated / cancelled / finalized) of ``vault``'s ExitModule."""
    refs: dict[str, Any] = {"exit_module": vault.exit_module}
    if receipt is not None:
        refs.update(tx_hash=receipt.tx_hash, block=receipt.block_number)
    return append(
        conn,
        session,
        _EXIT_KINDS[step],
        actor=actor or _operator(session),
        vault=vault.name,
        refs=refs,
        payload={
            "safe": vault.safe,
            "exit_module": vault.exit_module,
            "nonce": nonce,
            "custodian": custodian,
            "request": request_id,
            "signers": sorted(signers),
            "gas_used": None if receipt is None else receipt.gas_used,
        },
    )


# -- timelocked policy changes -----------------------------------------------------------------------------
_OP_KINDS = {
    "proposed": EntryKind.POLICY_CHANGE_PROPOSED,
    "scheduled": EntryKind.POLICY_CHANGE_SCHEDULED,
    "executed": EntryKind.POLICY_CHANGE_APPLIED,
    "cancelled": EntryKind.POLICY_CHANGE_CANCELLED,
}


def timelock_op(
    conn: Connection,
    session: Session,
    op: TimelockOpFacts,
    state: str,
    *,
    tx_hash: str | None = None,
    block: int | None = None,
    ready_at: int | None = None,
) -> Entry:
    """A timelock operation (policy change) moved to ``state`` (proposed/scheduled/executed/cancelled)."""
    policy_hash = None
    if op.policy_source is not None:
        policy_hash = "0x" + load_policy_text(op.policy_source, op.policy_path or "<template>").template_hash.hex()
    vault = conn.execute(sa.select(vaults.c.name, vaults.c.safe).where(vaults.c.id == op.vault_id)).first()
    return append(
        conn,
        session,
        _OP_KINDS[state],
        actor=_operator(session),
        vault=None if vault is None else vault.name,
        refs={"op_id": op.op_id, "tx_hash": tx_hash, "block": block},
        payload={
            "safe": None if vault is None else vault.safe,
            "operation": op.kind,
            "proposal": op.proposal_id,
            "cancel_proposal": op.cancel_proposal_id,
            "description": scrub_text(op.description),
            "delay": op.delay,
            "ready_at": ready_at,
            "new_guard": op.new_guard,
            "template_hash": policy_hash,
            "calls": [c.as_dict() for c in op.calls],
        },
    )


# -- reconciliation and drills -----------------------------------------------------------------------------
def reconciliation_run(conn: Connection, session: Session, payload: dict[str, Any]) -> Entry:
    bars = payload.get("bars") or {}
    previous = payload.get("previous") or {}
    return append(
        conn,
        session,
        EntryKind.RECONCILIATION_RUN,
        actor=_operator(session),
        refs={
            "bars_sha256": bars.get("sha256"),
            "previous_sha256": previous.get("sha256"),
            "block": payload.get("at_block"),
        },
        payload=payload,
    )


def drill(
    store: Store,
    *,
    chain_id: int | None,
    name: str,
    actor: str,
    outcome: str,
    vault: str | None = None,
    refs: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> Entry:
    """Record a drill (e.g. an emergency-exit or key-recovery exercise) in a transaction of its own; the
    store is the operator's workspace (a drill on a fork has no session left to record through)."""
    return ledger_for(store).record(
        EntryKind.DRILL,
        actor=actor,
        vault=vault,
        chain_id=chain_id,
        refs=refs or {},
        payload={"name": name, "outcome": outcome, **(details or {})},
    )


# -- pre-sign risk engine -------------------------------------------------------------------------------------
def risk_decision(
    conn: Connection,
    session: Session,
    *,
    vault: str | None,
    safe: str,
    proposal_id: int | None,
    decision: DecisionFacts,
    actor: str,
    backend: str | None = None,
) -> Entry:
    """One engine decision (any stage), linked to its proposal by safeTxHash and id; ``backend`` is the
    signer's scheme (keystore / pkcs11 / ledger / trezor / offline / anvil) at the sign stage."""
    return append(
        conn,
        session,
        EntryKind.RISK_DECISION,
        actor=_scheme(actor) if ":" in actor else actor or _operator(session),
        vault=vault,
        refs={"safe_tx_hash": decision.safe_tx_hash},
        payload={"safe": safe, "proposal": proposal_id, "backend": backend, **decision.as_dict()},
    )


def risk_list_changed(conn: Connection, session: Session, *, payload: dict[str, Any]) -> Entry:
    """A sanctions list replaced the previous one (source, date, sha256, additions, delistings)."""
    return append(conn, session, EntryKind.RISK_LIST_CHANGED, actor=_operator(session), payload=payload)


def risk_model_trained(conn: Connection, session: Session, *, vault: str, safe: str, payload: dict[str, Any]) -> Entry:
    return append(
        conn,
        session,
        EntryKind.RISK_MODEL_TRAINED,
        actor=_operator(session),
        vault=vault,
        payload={"safe": safe, **payload},
    )


def risk_case_opened(conn: Connection, session: Session, *, vault: str | None, case: dict[str, Any]) -> Entry:
    return append(
        conn,
        session,
        EntryKind.RISK_CASE_OPENED,
        actor=_operator(session),
        vault=vault,
        refs={"safe_tx_hash": case["safe_tx_hash"]} if case.get("safe_tx_hash") else {},
        payload=case,
    )
