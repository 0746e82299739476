"""Merkle proofs outside the tree are refused, not silently computed (chain-free)."""

import pytest

from custody.audit.merkle import MerkleTree, leaf_hash


@pytest.mark.parametrize(("first", "second"), [(0, 3), (4, 3), (3, 6), (-1, 2)])
def test_no_consistency_proof_outside_the_tree(first, second):
    tree = MerkleTree([leaf_hash(bytes([i])) for i in range(5)])
    with pytest.raises(ValueError, match=f"no consistency proof from size {first} to size {second} \\(tree size 5\\)"):
        tree.consistency_path(first, second)


@pytest.mark.parametrize(("index", "size"), [(3, 3), (5, None), (-1, 3), (0, 0), (2, 6)])
def test_no_inclusion_path_outside_the_tree(index, size):
    tree = MerkleTree([leaf_hash(bytes([i])) for i in range(5)])
    n = 5 if size is None else size
    with pytest.raises(ValueError, match=f"no entry {index} in a tree of size {n}$"):
        tree.inclusion_path(index, size)
    if 0 < n <= 5:  # the last entry of that tree has one
        assert tree.inclusion_path(n - 1, size) is not None
