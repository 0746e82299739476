"""Emergency exit through a vault's ExitModule: collect initiator signatures, initiate, cancel, finalize.

Initiators (the policy's council, or the Safe's owners) sign an EIP-712 ``ExitRequest`` — any signer
backend, HSMs and hardware wallets included; signatures are collected across calls like proposal
approvals. Anyone may submit the quorum on-chain (``initiate``) and, after the escrow delay, anyone
may ``finalize``: the vault's ETH and listed tokens go to the pre-approved custodian. The Safe (a
proposal), its timelock, or — where the policy allows — any owner can cancel in between.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address
from sqlalchemy import Connection, RowMapping

from custody.audit import record as audit
from custody.chain.transactions import Receipt, send_transaction
from custody.contracts.errors import decode_revert
from custody.exceptions import SignatureError, SignerError, VaultError
from custody.session import Session
from custody.signers.base import Signer, typed_data_digest
from custody.signers.ecdsa import EcdsaSignature
from custody.store import exit_requests, exit_signatures, inserted_id, utcnow
from custody.types import Address, parse_address
from custody.vault import journal
from custody.vault.service import VaultRecord, get_vault

EIP712_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "ExitRequest": [
        {"name": "vault", "type": "address"},
        {"name": "custodian", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


class ExitState(str, enum.Enum):
    COLLECTING = "collecting"
    INITIATED = "initiated"
    CANCELLED = "cancelled"
    FINALIZED = "finalized"


@dataclass(frozen=True)
class ExitStatus:
    """The module's on-chain configuration and state."""

    module: Address
    custodians: list[Address]
    initiators: list[Address]  # empty: the Safe's owners
    quorum: int
    escrow_delay: int
    owners_can_cancel: bool
    tokens: list[Address]
    nonce: int
    pending: bool
    pending_custodian: Address | None
    ready_at: int | None

    def as_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, list) else list(v)) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ExitRequest:
    id: int
    vault_id: int
    module: Address
    nonce: int
    custodian: Address
    deadline: int
    digest: str
    state: ExitState
    signatures: tuple[tuple[Address, bytes], ...]
    initiate_tx: str | None
    finalize_tx: str | None

    def typed_data(self, chain_id: int, safe: str) -> dict[str, Any]:
        return typed_data(chain_id, self.module, safe, self.custodian, self.nonce, self.deadline)


def typed_data(chain_id: int, module: str, safe: str, custodian: str, nonce: int, deadline: int) -> dict[str, Any]:
    return {
        "types": EIP712_TYPES,
        "primaryType": "ExitRequest",
        "domain": {"name": "CustodyExitModule", "version": "1", "chainId": chain_id, "verifyingContract": module},
        "message": {"vault": safe, "custodian": custodian, "nonce": nonce, "deadline": deadline},
    }


def _module_address(vault: VaultRecord) -> Address:
    if not vault.exit_module:
        raise VaultError(f"vault {vault.name} has no exit module (its template has no `exit:` section)")
    return vault.exit_module


def _module(session: Session, vault: VaultRecord) -> Any:
    return session.contract("ExitModule", _module_address(vault))


def status(session: Session, vault_ref: str | int) -> ExitStatus:
    vault = get_vault(session, vault_ref)
    module = _module(session, vault)
    f = module.functions
    cfg = session.chain.call(f.config().call)
    nonce, state, custodian, ready = (
        session.chain.call(f.nonce().call),
        session.chain.call(f.state().call),
        session.chain.call(f.pendingCustodian().call),
        session.chain.call(f.readyAt().call),
    )
    custodians, initiators, quorum, delay, owners_can_cancel, tokens = cfg
    pending = int(state) == 1
    return ExitStatus(
        module=_module_address(vault),
        custodians=[Address(to_checksum_address(c)) for c in custodians],
        initiators=[Address(to_checksum_address(i)) for i in initiators],
        quorum=int(quorum),
        escrow_delay=int(delay),
        owners_can_cancel=bool(owners_can_cancel),
        tokens=[Address(to_checksum_address(t)) for t in tokens],
        nonce=int(nonce),
        pending=pending,
        pending_custodian=Address(to_checksum_address(custodian)) if pending else None,
        ready_at=int(ready) if pending else None,
    )


def _row(session: Session, row: RowMapping) -> ExitRequest:
    with session.store.connect() as conn:
        sigs = conn.execute(
            sa.select(exit_signatures)
            .where(exit_signatures.c.request_id == row["id"])
            .order_by(exit_signatures.c.signer)
        ).mappings()
        signatures = tuple((Address(s["signer"]), bytes.fromhex(s["signature"][2:])) for s in sigs)
    return ExitRequest(
        id=row["id"],
        vault_id=row["vault_id"],
        module=row["module"],
        nonce=row["nonce"],
        custodian=row["custodian"],
        deadline=row["deadline"],
        digest=row["digest"],
        state=ExitState(row["state"]),
        signatures=signatures,
        initiate_tx=row["initiate_tx"],
        finalize_tx=row["finalize_tx"],
    )


def open_request(session: Session, vault_ref: str | int, custodian: str, *, valid_for: int = 86400) -> ExitRequest:
    """The open (collecting) request for this custodian at the module's current nonce, or a new one."""
    vault = get_vault(session, vault_ref)
    custodian = parse_address(custodian, what="custodian")
    current = status(session, vault.id)
    if current.pending:
        raise VaultError(
            f"an exit to {current.pending_custodian} is already pending on vault {vault.name} (ready at {current.ready_at})"
        )
    if custodian not in current.custodians:
        raise VaultError(
            f"{custodian} is not a pre-approved fallback custodian of vault {vault.name} "
            f"(approved: {', '.join(current.custodians)})",
            custodian=custodian,
        )
    with session.store.connect() as conn:
        row = (
            conn.execute(
                sa.select(exit_requests).where(
                    exit_requests.c.vault_id == vault.id,
                    exit_requests.c.nonce == current.nonce,
                    exit_requests.c.custodian == custodian,
                    exit_requests.c.state == ExitState.COLLECTING.value,
                )
            )
            .mappings()
            .first()
        )
    if row is not None and row["deadline"] > session.chain.latest_timestamp():
        return _row(session, row)
    deadline = session.chain.latest_timestamp() + valid_for
    digest = typed_data_digest(
        typed_data(session.chain_id, _module_address(vault), vault.safe, custodian, current.nonce, deadline)
    )
    onchain = bytes(session.chain.call(_module(session, vault).functions.requestDigest(custodian, deadline).call))
    if onchain != digest:
        raise SignatureError(f"local exit request digest 0x{digest.hex()} differs from the module's 0x{onchain.hex()}")
    with session.store.begin() as conn:
        result = conn.execute(
            exit_requests.insert().values(
                chain_id=session.chain_id,
                vault_id=vault.id,
                module=vault.exit_module,
                nonce=current.nonce,
                custodian=custodian,
                deadline=deadline,
                digest="0x" + digest.hex(),
                state=ExitState.COLLECTING.value,
                created_at=utcnow(),
            )
        )
        request_id = inserted_id(result)
    return get_request(session, request_id)


def get_request(session: Session, request_id: int) -> ExitRequest:
    with session.store.connect() as conn:
        row = conn.execute(sa.select(exit_requests).where(exit_requests.c.id == request_id)).mappings().first()
    if row is None:
        raise VaultError(f"no exit request {request_id} in this workspace")
    return _row(session, row)


def sign(session: Session, request: ExitRequest, signer: Signer) -> tuple[ExitRequest, bool]:
    """Add ``signer``'s approval (it must be allowed to initiate); stored once per signer."""
    vault = get_vault(session, request.vault_id)
    module = _module(session, vault)
    if not session.chain.call(module.functions.isInitiator(signer.address).call):
        raise SignerError(f"{signer.uri} ({signer.address}) may not initiate exits of vault {vault.name}")
    signature = signer.sign_typed_data(request.typed_data(session.chain_id, vault.safe))
    digest = bytes.fromhex(request.digest[2:])
    if signature.recover(digest) != signer.address:
        raise SignatureError(f"{signer.uri} returned an exit signature that does not recover to {signer.address}")
    with session.store.begin() as conn:
        exists = conn.execute(
            sa.select(exit_signatures.c.signer).where(
                exit_signatures.c.request_id == request.id, exit_signatures.c.signer == signer.address
            )
        ).first()
        if exists:
            return get_request(session, request.id), False
        conn.execute(
            exit_signatures.insert().values(
                request_id=request.id, signer=signer.address, signature=signature.to_hex(), created_at=utcnow()
            )
        )
        audit.exit_step(
            conn,
            session,
            vault,
            "signed",
            nonce=request.nonce,
            custodian=request.custodian,
            actor=signer.address,
            request_id=request.id,
            signers=[signer.address],
        )
    return get_request(session, request.id), True


def _set(
    session: Session, request_id: int, *, record: Callable[[Connection], object] | None = None, **values: Any
) -> None:
    with session.store.begin() as conn:
        conn.execute(exit_requests.update().where(exit_requests.c.id == request_id).values(**values))
        if record is not None:
            record(conn)


def _initiate_intent(request: ExitRequest) -> str:
    return f"exit-initiate:{request.digest}"


def initiate(session: Session, request: ExitRequest) -> Receipt:
    """Submit the collected signatures (the sender pays gas); refuses below quorum before sending.

    Journaled (:mod:`custody.vault.journal`): after an interruption, calling it again for the same
    request re-sends the same signed transaction (or adopts its receipt) instead of signing another.
    """
    vault = get_vault(session, request.vault_id)
    if request.state is not ExitState.COLLECTING:
        raise VaultError(f"exit request {request.id} is {request.state.value} already (tx {request.initiate_tx})")
    what = f"initiating the exit of vault {vault.name}"
    receipt = journal.resume_intent(session, _initiate_intent(request), what=what)
    if receipt is None:
        receipt = _initiate(session, vault, request, what)
    _set(
        session,
        request.id,
        state=ExitState.INITIATED.value,
        initiate_tx=receipt.tx_hash,
        record=lambda conn: audit.exit_step(
            conn,
            session,
            vault,
            "initiated",
            nonce=request.nonce,
            custodian=request.custodian,
            receipt=receipt,
            request_id=request.id,
            signers=[s for s, _b in request.signatures],
        ),
    )
    return receipt


def _initiate(session: Session, vault: VaultRecord, request: ExitRequest, what: str) -> Receipt:
    module = _module(session, vault)
    current = status(session, vault.id)
    if current.nonce != request.nonce:
        raise VaultError(
            f"exit request {request.id} was signed for nonce {request.nonce}; the module is at {current.nonce}"
        )
    digest = bytes.fromhex(request.digest[2:])
    valid = []
    for signer, blob in request.signatures:
        if EcdsaSignature.from_bytes(blob).recover(digest) == signer and session.chain.call(
            module.functions.isInitiator(signer).call
        ):
            valid.append((int(signer, 16), blob))
    if len(valid) < current.quorum:
        raise VaultError(
            f"exit request {request.id} has {len(valid)} valid initiator signature(s); the quorum is {current.quorum}; nothing was sent"
        )
    packed = b"".join(blob for _k, blob in sorted(valid))
    data = bytes.fromhex(module.encode_abi("initiate", [request.custodian, request.deadline, packed])[2:])
    return journal.send_once(session, _initiate_intent(request), to=module.address, data=data, what=what)


def initiate_for(session: Session, vault_ref: str | int, custodian: str) -> tuple[ExitRequest, Receipt]:
    """``custody exit initiate``: finish an interrupted initiation of this vault, or initiate the open request."""
    vault = get_vault(session, vault_ref)
    custodian = parse_address(custodian, what="custodian")
    with session.store.connect() as conn:
        rows = (
            conn.execute(
                sa.select(exit_requests)
                .where(
                    exit_requests.c.vault_id == vault.id,
                    exit_requests.c.custodian == custodian,
                    exit_requests.c.state == ExitState.COLLECTING.value,
                )
                .order_by(exit_requests.c.id.desc())
            )
            .mappings()
            .all()
        )
    for row in rows:
        request = _row(session, row)
        entry = journal.latest(session, _initiate_intent(request))
        if entry is not None and entry.state in (journal.JournalState.SIGNED, journal.JournalState.MINED):
            return request, initiate(session, request)
    request = open_request(session, vault.id, custodian)
    return request, initiate(session, request)


def finalize(session: Session, vault_ref: str | int) -> Receipt:
    """Complete the pending exit once the escrow delay has passed (anyone may). Journaled like
    :func:`initiate`: calling it again after an interruption finishes the same transaction."""
    vault = get_vault(session, vault_ref)
    module = _module(session, vault)
    current = status(session, vault.id)
    intent = f"exit-finalize:{vault.exit_module}:{current.nonce - 1}"
    what = f"finalizing the exit of vault {vault.name}"
    with session.store.connect() as conn:
        unrecorded = (
            conn.execute(
                sa.select(exit_requests.c.id).where(
                    exit_requests.c.vault_id == vault.id,
                    exit_requests.c.nonce == current.nonce - 1,
                    exit_requests.c.state == ExitState.INITIATED.value,
                )
            ).first()
            is not None
        )
    receipt = journal.resume_intent(session, intent, what=what, adopt_mined=unrecorded)
    if receipt is None:
        if not current.pending:
            raise VaultError(f"vault {vault.name} has no pending exit")
        now = session.chain.latest_timestamp()
        if current.ready_at and now < current.ready_at:
            raise VaultError(
                f"the exit of vault {vault.name} becomes final at {current.ready_at} (in {current.ready_at - now} s); "
                "the owners can still cancel it"
            )
        data = bytes.fromhex(module.encode_abi("finalize", [])[2:])
        receipt = journal.send_once(session, intent, to=module.address, data=data, what=what)
    _mark(
        session,
        vault,
        current.nonce - 1,
        state=ExitState.FINALIZED.value,
        finalize_tx=receipt.tx_hash,
        record=lambda conn: audit.exit_step(
            conn,
            session,
            vault,
            "finalized",
            nonce=current.nonce - 1,
            custodian=current.pending_custodian,
            receipt=receipt,
        ),
    )
    return receipt


def cancel_as_owner(session: Session, vault_ref: str | int, owner: Signer) -> Receipt:
    """An owner cancels directly (only where the policy allows owners to)."""

    vault = get_vault(session, vault_ref)
    module = _module(session, vault)
    current = status(session, vault.id)
    if not current.pending:
        raise VaultError(f"vault {vault.name} has no pending exit to cancel")
    if not current.owners_can_cancel:
        raise VaultError(f"vault {vault.name}'s policy lets only the Safe or its timelock cancel an exit: propose it")
    if session.chain.call(session.chain.w3.eth.get_balance, owner.address) == 0 and session.chain.is_anvil:
        session.send(to=owner.address, value=10**17, what="funding the owner for gas (local chain)")
    data = bytes.fromhex(module.encode_abi("cancel", [])[2:])
    receipt = send_transaction(
        session.chain, owner, to=module.address, data=data, what="cancelling the exit", decoder=decode_revert
    )
    _mark(
        session,
        vault,
        current.nonce - 1,
        state=ExitState.CANCELLED.value,
        record=lambda conn: audit.exit_step(
            conn,
            session,
            vault,
            "cancelled",
            nonce=current.nonce - 1,
            custodian=current.pending_custodian,
            actor=owner.address,
            receipt=receipt,
        ),
    )
    return receipt


def cancel_proposal_data(session: Session, vault_ref: str | int) -> tuple[str, bytes]:
    """(target, calldata) of the Safe transaction that cancels the pending exit (a proposal)."""
    vault = get_vault(session, vault_ref)
    module = _module(session, vault)
    return _module_address(vault), bytes.fromhex(module.encode_abi("cancel", [])[2:])


def _mark(
    session: Session,
    vault: VaultRecord,
    nonce: int,
    *,
    record: Callable[[Connection], object] | None = None,
    **values: Any,
) -> None:
    with session.store.begin() as conn:
        conn.execute(
            exit_requests.update()
            .where(exit_requests.c.vault_id == vault.id, exit_requests.c.nonce == nonce)
            .where(exit_requests.c.state == ExitState.INITIATED.value)
            .values(**values)
        )
        if record is not None:
            record(conn)
