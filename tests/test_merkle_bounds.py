"""Merkle proofs outside the tree are refused, not silently computed (chain-free)."""

import pytest

from custody.audit.merkle import MerkleTree, leaf_hash


@pytest.mark.parametrize(("first", "second"), [(0, 3), (4, 3), (3, 6), (-1, 2)])
def test_no_consistency_proof_outside_the_tree(first, second):
    tree = MerkleTree([leaf_hash(bytes([i])) for i in range(5)])
    with pytest.raises(ValueError, match=f"no consistency proof from size {first} to size {second} \\(tree size 5\\)"):
        tree.consistency_path(first, second)
