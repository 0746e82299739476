"""The reconciliation: a bar list (and optionally the previous one) against the token's on-chain record.

All arithmetic is exact integers in token base units (1 fine oz = 10**18). Built for a million bars
against a million events in a few seconds: the bar list and the events stay in columns; the joins are
dict/set operations on 32-byte bar ids (hash joins in C); per-bar Python work happens only for bars
that actually disagree.

What is checked (one finding per discrepancy, see :mod:`custody.reconcile.findings`):

1. the allocation record replayed in chain order: bars allocated while already allocated
   (duplicate), bars released that were not allocated;
2. the live allocation set against the bar list: allocated but not listed, listed but not allocated,
   fine weights that differ;
3. supply (from ERC-20 Transfer events) against the on-chain allocated weight and against the
   *verified* backing — listed bars that are allocated, each counted once at the smaller of the two
   weights;
4. provenance: each mint must cite an allocation batch recorded by that block, and the mints citing a
   batch may not exceed its fine weight (a batch covers minting once; burns do not refill it);
5. with a previous list: bars whose assay data changed, and the list's fine-weight change against the
   net mint/burn in the period (previous list's block, this block].
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import numpy as np
from numpy.typing import NDArray

from custody._perf import gc_paused
from custody.exceptions import ReconcileError
from custody.reconcile.barlist import MILLI_OZ_UNITS, BarList, Coded, PackedIds, format_units
from custody.reconcile.findings import SEVERITY, EventRef, Finding, FindingKind, Severity
from custody.reconcile.index import ZERO, EventKind, OnchainRecord

_ALLOC, _DEALLOC = int(EventKind.ALLOCATED), int(EventKind.DEALLOCATED)
_BATCH_ALLOC = int(EventKind.BATCH_ALLOCATED)
_MINT = int(EventKind.MINTED)


@dataclass(frozen=True)
class Totals:
    """The headline numbers, base units."""

    supply: int
    onchain_allocated: int  # allocation records minus release records (= allocatedFineWeight(); duplicates count twice)
    verified_backing: int  # listed bars that are allocated, once each, min(list, chain) weight
    listed: int  # fine weight of every bar on the list
    bars_listed: int
    bars_allocated: int  # distinct bars with a live allocation
    bars_verified: int

    @property
    def shortfall(self) -> int:
        return max(0, self.supply - self.verified_backing)

    def as_dict(self) -> dict[str, Any]:
        return {
            "supply": str(self.supply),
            "onchain_allocated": str(self.onchain_allocated),
            "verified_backing": str(self.verified_backing),
            "listed": str(self.listed),
            "shortfall": str(self.shortfall),
            "bars_listed": self.bars_listed,
            "bars_allocated": self.bars_allocated,
            "bars_verified": self.bars_verified,
            "supply_oz": format_units(self.supply),
            "verified_backing_oz": format_units(self.verified_backing),
        }


@dataclass(frozen=True)
class ListDiff:
    """Changes between the previous and the current bar list, against the period's mints and burns."""

    since_block: int
    added: int
    removed: int
    altered: int
    moved: int  # same bar, different vault location or custodian (not a discrepancy)
    added_fine: int  # base units
    removed_fine: int
    list_change: int  # current listed fine weight - previous
    minted: int  # in (since_block, at_block]
    burned: int

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (str(v) if k in ("added_fine", "removed_fine", "list_change", "minted", "burned") else v)
            for k, v in self.__dict__.items()
        }


@dataclass(frozen=True)
class Reconciliation:
    at_block: int
    totals: Totals
    findings: tuple[Finding, ...]
    custodians: tuple[dict[str, Any], ...]  # per (custodian, vault location): bars, listed, verified
    diff: ListDiff | None
    allocated: Mapping[bytes, int] = field(repr=False, compare=False, default_factory=dict)  # bar id → event

    @property
    def backing_short(self) -> bool:
        return any(
            f.kind in (FindingKind.BACKING_SHORTFALL, FindingKind.SUPPLY_EXCEEDS_ALLOCATION) for f in self.findings
        )

    @property
    def critical(self) -> int:
        return sum(1 for f in self.findings if f.severity is Severity.CRITICAL)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for f in self.findings:
            out[f.kind.value] += 1
        return dict(sorted(out.items()))


class _Evidence(TypedDict, total=False):
    """The optional fields of a :class:`Finding`, as :func:`_finding` passes them on."""

    bar_id: str | None
    bar: dict[str, Any] | None
    events: tuple[EventRef, ...]
    amounts: dict[str, str]


def _finding(kind: FindingKind, message: str, *, severity: Severity | None = None, **kw: Unpack[_Evidence]) -> Finding:
    return Finding(kind=kind, severity=severity or SEVERITY[kind], message=message, **kw)


def _bar_ref(record: OnchainRecord, i: int) -> EventRef:
    bars = record.bars
    name = "BarAllocated" if bars.kinds[i] == _ALLOC else "BarDeallocated"
    return EventRef(name, bars.blocks[i], bars.log_indexes[i])


def _supply_ref(record: OnchainRecord, i: int) -> EventRef:
    s = record.supply
    return EventRef("Minted" if s.kinds[i] == _MINT else "Burned", s.blocks[i], s.log_indexes[i])


def reconcile(
    bars: BarList, record: OnchainRecord, *, previous: BarList | None = None, since_block: int | None = None
) -> Reconciliation:
    """Reconcile ``bars`` against ``record`` (everything up to ``record.at_block``); a ``previous`` list is
    compared with ``bars`` over ``(since_block, record.at_block]``, so it needs the block it was valid at."""
    if previous is not None and since_block is None:
        raise ReconcileError("comparing with a previous bar list needs the block that list was valid at")
    with gc_paused():
        return _reconcile(bars, record, previous, since_block)


# -- bar ids as integers: the joins run on sorted numpy arrays, not on million-entry dicts ---------------
def _id_words(ids: Sequence[bytes], what: str) -> NDArray[np.uint64]:
    """The ids as an (n, 4) array of 64-bit words: a view of a packed buffer, or one copy of a list."""
    if isinstance(ids, PackedIds):
        buffer: bytes | memoryview = ids.buffer
    else:
        if any(len(i) != 32 for i in ids):
            raise ReconcileError(f"{what} holds a bar id that is not 32 bytes; the data is damaged")
        buffer = b"".join(ids)
    return np.frombuffer(buffer, dtype="<u8").reshape(-1, 4)


def _join_keys(
    listed: NDArray[np.uint64], events: NDArray[np.uint64]
) -> tuple[NDArray[np.uint64], NDArray[np.uint64], NDArray[np.intp]]:
    """One integer per bar id, equal exactly when the ids are equal: (the list's keys, the events' keys sorted,
    the events' stable sort order — chain order within a bar).

    The key is the id's first 8 bytes whenever those tell every distinct id apart — keccak outputs, so all but
    certainly; checked, not assumed — else (a 64-bit prefix collision, which someone could craft) the id's rank
    among all ids: exact either way."""
    list_keys = listed[:, 0].copy()
    order = np.argsort(events[:, 0], kind="stable")
    sorted_keys = events[order, 0]
    if not _prefixes_collide(listed, events, list_keys, sorted_keys, order):
        return list_keys, sorted_keys, order
    del list_keys, sorted_keys, order
    both = np.concatenate([listed.view("S32").ravel(), events.view("S32").ravel()])  # 32-byte strings, exact
    ranks = np.unique(both, return_inverse=True)[1].astype(np.uint64).ravel()
    del both
    order = np.argsort(ranks[len(listed) :], kind="stable")
    return ranks[: len(listed)], ranks[len(listed) :][order], order


_CHECK_CHUNK = 131_072  # ids compared per step (bounds the temporary arrays)


def _prefixes_collide(
    listed: NDArray[np.uint64],
    events: NDArray[np.uint64],
    list_keys: NDArray[np.uint64],
    sorted_keys: NDArray[np.uint64],
    order: NDArray[np.intp],
) -> bool:
    """Do two different ids share their first 8 bytes (within the list, within the events, or across)?"""
    ordered = np.sort(list_keys)
    if (ordered[1:] == ordered[:-1]).any():  # list ids are distinct: a shared prefix is a collision
        return True
    del ordered
    same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])  # the same bar again, or a collision
    if len(same) and (events[order[same]] != events[order[same + 1]]).any():
        return True
    if not len(events):
        return False
    for start in range(0, len(list_keys), _CHECK_CHUNK):
        keys = list_keys[start : start + _CHECK_CHUNK]
        at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        hit = np.flatnonzero(sorted_keys[at] == keys)
        if (listed[start + hit, 1:] != events[order[at[hit]], 1:]).any():
            return True
    return False


@dataclass(frozen=True)
class _Replay:
    """The allocation record replayed per bar: the live bars (sorted by key) and what the replay found."""

    live_keys: NDArray[np.uint64]  # join key of each live bar, ascending
    live_events: NDArray[np.intp]  # its first live BarAllocated event (index into record.bars)
    extra: list[tuple[int, list[int], int]]  # per duplicated bar, in report order: (first live event, further
    # live events, position in live_keys)
    findings: list[Finding]


def _replay(record: OnchainRecord, sorted_keys: NDArray[np.uint64], order: NDArray[np.intp]) -> _Replay:
    """Replay the allocation record in chain order, bar by bar (a bar's state depends on its own events only).
    Bars with one event (nearly all) are settled in numpy; only bars with several go through the loop."""
    bars = record.bars
    n = len(sorted_keys)
    kinds = np.asarray(bars.kinds, dtype=np.int8)
    if not n:
        empty = np.zeros(0, dtype=np.int64)
        return _Replay(empty.astype(np.uint64), empty, [], [])
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])  # each bar's first sorted position
    several = np.flatnonzero(np.diff(starts, append=n) > 1).tolist()  # bars with more than one event
    live = order[starts]  # each bar's first event; below: its first live allocation, or -1
    unallocated = np.flatnonzero(kinds[live] != _ALLOC)
    released: list[int] = live[np.setdiff1d(unallocated, several, assume_unique=True)].tolist()
    live[unallocated] = -1
    extra: list[tuple[int, int, list[int], int]] = []  # (since, first live, later live, bar)
    for g in several:
        later: list[int] = []
        active, since = -1, -1
        end = int(starts[g + 1]) if g + 1 < len(starts) else n
        events = order[starts[g] : end].tolist()
        for i, kind in zip(events, kinds[events].tolist()):
            if kind == _ALLOC:
                if active < 0:
                    active = i
                else:
                    since = i if not later else since
                    later.append(i)
            elif later:
                later.pop()
            elif active >= 0:
                active = -1
            else:
                released.append(i)
        live[g] = active
        if later:
            extra.append((since, active, later, g))
    findings = [
        _finding(
            FindingKind.DEALLOCATED_NOT_ALLOCATED,
            f"bar 0x{bars.keys[i].hex()} was released by BarDeallocated in block {bars.blocks[i]} but was not allocated",
            bar_id="0x" + bars.keys[i].hex(),
            events=(_bar_ref(record, i),),
            amounts={"fine_weight": str(bars.amounts[i])},
        )
        for i in sorted(released)
    ]
    dead = np.flatnonzero(live < 0)  # bars with no live allocation (few)
    # a bar's position among the live bars: its position less the dead bars before it
    duplicated = [(a, later, g - int(np.searchsorted(dead, g))) for _since, a, later, g in sorted(extra)]
    if len(dead):
        starts, live = np.delete(starts, dead), np.delete(live, dead)
    return _Replay(sorted_keys[starts], live, duplicated, findings)


class LiveAllocations(Mapping[bytes, int]):
    """bar id → its first live BarAllocated event (index into ``record.bars``), in chain order; a dict is built
    only if a caller looks an id up."""

    def __init__(self, events: np.ndarray[Any, Any], ids: Sequence[bytes]) -> None:
        self._events, self._ids = np.sort(events), ids
        self._lookup: dict[bytes, int] | None = None

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[bytes]:
        return (self._ids[i] for i in self._events.tolist())

    def __getitem__(self, bar_id: bytes) -> int:
        if self._lookup is None:
            self._lookup = {self._ids[i]: i for i in self._events.tolist()}
        return self._lookup[bar_id]


_JOIN_CHUNK = 131_072  # listed bars compared per step (bounds the temporary int objects)
_MAX_MILLI = 2**62  # on-chain weights in milli-oz below this are compared as int64; others exactly, one by one


def _match_list(
    bars: BarList, record: OnchainRecord, list_keys: NDArray[np.uint64], replay: _Replay
) -> tuple[NDArray[np.bool_], NDArray[np.intp], list[int], int]:
    """Per listed bar: is it live on-chain, and with the listed weight? Returns (live mask, position of each
    listed bar's live bar in ``replay.live_keys``, mismatched positions in the list, verified backing)."""
    live_keys, weights = replay.live_keys, record.bars.amounts
    size, count = len(list_keys), len(live_keys)
    at = np.searchsorted(live_keys, list_keys) if count else np.zeros(size, dtype=np.int64)
    found = live_keys[np.minimum(at, count - 1)] == list_keys if count else np.zeros(size, dtype=bool)
    listed_milli = _int_column(bars.fine_milli)
    amounts = np.array(weights, dtype=object) if count else np.zeros(0, dtype=object)
    positions = np.flatnonzero(found)
    verified, mismatched = 0, list[int]()
    for start in range(0, len(positions), _JOIN_CHUNK):
        js = positions[start : start + _JOIN_CHUNK]
        chain = amounts[replay.live_events[at[js]]]
        milli, rest = chain // MILLI_OZ_UNITS, chain % MILLI_OZ_UNITS
        milli[(rest != 0) | (milli >= _MAX_MILLI)] = -1  # never equal to a listed weight: compared exactly below
        chain_milli = milli.astype(np.int64)
        equal = chain_milli == listed_milli[js]
        verified += int(listed_milli[js][equal].sum()) * MILLI_OZ_UNITS
        for j in js[~equal].tolist():
            chain_w = weights[int(replay.live_events[at[j]])]
            verified += min(chain_w, bars.fine_milli[j] * MILLI_OZ_UNITS)
            mismatched.append(j)
    return found, at, mismatched, verified


def _reconcile(
    bars: BarList, record: OnchainRecord, previous: BarList | None, since_block: int | None
) -> Reconciliation:
    findings: list[Finding] = []
    weights = record.bars.amounts
    list_keys, sorted_keys, order = _join_keys(
        _id_words(bars.bar_ids, "the bar list"), _id_words(record.bars.keys, "the bar events")
    )
    replay = _replay(record, sorted_keys, order)
    del sorted_keys, order
    findings += replay.findings
    found, at, mismatched, verified = _match_list(bars, record, list_keys, replay)
    listed_of_live = np.full(len(replay.live_keys), -1, dtype=np.int64)
    listed_of_live[at[found]] = np.flatnonzero(found)
    del list_keys
    for first, later, live_at in replay.extra:
        bid = record.bars.keys[first]
        refs = (_bar_ref(record, first), *(_bar_ref(record, i) for i in later))
        listed = None if listed_of_live[live_at] < 0 else int(listed_of_live[live_at])
        findings.append(
            _finding(
                FindingKind.DUPLICATE_ALLOCATION,
                f"bar 0x{bid.hex()} is allocated {1 + len(later)} times (first in block {refs[0].block}, again in "
                f"block {refs[1].block}); the on-chain allocation counts its metal more than once",
                bar_id="0x" + bid.hex(),
                bar=None if listed is None else bars.bar(listed).as_dict(),
                events=refs,
                amounts={"fine_weight": str(weights[first]), "overcounted": str(sum(weights[i] for i in later))},
            )
        )
    # what the contract's allocatedFineWeight() holds: every allocation record minus every release record
    # (a release of an unallocated bar still lowers it; that is reported above)
    kinds = record.bars.kinds
    if _DEALLOC in kinds:
        onchain_allocated = sum(w if k == _ALLOC else -w for k, w in zip(kinds, weights))
    else:
        onchain_allocated = sum(weights)
    _check_batches(record, onchain_allocated)

    # -- the live allocation set against the list, in list order ---------------------------------------
    matched = int(found.sum())
    missing = np.flatnonzero(~found).tolist()
    for j in heapq.merge(missing, mismatched):
        bar = bars.bar(j)
        list_w = bar.fine_units
        if not found[j]:
            findings.append(
                _finding(
                    FindingKind.LISTED_NOT_ALLOCATED,
                    f"bar {bar.refiner} {bar.serial} (row {bar.row}) is on the bar list but not allocated on-chain",
                    bar_id="0x" + bar.bar_id.hex(),
                    bar=bar.as_dict(),
                    amounts={"fine_weight": str(list_w)},
                )
            )
            continue
        event = int(replay.live_events[at[j]])
        chain_w = weights[event]
        findings.append(
            _finding(
                FindingKind.WEIGHT_MISMATCH,
                f"bar {bar.refiner} {bar.serial} is allocated with {format_units(chain_w)} oz on-chain but "
                f"listed with {format_units(list_w)} oz (row {bar.row})",
                bar_id="0x" + bar.bar_id.hex(),
                bar=bar.as_dict(),
                events=(_bar_ref(record, event),),
                amounts={"onchain_fine_weight": str(chain_w), "listed_fine_weight": str(list_w)},
            )
        )
    if matched < len(replay.live_keys):  # some live allocations name bars that are not on the list
        earlier = previous.index() if previous is not None else {}
        unlisted = np.sort(replay.live_events[listed_of_live < 0]).tolist()
        for i in unlisted:
            bid = record.bars.keys[i]
            known = earlier.get(bid)  # a bar dropped from the list can be named from the previous list
            old = previous.bar(known).as_dict() if previous is not None and known is not None else None
            name = (
                f"{old['refiner']} {old['serial']} (row {old['row']} of the previous list)" if old else f"0x{bid.hex()}"
            )
            findings.append(
                _finding(
                    FindingKind.ALLOCATED_NOT_IN_LIST,
                    f"bar {name} ({format_units(weights[i])} oz) is allocated on-chain but not on the bar list",
                    bar_id="0x" + bid.hex(),
                    bar=old,
                    events=(_bar_ref(record, i),),
                    amounts={"fine_weight": str(weights[i])},
                )
            )

    # -- supply against backing ---------------------------------------------------------------------
    t = record.transfers
    supply = sum(a for a, f in zip(t.amounts, t.accounts) if f == ZERO) - sum(
        a for a, to in zip(t.amounts, t.counterparties) if to == ZERO
    )
    totals = Totals(
        supply=supply,
        onchain_allocated=onchain_allocated,
        verified_backing=verified,
        listed=bars.total_fine_units(),
        bars_listed=len(bars),
        bars_allocated=len(replay.live_keys),
        bars_verified=matched,
    )
    if supply > onchain_allocated:
        findings.append(
            _finding(
                FindingKind.SUPPLY_EXCEEDS_ALLOCATION,
                f"supply {format_units(supply)} oz exceeds the fine weight allocated on-chain, "
                f"{format_units(onchain_allocated)} oz, by {format_units(supply - onchain_allocated)} oz",
                amounts={
                    "supply": str(supply),
                    "onchain_allocated": str(onchain_allocated),
                    "excess": str(supply - onchain_allocated),
                },
            )
        )
    if supply > verified:
        findings.append(
            _finding(
                FindingKind.BACKING_SHORTFALL,
                f"supply {format_units(supply)} oz is backed by only {format_units(verified)} oz of listed, allocated "
                f"bars: short by {format_units(supply - verified)} oz",
                amounts={"supply": str(supply), "verified_backing": str(verified), "shortfall": str(supply - verified)},
            )
        )
    findings += _provenance(record)
    diff = None
    if previous is not None and since_block is not None:  # reconcile() refuses a previous list without one
        diff, diff_findings = _list_changes(bars, previous, record, since_block)
        findings += diff_findings
    return Reconciliation(
        at_block=record.at_block,
        totals=totals,
        findings=tuple(findings),
        custodians=_custodian_totals(bars, found),
        diff=diff,
        allocated=LiveAllocations(replay.live_events, record.bars.keys),
    )


def _check_batches(record: OnchainRecord, onchain_allocated: int) -> None:
    """The per-bar events must add up to the per-batch events: otherwise the index is incomplete."""
    b = record.batches
    by_batches = sum(a if k == _BATCH_ALLOC else -a for k, a in zip(b.kinds, b.amounts))
    if by_batches != onchain_allocated:
        raise ReconcileError(
            f"the indexed bar events add up to {onchain_allocated} but the batch events to {by_batches} "
            f"(token {record.token}, block {record.at_block}); the index is incomplete — re-index the token",
            hint="delete the workspace's collateral index for this token (or use a fresh workspace) and run again",
        )


def _provenance(record: OnchainRecord) -> list[Finding]:
    b, s = record.batches, record.supply
    batch_total: dict[bytes, int] = {}
    batch_block: dict[bytes, int] = {}
    for kind, key, amount, block in zip(b.kinds, b.keys, b.amounts, b.blocks):
        if kind == _BATCH_ALLOC and key not in batch_total:
            batch_total[key], batch_block[key] = amount, block
        elif kind == _BATCH_ALLOC:
            batch_total[key] += amount  # the same batch content allocated again (its bars are duplicates too)
    findings: list[Finding] = []
    cited: dict[bytes, list[int]] = defaultdict(list)
    for i, (kind, key) in enumerate(zip(s.kinds, s.keys)):
        if kind != _MINT:
            continue
        if key in batch_total:
            cited[key].append(i)
            continue
        findings.append(
            _finding(
                FindingKind.MINT_WITHOUT_PROVENANCE,
                f"mint of {format_units(s.amounts[i])} oz to {s.accounts[i]} in block {s.blocks[i]} cites 0x{key.hex()}, "
                f"which is not an allocation batch recorded by block {record.at_block}",
                events=(_supply_ref(record, i),),
                amounts={"amount": str(s.amounts[i]), "provenance": "0x" + key.hex()},
            )
        )
    for key, mints in cited.items():
        minted = sum(s.amounts[i] for i in mints)
        if minted > batch_total[key]:
            findings.append(
                _finding(
                    FindingKind.MINT_EXCEEDS_PROVENANCE,
                    f"mints citing batch 0x{key.hex()} total {format_units(minted)} oz but the batch allocated only "
                    f"{format_units(batch_total[key])} oz",
                    events=tuple(_supply_ref(record, i) for i in mints),
                    amounts={
                        "minted": str(minted),
                        "batch_fine_weight": str(batch_total[key]),
                        "excess": str(minted - batch_total[key]),
                        "batch": "0x" + key.hex(),
                    },
                )
            )
    return findings


_ASSAY = (
    ("year", "years"),
    ("gross_weight_oz", "gross_milli"),
    ("fineness", "fineness_tenths"),
    ("fine_weight_oz", "fine_milli"),
)


def _list_changes(
    bars: BarList, previous: BarList, record: OnchainRecord, since_block: int
) -> tuple[ListDiff, list[Finding]]:
    if since_block > record.at_block:
        raise ReconcileError(
            f"the previous list's block {since_block} is after the reconciliation block {record.at_block}"
        )
    now, before = bars.index(), previous.index()
    added = now.keys() - before.keys()
    removed = before.keys() - now.keys()
    findings: list[Finding] = []
    moved = 0
    common = now.keys() & before.keys()
    for bid in sorted(common, key=now.__getitem__):
        j, k = now[bid], before[bid]
        changed = [name for name, attr in _ASSAY if getattr(bars, attr)[j] != getattr(previous, attr)[k]]
        if changed:
            old, new = previous.bar(k).as_dict(), bars.bar(j).as_dict()
            what = ", ".join(f"{name} {old[name]} → {new[name]}" for name in changed)
            findings.append(
                _finding(
                    FindingKind.BAR_ALTERED,
                    f"bar {new['refiner']} {new['serial']} changed between the lists: {what} (row {new['row']})",
                    bar_id="0x" + bid.hex(),
                    bar=new,
                    amounts={},
                )
            )
        elif (bars.vault_locations[j], bars.custodians[j]) != (previous.vault_locations[k], previous.custodians[k]):
            moved += 1
    s = record.supply
    in_period = [i for i, block in enumerate(s.blocks) if since_block < block]
    minted = sum(s.amounts[i] for i in in_period if s.kinds[i] == _MINT)
    burned = sum(s.amounts[i] for i in in_period if s.kinds[i] != _MINT)
    change = bars.total_fine_units() - previous.total_fine_units()
    diff = ListDiff(
        since_block=since_block,
        added=len(added),
        removed=len(removed),
        altered=sum(1 for f in findings if f.kind is FindingKind.BAR_ALTERED),
        moved=moved,
        added_fine=sum(bars.fine_milli[now[b]] for b in added) * MILLI_OZ_UNITS,
        removed_fine=sum(previous.fine_milli[before[b]] for b in removed) * MILLI_OZ_UNITS,
        list_change=change,
        minted=minted,
        burned=burned,
    )
    net = minted - burned
    if net != change:
        severity = Severity.CRITICAL if net > change else Severity.WARNING
        findings.append(
            _finding(
                FindingKind.LIST_CHANGE_UNMATCHED,
                f"between block {since_block} and {record.at_block} the bar list changed by {format_units(change)} oz "
                f"({len(added)} added, {len(removed)} removed) but net minting was {format_units(net)} oz",
                severity=severity,
                events=tuple(_supply_ref(record, i) for i in in_period[:50]),
                amounts={"list_change": str(change), "net_minted": str(net), "difference": str(net - change)},
            )
        )
    return diff, findings


def _custodian_totals(bars: BarList, allocated: np.ndarray[Any, Any]) -> tuple[dict[str, Any], ...]:
    """Bars and fine weight per (custodian, vault location): listed, and of those allocated on-chain."""
    custodians, locations = sorted(set(bars.custodians)), sorted(set(bars.vault_locations))
    c_code = {c: n for n, c in enumerate(custodians)}
    l_code = {v: n for n, v in enumerate(locations)}
    codes = _int_column(bars.custodians, c_code.__getitem__) * len(locations)
    codes += _int_column(bars.vault_locations, l_code.__getitem__)
    fine = _int_column(bars.fine_milli)  # milli-oz: sums stay far below 2**63
    n = len(custodians) * len(locations)
    counts, counts_allocated = np.bincount(codes, minlength=n), np.bincount(codes[allocated], minlength=n)
    weight, weight_allocated = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    np.add.at(weight, codes, fine)
    np.add.at(weight_allocated, codes[allocated], fine[allocated])
    return tuple(
        {
            "custodian": custodians[g // len(locations)],
            "vault_location": locations[g % len(locations)],
            "bars": int(counts[g]),
            "fine": str(int(weight[g]) * MILLI_OZ_UNITS),
            "fine_oz": format_units(int(weight[g]) * MILLI_OZ_UNITS),
            "bars_allocated": int(counts_allocated[g]),
            "allocated_fine": str(int(weight_allocated[g]) * MILLI_OZ_UNITS),
        }
        for g in range(n)
        if counts[g]
    )


def _int_column(column: Sequence[Any], convert: Callable[[Any], int] | None = None) -> NDArray[np.int64]:
    """A bar list column as int64 (through ``convert``), from a :class:`Coded` column's codes when it is one."""
    if isinstance(column, Coded):
        values = column.values if convert is None else list(map(convert, column.values))
        codes = np.frombuffer(column.codes, dtype=column.codes.typecode)
        by_bar: NDArray[np.int64] = np.asarray(values, dtype=np.int64)[codes]  # numpy types fancy indexing as Any
        return by_bar
    items = column if convert is None else map(convert, column)
    return np.fromiter(items, dtype=np.int64, count=len(column))
