"""The Merkle tree that anchors a batch of off-chain attestations with one on-chain timestamp.

Leaves and pairs follow OpenZeppelin's conventions, so a proof checks with ``MerkleProof.verify``
in Solidity as well as here:

* leaf  = keccak256(bytes.concat(keccak256(abi.encode(bytes32 uid))))   (StandardMerkleTree, ["bytes32"])
* node  = keccak256(min(a, b) ‖ max(a, b))                               (commutative pair hash)

Levels are built left to right; an odd node at the end of a level moves up unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils import keccak


def leaf(uid: bytes) -> bytes:
    if len(uid) != 32:
        raise ValueError("an attestation UID is 32 bytes")
    return keccak(keccak(uid))  # abi.encode(bytes32) is the 32 bytes themselves


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def levels(uids: Sequence[bytes]) -> list[list[bytes]]:
    if not uids:
        raise ValueError("a batch needs at least one attestation")
    level = [leaf(u) for u in uids]
    out = [level]
    while len(level) > 1:
        nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        out.append(nxt)
        level = nxt
    return out


def root(tree: list[list[bytes]]) -> bytes:
    return tree[-1][0]


def proof(tree: list[list[bytes]], index: int) -> list[bytes]:
    path = []
    for level in tree[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return path


def verify(uid: bytes, path: Sequence[bytes], expected_root: bytes) -> bool:
    node = leaf(uid)
    for sibling in path:
        node = hash_pair(node, sibling)
    return node == expected_root
