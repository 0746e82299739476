"""Ledger integrity, chain-free and exact: which sequence number each kind of damage is blamed on.

A small real ledger (SQLite, synthetic entries) is read into rows; each test damages a copy of the rows the
way an attacker would and checks the problems ``check_rows`` reports — code, sequence and message — and
``first_bad_sequence``'s narrowing of a head's range to the first precise finding inside it.
"""

from __future__ import annotations

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custody.audit.integrity import Problem, check_rows, first_bad_sequence
from custody.audit.keys import Ed25519LedgerKey, SignedHead, head_message
from custody.audit.ledger import Ledger
from custody.audit.merkle import MerkleTree, leaf_hash
from custody.harness.synthetic import fill
from custody.store import Store

SIZE = 12


@pytest.fixture(scope="module")
def clean_rows(tmp_path_factory) -> list[tuple[int, bytes, bytes]]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('ledger') / 'ledger.db'}")
    ledger = Ledger(store)
    fill(ledger, SIZE)
    rows = list(ledger.rows())
    store.close()
    return rows


def _edit(rows, seq: int, **fields) -> list[tuple[int, bytes, bytes]]:
    """``rows`` with entry ``seq``'s fields changed and its leaf hash recomputed (an attacker's rewrite)."""
    out = list(rows)
    data = orjson.loads(out[seq][2])
    data.update(fields)
    blob = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    out[seq] = (seq, leaf_hash(blob), blob)
    return out


def _found(rows) -> list[tuple[str, int | None]]:
    return sorted((p.code, p.sequence) for p in check_rows(rows, []).problems)


def test_the_clean_ledger_has_no_problem(clean_rows):
    assert check_rows(clean_rows, []).ok


@pytest.mark.parametrize("seq", [3, 7])
def test_a_changed_entry_is_blamed_not_its_successor(clean_rows, seq):
    # entry seq changed (leaf recomputed): only the link from seq + 1 breaks, and seq is the culprit
    assert _found(_edit(clean_rows, seq, actor="mallory")) == [("chain_break", seq)]


@pytest.mark.parametrize("seq", [4, 8])
def test_a_changed_link_breaks_two_links_and_blames_the_entry(clean_rows, seq):
    rows = _edit(clean_rows, seq, prev="11" * 32)
    assert _found(rows) == [("chain_break", seq), ("chain_break", seq)]


def test_the_last_and_the_first_entry_blame_their_own_link(clean_rows):
    assert _found(_edit(clean_rows, SIZE - 1, prev="22" * 32)) == [("chain_break", SIZE - 1)]
    assert _found(_edit(clean_rows, 0, prev="33" * 32)) == [("chain_break", 0), ("chain_break", 0)]


def test_deleted_rows_are_named_with_their_range(clean_rows):
    rows = [r for r in clean_rows if not 5 <= r[0] <= 7]
    problems = [p for p in check_rows(rows, []).problems if p.code == "missing_entries"]
    assert [(p.sequence, p.message) for p in problems] == [(5, "entries 5..7 are missing (deleted)")]


def test_first_bad_sequence_narrows_a_head_range_to_the_first_precise_finding_inside_it():
    ranged = Problem(5, "head_root_mismatch", "", until=9)
    assert first_bad_sequence([ranged, Problem(7, "leaf_mismatch", ""), Problem(8, "leaf_mismatch", "")]) == 7
    # a finding at the range's end is outside it: the range's bound stands
    assert first_bad_sequence([ranged, Problem(9, "leaf_mismatch", ""), Problem(12, "leaf_mismatch", "")]) == 5
    # a range's own bound is no precise finding of another range
    other = Problem(2, "head_signature", "", until=6)
    assert first_bad_sequence([other, ranged, Problem(7, "chain_break", "")]) == 2
    assert first_bad_sequence([Problem(None, "anchor_mismatch", "")]) is None


def _signed_heads(rows, sizes, key: Ed25519LedgerKey, log_id: str = "log") -> list[SignedHead]:
    """Correct heads of ``rows`` at ``sizes``, signed by ``key``."""
    tree = MerkleTree([leaf_hash(blob) for _seq, _leaf, blob in rows])
    return [
        SignedHead(log_id, size, tree.root(size), 1_767_693_600 + size, key.key_id,
                   key.sign(head_message(log_id, size, tree.root(size), 1_767_693_600 + size)))
        for size in sizes
    ]  # fmt: skip


def test_a_bad_head_is_blamed_from_the_largest_verified_head_below_it_or_from_entry_0(clean_rows):
    trusted, stranger = (Ed25519LedgerKey(Ed25519PrivateKey.generate()) for _ in range(2))
    heads = _signed_heads(clean_rows, [4], trusted) + _signed_heads(clean_rows, [2, 9], stranger)
    result = check_rows(clean_rows, heads, trusted_keys=[trusted.key_id])
    assert result.verified_sizes == [4]
    # nothing verified below size 2: the damage may lie anywhere from entry 0; size 9: from the head at 4
    assert [(p.code, p.sequence, p.until) for p in result.problems] == [
        ("untrusted_key", 0, 2),
        ("untrusted_key", 4, 9),
    ]
    assert first_bad_sequence(result.problems) == 0


def _changed_under_its_leaf(rows, seq: int) -> list[tuple[int, bytes, bytes]]:
    """``rows`` with entry ``seq`` changed but its stored leaf hash kept (an attacker who forgot it)."""
    data = orjson.loads(rows[seq][2])
    data["actor"] = "mallory"
    out = list(rows)
    out[seq] = (seq, rows[seq][1], orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    return out


def test_a_changed_entry_under_its_stored_leaf_hash_is_a_leaf_mismatch_and_rows_without_one_are_not(clean_rows):
    assert ("leaf_mismatch", 5) in _found(_changed_under_its_leaf(clean_rows, 5))
    unhashed = [(s, None, blob) for s, _leaf, blob in clean_rows]  # rows that record no leaf hash
    assert check_rows(unhashed, []).ok


def test_a_break_names_the_link_and_the_report_lists_problems_in_sequence_order(clean_rows):
    # found while scanning: the leaf mismatch at 9; after the scan: the breaks blamed on 3 and 9
    result = check_rows(_changed_under_its_leaf(_edit(clean_rows, 3, actor="mallory"), 9), [])
    assert [p.sequence for p in result.problems] == [9, 3, 9]
    assert {p.message for p in result.problems if p.code == "chain_break"} == {
        "entry 4 does not link to the recomputed hash of entry 3",
        "entry 10 does not link to the recomputed hash of entry 9",
    }
    assert [p["sequence"] for p in result.as_dict()["problems"]] == [3, 9, 9]


def test_entries_of_the_kinds_of_interest_are_kept_and_no_others(clean_rows):
    kinds = [orjson.loads(blob)["kind"] for _seq, _leaf, blob in clean_rows]
    wanted = kinds[0]
    kept = check_rows(clean_rows, [], interest=frozenset({wanted})).interesting
    assert [e["seq"] for e in kept] == [i for i, kind in enumerate(kinds) if kind == wanted]
    assert check_rows(clean_rows, [], interest=frozenset()).interesting == []


def test_a_head_beyond_the_log_names_the_missing_tail(clean_rows):
    key = Ed25519LedgerKey(Ed25519PrivateKey.generate())
    result = check_rows(clean_rows[: SIZE - 2], _signed_heads(clean_rows, [SIZE], key))
    (beyond,) = [p for p in result.problems if p.code == "head_beyond_log"]
    assert beyond.sequence == SIZE - 2
    assert beyond.message.endswith(
        f"covers {SIZE} entries but the log has {SIZE - 2}: entries 10..11 are missing (truncated)"
    )


def test_a_head_over_another_root_names_both_roots_by_their_first_16_hex_digits(clean_rows):
    key = Ed25519LedgerKey(Ed25519PrivateKey.generate())
    forked = b"\xab" * 32
    head = SignedHead(
        "log", 4, forked, 1_767_693_604, key.key_id, key.sign(head_message("log", 4, forked, 1_767_693_604))
    )
    result = check_rows(clean_rows, [head])
    real = MerkleTree([leaf_hash(blob) for _seq, _leaf, blob in clean_rows]).root(4)
    (mismatch,) = [p for p in result.problems if p.code == "head_root_mismatch"]
    assert (mismatch.sequence, mismatch.until) == (0, 4)
    assert mismatch.message == (
        f"head None (size 4) signs root {'ab' * 8}…, but the entries recompute to {real.hex()[:16]}… (forked or rewritten)"
    )


def test_entries_under_no_signed_head_are_named_from_the_largest_verified_head(clean_rows):
    key = Ed25519LedgerKey(Ed25519PrivateKey.generate())
    result = check_rows(clean_rows, _signed_heads(clean_rows, [3, 7], key), require_signed=True)
    (tail,) = [p for p in result.problems if p.code == "unsigned_entries"]
    assert tail.sequence == 7 and tail.message.startswith(f"entries 7..{SIZE - 1} are under no signed head; ")


def _relinked(rows, seq: int) -> list[tuple[int, bytes, bytes]]:
    """``rows`` with entry ``seq``'s link forged and every later entry re-linked to the rewritten history, so only
    the link at ``seq`` breaks: the break alone would blame entry ``seq - 1``."""
    rows = _edit(rows, seq, prev="11" * 32)
    for later in range(seq + 1, len(rows)):
        rows = _edit(rows, later, prev=rows[later - 1][1].hex())
    return rows


def test_a_break_right_above_a_verified_head_blames_the_break_not_the_proven_entry_below(clean_rows):
    key = Ed25519LedgerKey(Ed25519PrivateKey.generate())
    heads = _signed_heads(clean_rows, [4, 8], key)  # signed before the forgery; entries 0..3 stay as signed
    result = check_rows(_relinked(clean_rows, 4), heads, trusted_keys=[key.key_id])
    assert result.verified_sizes == [4]
    assert [(p.code, p.sequence) for p in result.problems if p.code == "chain_break"] == [("chain_break", 4)]


def test_a_verified_head_above_a_contradicting_one_proves_nothing_past_the_contradiction(clean_rows):
    key = Ed25519LedgerKey(Ed25519PrivateKey.generate())
    forged_root = MerkleTree([leaf_hash(b"x")] * 8).root(8)
    forged = SignedHead("log", 8, forged_root, 1_767_693_608, key.key_id,
                        key.sign(head_message("log", 8, forged_root, 1_767_693_608)))  # fmt: skip
    heads = [*_signed_heads(clean_rows, [4, 10], key), forged]
    result = check_rows(_relinked(clean_rows, 10), heads, trusted_keys=[key.key_id])
    assert result.verified_sizes == [4, 10]
    assert ("head_root_mismatch", 4) in [(p.code, p.sequence) for p in result.problems]
    # the head at 10 vouches for nothing past the forged head at 8, so the break at 10 blames entry 9
    assert [(p.code, p.sequence) for p in result.problems if p.code == "chain_break"] == [("chain_break", 9)]
