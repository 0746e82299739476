"""The engine's bar-id join is exact: ids are joined on their first 8 bytes only when those tell every distinct id
apart (checked each run); two different ids sharing a prefix — craftable with 2**32 work — are never matched.
Also chain-free, at the engine level: on-chain weights too large for the int64 fast path, and a batch allocated
twice (its provenance covers both allocations)."""

from __future__ import annotations

from array import array

from custody.reconcile.barlist import MILLI_OZ_UNITS, BarList, Coded, PackedIds, PackedText
from custody.reconcile.engine import _id_words, _join_keys, reconcile
from custody.reconcile.findings import FindingKind
from custody.reconcile.index import EventColumns, EventKind, OnchainRecord

PREFIX = bytes.fromhex("00112233445566ff")
LISTED = PREFIX + b"\x01" * 24  # on the list
IMPOSTOR = PREFIX + b"\x02" * 24  # allocated on-chain: the same first 8 bytes, another bar
OTHER = bytes(range(32))  # listed and allocated, a plain match
FINE = 400_000  # milli-oz


def bar_list(ids: list[bytes]) -> BarList:
    n = len(ids)
    return BarList(
        source="t.csv", sha256="0" * 64, format="csv", rows=range(2, 2 + n), serials=PackedText(f"S{i}" for i in range(n)),
        refiners=Coded(["PAMP"] * n), years=Coded([2020] * n), gross_milli=Coded([FINE] * n),
        fineness_tenths=Coded([9999] * n), fine_milli=Coded([FINE] * n), vault_locations=Coded(["London"] * n),
        custodians=Coded(["Loomis"] * n), bar_ids=PackedIds(b"".join(ids)),
    )  # fmt: skip


BATCH = b"\xbb" * 32


def record(allocated: list[bytes], weights: list[int] | None = None) -> OnchainRecord:
    """Each bar of ``allocated`` allocated once, in one batch (``weights`` in base units; FINE oz each unless given)."""
    n = len(allocated)
    weights = weights or [FINE * MILLI_OZ_UNITS] * n
    bars = EventColumns(array("b", [1] * n), array("q", [10] * n), array("q", range(n)),
                        PackedIds(b"".join(allocated)), [], [], weights)  # fmt: skip
    batches = EventColumns(array("b", [3]), array("q", [10]), array("q", [n]), [BATCH], [], [], [sum(weights)])
    empty = EventColumns(array("b"), array("q"), array("q"), [], [], [], [])
    return OnchainRecord(31337, "0x" + "ab" * 20, 10, bars, batches, empty, empty)


def test_ids_sharing_a_prefix_are_different_bars():
    result = reconcile(bar_list([LISTED, OTHER]), record([IMPOSTOR, OTHER]))
    found = {(f.kind, f.bar_id) for f in result.findings}
    assert found == {
        (FindingKind.LISTED_NOT_ALLOCATED, "0x" + LISTED.hex()),
        (FindingKind.ALLOCATED_NOT_IN_LIST, "0x" + IMPOSTOR.hex()),
    }
    assert result.totals.bars_verified == 1 and result.totals.verified_backing == FINE * MILLI_OZ_UNITS


def test_the_same_ids_still_match_when_prefixes_collide_elsewhere():
    result = reconcile(bar_list([LISTED, IMPOSTOR, OTHER]), record([IMPOSTOR, OTHER, LISTED]))
    assert result.findings == () and result.totals.bars_verified == 3
    assert dict(result.allocated) == {IMPOSTOR: 0, OTHER: 1, LISTED: 2}


def test_distinct_prefixes_are_the_join_keys_even_when_a_bar_has_several_events():
    """The fast path: no two distinct ids share their first 8 bytes, so each id's key is its first 64-bit word —
    also when one bar has several events (allocated, released, allocated again: the same id, not a collision)."""
    listed = _id_words([LISTED, OTHER], "the list")
    events = _id_words([OTHER, LISTED, OTHER, OTHER], "the events")
    list_keys, sorted_keys, order = _join_keys(listed, events)
    assert list_keys.tolist() == listed[:, 0].tolist()
    assert sorted_keys.tolist() == sorted(events[:, 0].tolist())
    assert order.tolist() == sorted(range(4), key=lambda i: int(events[i, 0]))  # stable: a bar's events in chain order


def test_a_shared_prefix_within_the_events_alone_switches_to_exact_keys():
    """Two different bars allocated on-chain with one prefix, neither listed: the list cannot reveal the
    collision, the events' own check must — else the two bars would replay as one, allocated twice."""
    listed = _id_words([OTHER], "the list")
    events = _id_words([LISTED, OTHER, IMPOSTOR], "the events")
    list_keys, sorted_keys, order = _join_keys(listed, events)
    key_of_event = dict(zip(order.tolist(), sorted_keys.tolist()))
    assert key_of_event[0] != key_of_event[2]  # LISTED and IMPOSTOR: one prefix, two keys
    assert list_keys.tolist() == [key_of_event[1]]
    result = reconcile(bar_list([OTHER]), record([LISTED, OTHER, IMPOSTOR]))
    assert [(f.kind, f.bar_id) for f in result.findings] == [
        (FindingKind.ALLOCATED_NOT_IN_LIST, "0x" + LISTED.hex()),
        (FindingKind.ALLOCATED_NOT_IN_LIST, "0x" + IMPOSTOR.hex()),
    ]


def test_on_chain_weights_beyond_the_int64_fast_path_are_compared_exactly():
    """A weight of 2**63 milli-oz (a uint256 holds far more) cannot be an int64: it is a mismatch, compared exactly,
    and verified backing counts the listed (smaller) weight — not an overflow."""
    huge = 2**63 * MILLI_OZ_UNITS
    result = reconcile(bar_list([LISTED, OTHER]), record([LISTED, OTHER], [huge, FINE * MILLI_OZ_UNITS]))
    (mismatch,) = result.findings
    assert (mismatch.kind, mismatch.bar_id) == (FindingKind.WEIGHT_MISMATCH, "0x" + LISTED.hex())
    assert mismatch.amounts == {"onchain_fine_weight": str(huge), "listed_fine_weight": str(FINE * MILLI_OZ_UNITS)}
    assert result.totals.verified_backing == 2 * FINE * MILLI_OZ_UNITS and result.totals.bars_verified == 2


def test_a_batch_allocated_twice_covers_mints_up_to_both_allocations():
    """The same batch content allocated again adds to what its provenance covers (the overcount itself is the
    duplicate-allocation finding); a mint beyond both allocations still exceeds it."""
    weight = FINE * MILLI_OZ_UNITS
    twice = EventColumns(
        array("b", [1, 1]), array("q", [10, 11]), array("q", [0, 0]), PackedIds(OTHER * 2), [], [], [weight, weight]
    )
    batches = EventColumns(
        array("b", [3, 3]), array("q", [10, 11]), array("q", [1, 1]), [BATCH, BATCH], [], [], [weight, weight]
    )
    empty = EventColumns(array("b"), array("q"), array("q"), [], [], [], [])

    def minting(amount: int):
        mint = EventColumns(
            array("b", [int(EventKind.MINTED)]),
            array("q", [12]),
            array("q", [0]),
            [BATCH],
            ["0x" + "cd" * 20],
            [],
            [amount],
        )
        return reconcile(bar_list([OTHER]), OnchainRecord(31337, "0x" + "ab" * 20, 12, twice, batches, mint, empty))

    assert {f.kind for f in minting(2 * weight).findings} == {FindingKind.DUPLICATE_ALLOCATION}
    over = {f.kind: f for f in minting(2 * weight + 1).findings}
    assert set(over) == {FindingKind.DUPLICATE_ALLOCATION, FindingKind.MINT_EXCEEDS_PROVENANCE}
    assert over[FindingKind.MINT_EXCEEDS_PROVENANCE].amounts["batch_fine_weight"] == str(2 * weight)


def test_the_replay_settles_each_bar_with_several_events_from_its_own_events_in_chain_order():
    """Five bars, keyed in id order, their events interleaved in chain order: 1 allocated once; 2 allocated,
    released, allocated again (live); 3 allocated twice (a duplicate; its first allocation is the chain's first
    event, index 0); 4 released before it was ever allocated, then allocated (live); 5 allocated then released
    (not live — and the last bar by key)."""
    ids = {k: k.to_bytes(8, "little") + bytes([k]) * 24 for k in range(1, 6)}
    alloc, release = int(EventKind.ALLOCATED), int(EventKind.DEALLOCATED)
    chain = [
        (3, alloc),
        (2, alloc),
        (5, alloc),
        (4, release),
        (1, alloc),
        (2, release),
        (3, alloc),
        (4, alloc),
        (5, release),
        (2, alloc),
    ]
    n, weight = len(chain), FINE * MILLI_OZ_UNITS
    bars = EventColumns(
        array("b", [k for _, k in chain]),
        array("q", range(10, 10 + n)),
        array("q", [0] * n),
        PackedIds(b"".join(ids[b] for b, _ in chain)),
        [],
        [],
        [weight] * n,
    )
    allocs = sum(kind == alloc for _, kind in chain)
    batches = EventColumns(
        array("b", [3, 4]),
        array("q", [10, 18]),
        array("q", [1, 1]),
        [BATCH, BATCH],
        [],
        [],
        [allocs * weight, (n - allocs) * weight],
    )
    empty = EventColumns(array("b"), array("q"), array("q"), [], [], [], [])
    result = reconcile(
        bar_list(list(ids.values())), OnchainRecord(31337, "0x" + "ab" * 20, 30, bars, batches, empty, empty)
    )
    assert [(f.kind, f.bar_id) for f in result.findings] == [
        (FindingKind.DEALLOCATED_NOT_ALLOCATED, "0x" + ids[4].hex()),
        (FindingKind.DUPLICATE_ALLOCATION, "0x" + ids[3].hex()),
        (FindingKind.LISTED_NOT_ALLOCATED, "0x" + ids[5].hex()),
    ]
    assert [e.block for e in result.findings[1].events] == [10, 16]
    # each live bar's first live allocation event (index into the chain order)
    assert dict(result.allocated) == {ids[3]: 0, ids[1]: 4, ids[4]: 7, ids[2]: 9}
    assert result.totals.bars_allocated == 4 and result.totals.bars_verified == 4
