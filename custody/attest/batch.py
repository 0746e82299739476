"""Batch mode: EAS off-chain attestations anchored by one on-chain timestamp of their Merkle root.

Each attestation is an ordinary EAS off-chain attestation (version 2, EIP-712 signed by the attester,
UID as the EAS SDK computes it), so EAS tooling can read and check it. What batch mode adds is
existence-in-time for the whole batch at the price of one ``EAS.timestamp(root)`` call: every document
carries its Merkle proof to that root (OpenZeppelin leaf/pair conventions, see :mod:`custody.attest.merkle`).
Revocation uses EAS's own ``revokeOffchain`` (sent by the attester, as EAS requires).

Document layout (one per attestation; ``sig`` and ``signer`` as the EAS SDK writes them)::

    {"sig": {"version": 2, "domain": {...}, "primaryType": "Attest", "types": {"Attest": [...]},
             "message": {...}, "uid": "0x…", "signature": {"r": "0x…", "s": "0x…", "v": 27}},
     "signer": "0x…",
     "custody": {"step": "inventory_tag",
                 "batch": {"root": "0x…", "index": 7, "size": 1000, "proof": ["0x…", …],
                           "anchor": {"chainId": 31337, "eas": "0x…", "txHash": "0x…", "block": 123, "time": 1700000000}}}}
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address

from custody.attest import merkle
from custody.attest.badges import ZERO32, Badge, context, hex32, parse_uid
from custody.attest.evidence import offchain_badge
from custody.attest.schemas import step
from custody.attest.typed import OffchainMessage
from custody.audit import record as audit
from custody.chain.transactions import send_transaction
from custody.contracts.errors import decode_revert
from custody.exceptions import AttestationError, InputError
from custody.session import Session
from custody.signers.base import Signer
from custody.signers.ecdsa import EcdsaSignature
from custody.store import attest_batches, badges, utcnow
from custody.types import parse_address

FORMAT = "custody-offchain-attestations/1"
MIXED_STEPS = "mixed"  # a batch's step when it anchors badges of several steps


@dataclass(frozen=True)
class BatchItem:
    recipient: str
    fields: dict[str, Any]
    ref_uid: bytes = ZERO32
    expiration: int = 0
    reference: str | None = None


@dataclass(frozen=True)
class BatchResult:
    step: str
    root: str
    size: int
    anchor_tx: str
    anchor_block: int
    anchor_time: int
    anchor_gas: int
    documents: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "root": self.root,
            "size": self.size,
            "anchor_tx": self.anchor_tx,
            "anchor_block": self.anchor_block,
            "anchor_time": self.anchor_time,
            "anchor_gas": self.anchor_gas,
            "gas_per_attestation": self.anchor_gas / self.size,
            "uids": [d["sig"]["uid"] for d in self.documents],
        }


def sign_offchain(
    session: Session,
    step_name: str,
    attester: Signer,
    items: list[BatchItem],
    *,
    time: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[tuple[OffchainMessage, dict[str, Any]]]:
    """EIP-712-sign one EAS off-chain attestation per item; returns (message, EAS-SDK ``sig`` object)."""
    st = step(step_name)
    ctx = context(session)
    when = session.chain.latest_timestamp() if time is None else time
    out = []
    for i, item in enumerate(items):
        if item.expiration and item.expiration <= when:
            raise InputError(f"item {i}: expiry {item.expiration} is not after the attestation time {when}")
        message = OffchainMessage(
            schema=st.uid,
            recipient=parse_address(item.recipient, what=f"item {i} recipient", allow_zero=True),
            time=when,
            expiration=item.expiration,
            revocable=st.revocable,
            ref_uid=item.ref_uid,
            data=st.encode(item.fields),
            salt=os.urandom(32),
        )
        payload = message.typed_data(eas=ctx.address, eas_version=ctx.deployment.version, chain_id=session.chain_id)
        sig = attester.sign_typed_data(payload)
        out.append((message, _sig_object(message, payload, sig)))
        if progress is not None:
            progress(i + 1, len(items))
    return out


def _sig_object(message: OffchainMessage, payload: dict[str, Any], sig: EcdsaSignature) -> dict[str, Any]:
    return {
        "version": message.version,
        "domain": payload["domain"],
        "primaryType": "Attest",
        "types": {"Attest": payload["types"]["Attest"]},
        "message": message.as_json(),
        "uid": "0x" + message.uid.hex(),
        "signature": {"r": f"0x{sig.r:064x}", "s": f"0x{sig.s:064x}", "v": sig.v},
    }


def issue_batch(
    session: Session,
    step_name: str,
    *,
    attester: Signer,
    items: list[BatchItem],
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Sign ``items`` off chain, anchor their Merkle root with ``EAS.timestamp``, store every document."""
    if not items:
        raise InputError("a batch needs at least one attestation")
    signed = sign_offchain(session, step_name, attester, items, progress=progress)
    documents = [_document(attester.address, step_name, sig) for _message, sig in signed]
    anchored = _anchor(session, documents, step_name)
    with session.store.begin() as conn:
        _record_batch(conn, session, anchored, attester.address)
        rows = [
            _row(session, step_name, attester.address, message, item.fields.get("vault"), item.reference, None, doc)
            for (message, _sig), item, doc in zip(signed, items, documents)
        ]
        conn.execute(badges.insert(), rows)
    return anchored


def sign_pending(
    session: Session, step_name: str, *, attester: Signer, item: BatchItem, signer: str | None = None
) -> Badge:
    """Sign one off-chain attestation of ``step_name`` now and keep it in the workspace until
    :func:`anchor_pending` puts it in an anchored batch (a template's ``batched`` steps)."""
    ((message, sig),) = sign_offchain(session, step_name, attester, [item])
    doc = _document(attester.address, step_name, sig)
    row = _row(session, step_name, attester.address, message, item.fields.get("vault"), item.reference, signer, doc)
    with session.store.begin() as conn:
        conn.execute(badges.insert().values(**row))
    badge, problems = offchain_badge(doc)
    if badge is None:  # we just wrote it: a problem here is a bug in the document layout
        raise AttestationError(f"the signed {step_name} attestation does not read back: {'; '.join(problems)}")
    return badge


def _waiting(session: Session, vault: str | None) -> sa.ColumnElement[bool]:
    """Off-chain badges signed but in no anchored batch yet (unrevoked), of ``vault`` or of every vault."""
    where = sa.and_(
        badges.c.chain_id == session.chain_id,
        badges.c.mode == "offchain",
        badges.c.batch_root.is_(None),
        badges.c.revoked_tx.is_(None),
    )
    return where if vault is None else sa.and_(where, badges.c.vault == to_checksum_address(vault))


def pending(session: Session, *, vault: str | None = None) -> list[dict[str, Any]]:
    """Off-chain badges signed but in no anchored batch yet (unrevoked), oldest first."""
    with session.store.connect() as conn:
        rows = conn.execute(sa.select(badges).where(_waiting(session, vault)).order_by(badges.c.id))
        return [dict(r._mapping) for r in rows]


def pending_count(session: Session, *, vault: str | None = None) -> int:
    """How many badges :func:`pending` would return (counted by the store, documents left unread)."""
    with session.store.connect() as conn:
        count: int = conn.execute(
            sa.select(sa.func.count()).select_from(badges).where(_waiting(session, vault))
        ).scalar_one()
        return count


def anchor_pending(session: Session, *, vault: str | None = None) -> BatchResult | None:
    """Anchor every pending badge (of ``vault``, else of the workspace) with one ``EAS.timestamp`` of
    their Merkle root; each document gets its proof. None when nothing is pending."""
    rows = pending(session, vault=vault)
    if not rows:
        return None
    documents = [json.loads(row["document"]) for row in rows]  # every pending row holds its signed document
    steps = sorted({row["step"] for row in rows})
    anchored = _anchor(session, documents, steps[0] if len(steps) == 1 else MIXED_STEPS)
    attesters = ",".join(sorted({row["attester"] for row in rows}))
    with session.store.begin() as conn:
        _record_batch(conn, session, anchored, attesters)
        for row, doc in zip(rows, documents):
            conn.execute(
                badges.update()
                .where(badges.c.id == row["id"], badges.c.batch_root.is_(None))
                .values(batch_root=anchored.root, document=json.dumps(doc, sort_keys=True))
            )
    return anchored


def _document(attester: str, step_name: str, sig: dict[str, Any]) -> dict[str, Any]:
    return {"sig": sig, "signer": attester, "custody": {"step": step_name}}


def _row(
    session: Session,
    step_name: str,
    attester: str,
    message: OffchainMessage,
    vault: Any,
    reference: str | None,
    signer: str | None,
    doc: dict[str, Any],
) -> dict[str, Any]:
    batch = doc["custody"].get("batch")
    return {
        "uid": doc["sig"]["uid"],
        "chain_id": session.chain_id,
        "step": step_name,
        "mode": "offchain",
        "vault": None if vault in (None, "0x" + "00" * 20) else to_checksum_address(vault),
        "attester": attester,
        "recipient": to_checksum_address(message.recipient),
        "ref_uid": hex32(message.ref_uid),
        "reference": reference,
        "signer": signer,
        "tx_hash": None,
        "batch_root": batch["root"] if batch else None,
        "document": json.dumps(doc, sort_keys=True),
        "revoked_tx": None,
        "created_at": utcnow(),
    }


def _anchor(session: Session, documents: list[dict[str, Any]], step_name: str) -> BatchResult:
    """Timestamp the Merkle root of ``documents``' UIDs on EAS and write each one's proof into it."""
    uids = [parse_uid(d["sig"]["uid"]) for d in documents]
    if len(set(uids)) != len(uids):  # salts are random: a duplicate means a broken RNG, never proceed
        raise AttestationError("two attestations in the batch share a UID")
    tree = merkle.levels(uids)
    root = merkle.root(tree)
    ctx = context(session)
    calldata = ctx.contract.encode_abi("timestamp", [root])
    receipt = session.send(
        to=ctx.address,
        data=bytes.fromhex(calldata[2:]),
        what=f"anchoring {len(uids)} {step_name} attestation(s) (root {hex32(root)[:18]}…)",
    )
    anchor_time = int(session.chain.call(ctx.contract.functions.getTimestamp(root).call))
    anchor = {
        "chainId": session.chain_id,
        "eas": ctx.address,
        "txHash": receipt.tx_hash,
        "block": receipt.block_number,
        "time": anchor_time,
    }
    for index, doc in enumerate(documents):
        doc["custody"]["batch"] = {
            "root": hex32(root),
            "index": index,
            "size": len(uids),
            "proof": [hex32(p) for p in merkle.proof(tree, index)],
            "anchor": anchor,
        }
    return BatchResult(
        step=step_name,
        root=hex32(root),
        size=len(uids),
        anchor_tx=receipt.tx_hash,
        anchor_block=receipt.block_number,
        anchor_time=anchor_time,
        anchor_gas=receipt.gas_used,
        documents=documents,
    )


def _record_batch(conn: sa.Connection, session: Session, anchored: BatchResult, attester: str) -> None:
    conn.execute(
        attest_batches.insert().values(
            root=anchored.root,
            chain_id=session.chain_id,
            step=anchored.step,
            size=anchored.size,
            anchor_tx=anchored.anchor_tx,
            anchor_block=anchored.anchor_block,
            anchor_time=anchored.anchor_time,
            anchor_gas=anchored.anchor_gas,
            created_at=utcnow(),
        )
    )
    audit.attestation_batch_anchored(
        conn,
        session,
        step=anchored.step,
        root=anchored.root,
        size=anchored.size,
        attester=attester,
        tx_hash=anchored.anchor_tx,
        block=anchored.anchor_block,
        gas_used=anchored.anchor_gas,
    )


def write_documents(documents: Iterable[dict[str, Any]], path: str | Path) -> int:
    """One file holding a list of documents (each verifiable on its own)."""
    docs = list(documents)
    Path(path).write_text(json.dumps({"format": FORMAT, "attestations": docs}, indent=1, sort_keys=True) + "\n")
    return len(docs)


def read_documents(path: str | Path) -> list[dict[str, Any]]:
    """Documents from a batch file, a single document, or a JSON list of documents."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p} is not a JSON attestation file: {exc}") from None
    if isinstance(data, dict) and "attestations" in data:
        if data.get("format") != FORMAT:
            raise InputError(f"{p}: unknown format {data.get('format')!r} (expected {FORMAT})")
        docs = data["attestations"]
    elif isinstance(data, dict):
        docs = [data]
    else:
        docs = data
    if not isinstance(docs, list) or not all(isinstance(d, dict) for d in docs):
        raise InputError(f"{p}: expected an attestation document or a list of them")
    return docs


def stored_documents(session: Session, uids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    q = sa.select(badges.c.document).where(badges.c.chain_id == session.chain_id, badges.c.mode == "offchain")
    if uids is not None:
        q = q.where(badges.c.uid.in_(list(uids)))
    with session.store.connect() as conn:
        return [json.loads(d) for (d,) in conn.execute(q.order_by(badges.c.id))]


def revoke_offchain(session: Session, uid: str, *, attester: Signer) -> str | None:
    """Revoke an off-chain attestation with EAS ``revokeOffchain`` sent by the attester itself.

    Returns the tx hash, or None when it was already revoked by this attester.
    """

    uid_bytes = parse_uid(uid)
    ctx = context(session)
    with session.store.connect() as conn:
        row = conn.execute(sa.select(badges.c.attester).where(badges.c.uid == hex32(uid_bytes))).first()
    if row is not None and row.attester != attester.address:
        raise AttestationError(
            f"off-chain attestation {hex32(uid_bytes)} was signed by {row.attester}; only that attester can revoke it "
            f"({attester.uri} is {attester.address})"
        )
    if session.chain.call(ctx.contract.functions.getRevokeOffchain(attester.address, uid_bytes).call):
        return None
    calldata = bytes.fromhex(ctx.contract.encode_abi("revokeOffchain", [uid_bytes])[2:])
    balance = session.chain.call(session.chain.w3.eth.get_balance, attester.address)
    if balance < 10**15:
        if not session.chain.is_anvil:
            raise AttestationError(
                f"EAS records off-chain revocations by the transaction's sender, so the attester {attester.address} "
                "sends it and pays its gas; it holds too little ETH",
                hint=f"fund {attester.address} and retry",
            )
        session.send(to=attester.address, value=10**16, what=f"funding attester {attester.address} for a revocation")
    receipt = send_transaction(
        session.chain,
        attester,
        to=ctx.address,
        data=calldata,
        what=f"revoking off-chain attestation {hex32(uid_bytes)}",
        decoder=decode_revert,
    )
    with session.store.begin() as conn:
        row = conn.execute(sa.select(badges.c.step, badges.c.vault).where(badges.c.uid == hex32(uid_bytes))).first()
        conn.execute(badges.update().where(badges.c.uid == hex32(uid_bytes)).values(revoked_tx=receipt.tx_hash))
        audit.attestation_revoked(
            conn,
            session,
            uid=hex32(uid_bytes),
            step=row.step if row else None,
            attester=attester.address,
            safe=row.vault if row else None,
            mode="offchain",
            receipt=receipt,
        )
    return receipt.tx_hash
