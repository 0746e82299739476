"""The engine's bar-id join is exact: ids are joined on their first 8 bytes only when those tell every distinct id
apart (checked each run); two different ids sharing a prefix — craftable with 2**32 work — are never matched."""

from __future__ import annotations

from array import array

from custody.reconcile.barlist import MILLI_OZ_UNITS, BarList, Coded, PackedIds, PackedText
from custody.reconcile.engine import reconcile
from custody.reconcile.findings import FindingKind as K
from custody.reconcile.index import EventColumns, OnchainRecord

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


def record(allocated: list[bytes]) -> OnchainRecord:
    n = len(allocated)
    weight = FINE * MILLI_OZ_UNITS
    bars = EventColumns(array("b", [1] * n), array("q", [10] * n), array("q", range(n)),
                        PackedIds(b"".join(allocated)), [], [], [weight] * n)  # fmt: skip
    batches = EventColumns(array("b", [3]), array("q", [10]), array("q", [n]), [b"\xbb" * 32], [], [], [weight * n])
    empty = EventColumns(array("b"), array("q"), array("q"), [], [], [], [])
    return OnchainRecord(31337, "0x" + "ab" * 20, 10, bars, batches, empty, empty)


def test_ids_sharing_a_prefix_are_different_bars():
    result = reconcile(bar_list([LISTED, OTHER]), record([IMPOSTOR, OTHER]))
    found = {(f.kind, f.bar_id) for f in result.findings}
    assert found == {(K.LISTED_NOT_ALLOCATED, "0x" + LISTED.hex()), (K.ALLOCATED_NOT_IN_LIST, "0x" + IMPOSTOR.hex())}
    assert result.totals.bars_verified == 1 and result.totals.verified_backing == FINE * MILLI_OZ_UNITS


def test_the_same_ids_still_match_when_prefixes_collide_elsewhere():
    result = reconcile(bar_list([LISTED, IMPOSTOR, OTHER]), record([IMPOSTOR, OTHER, LISTED]))
    assert result.findings == () and result.totals.bars_verified == 3
    assert dict(result.allocated) == {IMPOSTOR: 0, OTHER: 1, LISTED: 2}
