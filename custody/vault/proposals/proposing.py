"""Proposing: a Safe transaction (or an ETH / ERC-20 transfer) recorded for the vault at its next free
nonce, after the policy pre-flight and the risk engine; and discarding one that was never executed."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from custody.audit import record as audit
from custody.exceptions import InputError, ProposalError, StaleProposal, UnknownProposal
from custody.risk import gate as risk_gate
from custody.risk.verdict import Verdict
from custody.safe.safe_tx import SafeTx
from custody.session import Session
from custody.store import inserted_id, proposals, utcnow
from custody.types import ZERO_ADDRESS, Operation, parse_address, parse_amount
from custody.vault.decode import DecodedCall, decode_safe_call, token_info
from custody.vault.proposals.checks import assess_risk, require_policy
from custody.vault.proposals.model import Proposal, ProposalState
from custody.vault.proposals.safe_reads import safe_nonce, verify_hash
from custody.vault.proposals.storage import get_proposal, load_proposal, set_state
from custody.vault.service import VaultRecord, get_vault

TRANSFER_SELECTOR = function_signature_to_4byte_selector("transfer(address,uint256)")


def _next_nonce(session: Session, vault: VaultRecord) -> int:
    onchain = safe_nonce(session, vault.safe)
    with session.store.connect() as conn:
        pending = conn.execute(
            sa.select(sa.func.max(proposals.c.nonce)).where(
                proposals.c.vault_id == vault.id,
                proposals.c.state.in_([ProposalState.PROPOSED.value, ProposalState.EXECUTING.value]),
                proposals.c.nonce >= onchain,
            )
        ).scalar()
    return onchain if pending is None else max(onchain, pending + 1)


def propose(
    session: Session,
    vault_ref: str | int,
    *,
    to: str,
    value: int = 0,
    data: bytes = b"",
    operation: Operation = Operation.CALL,
    nonce: int | None = None,
    description: str = "",
    proposer: str = "",
    force: bool = False,
) -> Proposal:
    """Record a Safe transaction for the vault; returns the stored proposal.

    The transaction is first evaluated against the vault's on-chain policy; what the guard would
    reject is refused (:class:`PolicyViolation`) unless ``force`` (drills, demonstrations). Then the
    risk engine decides (recorded); a Deny is stored withdrawn and refused (:class:`RiskDenied`) unless
    ``force`` records it anyway — its signatures are still refused at the sign stage.
    """
    vault = get_vault(session, vault_ref)
    onchain_nonce = safe_nonce(session, vault.safe)
    if nonce is None:
        nonce = _next_nonce(session, vault)
    elif nonce < onchain_nonce:
        raise StaleProposal(f"nonce {nonce} is already used; vault {vault.name} is at nonce {onchain_nonce}")
    if value < 0 or value >= 2**256:
        raise InputError("value must be between 0 and 2^256-1 wei")
    safe_tx = SafeTx(
        safe=vault.safe,
        chain_id=session.chain_id,
        to=parse_address(to, what="target"),
        value=value,
        data=data,
        operation=Operation(operation),
        nonce=nonce,
    )
    remote = verify_hash(session, safe_tx)
    if not force:
        require_policy(session, safe_tx, what="proposal")
    decision = assess_risk(
        session, vault, safe_tx, stage="propose", proposer=proposer, onchain_nonce=onchain_nonce, onchain=remote
    )
    digest = "0x" + safe_tx.safe_tx_hash.hex()
    with session.store.begin() as conn:
        clash = conn.execute(
            sa.select(proposals.c.id, proposals.c.state).where(proposals.c.safe_tx_hash == digest)
        ).first()
        refused = decision.verdict is Verdict.DENY and not force
        if clash is not None and clash.state == ProposalState.DISCARDED.value and refused:
            risk_gate.record(conn, session, vault, decision, proposal_id=clash.id, actor=proposer)
            denied_id = clash.id
        elif clash is not None and clash.state == ProposalState.DISCARDED.value:
            conn.execute(
                proposals.update()
                .where(proposals.c.id == clash.id)
                .values(state=ProposalState.PROPOSED.value, description=description, updated_at=utcnow())
            )
            audit.proposal_created(
                conn,
                session,
                vault.id,
                safe_tx,
                proposal_id=clash.id,
                description=description,
                proposer=proposer,
                revived=True,
            )
            risk_gate.record(conn, session, vault, decision, proposal_id=clash.id, actor=proposer)
            clash = None
            revived = True
        else:
            revived = False
    if clash is not None and clash.state == ProposalState.DISCARDED.value:
        risk_gate.refuse_deny(decision, what="proposal", proposal_id=denied_id)
    if clash is not None:
        raise ProposalError(
            f"an identical proposal exists already (id {clash.id}, safeTxHash {digest})", proposal=clash.id
        )
    if revived:
        found = load_proposal(session, proposals.c.safe_tx_hash == digest)
        if found is None:
            raise UnknownProposal(f"the revived proposal {digest} is not in the workspace", proposal=digest)
        return found
    denied = decision.verdict is Verdict.DENY and not force
    with session.store.begin() as conn:
        now = utcnow()
        result = conn.execute(
            proposals.insert().values(
                vault_id=vault.id,
                chain_id=session.chain_id,
                safe=vault.safe,
                safe_tx_hash=digest,
                to=safe_tx.to,
                value=Decimal(safe_tx.value),
                data="0x" + data.hex(),
                operation=int(safe_tx.operation),
                safe_tx_gas=0,
                base_gas=0,
                gas_price=0,
                gas_token=ZERO_ADDRESS,
                refund_receiver=ZERO_ADDRESS,
                nonce=nonce,
                description=description,
                proposer=proposer,
                state=(ProposalState.DISCARDED if denied else ProposalState.PROPOSED).value,
                created_at=now,
                updated_at=now,
            )
        )
        proposal_id = inserted_id(result)
        audit.proposal_created(
            conn, session, vault.id, safe_tx, proposal_id=proposal_id, description=description, proposer=proposer
        )
        risk_gate.record(conn, session, vault, decision, proposal_id=proposal_id, actor=proposer)
        if denied:
            withdrawn = Proposal(
                proposal_id, vault.id, safe_tx, description, proposer, ProposalState.DISCARDED, (), None, None, None
            )
            audit.proposal_discarded(conn, session, withdrawn)
    if denied:
        risk_gate.refuse_deny(decision, what="proposal", proposal_id=proposal_id)
    return get_proposal(session, proposal_id)


def build_transfer(session: Session, *, to: str, amount: str, token: str | None) -> tuple[str, int, bytes, DecodedCall]:
    """(target, value, data, decoded) for an ETH or ERC-20 transfer of a human ``amount``."""
    recipient = parse_address(to, what="destination")
    if token is None:
        value = parse_amount(amount, 18, symbol="ETH")
        return recipient, value, b"", decode_safe_call(session.chain, recipient, value, b"", Operation.CALL)
    token_address = parse_address(token, what="token")
    info = token_info(session.chain, token_address)
    if info is None:
        raise InputError(f"token {token_address} is not an ERC-20 contract on chain {session.chain_id}")
    units = parse_amount(amount, info.decimals, symbol=info.symbol)
    data = TRANSFER_SELECTOR + encode(["address", "uint256"], [recipient, units])
    return token_address, 0, data, decode_safe_call(session.chain, token_address, 0, data, Operation.CALL)


def propose_transfer(
    session: Session,
    vault_ref: str | int,
    *,
    to: str,
    amount: str,
    token: str | None = None,
    nonce: int | None = None,
    description: str = "",
    proposer: str = "",
    force: bool = False,
) -> Proposal:
    target, value, data, decoded = build_transfer(session, to=to, amount=amount, token=token)
    return propose(
        session,
        vault_ref,
        to=target,
        value=value,
        data=data,
        nonce=nonce,
        description=description or decoded.summary,
        proposer=proposer,
        force=force,
    )


def discard(session: Session, proposal: Proposal) -> Proposal:
    """Withdraw a proposal that was never executed; its nonce becomes free again."""
    if proposal.state is not ProposalState.PROPOSED:
        raise ProposalError(f"proposal {proposal.id} is {proposal.state.value}; only open proposals can be discarded")
    set_state(
        session,
        proposal.id,
        ProposalState.DISCARDED,
        record=lambda conn: audit.proposal_discarded(conn, session, proposal),
    )
    return get_proposal(session, proposal.id)
