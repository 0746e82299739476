"""Safe owner signatures: parse, verify, de-duplicate and pack them the way ``checkNSignatures`` reads.

Supported owner signature kinds (Safe v1.4.1):

* ``v ∈ {27, 28}`` — ECDSA over the safeTxHash (EIP-712 signing);
* ``v ∈ {31, 32}`` — ECDSA over ``"\\x19Ethereum Signed Message:\\n32" ‖ safeTxHash`` (``eth_sign``,
  what a device produces when it only signs hashes).

Every signature is normalised to low-s before it is stored: the Safe accepts the high-s twin too, so
without normalisation one approval could be counted twice under two encodings.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

from custody.exceptions import SignatureError
from custody.signers.ecdsa import EcdsaSignature
from custody.types import Address

ETH_SIGN_PREFIX = b"\x19Ethereum Signed Message:\n32"


@dataclass(frozen=True)
class OwnerSignature:
    """A verified owner signature for one safeTxHash, in the exact bytes the Safe will read."""

    signer: Address
    signature: bytes  # 65 bytes, low-s, v in {27,28,31,32}

    @property
    def kind(self) -> str:
        return "eth_sign" if self.signature[64] > 30 else "eip712"

    def to_hex(self) -> str:
        return "0x" + self.signature.hex()


def eth_sign_digest(safe_tx_hash: bytes) -> bytes:
    return keccak(ETH_SIGN_PREFIX + safe_tx_hash)


def verify_owner_signature(blob: bytes, safe_tx_hash: bytes) -> OwnerSignature:
    """Recover the signer of a 65-byte Safe owner signature over ``safe_tx_hash``; low-s normalised.

    Raises :class:`SignatureError` with a specific sentence for every malformed blob.
    """
    if not isinstance(blob, (bytes, bytearray)):
        raise SignatureError("signature must be bytes")
    if len(blob) != 65:
        raise SignatureError(f"a Safe owner signature is 65 bytes, got {len(blob)}")
    v = blob[64]
    if v in (27, 28):
        digest, base_v, offset = safe_tx_hash, v, 0
    elif v in (31, 32):
        digest, base_v, offset = eth_sign_digest(safe_tx_hash), v - 4, 4
    elif v in (0, 1):
        raise SignatureError(
            f"signature v={v} is a contract or approved-hash signature; only ECDSA owner signatures "
            "(v 27/28 or eth_sign 31/32) are accepted"
        )
    else:
        raise SignatureError(f"signature v={v} is not a valid Safe ECDSA v (27, 28, 31 or 32)")
    ecdsa = EcdsaSignature(int.from_bytes(blob[:32], "big"), int.from_bytes(blob[32:64], "big"), base_v).normalized()
    signer = ecdsa.recover(digest)
    packed = ecdsa.r.to_bytes(32, "big") + ecdsa.s.to_bytes(32, "big") + bytes([ecdsa.v + offset])
    return OwnerSignature(signer=signer, signature=packed)


def pack_signatures(signatures: list[OwnerSignature]) -> bytes:
    """Concatenate signatures sorted by signer address, as ``checkNSignatures`` requires."""
    by_signer: dict[int, OwnerSignature] = {}
    for sig in signatures:
        key = int(sig.signer, 16)
        if key in by_signer:
            raise SignatureError(f"two signatures from {sig.signer}; each owner counts once")
        by_signer[key] = sig
    return b"".join(by_signer[k].signature for k in sorted(by_signer))
