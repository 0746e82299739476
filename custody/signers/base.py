"""The Signer protocol: one interface for keystores, HSMs, hardware wallets and dev keys.

A signer knows its address and produces four kinds of signature:

* ``sign_safe_tx``   — a Safe owner signature (65 bytes) over a :class:`~custody.safe.safe_tx.SafeTx`;
* ``sign_typed_data``— any EIP-712 payload (attestations, permits);
* ``sign_transaction``— a raw EIP-1559 transaction, chain id checked;
* ``sign_message``   — EIP-191 ``personal_sign``.

Backends that can sign an arbitrary 32-byte digest (keystores, PKCS#11 tokens, dev keys) derive all
four from one ``_sign_digest`` by subclassing :class:`DigestSigner`. Hardware wallets implement the
protocol directly so that the device sees (and shows) structured data instead of a bare hash.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol, runtime_checkable

from eth_account.messages import _hash_eip191_message, encode_defunct, encode_typed_data
from eth_utils import keccak

from custody.exceptions import SignatureError, SignerError
from custody.safe.safe_tx import SafeTx
from custody.signers import _tx
from custody.signers.ecdsa import EcdsaSignature
from custody.types import Address


@runtime_checkable
class Signer(Protocol):
    """What every signing backend offers."""

    uri: str

    @property
    def address(self) -> Address: ...

    def sign_safe_tx(self, safe_tx: SafeTx) -> bytes: ...

    def sign_typed_data(self, typed_data: dict[str, Any]) -> EcdsaSignature: ...

    def sign_transaction(self, tx: dict[str, Any], *, chain_id: int) -> bytes: ...

    def sign_message(self, message: bytes) -> EcdsaSignature: ...


def typed_data_digest(typed_data: dict[str, Any]) -> bytes:
    """EIP-712 digest of a full ``eth_signTypedData_v4`` payload."""
    try:
        signable = encode_typed_data(full_message=typed_data)
    except Exception as exc:  # eth-account raises a zoo of types for malformed payloads
        raise SignerError(f"malformed EIP-712 payload: {exc}") from exc
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def personal_message_digest(message: bytes) -> bytes:
    return _hash_eip191_message(encode_defunct(primitive=message))


class DigestSigner(ABC):
    """Base for backends that sign raw 32-byte digests; everything else is derived here, once."""

    uri: str

    @property
    @abstractmethod
    def address(self) -> Address: ...

    @abstractmethod
    def _sign_digest(self, digest: bytes) -> EcdsaSignature:
        """Sign exactly ``digest`` and return a low-s signature that recovers to ``address``."""

    def _checked(self, digest: bytes) -> EcdsaSignature:
        signature = self._sign_digest(digest).normalized()
        if signature.recover(digest) != self.address:
            raise SignatureError(f"{self.uri} produced a signature that does not recover to {self.address}")
        return signature

    def sign_safe_tx(self, safe_tx: SafeTx) -> bytes:
        return self._checked(safe_tx.safe_tx_hash).to_bytes()

    def sign_typed_data(self, typed_data: dict[str, Any]) -> EcdsaSignature:
        return self._checked(typed_data_digest(typed_data))

    def sign_message(self, message: bytes) -> EcdsaSignature:
        return self._checked(personal_message_digest(message))

    def sign_transaction(self, tx: dict[str, Any], *, chain_id: int) -> bytes:
        unsigned = _tx.unsigned(tx, chain_id=chain_id)
        signature = self._checked(unsigned.hash())
        return _tx.encode(unsigned, signature)

    def __repr__(self) -> str:  # never show key material, only where the key lives
        return f"<{type(self).__name__} {self.uri} {self.address}>"
