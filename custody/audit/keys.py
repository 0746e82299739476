"""The operator's ledger key and signed tree heads.

A signed tree head commits to ``(log, size, root, time)``: the message signed is the canonical JSON
``{"log": LOG_ID, "root": HEX, "size": N, "time": UNIX, "v": 1}`` prefixed with
``custody-ledger-head:``. Two kinds of key:

* **Ed25519** (default): generated on first use in ``<workspace>/audit/ledger-ed25519.pem`` (PKCS#8,
  mode 0600); ``key_id`` is ``ed25519:<public key hex>``, so a head carries what verifies it.
* **secp256k1** through any signer URI of the registry (keystore, PKCS#11 HSM, Ledger, Trezor, …):
  EIP-191 ``personal_sign`` of the message; ``key_id`` is ``secp256k1:<address>`` and verification
  recovers the address.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from custody.audit.entries import canonical_json
from custody.exceptions import LedgerKeyError, SignatureError
from custody.signers.base import personal_message_digest
from custody.signers.ecdsa import EcdsaSignature

if TYPE_CHECKING:
    from custody.signers.base import Signer

HEAD_PREFIX = b"custody-ledger-head:"
KEY_FILE = "ledger-ed25519.pem"


@dataclass(frozen=True)
class SignedHead:
    """A signed tree head of log ``log_id``: the first ``size`` entries hash to ``root``."""

    log_id: str
    size: int
    root: bytes
    time: int
    key_id: str
    signature: bytes
    id: int | None = None

    def message(self) -> bytes:
        return head_message(self.log_id, self.size, self.root, self.time)

    def signature_valid(self) -> bool:
        return verify_signature(self.key_id, self.message(), self.signature)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "log_id": self.log_id,
            "size": self.size,
            "root": self.root.hex(),
            "time": self.time,
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedHead:
        return cls(
            log_id=str(data["log_id"]),
            size=int(data["size"]),
            root=bytes.fromhex(data["root"]),
            time=int(data["time"]),
            key_id=str(data["key_id"]),
            signature=bytes.fromhex(data["signature"]),
            id=data.get("id"),
        )


def head_message(log_id: str, size: int, root: bytes, time: int) -> bytes:
    """The bytes a ledger key signs for a head (canonical JSON of the head, with a fixed prefix)."""
    return HEAD_PREFIX + canonical_json(
        {"log": str(log_id), "root": root.hex(), "size": int(size), "time": int(time), "v": 1}
    )


class LedgerKey(Protocol):
    key_id: str

    def sign(self, message: bytes) -> bytes: ...


class Ed25519LedgerKey:
    """The workspace's Ed25519 ledger key (private key never leaves the PEM file or this object)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.key_id = "ed25519:" + raw.hex()

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def public_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def __repr__(self) -> str:
        return f"<Ed25519LedgerKey {self.key_id}>"

    @classmethod
    def load_or_create(cls, folder: Path) -> Ed25519LedgerKey:
        path = folder / KEY_FILE
        if not path.exists():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
                    handle.flush()
                    os.fsync(handle.fileno())
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise LedgerKeyError(f"the ledger key {path} cannot be read as an unencrypted Ed25519 PEM key") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise LedgerKeyError(f"the ledger key {path} is not an Ed25519 key")
        return cls(key)


class SignerLedgerKey:
    """A secp256k1 ledger key behind any signer URI (EIP-191 signatures over the head message)."""

    def __init__(self, signer: Signer) -> None:
        self._signer = signer
        self.key_id = "secp256k1:" + signer.address

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign_message(message).to_bytes()

    def __repr__(self) -> str:
        return f"<SignerLedgerKey {self.key_id}>"


@functools.lru_cache(maxsize=1 << 17)
def verify_signature(key_id: str, message: bytes, signature: bytes) -> bool:
    """Does ``signature`` over ``message`` verify for ``key_id`` (ed25519:HEX or secp256k1:ADDRESS)?

    A pure function of its arguments, memoised: re-verifying the same ledger's heads is free.
    """
    scheme, _, ident = key_id.partition(":")
    if scheme == "ed25519":
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(ident)).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True
    if scheme == "secp256k1":
        try:
            recovered = EcdsaSignature.from_bytes(signature).recover(personal_message_digest(message))
        except (SignatureError, ValueError):
            return False
        return recovered.lower() == ident.lower()
    return False


def public_key_pem(key_id: str) -> str | None:
    """PEM of an Ed25519 key id (None for secp256k1 ids, whose address is the public identity)."""
    scheme, _, ident = key_id.partition(":")
    if scheme != "ed25519":
        return None
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(ident))
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
