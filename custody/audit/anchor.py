"""Publishing signed tree heads on chain, so the ledger's history is fixed in time.

A method turns a :class:`SignedHead` into an on-chain record and says where it is. ``ledger_anchor``
(the default) calls ``LedgerAnchor.anchor(size, root, time, signature)`` on the chain's shared
``LedgerAnchor`` (deployed deterministically with the custody infrastructure); the contract emits
``LedgerAnchored(operator, size, root, time, signature)``. ``eas_timestamp`` calls the chain's EAS
``timestamp(keccak256(head message ‖ signature))`` (the EAS the attestation badges use); EAS emits
``Timestamped(data, time)`` and answers ``getTimestamp(data)`` forever, so third-party EAS tooling can
date the head. Every method stores its row the same way (``audit_anchors``: method, contract, tx,
block, method-specific reference — for ``eas_timestamp`` the timestamped hash).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from eth_utils import keccak

from custody.attest.badges import context
from custody.audit.keys import SignedHead, head_message
from custody.audit.record import ledger_for
from custody.audit.schema import audit_anchors, audit_heads
from custody.contracts.deploy import codehash, deploy_deterministic
from custody.exceptions import AuditError
from custody.session import Session
from custody.store import Store, deployments, record_deployment


@dataclass(frozen=True)
class Anchor:
    head: SignedHead
    method: str
    chain_id: int
    contract: str
    operator: str
    tx_hash: str
    block_number: int
    reference: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "head": self.head.as_dict(),
            "method": self.method,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "operator": self.operator,
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "reference": self.reference,
        }


def ledger_anchor_address(session: Session) -> str:
    """The chain's LedgerAnchor: from the deployment registry, else deployed (deterministically) now."""
    with session.store.connect() as conn:
        address = conn.execute(
            sa.select(deployments.c.address).where(
                deployments.c.chain_id == session.chain_id, deployments.c.name == "LedgerAnchor"
            )
        ).scalar()
    if address is not None and codehash(session.chain, address):
        return str(address)
    deployed = deploy_deterministic(session.chain, session.sender, "LedgerAnchor")
    with session.store.begin() as conn:
        record_deployment(
            conn,
            session.chain_id,
            "LedgerAnchor",
            address=deployed.address,
            codehash=deployed.codehash,
            tx_hash=deployed.tx_hash,
            block_number=deployed.block_number,
        )
    return deployed.address


def _ledger_anchor(session: Session, head: SignedHead) -> Anchor:
    address = ledger_anchor_address(session)
    contract = session.contract("LedgerAnchor", address)
    latest = int(session.chain.call(contract.functions.latestSize(session.sender.address).call))
    if head.size <= latest:
        raise AuditError(
            f"{session.sender.address} already anchored a head of size {latest} on chain {session.chain_id}; "
            f"the ledger has {head.size} entries — append entries before anchoring again"
        )
    data = contract.encode_abi("anchor", [head.size, head.root, head.time, head.signature])
    receipt = session.send(to=address, data=bytes.fromhex(data[2:]), what=f"anchoring ledger head {head.size}")
    return Anchor(
        head, "ledger_anchor", session.chain_id, address, session.sender.address, receipt.tx_hash, receipt.block_number
    )


def eas_reference(head: SignedHead) -> bytes:
    """What ``eas_timestamp`` timestamps: keccak256 of the signed head message followed by its signature."""
    return keccak(head_message(head.log_id, head.size, head.root, head.time) + head.signature)


def _eas_timestamp(session: Session, head: SignedHead) -> Anchor:

    ctx = context(session)
    reference = eas_reference(head)
    if int(session.chain.call(ctx.contract.functions.getTimestamp(reference).call)):
        raise AuditError(f"head of size {head.size} is timestamped on EAS {ctx.address} already")
    data = ctx.contract.encode_abi("timestamp", [reference])
    receipt = session.send(to=ctx.address, data=bytes.fromhex(data[2:]), what=f"timestamping ledger head {head.size}")
    return Anchor(
        head,
        "eas_timestamp",
        session.chain_id,
        ctx.address,
        session.sender.address,
        receipt.tx_hash,
        receipt.block_number,
        "0x" + reference.hex(),
    )


METHODS: dict[str, Callable[[Session, SignedHead], Anchor]] = {
    "ledger_anchor": _ledger_anchor,
    "eas_timestamp": _eas_timestamp,
}


def anchor_head(session: Session, head: SignedHead, *, method: str = "ledger_anchor") -> Anchor:
    """Publish ``head`` (stored in the ledger) with ``method`` and record where it went."""
    if method not in METHODS:
        raise AuditError(f"unknown anchoring method {method!r} (known: {', '.join(sorted(METHODS))})")
    if head.id is None:
        raise AuditError("only heads stored in the ledger can be anchored")
    done = METHODS[method](session, head)
    with session.store.begin() as conn:
        conn.execute(
            audit_anchors.insert().values(
                head_id=head.id,
                method=done.method,
                chain_id=done.chain_id,
                contract=done.contract,
                operator=done.operator,
                tx_hash=done.tx_hash,
                block_number=done.block_number,
                reference=done.reference,
            )
        )
    return done


def anchors(session_or_store: Session | Store) -> list[dict[str, Any]]:
    """Every recorded anchor with its head (as dicts, the bundle's ``anchors.json`` form)."""
    store = session_or_store.store if isinstance(session_or_store, Session) else session_or_store
    ledger_for(store).state()
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(audit_anchors, audit_heads)
            .join(audit_heads, audit_heads.c.id == audit_anchors.c.head_id)
            .order_by(audit_anchors.c.id)
        ).all()
    out = []
    for row in rows:
        m = row._mapping
        head = SignedHead(
            m[audit_heads.c.log_id],
            int(m[audit_heads.c.size]),
            bytes(m[audit_heads.c.root]),
            int(m[audit_heads.c.time]),
            m[audit_heads.c.key_id],
            bytes(m[audit_heads.c.signature]),
            m[audit_heads.c.id],
        )
        out.append(
            {
                "head": head.as_dict(),
                "method": m[audit_anchors.c.method],
                "chain_id": m[audit_anchors.c.chain_id],
                "contract": m[audit_anchors.c.contract],
                "operator": m[audit_anchors.c.operator],
                "tx_hash": m[audit_anchors.c.tx_hash],
                "block_number": m[audit_anchors.c.block_number],
                "reference": m[audit_anchors.c.reference],
            }
        )
    return out
