"""The checks every stage passes before anything is recorded, signed or sent: the proposal is still open
(not executed, discarded or stale, its hash the Safe's), the vault's on-chain policy would accept it, and the
risk engine's decision (recorded; a Deny refused)."""

from __future__ import annotations

from collections.abc import Callable

from custody.exceptions import AlreadyExecuted, PolicyViolation, ProposalError, StaleProposal
from custody.policy.onchain import preflight
from custody.risk import gate as risk_gate
from custody.risk.verdict import Decision
from custody.safe.safe_tx import SafeTx
from custody.session import Session
from custody.vault.proposals.model import Proposal, ProposalState
from custody.vault.proposals.safe_reads import (
    SafeView,
    onchain_execution,
    owners_and_threshold,
    require_hash_match,
    safe_nonce,
    safe_view,
)
from custody.vault.proposals.storage import get_proposal, open_nonces
from custody.vault.service import VaultRecord, get_vault


def require_open(
    session: Session, proposal: Proposal, view: SafeView | None = None, *, outcome: str = "nothing was signed"
) -> SafeView:
    """Refuse executed/stale proposals and hash mismatches; returns the chain view it checked."""
    if proposal.state in (ProposalState.EXECUTED, ProposalState.EXECUTING):
        raise already_executed_error(proposal, outcome=outcome)
    if proposal.state is ProposalState.DISCARDED:
        raise ProposalError(
            f"proposal {proposal.id} was discarded; {outcome}",
            hint=f"proposing the same transaction again with --nonce {proposal.safe_tx.nonce} reopens it",
            proposal=proposal.id,
        )
    view = view or safe_view(session, proposal.safe_tx)
    current = view.nonce
    if proposal.safe_tx.nonce < current:
        latest = get_proposal(session, proposal.id)  # another process may have executed this very proposal
        if latest.state in (ProposalState.EXECUTED, ProposalState.EXECUTING):
            raise already_executed_error(latest, meanwhile=True, outcome=outcome)
        found = onchain_execution(session, proposal)
        if found is not None:  # this very proposal, executed by a tool or workspace other than this one
            raise AlreadyExecuted(
                f"proposal {proposal.id} was executed outside this workspace in {found[0]} (block {found[1]}); "
                f"{outcome}",
                hint="`custody audit index` records that execution in the ledger",
                proposal=proposal.id,
                state="executed_elsewhere",
                tx_hash=found[0],
                block=found[1],
            )
        raise StaleProposal(
            f"proposal {proposal.id} has nonce {proposal.safe_tx.nonce}, but the vault is at nonce {current}: "
            "another transaction used that nonce",
            proposal=proposal.id,
        )
    require_hash_match(proposal.safe_tx, view.onchain_hash)
    return view


def already_executed_error(
    proposal: Proposal, *, meanwhile: bool = False, outcome: str = "nothing was sent"
) -> AlreadyExecuted:
    """The refusal for a proposal whose execution is recorded, naming its transaction: ``details['state']`` is
    ``executed`` (done, mined) or ``executing`` (sent by another run, not mined yet)."""
    by = " by another process" if meanwhile else ""
    if proposal.state is ProposalState.EXECUTED:
        when = "meanwhile" if meanwhile else "already"
        what = f"was executed {when}{by} in {proposal.exec_tx_hash} (block {proposal.exec_block})"
    else:
        what = f"is being executed{by} in {proposal.exec_tx_hash}, not mined yet"
    return AlreadyExecuted(
        f"proposal {proposal.id} {what}; {outcome}",
        hint=None if proposal.state is ProposalState.EXECUTED else f"`custody tx execute {proposal.id}` waits for it",
        proposal=proposal.id,
        state=proposal.state.value,
        tx_hash=proposal.exec_tx_hash,
        block=proposal.exec_block,
    )


def require_policy(session: Session, safe_tx: SafeTx, *, what: str) -> None:
    """Raise :class:`PolicyViolation` when the vault's guard would reject ``safe_tx`` now.

    ``what`` is "proposal" (nothing gets recorded) or "execution" (nothing gets sent).
    """

    verdict = preflight(
        session, safe_tx.safe, to=safe_tx.to, value=safe_tx.value, data=safe_tx.data, operation=safe_tx.operation
    )
    if not verdict.allowed:
        cited = f"rule {verdict.rule}" if verdict.error is None else f"rule {verdict.rule}, {verdict.error}"
        raise PolicyViolation(
            f"the vault's policy rejects this {what}: {verdict.message} ({cited}); "
            + ("nothing was recorded" if what == "proposal" else "nothing was sent"),
            hint="use --force to record it anyway (drills); the chain will still reject it",
            verdict=verdict.as_dict(),
        )


def assess_risk(
    session: Session,
    vault: VaultRecord,
    safe_tx: SafeTx,
    *,
    stage: str,
    proposal: Proposal | None = None,
    proposer: str = "",
    signer: str | None = None,
    backend: str | None = None,
    view: SafeView | None = None,
    onchain_nonce: int | None = None,
    onchain: bytes | None = None,
) -> Decision:
    """The risk engine's decision for ``safe_tx`` at ``stage`` (not yet recorded)."""
    if view is not None:
        owners, onchain_nonce, onchain = view.owners, view.nonce, view.onchain_hash
    else:
        owners = owners_and_threshold(session, safe_tx.safe)[0]
        onchain_nonce = safe_nonce(session, safe_tx.safe) if onchain_nonce is None else onchain_nonce
    return risk_gate.assess(
        session,
        vault,
        safe_tx,
        stage=stage,
        owners=owners,
        onchain_nonce=onchain_nonce,
        queued_nonces=open_nonces(session, vault.id, exclude=None if proposal is None else proposal.id),
        proposer=proposal.proposer if proposal is not None else proposer,
        signer=signer,
        backend=backend,
        supplied_hash=None if proposal is None else bytes.fromhex(proposal.safe_tx_hash[2:]),
        onchain_hash=onchain,
    )


def enforce_risk(
    session: Session,
    proposal: Proposal,
    *,
    stage: str,
    view: SafeView,
    signer: str | None = None,
    backend: str | None = None,
    on_decision: Callable[[Decision], None] | None = None,
) -> Decision:
    """Decide, record (own transaction), show (``on_decision``) and refuse a Deny — before anything is released."""
    vault = get_vault(session, proposal.vault_id)
    decision = assess_risk(
        session, vault, proposal.safe_tx, stage=stage, proposal=proposal, signer=signer, backend=backend, view=view
    )
    with session.store.begin() as conn:
        risk_gate.record(
            conn, session, vault, decision, proposal_id=proposal.id, actor=signer or proposal.proposer, backend=backend
        )
    if on_decision is not None:
        on_decision(decision)
    risk_gate.refuse_deny(decision, what=f"proposal {proposal.id}", proposal_id=proposal.id)
    return decision


def score_risk(session: Session, proposal: Proposal) -> Decision:
    """A fresh, recorded risk decision (stage ``score``) for an open proposal; refuses nothing."""
    view = require_open(session, proposal, outcome="nothing was scored")
    vault = get_vault(session, proposal.vault_id)
    decision = assess_risk(session, vault, proposal.safe_tx, stage="score", proposal=proposal, view=view)
    with session.store.begin() as conn:
        risk_gate.record(conn, session, vault, decision, proposal_id=proposal.id, actor=proposal.proposer)
    return decision
