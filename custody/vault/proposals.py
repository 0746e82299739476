"""Transfer proposals: propose → sign (one owner per CLI call, any backend) → execute.

A proposal is a :class:`SafeTx` stored in the workspace with the owner signatures collected for it.
Before anything is signed or sent, the locally computed safeTxHash is checked against the Safe's own
``getTransactionHash``; signatures are verified, low-s normalised and de-duplicated per owner.
Execution is refused (and nothing is broadcast) when fewer valid owner signatures than the threshold
exist.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from custody import events
from custody.audit import record as audit
from custody.chain.transactions import Receipt, send_raw, wait_for_receipt
from custody.contracts.deploy import read_many
from custody.contracts.errors import decode_revert
from custody.exceptions import (
    AlreadyExecuted,
    HashMismatch,
    InputError,
    NonceConsumed,
    NotAnOwner,
    NotEnoughSignatures,
    PolicyViolation,
    ProposalError,
    SignatureError,
    StaleProposal,
    TransactionFailed,
    UnknownProposal,
)
from custody.policy.onchain import preflight
from custody.risk import gate as risk_gate
from custody.risk.verdict import Decision, Verdict
from custody.safe.mismatch import explain_mismatch
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import OwnerSignature, pack_signatures, verify_owner_signature
from custody.session import Session
from custody.signers.base import Signer
from custody.store import inserted_id, proposals, signatures, utcnow
from custody.types import ZERO_ADDRESS, Address, Operation, parse_address, parse_amount
from custody.vault.clear import gas_refund_risk, risk_kinds
from custody.vault.decode import DecodedCall, decode_safe_call, token_info
from custody.vault.oob import confirmations, oob_view, require_confirmation
from custody.vault.service import VaultRecord, get_vault

TRANSFER_SELECTOR = function_signature_to_4byte_selector("transfer(address,uint256)")


class ProposalState(str, enum.Enum):
    PROPOSED = "proposed"
    EXECUTING = "executing"  # execTransaction signed and handed to the node; receipt pending
    EXECUTED = "executed"
    FAILED = "failed"
    DISCARDED = "discarded"  # withdrawn before execution; its nonce is free again


@dataclass(frozen=True)
class Proposal:
    id: int
    vault_id: int
    safe_tx: SafeTx
    description: str
    proposer: str
    state: ProposalState
    signatures: tuple[OwnerSignature, ...]
    exec_tx_hash: str | None
    exec_block: int | None
    exec_gas_used: int | None

    @property
    def safe_tx_hash(self) -> str:
        return "0x" + self.safe_tx.safe_tx_hash.hex()


# -- storage -----------------------------------------------------------------------------------
def _load(session: Session, where: sa.ColumnElement[bool]) -> Proposal | None:
    with session.store.connect() as conn:
        row = conn.execute(sa.select(proposals).where(where)).mappings().first()
        if row is None:
            return None
        sigs = conn.execute(
            sa.select(signatures).where(signatures.c.proposal_id == row["id"]).order_by(signatures.c.signer)
        ).mappings()
        owner_sigs = tuple(OwnerSignature(s["signer"], bytes.fromhex(s["signature"][2:])) for s in sigs)
    safe_tx = SafeTx(
        safe=row["safe"],
        chain_id=row["chain_id"],
        to=row["to"],
        value=int(row["value"]),
        data=bytes.fromhex(row["data"][2:]),
        operation=Operation(row["operation"]),
        nonce=row["nonce"],
        safe_tx_gas=int(row["safe_tx_gas"]),
        base_gas=int(row["base_gas"]),
        gas_price=int(row["gas_price"]),
        gas_token=row["gas_token"],
        refund_receiver=row["refund_receiver"],
    )
    if "0x" + safe_tx.safe_tx_hash.hex() != row["safe_tx_hash"]:
        raise HashMismatch(
            f"stored proposal {row['id']} does not hash to its recorded safeTxHash; the workspace was altered",
            proposal=row["id"],
        )
    return Proposal(
        id=row["id"],
        vault_id=row["vault_id"],
        safe_tx=safe_tx,
        description=row["description"],
        proposer=row["proposer"],
        state=ProposalState(row["state"]),
        signatures=owner_sigs,
        exec_tx_hash=row["exec_tx_hash"],
        exec_block=row["exec_block"],
        exec_gas_used=row["exec_gas_used"],
    )


def get_proposal(session: Session, ref: str | int) -> Proposal:
    """A proposal by id or by safeTxHash (a unique prefix of at least 10 characters works)."""
    text = str(ref).strip()
    if text.isdigit():
        found = _load(session, proposals.c.id == int(text))
    elif text.lower().startswith("0x") and len(text) >= 10:
        with session.store.connect() as conn:
            ids = (
                conn.execute(sa.select(proposals.c.id).where(proposals.c.safe_tx_hash.like(text.lower() + "%")))
                .scalars()
                .all()
            )
        if len(ids) > 1:
            raise UnknownProposal(f"safeTxHash prefix {text} matches {len(ids)} proposals; give more digits")
        found = _load(session, proposals.c.id == ids[0]) if ids else None
    elif text.lower().startswith("0x") and all(c in "0123456789abcdef" for c in text[2:].lower()):
        raise UnknownProposal(f"safeTxHash prefix {text} is too short: give at least 8 hex digits after 0x")
    elif text and all(c in "0123456789abcdef" for c in text.lower()):
        raise UnknownProposal(
            f"{text!r} is not a proposal id (those are decimal) and a safeTxHash prefix starts with 0x: "
            f"write 0x{text}" + ("" if len(text) >= 8 else " with at least 8 hex digits")
        )
    else:
        raise UnknownProposal(f"{text!r} is neither a proposal id nor a safeTxHash")
    if found is None or found.safe_tx.chain_id != session.chain_id:
        raise UnknownProposal(f"no proposal {text} on chain {session.chain_id} in this workspace", proposal=text)
    return found


def list_proposals(session: Session, vault: VaultRecord | None = None) -> list[Proposal]:
    query = sa.select(proposals.c.id).where(proposals.c.chain_id == session.chain_id).order_by(proposals.c.id)
    if vault is not None:
        query = query.where(proposals.c.vault_id == vault.id)
    with session.store.connect() as conn:
        ids = conn.execute(query).scalars().all()
    return [p for p in (_load(session, proposals.c.id == i) for i in ids) if p is not None]


def _set_state(
    session: Session,
    proposal_id: int,
    state: ProposalState,
    *,
    record: Callable[[sa.Connection], object] | None = None,
    **values: Any,
) -> None:
    """Move a proposal to ``state``; ``record(conn)`` writes its audit entry in the same transaction."""
    with session.store.begin() as conn:
        conn.execute(
            proposals.update()
            .where(proposals.c.id == proposal_id)
            .values(state=state.value, updated_at=utcnow(), **values)
        )
        if record is not None:
            record(conn)


# -- chain reads -------------------------------------------------------------------------------
def _safe(session: Session, address: str) -> Any:
    return session.contract("SafeL2", address)


def _hash_call(session: Session, safe_tx: SafeTx) -> Any:
    args = safe_tx.exec_args(b"")[:9] + (safe_tx.nonce,)
    return _safe(session, safe_tx.safe).functions.getTransactionHash(*args)


def onchain_hash(session: Session, safe_tx: SafeTx) -> bytes:
    return bytes(session.chain.call(_hash_call(session, safe_tx).call))


@dataclass(frozen=True)
class SafeView:
    """One consistent read of what every approval/execution check needs (one RPC batch)."""

    nonce: int
    owners: list[Address]
    threshold: int
    onchain_hash: bytes


def safe_view(session: Session, safe_tx: SafeTx) -> SafeView:
    safe = _safe(session, safe_tx.safe)
    block = session.chain.call(lambda: session.chain.w3.eth.block_number)
    nonce, owners, threshold, digest = read_many(
        session.chain,
        [
            safe.functions.nonce(),
            safe.functions.getOwners(),
            safe.functions.getThreshold(),
            _hash_call(session, safe_tx),
        ],
        block,
    )
    return SafeView(int(nonce), [Address(to_checksum_address(o)) for o in owners], int(threshold), bytes(digest))


def _check_hash(safe_tx: SafeTx, remote: bytes) -> None:
    if remote != safe_tx.safe_tx_hash:
        raise HashMismatch(
            f"local safeTxHash 0x{safe_tx.safe_tx_hash.hex()} differs from the Safe's 0x{remote.hex()}; refusing to continue",
            local="0x" + safe_tx.safe_tx_hash.hex(),
            onchain="0x" + remote.hex(),
        )


def verify_hash(session: Session, safe_tx: SafeTx) -> bytes:
    """Check the local safeTxHash against the Safe's ``getTransactionHash``; returns it."""
    remote = onchain_hash(session, safe_tx)
    _check_hash(safe_tx, remote)
    return remote


def safe_nonce(session: Session, safe: str) -> int:
    return int(session.chain.call(_safe(session, safe).functions.nonce().call))


def owners_and_threshold(session: Session, safe: str) -> tuple[list[Address], int]:
    contract = _safe(session, safe)
    owners = session.chain.call(contract.functions.getOwners().call)
    threshold = session.chain.call(contract.functions.getThreshold().call)
    return list(owners), int(threshold)


# -- propose -----------------------------------------------------------------------------------
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
    decision = _risk(
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
        found = _load(session, proposals.c.safe_tx_hash == digest)
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


def _open_nonces(session: Session, vault_id: int, *, exclude: int | None) -> list[int]:
    """Nonces of the vault's other open proposals (the firewall's nonce gap / duplicate rules)."""
    query = sa.select(proposals.c.nonce).where(
        proposals.c.vault_id == vault_id,
        proposals.c.state.in_([ProposalState.PROPOSED.value, ProposalState.EXECUTING.value]),
    )
    if exclude is not None:
        query = query.where(proposals.c.id != exclude)
    with session.store.connect() as conn:
        return list(conn.execute(query).scalars())


def _risk(
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
        queued_nonces=_open_nonces(session, vault.id, exclude=None if proposal is None else proposal.id),
        proposer=proposal.proposer if proposal is not None else proposer,
        signer=signer,
        backend=backend,
        supplied_hash=None if proposal is None else bytes.fromhex(proposal.safe_tx_hash[2:]),
        onchain_hash=onchain,
    )


def _gate(
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
    decision = _risk(
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


def require_policy(session: Session, safe_tx: SafeTx, *, what: str) -> None:
    """Raise :class:`PolicyViolation` when the vault's guard would reject ``safe_tx`` now.

    ``what`` is "proposal" (nothing gets recorded) or "execution" (nothing gets sent).
    """

    verdict = preflight(
        session, safe_tx.safe, to=safe_tx.to, value=safe_tx.value, data=safe_tx.data, operation=safe_tx.operation
    )
    if not verdict.allowed:
        raise PolicyViolation(
            f"the vault's policy rejects this {what}: {verdict.message} (rule {verdict.rule}, {verdict.error}); "
            + ("nothing was recorded" if what == "proposal" else "nothing was sent"),
            hint="use --force to record it anyway (drills); the chain will still reject it",
            verdict=verdict.as_dict(),
        )


def _nonces(session: Session, vault_id: int, nonces: range) -> dict[str, dict[int, list[int]]]:
    """Proposal ids by state and nonce, for the vault's proposals with a nonce in ``nonces``."""
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(proposals.c.id, proposals.c.nonce, proposals.c.state)
            .where(proposals.c.vault_id == vault_id, proposals.c.nonce >= nonces.start, proposals.c.nonce < nonces.stop)
            .order_by(proposals.c.id)
        ).all()
    found: dict[str, dict[int, list[int]]] = {}
    for row in rows:
        found.setdefault(row.state, {}).setdefault(int(row.nonce), []).append(int(row.id))
    return found


def _nonce_gap(session: Session, proposal: Proposal, current: int) -> ProposalError:
    """Why a proposal cannot execute yet: the open proposals that must go first, and the nonces no open proposal
    holds (say, after a discard) — never a proposal that does not exist."""
    gap = range(current, proposal.safe_tx.nonce)
    found = _nonces(session, proposal.vault_id, gap)
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


def waiting_behind(session: Session, proposal: Proposal) -> list[Proposal]:
    """The vault's open proposals with a higher nonce than ``proposal`` (after a discard, they wait for its nonce)."""
    with session.store.connect() as conn:
        ids = (
            conn.execute(
                sa.select(proposals.c.id)
                .where(
                    proposals.c.vault_id == proposal.vault_id,
                    proposals.c.nonce > proposal.safe_tx.nonce,
                    proposals.c.state.in_([ProposalState.PROPOSED.value, ProposalState.EXECUTING.value]),
                )
                .order_by(proposals.c.nonce, proposals.c.id)
            )
            .scalars()
            .all()
        )
    return [p for p in (_load(session, proposals.c.id == i) for i in ids) if p is not None]


def discard(session: Session, proposal: Proposal) -> Proposal:
    """Withdraw a proposal that was never executed; its nonce becomes free again."""
    if proposal.state is not ProposalState.PROPOSED:
        raise ProposalError(f"proposal {proposal.id} is {proposal.state.value}; only open proposals can be discarded")
    _set_state(
        session,
        proposal.id,
        ProposalState.DISCARDED,
        record=lambda conn: audit.proposal_discarded(conn, session, proposal),
    )
    return get_proposal(session, proposal.id)


# -- sign --------------------------------------------------------------------------------------
def _require_open(
    session: Session, proposal: Proposal, view: SafeView | None = None, *, outcome: str = "nothing was signed"
) -> SafeView:
    """Refuse executed/stale proposals and hash mismatches; returns the chain view it checked."""
    if proposal.state in (ProposalState.EXECUTED, ProposalState.EXECUTING):
        raise _already_executed(proposal, outcome=outcome)
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
            raise _already_executed(latest, meanwhile=True, outcome=outcome)
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
    _check_hash(proposal.safe_tx, view.onchain_hash)
    return view


def _already_executed(
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


EXECUTION_SUCCESS = "0x" + keccak(text="ExecutionSuccess(bytes32,uint256)").hex()


def onchain_execution(session: Session, proposal: Proposal) -> tuple[str, int] | None:
    """(tx hash, block) of the Safe's ``ExecutionSuccess`` for this proposal's safeTxHash, if the chain has one."""
    vault = get_vault(session, proposal.vault_id)
    logs = session.chain.rpc(
        "eth_getLogs",
        [
            {
                "address": proposal.safe_tx.safe,
                "fromBlock": hex(vault.created_block or 0),
                "toBlock": "latest",
                "topics": [EXECUTION_SUCCESS, proposal.safe_tx_hash],
            }
        ],
    )
    if not logs:
        return None
    return str(logs[0]["transactionHash"]), int(logs[0]["blockNumber"], 16)


def _store_signature(
    session: Session, proposal: Proposal, signature: OwnerSignature, source: str
) -> tuple[OwnerSignature, bool]:
    with session.store.begin() as conn:
        existing = conn.execute(
            sa.select(signatures.c.signature).where(
                signatures.c.proposal_id == proposal.id, signatures.c.signer == signature.signer
            )
        ).scalar()
        if existing is not None:
            return OwnerSignature(signature.signer, bytes.fromhex(existing[2:])), False
        conn.execute(
            signatures.insert().values(
                proposal_id=proposal.id,
                signer=signature.signer,
                signature=signature.to_hex(),
                source=source[:32],
                created_at=utcnow(),
            )
        )
        audit.approval_signed(conn, session, proposal, signature.signer, source, signature.kind)
    events.publish(events.ApprovalSigned(session, proposal.safe_tx.safe, proposal.safe_tx_hash, signature.signer))
    return signature, True


def add_signature(
    session: Session,
    proposal: Proposal,
    blob: bytes,
    *,
    source: str,
    on_decision: Callable[[Decision], None] | None = None,
) -> tuple[OwnerSignature, bool]:
    """Verify a signature blob for the proposal and store it; returns (signature, newly_added).

    The risk engine decides first (stage ``sign``, backend ``offline``); a Deny stores nothing."""
    view = _require_open(session, proposal)
    signature = verify_owner_signature(blob, proposal.safe_tx.safe_tx_hash)
    if signature.signer not in view.owners:
        raise NotAnOwner(
            explain_mismatch(blob, proposal.safe_tx, view.owners, signature.signer), signer=signature.signer
        )
    _gate(
        session, proposal, stage="sign", view=view, signer=signature.signer, backend="offline", on_decision=on_decision
    )
    return _store_signature(session, proposal, signature, source)


def sign(
    session: Session, proposal: Proposal, signer: Signer, *, on_decision: Callable[[Decision], None] | None = None
) -> tuple[OwnerSignature, bool]:
    """Have ``signer`` approve the proposal (it must be an owner); stored once per owner.

    The risk engine decides before the signer is asked: on a Deny no backend ever sees the transaction."""
    view = _require_open(session, proposal)
    if signer.address not in view.owners:
        raise NotAnOwner(
            f"{signer.uri} ({signer.address}) is not an owner of vault {proposal.safe_tx.safe}", signer=signer.address
        )
    _gate(
        session,
        proposal,
        stage="sign",
        view=view,
        signer=signer.address,
        backend=signer.uri.split(":", 1)[0],
        on_decision=on_decision,
    )
    blob = signer.sign_safe_tx(proposal.safe_tx)
    signature = verify_owner_signature(blob, proposal.safe_tx.safe_tx_hash)
    if signature.signer != signer.address:
        raise SignatureError(f"{signer.uri} returned a signature from {signature.signer}, expected {signer.address}")
    return _store_signature(session, proposal, signature, signer.uri.split(":", 1)[0])


# -- execute -----------------------------------------------------------------------------------
def valid_signatures(
    session: Session, proposal: Proposal, view: SafeView | None = None
) -> tuple[list[OwnerSignature], list[Address], int]:
    """Re-verify stored signatures against the current owners; (valid, owners, threshold)."""
    if view is None:
        owners, threshold = owners_and_threshold(session, proposal.safe_tx.safe)
    else:
        owners, threshold = view.owners, view.threshold
    valid: dict[str, OwnerSignature] = {}
    for stored in proposal.signatures:
        checked = verify_owner_signature(stored.signature, proposal.safe_tx.safe_tx_hash)
        if checked.signer == stored.signer and checked.signer in owners:
            valid[checked.signer] = checked
    return list(valid.values()), owners, threshold


def exec_calldata(session: Session, safe_tx: SafeTx, packed: bytes) -> bytes:
    safe = _safe(session, safe_tx.safe)
    return bytes.fromhex(safe.encode_abi("execTransaction", list(safe_tx.exec_args(packed)))[2:])


def execute(session: Session, proposal: Proposal, *, force: bool = False) -> Receipt:
    """Execute with the collected signatures; refuses before sending anything if they do not suffice.

    Journaled: the signed ``execTransaction`` bytes are recorded before broadcast, so an interrupted
    execution resumes by re-sending exactly those bytes (never a second, different transaction).
    """
    if proposal.state is ProposalState.EXECUTED:
        raise _already_executed(proposal)
    if proposal.state is ProposalState.EXECUTING and proposal.exec_tx_hash:
        return _resume(session, proposal, force=force)
    view = _require_open(session, proposal, outcome="nothing was sent")
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
    decision = _gate(session, proposal, stage="execute", view=view)
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
        return _already_executed(latest, meanwhile=True)
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
            _set_state(session, proposal.id, ProposalState.PROPOSED, exec_tx_hash=None, exec_raw_tx=None)
            return execute(session, get_proposal(session, proposal.id), force=force)
    try:
        receipt = wait_for_receipt(session.chain, proposal.exec_tx_hash, what=what, decoder=decode_revert)
    except TransactionFailed:
        _set_state(session, proposal.id, ProposalState.PROPOSED, exec_tx_hash=None, exec_raw_tx=None)
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

    safe = _safe(session, proposal.safe_tx.safe)
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


# -- clear-signing view --------------------------------------------------------------------------
def describe(session: Session, proposal: Proposal) -> dict[str, Any]:
    """Everything a signer must see, with hashes recomputed locally and checked against the chain."""
    safe_tx = proposal.safe_tx
    decoded = decode_safe_call(
        session.chain, safe_tx.to, safe_tx.value, safe_tx.data, safe_tx.operation, safe=safe_tx.safe
    )
    remote = onchain_hash(session, safe_tx) if proposal.state is not ProposalState.EXECUTED else None
    valid, owners, threshold = valid_signatures(session, proposal)
    valid_signers = {s.signer for s in valid}
    return {
        "id": proposal.id,
        "vault_id": proposal.vault_id,
        "state": proposal.state.value,
        "description": proposal.description,
        "chain_id": safe_tx.chain_id,
        "safe": safe_tx.safe,
        "to": safe_tx.to,
        "value": str(safe_tx.value),
        "data": "0x" + safe_tx.data.hex(),
        "operation": safe_tx.operation.name,
        "nonce": safe_tx.nonce,
        "safe_tx_gas": str(safe_tx.safe_tx_gas),
        "base_gas": str(safe_tx.base_gas),
        "gas_price": str(safe_tx.gas_price),
        "gas_token": safe_tx.gas_token,
        "refund_receiver": safe_tx.refund_receiver,
        "decoded": decoded.as_dict(),
        "risk_kinds": risk_kinds(safe_tx, decoded),
        "risks": [*decoded.risks, *filter(None, [gas_refund_risk(safe_tx)])],
        "domain_hash": "0x" + safe_tx.domain_separator.hex(),
        "message_hash": "0x" + safe_tx.message_hash.hex(),
        "safe_tx_hash": proposal.safe_tx_hash,
        "onchain_safe_tx_hash": None if remote is None else "0x" + remote.hex(),
        "hash_matches_chain": None if remote is None else remote == safe_tx.safe_tx_hash,
        "threshold": threshold,
        "owners": owners,
        "signatures": [
            {"signer": s.signer, "kind": s.kind, "valid": s.signer in valid_signers, "signature": s.to_hex()}
            for s in proposal.signatures
        ],
        "exec_tx_hash": proposal.exec_tx_hash,
        "exec_block": proposal.exec_block,
        "exec_gas_used": proposal.exec_gas_used,
        "proposer": proposal.proposer,
        "out_of_band": oob_view(session, proposal),
        "risk": risk_view(session, proposal),
    }


def score_risk(session: Session, proposal: Proposal) -> Decision:
    """A fresh, recorded risk decision (stage ``score``) for an open proposal; refuses nothing."""
    view = _require_open(session, proposal, outcome="nothing was scored")
    vault = get_vault(session, proposal.vault_id)
    decision = _risk(session, vault, proposal.safe_tx, stage="score", proposal=proposal, view=view)
    with session.store.begin() as conn:
        risk_gate.record(conn, session, vault, decision, proposal_id=proposal.id, actor=proposal.proposer)
    return decision


def risk_view(session: Session, proposal: Proposal) -> dict[str, Any] | None:
    """The latest recorded risk decision about the proposal (``tx show``; ``risk explain`` has them all)."""
    recorded = risk_gate.decisions(session, proposal.safe_tx_hash)
    if not recorded:
        return None
    latest = recorded[-1]
    return {
        "verdict": latest["verdict"],
        "stage": latest["stage"],
        "seq": latest["seq"],
        "reasons": [r for r in latest["reasons"] if r["severity"] != "info"],
        "decisions": len(recorded),
    }
