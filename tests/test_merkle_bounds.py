"""Merkle proofs outside the tree are refused, not silently computed (chain-free)."""

import pytest

from custody.audit.merkle import MerkleTree, leaf_hash, node_hash, verify_consistency


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


def test_a_consistency_proof_from_a_larger_tree_to_a_smaller_one_is_refused_even_when_its_hashes_line_up():
    a, b, c = (leaf_hash(bytes([i])) for i in range(3))
    second_root = node_hash(node_hash(a, b), c)  # what the proof's steps would compute for first=5, second=3
    assert not verify_consistency(5, 3, a, second_root, [a, b, c])
