"""EIP-712 payloads of the Ethereum Attestation Service, built exactly as EAS defines them.

* delegated on-chain attestation / revocation (``attestByDelegation`` / ``revokeByDelegation``):
  domain ``{name: "EAS", version: EAS.version(), chainId, verifyingContract: EAS}``;
* off-chain attestation, version 2 (the EAS SDK's current format, with a salt):
  domain ``{name: "EAS Attestation", version: EAS.version(), chainId, verifyingContract: EAS}``, and a
  UID computed as the SDK does (``getOffchainUID``), so EAS tooling shows the same UID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi.packed import encode_packed
from eth_utils import keccak, to_checksum_address

from custody.types import ZERO_ADDRESS

DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]

DELEGATED_ATTEST_FIELDS = [
    {"name": "attester", "type": "address"},
    {"name": "schema", "type": "bytes32"},
    {"name": "recipient", "type": "address"},
    {"name": "expirationTime", "type": "uint64"},
    {"name": "revocable", "type": "bool"},
    {"name": "refUID", "type": "bytes32"},
    {"name": "data", "type": "bytes"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]

DELEGATED_REVOKE_FIELDS = [
    {"name": "revoker", "type": "address"},
    {"name": "schema", "type": "bytes32"},
    {"name": "uid", "type": "bytes32"},
    {"name": "value", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint64"},
]

OFFCHAIN_VERSION = 2
OFFCHAIN_DOMAIN_NAME = "EAS Attestation"
OFFCHAIN_ATTEST_FIELDS = [
    {"name": "version", "type": "uint16"},
    {"name": "schema", "type": "bytes32"},
    {"name": "recipient", "type": "address"},
    {"name": "time", "type": "uint64"},
    {"name": "expirationTime", "type": "uint64"},
    {"name": "revocable", "type": "bool"},
    {"name": "refUID", "type": "bytes32"},
    {"name": "data", "type": "bytes"},
    {"name": "salt", "type": "bytes32"},
]


def _hex(value: bytes) -> str:
    """Byte values as 0x-hex strings: what eth_signTypedData_v4 payloads carry (and hardware wallets parse)."""
    return "0x" + bytes(value).hex()


def _domain(name: str, version: str, chain_id: int, eas: str) -> dict[str, Any]:
    return {"name": name, "version": version, "chainId": chain_id, "verifyingContract": to_checksum_address(eas)}


def delegated_attest(
    *,
    eas: str,
    version: str,
    chain_id: int,
    attester: str,
    schema: bytes,
    recipient: str,
    expiration: int,
    revocable: bool,
    ref_uid: bytes,
    data: bytes,
    nonce: int,
    deadline: int,
    value: int = 0,
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Attest": DELEGATED_ATTEST_FIELDS},
        "primaryType": "Attest",
        "domain": _domain("EAS", version, chain_id, eas),
        "message": {
            "attester": to_checksum_address(attester),
            "schema": _hex(schema),
            "recipient": to_checksum_address(recipient),
            "expirationTime": expiration,
            "revocable": revocable,
            "refUID": _hex(ref_uid),
            "data": _hex(data),
            "value": value,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def delegated_revoke(
    *, eas: str, version: str, chain_id: int, revoker: str, schema: bytes, uid: bytes, nonce: int, deadline: int
) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": DOMAIN_FIELDS, "Revoke": DELEGATED_REVOKE_FIELDS},
        "primaryType": "Revoke",
        "domain": _domain("EAS", version, chain_id, eas),
        "message": {
            "revoker": to_checksum_address(revoker),
            "schema": _hex(schema),
            "uid": _hex(uid),
            "value": 0,
            "nonce": nonce,
            "deadline": deadline,
        },
    }


@dataclass(frozen=True)
class OffchainMessage:
    """The signed fields of an EAS off-chain attestation (version 2)."""

    schema: bytes
    recipient: str
    time: int
    expiration: int
    revocable: bool
    ref_uid: bytes
    data: bytes
    salt: bytes
    version: int = OFFCHAIN_VERSION

    def typed_data(self, *, eas: str, eas_version: str, chain_id: int) -> dict[str, Any]:
        return {
            "types": {"EIP712Domain": DOMAIN_FIELDS, "Attest": OFFCHAIN_ATTEST_FIELDS},
            "primaryType": "Attest",
            "domain": _domain(OFFCHAIN_DOMAIN_NAME, eas_version, chain_id, eas),
            "message": {
                "version": self.version,
                "schema": _hex(self.schema),
                "recipient": to_checksum_address(self.recipient),
                "time": self.time,
                "expirationTime": self.expiration,
                "revocable": self.revocable,
                "refUID": _hex(self.ref_uid),
                "data": _hex(self.data),
                "salt": _hex(self.salt),
            },
        }

    @property
    def uid(self) -> bytes:
        """The EAS SDK's ``getOffchainUID`` (version 2): note the schema UID enters as its hex *string*."""
        schema_text = "0x" + self.schema.hex()
        return keccak(
            encode_packed(
                [
                    "uint16",
                    "bytes",
                    "address",
                    "address",
                    "uint64",
                    "uint64",
                    "bool",
                    "bytes32",
                    "bytes",
                    "bytes32",
                    "uint32",
                ],
                [
                    self.version,
                    schema_text.encode("utf-8"),
                    to_checksum_address(self.recipient),
                    ZERO_ADDRESS,
                    self.time,
                    self.expiration,
                    self.revocable,
                    self.ref_uid,
                    self.data,
                    self.salt,
                    0,
                ],
            )
        )

    def as_json(self) -> dict[str, Any]:
        """The message as the EAS SDK serialises it (hex strings, integers as decimal strings)."""
        return {
            "version": self.version,
            "schema": "0x" + self.schema.hex(),
            "recipient": to_checksum_address(self.recipient),
            "time": str(self.time),
            "expirationTime": str(self.expiration),
            "revocable": self.revocable,
            "refUID": "0x" + self.ref_uid.hex(),
            "data": "0x" + self.data.hex(),
            "salt": "0x" + self.salt.hex(),
        }
