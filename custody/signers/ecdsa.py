"""secp256k1 ECDSA signatures as values: parse, low-s normalise, recover (coincurve)."""

from __future__ import annotations

from dataclasses import dataclass

import coincurve
from eth_utils import keccak, to_checksum_address

from custody.exceptions import SignatureError
from custody.types import Address

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2


def address_from_public_key(public_key: bytes) -> Address:
    """Ethereum address of an uncompressed (65-byte, 0x04-prefixed) or compressed public key."""
    if len(public_key) == 33:
        public_key = coincurve.PublicKey(public_key).format(compressed=False)
    if len(public_key) != 65 or public_key[0] != 4:
        raise SignatureError(f"not a secp256k1 public key ({len(public_key)} bytes)")
    return Address(to_checksum_address(keccak(public_key[1:])[-20:]))


@dataclass(frozen=True)
class EcdsaSignature:
    """``(r, s, v)`` with ``v`` in {27, 28}; always kept low-s once built via :meth:`normalized`."""

    r: int
    s: int
    v: int

    def __post_init__(self) -> None:
        if not 0 < self.r < SECP256K1_N:
            raise SignatureError(f"signature r={_scalar(self.r)} is out of range (must be 1..n-1)")
        if not 0 < self.s < SECP256K1_N:
            raise SignatureError(f"signature s={_scalar(self.s)} is out of range (must be 1..n-1)")
        if self.v not in (27, 28):
            raise SignatureError(f"signature v must be 27 or 28, got {self.v}")

    @property
    def is_low_s(self) -> bool:
        return self.s <= HALF_N

    def normalized(self) -> EcdsaSignature:
        """The low-s twin (EIP-2): ``s' = n - s`` flips the recovery parity."""
        if self.is_low_s:
            return self
        return EcdsaSignature(self.r, SECP256K1_N - self.s, 55 - self.v)

    def to_bytes(self) -> bytes:
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.v])

    def to_hex(self) -> str:
        return "0x" + self.to_bytes().hex()

    @classmethod
    def from_bytes(cls, blob: bytes) -> EcdsaSignature:
        if len(blob) != 65:
            raise SignatureError(f"an ECDSA signature is 65 bytes (r, s, v), got {len(blob)}")
        v = blob[64]
        if v in (0, 1):
            v += 27
        return cls(int.from_bytes(blob[:32], "big"), int.from_bytes(blob[32:64], "big"), v)

    @classmethod
    def from_rs_recover(cls, r: int, s: int, digest: bytes, expected: Address) -> EcdsaSignature:
        """Build a low-s signature from raw ``r‖s`` (as HSMs return) by finding ``v`` through recovery."""
        if s > HALF_N:
            s = SECP256K1_N - s
        for v in (27, 28):
            candidate = cls(r, s, v)
            if candidate.recover(digest) == expected:
                return candidate
        raise SignatureError(f"signature over {digest.hex()} does not recover to {expected} with either parity")

    def recover(self, digest: bytes) -> Address:
        """Signer address for a 32-byte digest."""
        if len(digest) != 32:
            raise SignatureError(f"digest must be 32 bytes, got {len(digest)}")
        compact = self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.v - 27])
        try:
            public_key = coincurve.PublicKey.from_signature_and_message(compact, digest, hasher=None)
        except Exception as exc:  # coincurve raises bare Exception on unrecoverable input
            raise SignatureError("signature does not recover to any public key") from exc
        return address_from_public_key(public_key.format(compressed=False))


def sign_digest_with_key(private_key: bytes, digest: bytes) -> EcdsaSignature:
    """Deterministic (RFC 6979) low-s signature with a raw private key; for local-key backends."""
    if len(digest) != 32:
        raise SignatureError(f"digest must be 32 bytes, got {len(digest)}")
    compact = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    return EcdsaSignature(
        int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:64], "big"), compact[64] + 27
    ).normalized()


def _scalar(value: int) -> str:
    """A signature scalar for an error message: 0, n (the curve order), n+k, or its hex."""
    if value == 0:
        return "0"
    if value >= SECP256K1_N and value - SECP256K1_N < 2**16:
        return "n" if value == SECP256K1_N else f"n+{value - SECP256K1_N}"
    return f"{value:#x}"
