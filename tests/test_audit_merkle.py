"""RFC 6962/9162 Merkle hashing and proofs against a reference written straight from the RFC's recursive
definitions; canonical JSON against the standard library's encoder."""

from __future__ import annotations

import hashlib
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.audit.entries import Entry, canonical_json
from custody.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MerkleTree,
    leaf_hash,
    leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from custody.exceptions import AuditError


def _mth(leaves: list[bytes]) -> bytes:  # RFC 9162 §2.1.1, recursive, on raw entries
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _path(m: int, leaves: list[bytes]) -> list[bytes]:  # RFC 9162 §2.1.3.1
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_path(m, leaves[:k]), _mth(leaves[k:])]
    return [*_path(m - k, leaves[k:]), _mth(leaves[:k])]


def _subproof(m: int, leaves: list[bytes], b: bool) -> list[bytes]:  # RFC 9162 §2.1.4.1
    n = len(leaves)
    if m == n:
        return [] if b else [_mth(leaves)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return [*_subproof(m, leaves[:k], b), _mth(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), _mth(leaves[:k])]


ENTRIES = [f"entry-{i}".encode() * (i % 3 + 1) for i in range(70)]


def test_empty_tree_and_domain_separation():
    assert MerkleTree([]).root() == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest() != hashlib.sha256(b"x").digest()
    # a leaf can never be confused with an inner node: 0x00 vs 0x01 prefixes
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert MerkleTree([left, right]).root() != leaf_hash(left + right)


def test_roots_match_the_rfc_definition_for_every_size():
    for n in range(0, 70):
        tree = MerkleTree(leaf_hashes(ENTRIES[:n]))
        assert tree.root() == _mth(ENTRIES[:n]), n
        frontier = Frontier()
        for leaf in leaf_hashes(ENTRIES[:n]):
            frontier.push(leaf)
        assert frontier.root() == tree.root()
        assert Frontier.from_bytes(n, frontier.to_bytes()).root() == tree.root()


def test_inclusion_proofs_for_every_leaf_and_size():
    tree = MerkleTree(leaf_hashes(ENTRIES[:40]))
    for size in range(1, 41):
        root = _mth(ENTRIES[:size])
        for index in range(size):
            path = tree.inclusion_path(index, size)
            assert path == _path(index, ENTRIES[:size])
            assert verify_inclusion(index, size, leaf_hash(ENTRIES[index]), path, root)
            assert not verify_inclusion(index, size, leaf_hash(b"forged"), path, root)
            if path:
                bad = list(path)
                bad[len(bad) // 2] = bytes(32)
                assert not verify_inclusion(index, size, leaf_hash(ENTRIES[index]), bad, root)


def test_consistency_proofs_for_every_pair_of_sizes():
    tree = MerkleTree(leaf_hashes(ENTRIES[:40]))
    for second in range(1, 41):
        for first in range(1, second + 1):
            proof = tree.consistency_path(first, second)
            assert proof == _subproof(first, ENTRIES[:second], True)
            r1, r2 = _mth(ENTRIES[:first]), _mth(ENTRIES[:second])
            assert verify_consistency(first, second, r1, r2, proof)
            if first < second:
                assert not verify_consistency(first, second, _mth([b"other", *ENTRIES[1:first]]), r2, proof)
                assert not verify_consistency(first, second, r1, _mth([*ENTRIES[: second - 1], b"x"]), proof)
                assert not verify_consistency(first, second, r1, r2, proof[:-1])


def test_random_proofs_on_a_larger_tree():
    rng = random.Random(5)
    entries = [rng.randbytes(40) for _ in range(1000)]
    tree = MerkleTree(leaf_hashes(entries))
    for _ in range(200):
        size = rng.randint(1, 1000)
        index = rng.randrange(size)
        assert verify_inclusion(
            index, size, leaf_hash(entries[index]), tree.inclusion_path(index, size), tree.root(size)
        )
        first = rng.randint(1, size)
        assert verify_consistency(first, size, tree.root(first), tree.root(size), tree.consistency_path(first, size))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_json_equals_the_standard_library_form(value):
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert canonical_json(value) == expected


@pytest.mark.parametrize("bad", [{"amount": 1.5}, {"n": 2**64}, {"x": [0.0]}, {"k": {1: "a"}}, {"b": b"bytes"}])
def test_canonical_json_refuses_floats_big_ints_and_odd_types(bad):
    with pytest.raises(AuditError):
        canonical_json(bad)


def test_entry_parse_is_strict():
    entry = Entry(seq=3, time="2026-01-06T10:00:00Z", kind="execution", actor="a", vault="v", chain_id=1,
                  refs={"tx_hash": "0x" + "11" * 32}, payload={"value": "5"})  # fmt: skip
    blob = entry.canonical()
    assert Entry.parse(blob) == entry
    for broken in (blob.replace(b'"seq":3', b'"seq": 3'), blob.replace(b"execution", b"exfiltration"), blob[:-1]):
        with pytest.raises(AuditError):
            Entry.parse(broken)
