"""Timelocked operations of a vault: scheduled by a Safe proposal, executable by anyone after the delay.

Lifecycle (stored in ``timelock_ops``)::

    proposed ──(Safe executes scheduleBatch)──► scheduled ──(delay passes, executeBatch)──► executed
        │                                           │
        └──────────────(Safe executes cancel)───────┴──────────────────────────────────► cancelled
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from eth_utils import keccak
from sqlalchemy import Connection, RowMapping

from custody.audit import record as audit
from custody.exceptions import OperationAlreadyExecuted, ProposalError, TimelockNotReady, UnknownProposal
from custody.session import Session
from custody.store import timelock_ops, utcnow, vaults
from custody.types import Address
from custody.vault import journal, proposals

if TYPE_CHECKING:  # typing only: proposals and service import this module
    from custody.chain.transactions import Receipt
    from custody.vault.proposals import Proposal
    from custody.vault.service import VaultRecord

ZERO32 = "0x" + "00" * 32


class OpState(str, enum.Enum):
    PROPOSED = "proposed"
    SCHEDULED = "scheduled"
    EXECUTED = "executed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class ScheduledCall:
    target: Address
    value: int
    payload: bytes
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "value": str(self.value),
            "payload": "0x" + self.payload.hex(),
            "description": self.description,
        }


@dataclass(frozen=True)
class TimelockOp:
    op_id: str
    vault_id: int
    proposal_id: int
    cancel_proposal_id: int | None
    kind: str
    description: str
    calls: tuple[ScheduledCall, ...]
    salt: str
    delay: int
    state: OpState
    ready_at: int | None
    executed_tx: str | None
    new_guard: str | None
    policy_path: str | None
    policy_source: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "op_id": self.op_id,
            "vault_id": self.vault_id,
            "proposal_id": self.proposal_id,
            "cancel_proposal_id": self.cancel_proposal_id,
            "kind": self.kind,
            "description": self.description,
            "calls": [c.as_dict() for c in self.calls],
            "delay": self.delay,
            "state": self.state.value,
            "ready_at": self.ready_at,
            "ready_at_utc": None
            if self.ready_at is None
            else dt.datetime.fromtimestamp(self.ready_at, dt.UTC).isoformat(),
            "executed_tx": self.executed_tx,
            "new_guard": self.new_guard,
            "policy_path": self.policy_path,
        }


def _row(row: RowMapping) -> TimelockOp:
    calls = tuple(
        ScheduledCall(c["target"], int(c["value"]), bytes.fromhex(c["payload"][2:]), c["description"])
        for c in json.loads(row["calls"])
    )
    return TimelockOp(
        op_id=row["op_id"],
        vault_id=row["vault_id"],
        proposal_id=row["proposal_id"],
        cancel_proposal_id=row["cancel_proposal_id"],
        kind=row["kind"],
        description=row["description"],
        calls=calls,
        salt=row["salt"],
        delay=row["delay"],
        state=OpState(row["state"]),
        ready_at=row["ready_at"],
        executed_tx=row["executed_tx"],
        new_guard=row["new_guard"],
        policy_path=row["policy_path"],
        policy_source=row["policy_source"],
    )


def batch_args(calls: tuple[ScheduledCall, ...] | list[ScheduledCall], salt: str) -> tuple[Any, ...]:
    return (
        [c.target for c in calls],
        [c.value for c in calls],
        [c.payload for c in calls],
        bytes.fromhex(ZERO32[2:]),
        bytes.fromhex(salt[2:]),
    )


def salt_for(*parts: bytes) -> str:
    return "0x" + keccak(b"".join(parts)).hex()


def record(
    session: Session,
    *,
    op_id: str,
    vault_id: int,
    proposal_id: int,
    kind: str,
    description: str,
    calls: list[ScheduledCall],
    salt: str,
    delay: int,
    new_guard: str | None = None,
    policy_path: str | None = None,
    policy_source: str | None = None,
) -> TimelockOp:
    now = utcnow()
    with session.store.begin() as conn:
        conn.execute(
            timelock_ops.insert().values(
                op_id=op_id,
                chain_id=session.chain_id,
                vault_id=vault_id,
                proposal_id=proposal_id,
                kind=kind,
                description=description,
                calls=json.dumps([c.as_dict() for c in calls]),
                predecessor=ZERO32,
                salt=salt,
                delay=delay,
                new_guard=new_guard,
                policy_path=policy_path,
                policy_source=policy_source,
                state=OpState.PROPOSED.value,
                created_at=now,
                updated_at=now,
            )
        )
        audit.timelock_op(conn, session, _op_in(conn, op_id), "proposed")
    return get_op(session, op_id)


def get_op(session: Session, op_id: str) -> TimelockOp:
    text = op_id.strip().lower()
    with session.store.connect() as conn:
        rows = (
            conn.execute(
                sa.select(timelock_ops).where(
                    timelock_ops.c.chain_id == session.chain_id, timelock_ops.c.op_id.like(text + "%")
                )
            )
            .mappings()
            .all()
        )
    if len(rows) != 1:
        raise UnknownProposal(
            f"no timelock operation {op_id} on chain {session.chain_id}"
            if not rows
            else f"{op_id} matches {len(rows)} operations"
        )
    return _row(rows[0])


def list_ops(session: Session, vault_id: int | None = None) -> list[TimelockOp]:
    query = (
        sa.select(timelock_ops).where(timelock_ops.c.chain_id == session.chain_id).order_by(timelock_ops.c.created_at)
    )
    if vault_id is not None:
        query = query.where(timelock_ops.c.vault_id == vault_id)
    with session.store.connect() as conn:
        return [_row(r) for r in conn.execute(query).mappings()]


def op_for_proposal(session: Session, proposal_id: int) -> TimelockOp | None:
    with session.store.connect() as conn:
        row = (
            conn.execute(
                sa.select(timelock_ops).where(
                    sa.or_(timelock_ops.c.proposal_id == proposal_id, timelock_ops.c.cancel_proposal_id == proposal_id)
                )
            )
            .mappings()
            .first()
        )
    return None if row is None else _row(row)


def _op_in(conn: Connection, op_id: str) -> TimelockOp:
    return _row(conn.execute(sa.select(timelock_ops).where(timelock_ops.c.op_id == op_id)).mappings().one())


def _update(session: Session, op_id: str, *, audit_state: dict[str, Any] | None = None, **values: Any) -> None:
    """Update an operation; ``audit_state`` (state, tx hash, …) records the move in the same transaction."""
    with session.store.begin() as conn:
        conn.execute(timelock_ops.update().where(timelock_ops.c.op_id == op_id).values(updated_at=utcnow(), **values))
        if audit_state is not None:
            audit.timelock_op(conn, session, _op_in(conn, op_id), **audit_state)


def _timelock(session: Session, vault_id: int) -> Any:
    with session.store.connect() as conn:
        address = conn.execute(sa.select(vaults.c.timelock).where(vaults.c.id == vault_id)).scalar_one()
    return session.contract("VaultTimelock", address)


def after_proposal_executed(session: Session, proposal_id: int, *, receipt: Receipt | None = None) -> None:
    """Bring the operation a just-executed proposal scheduled (or cancelled) up to date."""
    op = op_for_proposal(session, proposal_id)
    if op is None:
        return
    lock = _timelock(session, op.vault_id)
    op_bytes = bytes.fromhex(op.op_id[2:])
    tx = {} if receipt is None else {"tx_hash": receipt.tx_hash, "block": receipt.block_number}
    if op.cancel_proposal_id == proposal_id:
        _update(session, op.op_id, state=OpState.CANCELLED.value, audit_state={"state": "cancelled", **tx})
    elif op.proposal_id == proposal_id:
        ready_at = int(session.chain.call(lock.functions.getTimestamp(op_bytes).call))
        _update(
            session,
            op.op_id,
            state=OpState.SCHEDULED.value,
            ready_at=ready_at,
            audit_state={"state": "scheduled", "ready_at": ready_at, **tx},
        )


def complete(session: Session, op: TimelockOp, *, on_done: Callable[[TimelockOp], None] | None = None) -> Receipt:
    """Execute a scheduled operation once its delay has passed (anyone may; the sender pays gas).

    Journaled (:mod:`custody.vault.journal`): after an interruption, calling it again re-sends the same
    signed ``executeBatch`` (or adopts its receipt) and then records the operation as executed.
    """

    lock = _timelock(session, op.vault_id)
    op_bytes = bytes.fromhex(op.op_id[2:])
    intent, what = f"timelock-execute:{op.op_id}", f"executing timelock operation {op.op_id[:18]}…"
    if op.state is not OpState.EXECUTED:
        resumed = journal.resume_intent(session, intent, what=what, adopt_mined=True)
        if resumed is not None:
            _update(
                session,
                op.op_id,
                state=OpState.EXECUTED.value,
                executed_tx=resumed.tx_hash,
                audit_state={"state": "executed", "tx_hash": resumed.tx_hash, "block": resumed.block_number},
            )
            if on_done is not None:
                on_done(op)
            return resumed
    if op.state is OpState.EXECUTED:
        raise OperationAlreadyExecuted(
            f"timelock operation {op.op_id[:18]}… was executed already in {op.executed_tx}; nothing was sent",
            state="executed",
            what="timelock_operation",
            tx_hash=op.executed_tx,
            operation=op.op_id,
        )
    if op.state is OpState.CANCELLED:
        raise TimelockNotReady(f"timelock operation {op.op_id[:18]}… was cancelled")
    f = lock.functions
    if session.chain.call(f.isOperationDone(op_bytes).call):
        _update(session, op.op_id, state=OpState.EXECUTED.value, audit_state={"state": "executed"})
        raise OperationAlreadyExecuted(
            f"timelock operation {op.op_id[:18]}… was executed already (by someone else); nothing was sent",
            state="executed",
            what="timelock_operation",
            tx_hash=None,
            operation=op.op_id,
        )
    if not session.chain.call(f.isOperationPending(op_bytes).call):
        if op.state is OpState.SCHEDULED:
            _update(session, op.op_id, state=OpState.CANCELLED.value, audit_state={"state": "cancelled"})
            raise TimelockNotReady(f"timelock operation {op.op_id[:18]}… is no longer pending (cancelled)")
        raise TimelockNotReady(
            f"timelock operation {op.op_id[:18]}… is not scheduled yet: sign and execute proposal {op.proposal_id} first"
        )
    ready_at = int(session.chain.call(f.getTimestamp(op_bytes).call))
    now = session.chain.latest_timestamp()
    if not session.chain.call(f.isOperationReady(op_bytes).call):
        when = dt.datetime.fromtimestamp(ready_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise TimelockNotReady(
            f"timelock operation {op.op_id[:18]}… becomes executable at {when} (in {max(ready_at - now, 0)} s)",
            ready_at=ready_at,
        )
    data = bytes.fromhex(lock.encode_abi("executeBatch", list(batch_args(op.calls, op.salt)))[2:])
    receipt = journal.send_once(session, intent, to=lock.address, data=data, what=what)
    _update(
        session,
        op.op_id,
        state=OpState.EXECUTED.value,
        executed_tx=receipt.tx_hash,
        audit_state={"state": "executed", "tx_hash": receipt.tx_hash, "block": receipt.block_number},
    )
    if on_done is not None:
        on_done(op)
    return receipt


def schedule(
    session: Session,
    vault: VaultRecord,
    calls: list[ScheduledCall],
    *,
    kind: str,
    description: str,
    salt_seed: bytes,
    proposer: str = "",
    new_guard: str | None = None,
    policy_path: str | None = None,
    policy_source: str | None = None,
    force: bool = False,
) -> tuple[Proposal, TimelockOp]:
    """Propose the Safe transaction that schedules ``calls`` as one batch on the vault's timelock.

    Returns (proposal, operation). The owners sign and execute the proposal; after the delay
    ``custody tx execute`` on the same proposal completes the operation. ``force`` records it even when
    the vault's guard would refuse it (drills: let the chain judge).
    """

    require_no_pending(session, vault.id)
    lock = session.contract("VaultTimelock", vault.timelock)
    delay = int(session.chain.call(lock.functions.getMinDelay().call))
    nonce = proposals.safe_nonce(session, vault.safe)
    salt = salt_for(salt_seed, nonce.to_bytes(32, "big"), bytes.fromhex(vault.safe[2:]))
    args = batch_args(calls, salt)
    op_id = "0x" + bytes(session.chain.call(lock.functions.hashOperationBatch(*args).call)).hex()
    data = bytes.fromhex(lock.encode_abi("scheduleBatch", [*args, delay])[2:])
    proposal = proposals.propose(
        session,
        vault.id,
        to=vault.timelock,
        data=data,
        description=f"schedule {kind.replace('_', ' ')} ({len(calls)} call(s), {delay}s delay): {description}"[:500],
        proposer=proposer,
        force=force,
    )
    op = record(
        session,
        op_id=op_id,
        vault_id=vault.id,
        proposal_id=proposal.id,
        kind=kind,
        description=description,
        calls=calls,
        salt=salt,
        delay=delay,
        new_guard=new_guard,
        policy_path=policy_path,
        policy_source=policy_source,
    )
    return proposal, op


def require_no_pending(session: Session, vault_id: int) -> None:
    pending = [o for o in list_ops(session, vault_id) if o.state in (OpState.PROPOSED, OpState.SCHEDULED)]
    if pending:
        raise ProposalError(
            f"vault has a pending timelock operation {pending[0].op_id[:18]}… ({pending[0].state.value}); "
            "execute or cancel it first",
            op=pending[0].op_id,
        )
