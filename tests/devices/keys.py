"""The device doubles' seed: a public BIP-39 test mnemonic (never use it for real funds)."""

from __future__ import annotations

import coincurve
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_utils import keccak, to_checksum_address

TEST_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

_seed = seed_from_mnemonic(TEST_MNEMONIC, passphrase="")
_cache: dict[str, bytes] = {}


def path_text(indices: list[int]) -> str:
    return "m/" + "/".join(f"{i & 0x7FFFFFFF}'" if i & 0x80000000 else str(i) for i in indices)


def private_key(path: str) -> bytes:
    if path not in _cache:
        _cache[path] = key_from_seed(_seed, path)
    return _cache[path]


def public_key(path: str) -> bytes:
    return coincurve.PrivateKey(private_key(path)).public_key.format(compressed=False)


def address(path: str) -> str:
    return to_checksum_address(keccak(public_key(path)[1:])[-20:])


def sign(path: str, digest: bytes, *, high_s: bool = False) -> tuple[int, int, int]:
    """(parity 0/1, r, s) — optionally the high-s twin, as some devices return."""
    raw = coincurve.PrivateKey(private_key(path)).sign_recoverable(digest, hasher=None)
    r, s, parity = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]
    if high_s:
        s, parity = N - s, parity ^ 1
    return parity, r, s
