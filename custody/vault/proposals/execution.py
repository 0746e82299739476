"""Execution: refused before anything is sent when the signatures, the out-of-band confirmation, the nonce
order, the policy or the risk engine do not allow it; journaled, so an interrupted execution resumes by
re-sending exactly the signed bytes; recorded once, even when two runs race."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from custody import events
from custody.audit import record as audit
from custody.chain.transactions import Receipt, send_raw, wait_for_receipt
from custody.contracts.errors import decode_revert
from custody.exceptions import (
    AlreadyExecuted,
    NonceConsumed,
    NotEnoughSignatures,
    ProposalError,
    StaleProposal,
    TransactionFailed,
)
from custody.risk import gate as risk_gate
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import pack_signatures
from custody.session import Session
from custody.store import proposals, utcnow
from custody.vault.oob import confirmations, require_confirmation
from custody.vault.proposals.checks import already_executed_error, enforce_risk, require_open, require_policy
from custody.vault.proposals.model import Proposal, ProposalState
from custody.vault.proposals.safe_reads import onchain_execution, safe_contract, safe_nonce
from custody.vault.proposals.signing import valid_signatures
from custody.vault.proposals.storage import get_proposal, proposal_ids_by_nonce, set_state
from custody.vault.service import get_vault


def exec_calldata(session: Session, safe_tx: SafeTx, packed: bytes) -> bytes:
    safe = safe_contract(session, safe_tx.safe)
    return bytes.fromhex(safe.encode_abi("execTransaction", list(safe_tx.exec_args(packed)))[2:])


def execute(session: Session, proposal: Proposal, *, force: bool = False) -> Receipt:
    """Execute with the collected signatures; refuses before sending anything if they do not suffice.

    Journaled: the signed ``execTransaction`` bytes are recorded before broadcast, so an interrupted
    execution resumes by re-sending exactly those bytes (never a second, different transaction).
    """
    if proposal.state is ProposalState.EXECUTED:
        raise already_executed_error(proposal)
    if proposal.state is ProposalState.EXECUTING and proposal.exec_tx_hash:
        return _resume(session, proposal, force=force)
    view = require_open(session, proposal, outcome="nothing was sent")
    require_confirmation(session, proposal)  # out-of-band confirmation, where the vault's policy asks
    current = view.nonce
    if proposal.safe_tx.nonce > current:
        raise _nonce_gap(session, proposal, current)
    valid, _owners, threshold = valid_signatures(session, proposal, view)
    if len(valid) < threshold:
        have = ", ".join(s.signer for s in valid) or "none"
        raise NotEnoughSignatures(
            f"proposal {proposal.id} has {len(valid)} valid owner signature(s) but the vault needs {threshold} "
            f"(signed by: {have}); nothing was sent",
            proposal=proposal.id,
            have=len(valid),
            need=threshold,
        )
    if not force:
        require_policy(session, proposal.safe_tx, what="execution")
    decision = enforce_risk(session, proposal, stage="execute", view=view)
    proposer = (proposal.proposer or "").strip().lower()
    risk_gate.require_warn_satisfied(
        decision,
        risk_gate.settings_of(get_vault(session, proposal.vault_id)),
        signatures=len(valid),
        threshold=threshold,
        confirmed=any(
            c.safe_tx_hash == proposal.safe_tx_hash and c.confirmer.lower() != proposer
            for c in confirmations(session, proposal)
        ),
        proposal_id=proposal.id,
    )
    chosen = sorted(valid, key=lambda s: int(s.signer, 16))[:threshold]
    data = exec_calldata(session, proposal.safe_tx, pack_signatures(chosen))

    sent: list[str] = []

    def journal(tx_hash: str, raw: bytes) -> None:
        """Claim the execution before broadcast: only an open proposal moves to EXECUTING, so of two racing runs
        the later one never sends (nor overwrites the journaled transaction of the first)."""
        with session.store.begin() as conn:
            claimed = conn.execute(
                proposals.update()
                .where(proposals.c.id == proposal.id, proposals.c.state == ProposalState.PROPOSED.value)
                .values(
                    state=ProposalState.EXECUTING.value,
                    exec_tx_hash=tx_hash,
                    exec_raw_tx="0x" + raw.hex(),
                    updated_at=utcnow(),
                )
            ).rowcount
        if not claimed:
            raise _lost_race(session, proposal)
        sent.append(tx_hash)

    try:
        receipt = session.send(
            to=proposal.safe_tx.safe, data=data, what=f"executing proposal {proposal.id}", on_signed=journal
        )
    except TransactionFailed as exc:
        # Refused in estimation or reverted as a whole: the Safe nonce is unused by us, the proposal stays open —
        # unless another run executed it meanwhile, which is then named (its record is left as it is).
        _reopen(session, proposal.id, sent[0] if sent else None)
        if safe_nonce(session, proposal.safe_tx.safe) > proposal.safe_tx.nonce:
            raise _lost_race(session, proposal) from exc
        raise
    return _finalize(session, proposal, receipt)


def _nonce_gap(session: Session, proposal: Proposal, current: int) -> ProposalError:
    """Why a proposal cannot execute yet: the open proposals that must go first, and the nonces no open proposal
    holds (say, after a discard) — never a proposal that does not exist."""
    gap = range(current, proposal.safe_tx.nonce)
    found = proposal_ids_by_nonce(session, proposal.vault_id, gap)
    open_ = {
        n: ids
        for state in (ProposalState.PROPOSED.value, ProposalState.EXECUTING.value)
        for n, ids in found.get(state, {}).items()
    }
    steps = []
    if open_:
        steps.append("execute " + ", ".join(f"proposal {i} (nonce {n})" for n in sorted(open_) for i in open_[n]))
    missing = [n for n in gap if n not in open_]
    if missing:
        discarded = [i for n in missing for i in found.get(ProposalState.DISCARDED.value, {}).get(n, [])]
        why = f" (discarded: proposal {', '.join(map(str, discarded))})" if discarded else ""
        steps.append(
            f"propose a transaction for nonce {', '.join(map(str, missing))}{why}, e.g. "
            f"`custody tx propose … --nonce {missing[0]}`"
        )
    return ProposalError(
        f"proposal {proposal.id} has nonce {proposal.safe_tx.nonce}, but the vault is at nonce {current}: "
        f"{' and '.join(steps)} first; nothing was sent",
        hint=f"or discard proposal {proposal.id} and propose it again: it then gets the next free nonce"
        if missing
        else None,
        proposal=proposal.id,
        waiting_for=sorted(i for ids in open_.values() for i in ids),
        missing_nonces=missing,
    )


def _reopen(session: Session, proposal_id: int, tx_hash: str | None) -> None:
    """Back to PROPOSED after our own execution attempt failed; never touches another run's journaled one."""
    mine = proposals.c.exec_tx_hash.is_(None) if tx_hash is None else proposals.c.exec_tx_hash == tx_hash
    with session.store.begin() as conn:
        conn.execute(
            proposals.update()
            .where(
                proposals.c.id == proposal_id,
                proposals.c.state.in_([ProposalState.PROPOSED.value, ProposalState.EXECUTING.value]),
                mine,
            )
            .values(state=ProposalState.PROPOSED.value, exec_tx_hash=None, exec_raw_tx=None, updated_at=utcnow())
        )


def _lost_race(session: Session, proposal: Proposal) -> ProposalError:
    """What the later of two racing executions is told: the proposal was executed (by which transaction), not
    that some other transaction took its nonce."""
    latest = get_proposal(session, proposal.id)
    if latest.state in (ProposalState.EXECUTED, ProposalState.EXECUTING):
        return already_executed_error(latest, meanwhile=True)
    found = onchain_execution(session, proposal)
    if found is not None:
        return AlreadyExecuted(
            f"proposal {proposal.id} was executed meanwhile outside this workspace in {found[0]} (block {found[1]}); "
            "nothing was sent",
            hint="`custody audit index` records that execution in the ledger",
            proposal=proposal.id,
            state="executed_elsewhere",
            tx_hash=found[0],
            block=found[1],
        )
    if latest.state is not ProposalState.PROPOSED:
        return ProposalError(
            f"proposal {proposal.id} became {latest.state.value} meanwhile; nothing was sent", proposal=proposal.id
        )
    return StaleProposal(
        f"proposal {proposal.id} has nonce {proposal.safe_tx.nonce}, but the vault moved past it meanwhile: another "
        "transaction used that nonce; nothing was sent",
        proposal=proposal.id,
    )


def _resume(session: Session, proposal: Proposal, *, force: bool = False) -> Receipt:
    """Finish an execution whose signed bytes were journaled: re-send them and wait.

    Only if those bytes can provably never be mined (their sender nonce went to another transaction)
    is the proposal reopened and executed with a freshly signed transaction.
    """
    with session.store.connect() as conn:
        raw_hex = conn.execute(sa.select(proposals.c.exec_raw_tx).where(proposals.c.id == proposal.id)).scalar()
    assert proposal.exec_tx_hash is not None
    what = f"executing proposal {proposal.id} (resumed)"
    if raw_hex and _receipt_or_none(session, proposal.exec_tx_hash) is None:
        if safe_nonce(session, proposal.safe_tx.safe) > proposal.safe_tx.nonce:
            raise StaleProposal(
                f"proposal {proposal.id}'s journaled transaction {proposal.exec_tx_hash} was never mined and the "
                "vault's nonce has moved on: another transaction used the nonce",
                proposal=proposal.id,
            )
        try:
            send_raw(session.chain, bytes.fromhex(raw_hex[2:]))
        except NonceConsumed:
            set_state(session, proposal.id, ProposalState.PROPOSED, exec_tx_hash=None, exec_raw_tx=None)
            return execute(session, get_proposal(session, proposal.id), force=force)
    try:
        receipt = wait_for_receipt(session.chain, proposal.exec_tx_hash, what=what, decoder=decode_revert)
    except TransactionFailed:
        set_state(session, proposal.id, ProposalState.PROPOSED, exec_tx_hash=None, exec_raw_tx=None)
        raise
    return _finalize(session, proposal, receipt)


def _receipt_or_none(session: Session, tx_hash: str) -> Any:
    from hexbytes import HexBytes
    from web3.exceptions import TransactionNotFound

    try:
        return session.chain.call(session.chain.w3.eth.get_transaction_receipt, HexBytes(tx_hash))
    except TransactionNotFound:
        return None


def _finalize(session: Session, proposal: Proposal, receipt: Receipt) -> Receipt:
    from web3.logs import DISCARD

    safe = safe_contract(session, proposal.safe_tx.safe)
    success = safe.events.ExecutionSuccess().process_receipt(receipt.raw, errors=DISCARD)
    state = ProposalState.EXECUTED if success else ProposalState.FAILED
    with session.store.begin() as conn:  # once: a second run that waited for the same transaction records nothing
        recorded = conn.execute(
            proposals.update()
            .where(
                proposals.c.id == proposal.id,
                proposals.c.state.in_([ProposalState.PROPOSED.value, ProposalState.EXECUTING.value]),
            )
            .values(
                state=state.value,
                exec_tx_hash=receipt.tx_hash,
                exec_block=receipt.block_number,
                exec_gas_used=receipt.gas_used,
                updated_at=utcnow(),
            )
        ).rowcount
        if recorded:
            audit.executed(conn, session, proposal, receipt, success=bool(success))
    if not recorded:
        raise _lost_race(session, proposal)
    if state is ProposalState.FAILED:
        raise ProposalError(
            f"proposal {proposal.id} was mined in {receipt.tx_hash} but the Safe reported ExecutionFailure"
        )
    events.publish(events.ProposalExecuted(session, proposal.id, receipt))
    return receipt
