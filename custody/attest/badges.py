"""Badges: EAS attestations of custody steps, issued on chain by the operator's attester key.

The attester can be any signer URI (keystore, PKCS#11 HSM, Ledger, Trezor): it signs EAS's EIP-712
``Attest`` / ``Revoke`` payload and the session's gas payer submits ``attestByDelegation`` /
``revokeByDelegation``, so EAS records the attester — not the gas payer — as the badge's author. When
the attester pays its own gas, the plain ``attest`` / ``revoke`` is used (cheaper, same result).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from eth_utils import to_checksum_address
from web3.logs import DISCARD

from custody.attest import typed
from custody.attest.eas import Eas, ensure_eas
from custody.attest.schemas import STEP_BY_UID, Step, register_schemas, step
from custody.audit import record as audit
from custody.chain.transactions import Receipt
from custody.exceptions import AttestationError, InputError, UnknownAttestation
from custody.session import Session
from custody.signers.base import Signer
from custody.store import badges, utcnow
from custody.types import ZERO_ADDRESS, Address, parse_address

log = logging.getLogger(__name__)

ZERO32 = b"\x00" * 32
DELEGATION_WINDOW = 3600  # seconds a delegated signature stays valid (EAS deadline)


@dataclass
class EasContext:
    deployment: Eas
    contract: Any
    schemas: dict[str, dict[str, Any]]

    @property
    def address(self) -> Address:
        return self.deployment.eas


# each session's EAS context, made on first use; an entry goes with its session (it holds no reference to it)
_CONTEXTS: weakref.WeakKeyDictionary[Session, EasContext] = weakref.WeakKeyDictionary()


def context(session: Session) -> EasContext:
    """EAS on this chain with every custody schema registered (once per session)."""
    eas = _CONTEXTS.get(session)
    if eas is None:
        deployment = ensure_eas(session)
        schemas = register_schemas(session, deployment.registry)
        eas = _CONTEXTS[session] = EasContext(deployment, session.contract("EAS", deployment.eas), schemas)
    return eas


@dataclass(frozen=True)
class Badge:
    """One attestation as EAS holds it (on chain) or as its signed document states it (off chain)."""

    uid: str
    step: str
    mode: str  # onchain | offchain
    attester: Address
    recipient: Address
    ref_uid: str
    time: int
    expiration: int
    revocation_time: int
    revocable: bool
    fields: dict[str, Any] = field(default_factory=dict)
    tx_hash: str | None = None
    batch_root: str | None = None

    @property
    def vault(self) -> str | None:
        vault = self.fields.get("vault")
        return None if vault in (None, ZERO_ADDRESS) else to_checksum_address(vault)

    def as_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "step": self.step,
            "mode": self.mode,
            "attester": self.attester,
            "recipient": self.recipient,
            "ref_uid": self.ref_uid,
            "time": self.time,
            "expiration": self.expiration,
            "revocation_time": self.revocation_time,
            "revocable": self.revocable,
            "fields": {k: _jsonable(v) for k, v in self.fields.items()},
            "tx_hash": self.tx_hash,
            "batch_root": self.batch_root,
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if value > 2**53 else value
    return value


def hex32(value: bytes | str) -> str:
    return "0x" + (value.hex() if isinstance(value, bytes) else bytes.fromhex(value[2:]).hex())


def parse_uid(raw: str, what: str = "attestation UID") -> bytes:
    text = (raw or "").strip()
    if not text.startswith("0x") or len(text) != 66:
        raise InputError(f"{what} must be 0x followed by 64 hex digits, got {raw!r}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise InputError(f"{what} {raw!r} is not hexadecimal") from None


# -- reading -----------------------------------------------------------------------------------------
def _badge_from_tuple(raw: Sequence[Any], *, tx_hash: str | None = None) -> Badge:
    uid, schema, time, expiration, revocation, ref_uid, recipient, attester, revocable, data = raw
    st = STEP_BY_UID.get(bytes(schema))
    if st is None:
        raise AttestationError(
            f"attestation {hex32(bytes(uid))} uses schema {hex32(bytes(schema))}, not a custody step"
        )
    try:
        fields = st.decode(bytes(data))
    except Exception as exc:
        raise AttestationError(f"attestation {hex32(bytes(uid))} data does not decode as a {st.name} badge") from exc
    return Badge(
        uid=hex32(bytes(uid)),
        step=st.name,
        mode="onchain",
        attester=Address(to_checksum_address(attester)),
        recipient=Address(to_checksum_address(recipient)),
        ref_uid=hex32(bytes(ref_uid)),
        time=int(time),
        expiration=int(expiration),
        revocation_time=int(revocation),
        revocable=bool(revocable),
        fields=fields,
        tx_hash=tx_hash,
    )


def raw_attestation(session: Session, uid: bytes) -> tuple[Any, ...] | None:
    ctx = context(session)
    raw = session.chain.call(ctx.contract.functions.getAttestation(uid).call)
    if bytes(raw[0]) == ZERO32:
        return None
    return tuple(raw)


def read(session: Session, uid: str | bytes) -> Badge:
    """An on-chain badge by UID, decoded; raises :class:`UnknownAttestation` when EAS has none."""
    uid_bytes = parse_uid(uid) if isinstance(uid, str) else uid
    raw = raw_attestation(session, uid_bytes)
    if raw is None:
        raise UnknownAttestation(f"EAS at {context(session).address} has no attestation {hex32(uid_bytes)}")
    return _badge_from_tuple(raw, tx_hash=_stored_tx(session, hex32(uid_bytes)))


def _stored_tx(session: Session, uid: str) -> str | None:
    with session.store.connect() as conn:
        return conn.execute(sa.select(badges.c.tx_hash).where(badges.c.uid == uid)).scalar()


# -- issuing -----------------------------------------------------------------------------------------
def _request_data(st: Step, recipient: str, expiration: int, ref_uid: bytes, data: bytes) -> tuple[Any, ...]:
    return (to_checksum_address(recipient), expiration, st.revocable, ref_uid, data, 0)


def _uid_from_receipt(ctx: EasContext, receipt: Receipt) -> bytes:
    events = ctx.contract.events.Attested().process_receipt(receipt.raw, errors=DISCARD)
    if len(events) != 1:
        raise AttestationError(f"transaction {receipt.tx_hash} emitted {len(events)} Attested events, expected one")
    return bytes(events[0]["args"]["uid"])


def issue(
    session: Session,
    step_name: str,
    *,
    attester: Signer,
    recipient: str,
    fields: dict[str, Any],
    ref_uid: bytes = ZERO32,
    expiration: int = 0,
    reference: str | None = None,
    signer: str | None = None,
) -> Badge:
    """Make one on-chain attestation of ``step_name`` by ``attester``; stored in the workspace."""
    st = step(step_name)
    recipient = parse_address(recipient, what="badge recipient")
    data = st.encode(fields)
    ctx = context(session)
    now = session.chain.latest_timestamp()
    if expiration and expiration <= now:
        raise InputError(
            f"expiry {dt.datetime.fromtimestamp(expiration, dt.UTC):%Y-%m-%d %H:%M} UTC is not in the future "
            f"(chain time is {dt.datetime.fromtimestamp(now, dt.UTC):%Y-%m-%d %H:%M} UTC)"
        )
    if ref_uid != ZERO32 and raw_attestation(session, ref_uid) is None:
        raise UnknownAttestation(f"refUID {hex32(ref_uid)} is not an attestation on this chain's EAS")
    request = _request_data(st, recipient, expiration, ref_uid, data)
    if attester.address == session.sender.address:
        calldata = ctx.contract.encode_abi("attest", [(st.uid, request)])
    else:
        nonce = session.chain.call(ctx.contract.functions.getNonce(attester.address).call)
        deadline = now + DELEGATION_WINDOW
        payload = typed.delegated_attest(
            eas=ctx.address,
            version=ctx.deployment.version,
            chain_id=session.chain_id,
            attester=attester.address,
            schema=st.uid,
            recipient=recipient,
            expiration=expiration,
            revocable=st.revocable,
            ref_uid=ref_uid,
            data=data,
            nonce=nonce,
            deadline=deadline,
        )
        sig = attester.sign_typed_data(payload)
        signature = (sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"))
        calldata = ctx.contract.encode_abi(
            "attestByDelegation", [(st.uid, request, signature, attester.address, deadline)]
        )
    receipt = session.send(
        to=ctx.address, data=bytes.fromhex(calldata[2:]), what=f"attesting {st.name} for {recipient}"
    )
    uid = _uid_from_receipt(ctx, receipt)
    raw = raw_attestation(session, uid)
    if raw is None:
        raise AttestationError(
            f"EAS holds no attestation {uid.hex()} right after transaction {receipt.tx_hash} made it"
        )
    badge = _badge_from_tuple(raw, tx_hash=receipt.tx_hash)
    with session.store.begin() as conn:
        conn.execute(
            badges.insert().values(
                uid=badge.uid,
                chain_id=session.chain_id,
                step=st.name,
                mode="onchain",
                vault=badge.vault,
                attester=badge.attester,
                recipient=badge.recipient,
                ref_uid=badge.ref_uid,
                reference=reference,
                signer=signer,
                tx_hash=receipt.tx_hash,
                created_at=utcnow(),
            )
        )
        audit.attestation_issued(conn, session, badge, receipt, reference=reference)
    log.info("badge %s (%s) issued in %s", badge.uid, st.name, receipt.tx_hash)
    return badge


# -- revoking ----------------------------------------------------------------------------------------
def revoke(session: Session, uid: str, *, attester: Signer) -> tuple[Badge, str | None]:
    """Revoke an on-chain badge (only its attester can). Returns (badge, tx hash or None if already revoked)."""
    uid_bytes = parse_uid(uid)
    badge = read(session, uid_bytes)
    if badge.revocation_time:
        return badge, None
    if badge.attester != attester.address:
        raise AttestationError(
            f"badge {badge.uid} was issued by {badge.attester}; only that attester can revoke it "
            f"({attester.uri} is {attester.address})"
        )
    ctx = context(session)
    st = step(badge.step)
    if attester.address == session.sender.address:
        calldata = ctx.contract.encode_abi("revoke", [(st.uid, (uid_bytes, 0))])
    else:
        nonce = session.chain.call(ctx.contract.functions.getNonce(attester.address).call)
        deadline = session.chain.latest_timestamp() + DELEGATION_WINDOW
        payload = typed.delegated_revoke(
            eas=ctx.address,
            version=ctx.deployment.version,
            chain_id=session.chain_id,
            revoker=attester.address,
            schema=st.uid,
            uid=uid_bytes,
            nonce=nonce,
            deadline=deadline,
        )
        sig = attester.sign_typed_data(payload)
        signature = (sig.v, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"))
        calldata = ctx.contract.encode_abi(
            "revokeByDelegation", [(st.uid, (uid_bytes, 0), signature, attester.address, deadline)]
        )
    receipt = session.send(to=ctx.address, data=bytes.fromhex(calldata[2:]), what=f"revoking badge {badge.uid}")
    with session.store.begin() as conn:
        conn.execute(badges.update().where(badges.c.uid == badge.uid).values(revoked_tx=receipt.tx_hash))
        audit.attestation_revoked(
            conn,
            session,
            uid=badge.uid,
            step=badge.step,
            attester=badge.attester,
            safe=badge.vault,
            mode="onchain",
            receipt=receipt,
        )
    return read(session, uid_bytes), receipt.tx_hash


# -- the workspace's own records -----------------------------------------------------------------------
def stored(
    session: Session, *, vault: str | None = None, step_name: str | None = None, reference: str | None = None
) -> list[dict[str, Any]]:
    q = sa.select(badges).where(badges.c.chain_id == session.chain_id)
    if vault is not None:
        q = q.where(badges.c.vault == vault)
    if step_name is not None:
        q = q.where(badges.c.step == step_name)
    if reference is not None:
        q = q.where(badges.c.reference == reference)
    with session.store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q.order_by(badges.c.id))]


def latest_kyc(session: Session, subject: str, *, vault: str) -> bytes:
    """The newest unrevoked, unexpired KYC badge this workspace issued for ``subject`` as a signer of
    ``vault`` (its UID), else zero: a badge may only link to badges of its own vault."""
    rows = [
        r for r in stored(session, vault=vault, step_name="kyc") if r["recipient"] == subject and not r["revoked_tx"]
    ]
    for row in reversed(rows):
        badge = read(session, row["uid"])
        now = session.chain.latest_timestamp()
        if not badge.revocation_time and (badge.expiration == 0 or badge.expiration > now):
            return bytes.fromhex(row["uid"][2:])
    return ZERO32


# -- parsing user-given field values ---------------------------------------------------------------------
def coerce_fields(st: Step, raw: dict[str, str]) -> dict[str, Any]:
    """Turn ``--field name=value`` strings into the schema's ABI types, with one clear error per field."""
    known = dict((n, t) for t, n in st.fields)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InputError(f"{st.name} badges have no field {', '.join(unknown)} (fields: {st.schema})")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        out[name] = _coerce(known[name], value, f"{st.name}.{name}")
    return out


def _coerce(abi_type: str, value: Any, where: str) -> Any:
    if abi_type.endswith("[]"):
        items = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
        return [_coerce(abi_type[:-2], v, where) for v in items]
    text = str(value).strip()
    if abi_type == "address":
        return parse_address(text, what=where, allow_zero=True)
    if abi_type == "bytes32":
        if not text.startswith("0x") or len(text) != 66:
            raise InputError(f"{where} must be a 32-byte hex value (0x + 64 hex digits), got {text!r}")
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise InputError(f"{where} {text!r} is not hexadecimal") from None
    if abi_type.startswith("uint"):
        if not text.isdigit():
            raise InputError(f"{where} must be a non-negative whole number, got {text!r}")
        number = int(text)
        if number >= 2 ** int(abi_type[4:] or 256):
            raise InputError(f"{where} {text} does not fit in {abi_type}")
        return number
    if abi_type == "bool":
        if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
            raise InputError(f"{where} must be true or false, got {text!r}")
        return text.lower() in {"true", "1", "yes"}
    if abi_type == "string":
        return str(value)
    raise InputError(f"{where}: unsupported field type {abi_type}")


def document(row: dict[str, Any]) -> dict[str, Any] | None:
    return json.loads(row["document"]) if row.get("document") else None
