"""Keccak-256 for hot paths: safe-pysha3's C implementation, several times faster than eth-utils'
pycryptodome backend on short inputs (SafeTx hashes, bar ids). Same digests; eth-utils is the fallback."""

from __future__ import annotations

from collections.abc import Callable

from eth_utils import keccak as _eth_utils_keccak

keccak256: Callable[[bytes], bytes]
try:
    from sha3 import keccak_256 as _keccak_256

    def keccak256(data: bytes) -> bytes:
        """Keccak-256 digest of ``data`` (Ethereum's hash, not NIST SHA3-256)."""
        digest: bytes = _keccak_256(data).digest()
        return digest

except ImportError:  # pragma: no cover - safe-pysha3 is a pinned dependency
    keccak256 = _eth_utils_keccak
