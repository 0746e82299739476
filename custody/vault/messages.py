"""Message signing for a vault (ERC-1271), as a policy feature.

A vault answers ERC-1271 ``isValidSignature`` only for digests its CustodyGuard approved, and the guard
approves only through an owner-signed Safe transaction (``approveMessage``) for an EIP-712 domain the
template lists under ``messages.domains``. So signing a message is a proposal like a transfer: it is
shown (domain, primary type, message fields, digest), checked against the on-chain policy, signed by
the owners and executed. Owner signatures or ``approveHash`` alone never make the vault sign anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_account.messages import encode_typed_data
from eth_utils import function_signature_to_4byte_selector as selector_of
from eth_utils import keccak
from web3.exceptions import Web3Exception

from custody.exceptions import InputError, VaultError
from custody.policy.onchain import GuardInfo, installed_guard, read_guard
from custody.session import Session
from custody.vault import proposals
from custody.vault.service import VaultRecord, get_vault

ERC1271_MAGIC = bytes.fromhex("1626ba7e")
APPROVE_MESSAGE = selector_of("approveMessage(bytes32,bytes32)")
REVOKE_MESSAGE = selector_of("revokeMessage(bytes32)")
IS_VALID_SIGNATURE = selector_of("isValidSignature(bytes32,bytes)")


@dataclass(frozen=True)
class TypedMessage:
    """An EIP-712 message as the vault would sign it."""

    domain: dict[str, Any]
    primary_type: str
    message: dict[str, Any]
    domain_separator: bytes
    struct_hash: bytes

    @property
    def digest(self) -> bytes:
        """``keccak256("\\x19\\x01" ‖ domainSeparator ‖ hashStruct(message))``: what verifiers check."""
        return keccak(b"\x19\x01" + self.domain_separator + self.struct_hash)

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": {k: _text(v) for k, v in self.domain.items()},
            "primary_type": self.primary_type,
            "message": {k: _text(v) for k, v in self.message.items()},
            "domain_separator": "0x" + self.domain_separator.hex(),
            "struct_hash": "0x" + self.struct_hash.hex(),
            "digest": "0x" + self.digest.hex(),
        }


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    return str(value)


def parse_typed_data(raw: str | dict[str, Any], *, source: str = "typed data") -> TypedMessage:
    """An EIP-712 ``eth_signTypedData_v4`` payload (``types``, ``domain``, ``primaryType``, ``message``)."""
    try:
        payload = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(payload, dict):
        raise InputError(f"{source} must be a JSON object with types, domain, primaryType and message")
    missing = [k for k in ("types", "domain", "primaryType", "message") if k not in payload]
    if missing:
        raise InputError(f"{source} lacks {', '.join(missing)} (an eth_signTypedData_v4 payload is expected)")
    try:
        signable = encode_typed_data(full_message=payload)
    except Exception as exc:  # eth_account raises a variety of types for malformed payloads
        raise InputError(f"{source} is not valid EIP-712 typed data: {exc}") from exc
    return TypedMessage(
        domain=dict(payload["domain"]),
        primary_type=str(payload["primaryType"]),
        message=dict(payload["message"]),
        domain_separator=bytes(signable.header),
        struct_hash=bytes(signable.body),
    )


def load_typed_data(path: str | Path) -> TypedMessage:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_typed_data(text, source=str(path))


def _guard(session: Session, vault_ref: str | int) -> tuple[VaultRecord, GuardInfo]:
    vault = get_vault(session, vault_ref)
    guard = installed_guard(session, vault.safe)
    if guard is None:
        raise VaultError(f"vault {vault.name} has no guard: it cannot approve messages", vault=vault.name)
    return vault, read_guard(session, guard)


def propose_message(
    session: Session, vault_ref: str | int, typed: TypedMessage, *, proposer: str = ""
) -> proposals.Proposal:
    """Propose that the vault approve ``typed`` for ERC-1271 (checked against the policy's domains first)."""
    vault, guard = _guard(session, vault_ref)
    data = APPROVE_MESSAGE + encode(["bytes32", "bytes32"], [typed.domain_separator, typed.struct_hash])
    name = typed.domain.get("name", "?")
    where = typed.domain.get("verifyingContract", "no verifying contract")
    return proposals.propose(
        session,
        vault.id,
        to=guard.address,
        data=data,
        proposer=proposer,
        description=f"sign {typed.primary_type} for {name} ({where}), digest 0x{typed.digest.hex()}",
    )


def propose_revocation(
    session: Session, vault_ref: str | int, digest: bytes, *, proposer: str = ""
) -> proposals.Proposal:
    """Propose that the vault withdraw its approval of ``digest``."""
    vault, guard = _guard(session, vault_ref)
    return proposals.propose(
        session,
        vault.id,
        to=guard.address,
        data=REVOKE_MESSAGE + digest,
        proposer=proposer,
        description=f"withdraw the vault's signature of message 0x{digest.hex()}",
    )


@dataclass(frozen=True)
class MessageStatus:
    vault: str
    digest: bytes
    approved_by_guard: bool
    erc1271_valid: bool  # what any verifier calling the vault's isValidSignature gets

    def as_dict(self) -> dict[str, Any]:
        return {
            "vault": self.vault,
            "digest": "0x" + self.digest.hex(),
            "approved_by_guard": self.approved_by_guard,
            "erc1271_valid": self.erc1271_valid,
        }


def status(session: Session, vault_ref: str | int, digest: bytes) -> MessageStatus:
    """Whether the vault signs ``digest``: the guard's record, and the vault's own ERC-1271 answer."""
    vault, guard = _guard(session, vault_ref)
    contract = session.contract("CustodyGuard", guard.address)
    approved = bool(session.chain.call(contract.functions.isMessageApproved(digest).call))
    return MessageStatus(vault.name, digest, approved, erc1271_valid(session, vault.safe, digest))


def erc1271_valid(session: Session, account: str, digest: bytes, signature: bytes = b"") -> bool:
    """What a verifier gets from ``account.isValidSignature(digest, signature)`` (False on revert)."""
    data = IS_VALID_SIGNATURE + encode(["bytes32", "bytes"], [digest, signature])
    try:
        answer = session.chain.call(session.chain.w3.eth.call, {"to": account, "data": "0x" + data.hex()})
    except Web3Exception:  # a revert is a "no" for every ERC-1271 verifier
        return False
    return bytes(answer)[:4] == ERC1271_MAGIC and len(bytes(answer)) == 32
