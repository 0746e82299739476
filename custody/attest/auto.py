"""Badges the custody flows emit by themselves, when the vault's template asks for them.

A template's ``attestations.emit`` lists which of ``approval``, ``oob_confirmation`` and ``execution``
get a badge the moment the step happens, attested by the operator's attester key (``--attester`` /
``$CUSTODY_ATTESTER``). The custody step never waits on its badge: if no attester is configured, the
attester is not authorised, or the attestation fails, the step stands, a warning says why, and
``custody attest backfill VAULT`` issues what is missing later (``custody attest verify`` lists gaps).

Each emitted step is attested as the template's ``emit`` says: ``onchain`` (its own EAS attestation,
delegated by the attester) or ``batched`` (an EAS off-chain attestation signed by the attester as the
step happens, kept in the workspace and anchored with the vault's other waiting badges by one
``EAS.timestamp`` of their Merkle root once ``anchor_every`` of them wait, by ``custody attest anchor``,
or at the end of ``custody attest backfill``). Until its anchor, a batched badge does not verify.

Each badge's ``ledgerEntry`` is the leaf hash of the audit-ledger entry that recorded the same step
(:mod:`custody.attest.ledger_link`).

Links: an approval badge refers (``refUID``) to the approving signer's KYC badge when the workspace
holds one; an execution badge refers to the transaction's last approval/confirmation badge and lists
all of them in its ``approvals`` field.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec

import sqlalchemy as sa

from custody.attest import badges, batch
from custody.attest.evidence import offchain_badge
from custody.attest.ledger_link import entry_hash
from custody.exceptions import AttestationError, CustodyError
from custody.session import Session
from custody.store import oob_confirmations, proposals, signatures
from custody.types import ZERO_ADDRESS
from custody.vault.decode import decode_safe_call
from custody.vault.proposals import get_proposal
from custody.vault.service import get_vault

if TYPE_CHECKING:
    from custody.policy.model import AttestationRule
    from custody.signers.base import Signer
    from custody.vault.proposals import Proposal
    from custody.vault.service import VaultRecord

log = logging.getLogger(__name__)
_P = ParamSpec("_P")

# per session: the (vault, step) pairs already told "no attester key is configured" — said once per session
_WARNED: weakref.WeakKeyDictionary[Session, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def _rule(session: Session, safe: str, step_name: str) -> tuple[VaultRecord, Signer, AttestationRule] | None:
    """(vault record, attester signer, the template's rule) when the vault's template emits ``step_name``
    and an attester is set."""

    vault = get_vault(session, safe)
    rule = vault.policy().attestations
    if rule is None or step_name not in rule.emit:
        return None
    attester = session.attester()
    if attester is None:
        warned = _WARNED.setdefault(session, set())
        if (vault.safe, step_name) in warned:
            return None
        warned.add((vault.safe, step_name))
        log.warning(
            "vault %s's template asks for %s badges but no attester key is configured (--attester / "
            "$CUSTODY_ATTESTER); `custody attest backfill %s` issues missing badges later",
            vault.name,
            step_name,
            vault.name,
        )
        return None
    if not rule.authorised(attester.address, step_name):
        log.warning(
            "attester %s is not authorised for %s badges by vault %s's template; no badge issued",
            attester.address,
            step_name,
            vault.name,
        )
        return None
    return vault, attester, rule


def _emit(
    session: Session,
    step_name: str,
    rule: AttestationRule,
    vault: VaultRecord,
    attester: Signer,
    *,
    recipient: str,
    fields: dict[str, Any],
    reference: str,
    ref_uid: bytes = badges.ZERO32,
    signer: str | None = None,
) -> badges.Badge:
    """The step's badge as its template says: its own EAS attestation, or an off-chain attestation that
    waits for the vault's next anchor (made here once ``anchor_every`` of its badges wait)."""
    if rule.mode(step_name) == "onchain":
        return badges.issue(
            session,
            step_name,
            attester=attester,
            recipient=recipient,
            fields=fields,
            ref_uid=ref_uid,
            reference=reference,
            signer=signer,
        )
    item = batch.BatchItem(recipient=recipient, fields=fields, ref_uid=ref_uid, reference=reference)
    badge = batch.sign_pending(session, step_name, attester=attester, item=item, signer=signer)
    waiting = batch.pending_count(session, vault=vault.safe)
    if waiting >= rule.anchor_every:
        try:
            batch.anchor_pending(session, vault=vault.safe)
        except CustodyError as exc:
            log.warning(
                "%d batched badge(s) of vault %s await their anchor: %s (`custody attest anchor %s` retries)",
                waiting,
                vault.name,
                exc.message,
                vault.name,
            )
    return badge


def _fields(session: Session, row: dict[str, Any]) -> dict[str, Any]:
    """A stored badge's fields: from its signed document off chain, from EAS on chain."""
    doc = badges.document(row)
    if doc is not None:
        badge, problems = offchain_badge(doc)
        if badge is None:
            raise AttestationError(f"stored off-chain badge {row['uid']} does not read: {'; '.join(problems)}")
        return badge.fields
    return badges.read(session, row["uid"]).fields


def _existing(
    session: Session, step_name: str, safe_tx_hash: str, signer: str | None = None, confirmer: str | None = None
) -> dict[str, Any] | None:
    for row in badges.stored(session, step_name=step_name, reference=safe_tx_hash):
        if row["revoked_tx"]:
            continue
        if signer is not None and row["signer"] != signer:
            continue
        if confirmer is not None and _fields(session, row).get("confirmer") != confirmer:
            continue
        return row
    return None


def _best_effort(
    what: str, fn: Callable[_P, badges.Badge | None], *args: _P.args, **kwargs: _P.kwargs
) -> badges.Badge | None:
    try:
        return fn(*args, **kwargs)
    except CustodyError as exc:
        log.warning("%s badge not issued: %s (`custody attest backfill` retries)", what, exc.message)
        return None


# -- approval ------------------------------------------------------------------------------------------
def after_approval(session: Session, safe: str, safe_tx_hash: str, signer: str) -> badges.Badge | None:
    return _best_effort("approval", _approval, session, safe, safe_tx_hash, signer)


def _approval(session: Session, safe: str, safe_tx_hash: str, signer: str) -> badges.Badge | None:
    found = _rule(session, safe, "approval")
    if found is None or _existing(session, "approval", safe_tx_hash, signer=signer):
        return None
    vault, attester, rule = found
    entry = entry_hash(session, "approval", safe_tx_hash=safe_tx_hash, actor=signer)
    fields = {
        "vault": vault.safe,
        "safeTxHash": bytes.fromhex(safe_tx_hash[2:]),
        "signer": signer,
        "ledgerEntry": entry,
    }
    return _emit(
        session,
        "approval",
        rule,
        vault,
        attester,
        recipient=signer,
        fields=fields,
        ref_uid=badges.latest_kyc(session, signer, vault=vault.safe),
        reference=safe_tx_hash,
        signer=signer,
    )


# -- out-of-band confirmation ----------------------------------------------------------------------------
def after_confirmation(
    session: Session, safe: str, safe_tx_hash: str, confirmer: str, method: str
) -> badges.Badge | None:
    return _best_effort("out-of-band confirmation", _confirmation, session, safe, safe_tx_hash, confirmer, method)


def _confirmation(session: Session, safe: str, safe_tx_hash: str, confirmer: str, method: str) -> badges.Badge | None:
    found = _rule(session, safe, "oob_confirmation")
    if found is None or _existing(session, "oob_confirmation", safe_tx_hash, confirmer=confirmer):
        return None
    vault, attester, rule = found
    entry = entry_hash(session, "oob_confirmation", safe_tx_hash=safe_tx_hash, actor=confirmer)
    fields = {
        "vault": vault.safe,
        "safeTxHash": bytes.fromhex(safe_tx_hash[2:]),
        "confirmer": confirmer,
        "method": method,
        "ledgerEntry": entry,
    }
    return _emit(
        session, "oob_confirmation", rule, vault, attester, recipient=vault.safe, fields=fields, reference=safe_tx_hash
    )


# -- execution -------------------------------------------------------------------------------------------
def after_execution(session: Session, proposal_id: int) -> badges.Badge | None:
    return _best_effort("execution", _execution, session, proposal_id)


def _movement(session: Session, proposal: Proposal) -> tuple[str, str, int]:
    """(asset, to, amount) the execution moved: token transfers decoded, anything else as the raw call."""

    safe_tx = proposal.safe_tx
    call = decode_safe_call(
        session.chain, safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe=safe_tx.safe
    )
    if call.kind == "erc20" and call.token is not None and call.recipient and call.amount is not None:
        return call.token.address, call.recipient, call.amount
    return ZERO_ADDRESS, safe_tx.to, safe_tx.value


def _execution(session: Session, proposal_id: int) -> badges.Badge | None:

    proposal = get_proposal(session, proposal_id)
    found = _rule(session, proposal.safe_tx.safe, "execution")
    if found is None or not proposal.exec_tx_hash or _existing(session, "execution", proposal.safe_tx_hash):
        return None
    vault, attester, rule = found
    linked = [
        r
        for s in ("approval", "oob_confirmation")
        for r in badges.stored(session, step_name=s, reference=proposal.safe_tx_hash)
        if not r["revoked_tx"]
    ]
    linked.sort(key=lambda r: r["id"])
    approvals = [bytes.fromhex(r["uid"][2:]) for r in linked]
    # EAS accepts an on-chain refUID only to an on-chain attestation; all of them are listed in `approvals`
    referable = [r for r in linked if rule.mode("execution") == "batched" or r["mode"] == "onchain"]
    asset, to, amount = _movement(session, proposal)
    fields = {
        "vault": vault.safe,
        "safeTxHash": bytes.fromhex(proposal.safe_tx_hash[2:]),
        "txHash": bytes.fromhex(proposal.exec_tx_hash[2:]),
        "asset": asset,
        "to": to,
        "amount": amount,
        "approvals": approvals,
        "ledgerEntry": entry_hash(session, "execution", safe_tx_hash=proposal.safe_tx_hash),
    }
    return _emit(
        session,
        "execution",
        rule,
        vault,
        attester,
        recipient=vault.safe,
        fields=fields,
        ref_uid=bytes.fromhex(referable[-1]["uid"][2:]) if referable else badges.ZERO32,
        reference=proposal.safe_tx_hash,
    )


# -- catching up ------------------------------------------------------------------------------------------
def backfill(session: Session, vault_ref: str) -> list[badges.Badge]:
    """Issue every badge the vault's template asks for that the workspace's records lack.

    All or nothing on authorisation: when the attester may not attest a step that has badges to catch up,
    :class:`AttestationError` names it and why before anything is issued."""

    vault = get_vault(session, vault_ref)
    rule = vault.policy().attestations
    emit = rule.emit if rule is not None else ()
    with session.store.connect() as conn:
        props = conn.execute(
            sa.select(proposals.c.id, proposals.c.safe_tx_hash, proposals.c.state)
            .where(proposals.c.vault_id == vault.id)
            .order_by(proposals.c.id)
        ).all()
        sigs = conn.execute(
            sa.select(signatures.c.proposal_id, signatures.c.signer).order_by(signatures.c.created_at)
        ).all()
        oobs = conn.execute(
            sa.select(oob_confirmations.c.proposal_id, oob_confirmations.c.confirmer, oob_confirmations.c.method)
        ).all()
    by_id = {p.id: p for p in props}
    todo: list[tuple[str, Callable[[], badges.Badge | None]]] = []  # (step, its issuer) for each missing badge
    if "approval" in emit:
        todo += [
            ("approval", functools.partial(_approval, session, vault.safe, by_id[s.proposal_id].safe_tx_hash, s.signer))
            for s in sigs
            if s.proposal_id in by_id
            and not _existing(session, "approval", by_id[s.proposal_id].safe_tx_hash, signer=s.signer)
        ]
    if "oob_confirmation" in emit:
        todo += [
            (
                "oob_confirmation",
                functools.partial(
                    _confirmation, session, vault.safe, by_id[o.proposal_id].safe_tx_hash, o.confirmer, o.method
                ),
            )
            for o in oobs
            if o.proposal_id in by_id
            and not _existing(session, "oob_confirmation", by_id[o.proposal_id].safe_tx_hash, confirmer=o.confirmer)
        ]
    if "execution" in emit:
        todo += [
            ("execution", functools.partial(_execution, session, p.id))
            for p in props
            if p.state == "executed" and not _existing(session, "execution", p.safe_tx_hash)
        ]
    if todo and rule is not None:  # a rule is there whenever something is to do (emit is empty without one)
        _require_authorised(session, vault, rule, [step for step, _issue in todo])
    issued: list[badges.Badge] = []
    for _step, issue in todo:
        badge = issue()
        issued += [badge] if badge else []
    if any(b.mode == "offchain" for b in issued):  # the command's batched badges: one anchored set
        batch.anchor_pending(session, vault=vault.safe)
    return issued


def _require_authorised(session: Session, vault: VaultRecord, rule: AttestationRule, steps: list[str]) -> None:
    """Refuse (naming the attester and why) unless the configured attester may attest every step in ``steps``."""
    attester = session.attester()
    needed = list(dict.fromkeys(steps))
    if attester is None:
        raise AttestationError(
            f"vault {vault.name} lacks {len(steps)} badge(s) ({', '.join(needed)}) but no attester key is configured; "
            "nothing was issued",
            hint="name the attester key with --attester URI or $CUSTODY_ATTESTER",
            vault=vault.name,
            steps=needed,
        )
    refused = [step for step in needed if not rule.authorised(attester.address, step)]
    if not refused:
        return
    listed = [a for a in rule.attesters if a.address == attester.address]
    if listed:
        why = f"the template authorises it ({listed[0].label}) for {', '.join(listed[0].steps)} only"
    else:
        known = ", ".join(f"{a.address} ({a.label})" for a in rule.attesters) or "none"
        why = f"it is not one of the template's attesters ({known})"
    raise AttestationError(
        f"attester {attester.address} ({attester.uri}) is not authorised for {', '.join(refused)} badges by vault "
        f"{vault.name}'s template: {why}; nothing was issued",
        hint="use an attester the template lists for those steps, or change the template's attestations section",
        attester=attester.address,
        vault=vault.name,
        steps=refused,
    )
