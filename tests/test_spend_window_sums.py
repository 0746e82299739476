"""The guard's rolling window as running sums (issue 15): per asset the guard keeps ``spent`` (everything ever
counted) and ``before`` (what was counted before the window's oldest hour), both modulo 2^96; each finished
hour's ring bucket records ``spent`` at its end, and a 24-bit map in the same slot says which buckets hold an
hour still in the window. A new hour reads at most one bucket, the latest hour that left, whatever the gap.

Checked here against an independent oracle (a spend in hour H counts until hour H + 25 starts), on a
dedicated and on a clone guard, over sequences of idle gaps from none to 30 hours:

* every transfer is allowed or refused as the oracle says, and a refusal names the oracle's window total;
* after each step, the window the Python model derives from the stored state (by the hours' tags) equals the
  oracle, and the guard's live-hours map is exactly the set of buckets whose tag is a live hour;
* near 2^96 the sums wrap without changing any limit.

The plants in benchmarks/contract_plants.py that break the map (its shift, the finished hour's bit, its
mask), the lowest-bit search or the bucket read are caught here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.policy.rolling_window import RING, SpendState
from custody.types import ZERO_ADDRESS
from custody.vault import service
from tests.conftest import FIXTURES
from tests.guard_harness import monday_of_next_week, submit

ETH = 10**18
PER_TX, DAILY = 5 * ETH, 12 * ETH  # tests/fixtures/policies/rules.yaml, ETH
BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
DUSD = "0x6416d50c3136F549278cd5Dbb34b728069975495"  # rules.yaml's second asset (6 decimals)
MINT = sel("mint(address,uint256)")
HOUR = 3600
SUMS = 2**96
MARKER, SEEDED = 1 << 255, 1 << 224

# idle hours between two transfers: the edges of the ring (one bucket, half a day, a day, a day and more) first
idle_hours = st.one_of(st.sampled_from([0, 0, 1, 2, 11, 12, 13, 22, 23, 24, 25, 26]), st.integers(0, 30))
steps = st.lists(
    st.tuples(idle_hours, st.integers(0, HOUR - 1), st.sampled_from(["room", "room+1", "part", "one"])),
    min_size=6,
    max_size=14,
)


def _policy(tmp_path: Path, deployment: str) -> Path:
    """rules.yaml without its freeze window and allowed hours (the gaps land at any hour of any day)."""
    text = (FIXTURES / "policies" / "rules.yaml").read_text()
    text = text[: text.index("freeze_windows:")]
    path = tmp_path / f"window-{deployment}.yaml"
    path.write_text(text + f"guard:\n  deployment: {deployment}\n")
    return path


@pytest.fixture(params=["dedicated", "clone"])
def sums_vault(session, tmp_path, request):
    record, _ = service.create_vault(session, _policy(tmp_path, request.param), name=f"sums-{request.param}")
    session.chain.rpc("anvil_setBalance", [record.safe, hex(10**6 * ETH)])
    return record


def counted_at(spends: list[tuple[int, int]], timestamp: int) -> int:
    """The oracle: what still counts at ``timestamp`` (a spend in hour H counts until hour H + 25 starts)."""
    return sum(amount for t, amount in spends if t // HOUR + 25 > timestamp // HOUR)


def _stored(session, vault, index: int = 0):
    return session.contract("CustodyGuard", vault.guard).functions.spendState(index).call()


def _check_stored(session, vault, spends, timestamp, index: int = 0) -> None:
    spent, before, hour, live, seeded, ring = _stored(session, vault, index)
    state = SpendState.from_stored(spent, before, hour, seeded, [tuple(b) for b in ring])
    assert state.window_total(timestamp // HOUR) == counted_at(spends, timestamp)
    by_tags = sum(1 << j for j in range(RING) if ring[(hour - 1 - j) % RING][1] == hour - 1 - j)
    assert live == by_tags, (bin(live), bin(by_tags))


def _amount(kind: str, room: int) -> int:
    return {
        "room": max(min(room, PER_TX), 1),
        "room+1": room + 1 if room < PER_TX else PER_TX,
        "part": max(room // 3, 1),
        "one": 1,
    }[kind]


def _run(session, vault, start: int, plan, spends: list[tuple[int, int]], seen: dict[str, int]) -> None:
    t = start
    for idle, second, kind in plan:
        t = max((t // HOUR + idle) * HOUR + second, t + 1)
        counted = counted_at(spends, t)
        amount = _amount(kind, DAILY - counted)
        outcome = submit(session, vault, to=BROKER, value=amount, timestamp=t)
        expected = counted + amount <= DAILY
        assert outcome.allowed == expected, (spends, t, amount, outcome)
        if expected:
            spends.append((t, amount))
        else:
            assert (outcome.error, outcome.args) == (
                "CustodyGuardDailyLimitExceeded", (ZERO_ADDRESS, amount, counted, DAILY)
            )  # fmt: skip
        seen["allowed" if expected else "refused"] += 1
        seen[f"idle-{min(idle, 25)}"] = 1
        _check_stored(session, vault, spends, t)


def test_idle_gaps_of_every_length_match_the_oracle_and_the_live_map_matches_the_tags(session, sums_vault):
    start = monday_of_next_week(session)
    seen: dict[str, int] = {"allowed": 0, "refused": 0}

    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(plan=steps)
    def run(plan):
        snapshot = session.chain.snapshot()
        try:
            _run(session, sums_vault, max(start, session.chain.latest_timestamp() + 1), plan, [], seen)
        finally:
            session.chain.revert(snapshot)

    run()
    # both sides of the limit, and gaps of every length up to a day and more
    assert seen["allowed"] >= 40 and seen["refused"] >= 20, seen
    assert all(f"idle-{g}" in seen for g in (0, 1, 2, 11, 12, 13, 23, 24, 25)), sorted(seen)


def _state_slot(session, vault, word: int) -> int:
    """The storage slot holding asset 0's window (found by its value: the guard's layout is its own)."""
    for slot in range(64):
        if int.from_bytes(session.chain.w3.eth.get_storage_at(vault.guard, slot), "big") == word:
            return slot
    raise AssertionError("the window's slot was not found")


def test_the_running_sums_wrap_modulo_2_96_without_changing_a_limit(session, sums_vault):
    """Everything ever counted passes 2^96 (moved there by rewriting the slot: both sums shifted alike, as
    after years of spends), and every limit stays exactly where it was for the steps across the wrap."""
    t = monday_of_next_week(session) + 600
    assert submit(session, sums_vault, to=BROKER, value=ETH, timestamp=t).allowed
    spent, before, hour, live, _seeded, _ring = _stored(session, sums_vault)
    assert (spent, before, live) == (ETH, 0, 0)
    slot = _state_slot(session, sums_vault, MARKER | SEEDED | (hour << 192) | spent)
    shift = SUMS - 3 * ETH  # the next spends carry the running sum past 2^96
    word = MARKER | SEEDED | (hour << 192) | (shift << 96) | (spent + shift)
    session.chain.rpc("anvil_setStorageAt", [sums_vault.guard, hex(slot), "0x" + word.to_bytes(32, "big").hex()])
    spends = [(t, ETH)]
    _check_stored(session, sums_vault, spends, t)
    plan = [(1, 10, "part"), (0, 20, "room"), (3, 5, "room+1"), (12, 0, "room"), (13, 7, "room"), (1, 9, "room+1")]
    seen = {"allowed": 0, "refused": 0}
    _run(session, sums_vault, t, plan, spends, seen)
    spent, *_ = _stored(session, sums_vault)
    assert spent < shift, "the running sum did not wrap: the test moved nothing"
    assert seen["allowed"] >= 4 and seen["refused"] >= 1, seen


def test_two_assets_keep_their_own_windows_through_every_gap(session, sums_vault):
    """ETH and dUSD spent in turn over gaps of every length: each asset's window follows its own oracle, and
    each one's stored state (its live map against its buckets' tags) stays consistent, so no asset's ring
    writes land in another's slots (planted: a ring stride one slot short, which the Python reads of the
    declared layout see at once)."""
    session.send(to=DUSD, data=MINT + encode(["address", "uint256"], [sums_vault.safe, 10**6 * 10**6]), what="mint")
    t = monday_of_next_week(session)
    spends: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    limits = {0: (PER_TX, DAILY), 1: (1_000 * 10**6, 2_500 * 10**6)}  # rules.yaml: ETH, dUSD
    plan = [0, 1, 1, 2, 12, 13, 0, 23, 24, 1, 11, 25, 3, 22, 0, 2, 26, 1, 12, 24]
    refused = 0
    for step, idle in enumerate(plan):
        for index in (step % 2, 1 - step % 2):
            t = max((t // HOUR + idle) * HOUR + 97 * step % HOUR, t + 1)
            idle = 0
            per_tx, daily = limits[index]
            counted = counted_at(spends[index], t)
            amount = max(min(daily - counted, per_tx), 1) + (step % 3 == 2)  # now and then one unit over the room
            if index == 0:
                outcome = submit(session, sums_vault, to=BROKER, value=amount, timestamp=t)
            else:
                data = sel("transfer(address,uint256)") + encode(["address", "uint256"], [BROKER, amount])
                outcome = submit(session, sums_vault, to=DUSD, data=data, timestamp=t)
            expected = amount <= per_tx and counted + amount <= daily
            assert outcome.allowed == expected, (index, spends[index], t, amount, outcome)
            if expected:
                spends[index].append((t, amount))
            refused += not expected
            for asset in (0, 1):
                _check_stored(session, sums_vault, spends[asset], t, asset)
    assert refused >= 3 and all(len(s) >= 10 for s in spends.values()), (refused, spends)


def test_several_hours_leaving_at_once_free_exactly_their_amounts(session, sums_vault):
    """1, 2, 3 and 4 ETH in four consecutive hours, then nothing until 23 h after the last: the first two
    hours leave the window together, so the guard must read the running sum of the later of them (the live
    map's lowest bit past the window's edge), not of the first, nor forget both: 7 ETH still count and
    exactly 5 more move (not 3, after reading the first hour's sum; not 12, after forgetting them).
    Planted: the lowest bit taken from the map without isolating it (with the two bits set, the index it
    finds is not a whole day away from the right one, which would land on the right bucket by chance)."""
    hour = monday_of_next_week(session) // HOUR + 5
    spends = []
    for offset, amount in enumerate((1, 2, 3, 4)):
        t = (hour + offset) * HOUR + 60
        assert submit(session, sums_vault, to=BROKER, value=amount * ETH, timestamp=t).allowed
        spends.append((t, amount * ETH))
    later = (hour + 3 + 23) * HOUR + 60
    assert counted_at(spends, later) == 7 * ETH
    assert submit(session, sums_vault, to=BROKER, value=PER_TX, timestamp=later).allowed
    spends.append((later, PER_TX))
    last = submit(session, sums_vault, to=BROKER, value=1, timestamp=later + 1)
    assert (last.error, last.args) == ("CustodyGuardDailyLimitExceeded", (ZERO_ADDRESS, 1, DAILY, DAILY))
    _check_stored(session, sums_vault, spends, later + 1)
