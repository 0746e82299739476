"""RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and consistency proofs, and their verifiers.

* leaf hash ``SHA-256(0x00 ‖ entry)``, node hash ``SHA-256(0x01 ‖ left ‖ right)``, empty tree
  ``SHA-256("")``; a tree of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than
  ``n`` (RFC 9162 §2.1.1).
* :class:`MerkleTree` keeps every *full* subtree (level ``h`` holds the hashes of aligned blocks of
  ``2**h`` leaves), built level by level with list comprehensions — the same root as the RFC's
  recursive definition (an odd node is carried up unchanged), computed with one ``sha256`` call per
  node and no per-node Python objects besides the digests. Any ``MTH(D[a:b])`` is then a few lookups.
* :class:`Frontier` is the compact form used while appending: the hashes of the full subtrees of the
  binary decomposition of the size (largest first); pushing a leaf merges O(1) nodes amortised, and
  the root is their right fold.
* Proof generation follows RFC 9162 §2.1.3.1 (``PATH``) and §2.1.4.1 (``PROOF``/``SUBPROOF``);
  verification follows the RFC's iterative algorithms §2.1.3.2 and §2.1.4.2 literally.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

EMPTY_ROOT = sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    return [sha256(b"\x00" + e).digest() for e in entries]


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """A tree over given leaf hashes; every full, aligned subtree hash precomputed."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        levels = [list(leaves)]
        current = levels[0]
        while len(current) > 1:
            # zip stops at the shorter slice: an odd last node is not a full subtree at the next level
            current = [sha256(b"\x01" + a + b).digest() for a, b in zip(current[0::2], current[1::2])]
            levels.append(current)
        self.levels = levels
        self._partial: dict[tuple[int, int], bytes] = {}  # right-edge subtrees, shared by roots and proofs

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def hash(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for 0 <= start <= end <= size."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self.levels[n.bit_length() - 1][start // n]
        cached = self._partial.get((start, end))
        if cached is None:
            k = _split(n)
            cached = self._partial[start, end] = node_hash(self.hash(start, start + k), self.hash(start + k, end))
        return cached

    def root(self, size: int | None = None) -> bytes:
        return self.hash(0, self.size if size is None else size)

    def inclusion_path(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(index, D[0:size])."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"no entry {index} in a tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _split(n)
        if m < k:
            return [*self._path(m, start, start + k), self.hash(start + k, end)]
        return [*self._path(m - k, start + k, end), self.hash(start, start + k)]

    def consistency_path(self, first: int, second: int | None = None) -> list[bytes]:
        """RFC 9162 PROOF(first, D[0:second])."""
        second = self.size if second is None else second
        if not 0 < first <= second <= self.size:
            raise ValueError(f"no consistency proof from size {first} to size {second} (tree size {self.size})")
        return self._subproof(first, 0, second, True)

    def _subproof(self, m: int, start: int, end: int, complete: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if complete else [self.hash(start, end)]
        k = _split(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, complete), self.hash(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.hash(start, start + k)]


class Frontier:
    """Compact range of an append-only tree: full-subtree hashes of the size's binary decomposition."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ValueError(f"a frontier of size {size} has {bin(size).count('1')} hashes, got {len(hashes)}")
        self.size = size
        self.hashes = list(hashes)

    def push(self, leaf: bytes) -> None:
        node, size = leaf, self.size
        while size & 1:
            node = node_hash(self.hashes.pop(), node)
            size >>= 1
        self.hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        root = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            root = node_hash(left, root)
        return root

    def to_bytes(self) -> bytes:
        return b"".join(self.hashes)

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        return cls(size, [blob[i : i + 32] for i in range(0, len(blob), 32)])


# -- proofs as values -------------------------------------------------------------------------------
@dataclass(frozen=True)
class InclusionProof:
    """Entry ``index`` is the leaf ``leaf`` of the tree of ``size`` leaves (RFC 9162 §2.1.3)."""

    index: int
    size: int
    leaf: bytes
    path: tuple[bytes, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "leaf_hash": self.leaf.hex(),
            "path": [p.hex() for p in self.path],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InclusionProof:
        return cls(
            int(data["index"]),
            int(data["size"]),
            bytes.fromhex(data["leaf_hash"]),
            tuple(bytes.fromhex(p) for p in data["path"]),
        )

    def verify(self, root: bytes) -> bool:
        return verify_inclusion(self.index, self.size, self.leaf, self.path, root)


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of ``first`` leaves is a prefix of the tree of ``second`` leaves (RFC 9162 §2.1.4)."""

    first: int
    second: int
    path: tuple[bytes, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "path": [p.hex() for p in self.path]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConsistencyProof:
        return cls(int(data["first"]), int(data["second"]), tuple(bytes.fromhex(p) for p in data["path"]))

    def verify(self, first_root: bytes, second_root: bytes) -> bool:
        return verify_consistency(self.first, self.second, first_root, second_root, self.path)


# -- verifiers (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------------------------------------
def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    if first <= 0 or first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a subtree of the proof
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
