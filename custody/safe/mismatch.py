"""Why a well-formed owner signature does not approve this transaction: name the cause.

A signature that recovers to a non-owner is usually an owner's signature of something else. Before
saying "not an owner", :func:`explain_mismatch` tries the usual mistakes and names the one that fits:

* an EIP-712 signature marked as ``eth_sign`` (v 31/32), or an ``eth_sign`` one marked EIP-712 (v 27/28);
* an owner's signature of the same transaction with another nonce (nearby nonces) or for another chain id
  (the chains custody knows, and a few common ones);
* else: the address it recovers to, which is not among the vault's owners.
"""

from __future__ import annotations

from collections.abc import Iterable

from custody.exceptions import SignatureError
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import eth_sign_digest
from custody.signers.ecdsa import EcdsaSignature

NONCE_SPAN = 8  # nonces tried on either side of the transaction's
CHAIN_IDS = (1, 5, 10, 56, 100, 137, 250, 324, 1101, 8453, 17000, 42161, 43114, 59144, 11155111, 31337, 1337)


def _recover(blob: bytes, digest: bytes, v: int) -> str | None:
    try:
        return (
            EcdsaSignature(int.from_bytes(blob[:32], "big"), int.from_bytes(blob[32:64], "big"), v)
            .normalized()
            .recover(digest)
        )
    except (SignatureError, ValueError):
        return None


def _owner_of(blob: bytes, digest: bytes, owners: set[str]) -> str | None:
    """The owner ``blob`` recovers to over ``digest`` as an EIP-712 (v 27/28) or eth_sign (v 31/32) signature."""
    v = blob[64] - 4 if blob[64] in (31, 32) else blob[64]
    signer = _recover(blob, digest if blob[64] in (27, 28) else eth_sign_digest(digest), v)
    return signer if signer is not None and signer.lower() in owners else None


def explain_mismatch(blob: bytes, safe_tx: SafeTx, owners: Iterable[str], recovered: str) -> str:
    """One sentence saying why ``blob`` (recovering to ``recovered``) does not approve ``safe_tx``."""
    owners = {o.lower() for o in owners}
    v = blob[64]
    if v in (31, 32):
        signer = _recover(blob, safe_tx.safe_tx_hash, v - 4)
        if signer is not None and signer.lower() in owners:
            return (
                f"the signature is marked eth_sign (v={v}) but is owner {signer}'s EIP-712 signature of this "
                f"transaction: its v must be {v - 4}"
            )
    elif v in (27, 28):
        signer = _recover(blob, eth_sign_digest(safe_tx.safe_tx_hash), v)
        if signer is not None and signer.lower() in owners:
            return (
                f"the signature is marked EIP-712 (v={v}) but is owner {signer}'s eth_sign signature of this "
                f"transaction: its v must be {v + 4}"
            )
    for delta in range(1, NONCE_SPAN + 1):
        for nonce in (safe_tx.nonce + delta, safe_tx.nonce - delta):
            if nonce < 0:
                continue
            signer = _owner_of(blob, safe_tx.with_nonce(nonce).safe_tx_hash, owners)
            if signer is not None:
                return (
                    f"the signature is owner {signer}'s signature of this transaction with nonce {nonce}, "
                    f"but this transaction has nonce {safe_tx.nonce}"
                )
    # well-known chains, then the ids next to this one (a second local node or fork is usually id + 1)
    neighbours = [safe_tx.chain_id + d for d in (1, -1, 2, -2) if safe_tx.chain_id + d > 0]
    for chain_id in dict.fromkeys([*CHAIN_IDS, *neighbours]):
        if chain_id == safe_tx.chain_id:
            continue
        other = SafeTx(**{**{k: v for k, v in safe_tx.__dict__.items() if k != "_hash_cache"}, "chain_id": chain_id})
        signer = _owner_of(blob, other.safe_tx_hash, owners)
        if signer is not None:
            return (
                f"the signature is owner {signer}'s signature of this transaction for chain id {chain_id}, "
                f"but vault {safe_tx.safe} is on chain id {safe_tx.chain_id}"
            )
    return f"the signature recovers to {recovered}, which is not an owner of vault {safe_tx.safe}"
