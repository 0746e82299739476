"""Properties that seek the instants where off-by-one bugs live, against the real contracts.

* the guard's rolling 24 h window: fill the daily limit (to the limit, or one base unit short of it) at
  a random second of an hour, then probe 23 h–25 h later at ± a few seconds of the hour and day edges
  with 1 base unit, the room left, the room left + 1 and the per-transaction limit. An independent oracle
  (a spend made in hour H counts until hour H + 25 starts) and the Python pre-flight must both agree
  with the chain every time;
* the emergency exit: ``finalize`` at ``readyAt − 1`` reverts with ``ExitModuleTooEarly(readyAt − 1,
  readyAt)`` and succeeds at exactly ``readyAt``; the CLI-level pre-check refuses at ``readyAt − 1`` too;
* the timelock: a scheduled configuration change executed at ``readyAt − 1`` (``readyAt`` = the
  scheduling block's time + the delay) reverts with ``TimelockUnexpectedOperationState(id, Ready)`` and
  executes at exactly ``readyAt``; the service's pre-check refuses before ``readyAt`` too.

Each example runs inside an EVM snapshot that is reverted afterwards, so examples never share state.
"""

from __future__ import annotations

import pytest
from eth_utils import function_signature_to_4byte_selector as sel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.exceptions import TimelockNotReady, VaultError
from custody.policy import change
from custody.types import ZERO_ADDRESS, Operation
from custody.vault import exit as vault_exit
from custody.vault import resilience, service, timelock_ops
from tests.conftest import FIXTURES
from tests.guard_harness import monday_of_next_week, multisend, predict, send_at, submit
from tests.resilience_helpers import CUSTODIAN, execute_with, resilient_vault, sign_exit

ETH = 10**18
PER_TX, DAILY = 5 * ETH, 12 * ETH  # tests/fixtures/policies/rules.yaml, ETH
BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
MULTISEND_CALL_ONLY = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
HOUR, DAY = 3600, 86400
WINDOW_EXAMPLES = 150

# the second of the hour the window is filled at: the edges first, then anywhere
second_of_hour = st.one_of(st.sampled_from([0, 1, 2, 1799, 3597, 3598, 3599]), st.integers(0, HOUR - 1))
# the fill: amounts (each <= the per-tx limit) summing to the daily limit or to one base unit short of it
fills = st.sampled_from(
    [
        (PER_TX, PER_TX, 2 * ETH),
        (PER_TX, PER_TX, 2 * ETH - 1),
        (PER_TX, PER_TX, 2 * ETH - 1, 1),
        (4 * ETH, 4 * ETH, 4 * ETH),
        (1, PER_TX, PER_TX, 2 * ETH - 1),
    ]
)
# gaps between the fill's spends: mostly seconds, sometimes across an hour edge
gaps = st.lists(st.one_of(st.integers(1, 30), st.sampled_from([HOUR - 1, HOUR, HOUR + 1])), min_size=4, max_size=4)


@st.composite
def probes(draw):
    """Where to probe, relative to the first spend (``anchor``: which edge, ``delta``: ± seconds)."""
    anchor = draw(st.sampled_from(["hour+25", "hour+24", "first+24h", "last+24h", "first+23h", "last+25h"]))
    delta = draw(st.one_of(st.sampled_from([-2, -1, 0, 1, 2]), st.integers(-5, 5)))
    kind = draw(st.sampled_from(["one", "room", "room+1", "per_tx"]))
    return anchor, delta, kind


def _probe_time(anchor: str, delta: int, first: int, last: int) -> int:
    base = {
        "hour+25": (first // HOUR + 25) * HOUR, "hour+24": (first // HOUR + 24) * HOUR,
        "first+24h": first + DAY, "last+24h": last + DAY, "first+23h": first + 23 * HOUR, "last+25h": last + 25 * HOUR,
    }[anchor]  # fmt: skip
    return base + delta


def counted_at(spends: list[tuple[int, int]], when: int) -> int:
    """The oracle: a spend made in hour H still counts at every second of hours H .. H + 24."""
    return sum(amount for t, amount in spends if t // HOUR + 25 > when // HOUR)


@pytest.fixture
def window_vault(session):
    record, _ = service.create_vault(session, FIXTURES / "policies" / "rules.yaml", name="window")
    session.chain.rpc("anvil_setBalance", [record.safe, hex(10**6 * ETH)])
    return record


def test_rolling_window_at_its_edges_matches_an_independent_oracle(session, window_vault):
    start_day = (
        monday_of_next_week(session) + 8 * HOUR
    )  # Monday 08:00: probes land on Tuesday 07:00–14:00 (allowed hours)
    seen = {"allowed": 0, "refused": 0, "anchors": set()}

    @settings(max_examples=WINDOW_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(second=second_of_hour, fill=fills, gaps=gaps, probe=probes())
    def run(second, fill, gaps, probe):
        snapshot = session.chain.snapshot()
        try:
            t = max(start_day + second, session.chain.latest_timestamp() + 1)
            spends = []
            for amount, gap in zip(fill, [0, *gaps]):
                t += gap
                outcome = submit(session, window_vault, to=BROKER, value=amount, timestamp=t)
                assert outcome.allowed, (amount, t, outcome)
                spends.append((t, amount))
            anchor, delta, kind = probe
            when = max(_probe_time(anchor, delta, spends[0][0], t), t + 1)
            room = DAILY - counted_at(spends, when)
            amount = {"one": 1, "room": max(room, 1), "room+1": room + 1, "per_tx": PER_TX}[kind]
            expect_allowed = amount <= PER_TX and counted_at(spends, when) + amount <= DAILY
            verdict = predict(session, window_vault, to=BROKER, value=amount, timestamp=when)
            outcome = submit(session, window_vault, to=BROKER, value=amount, timestamp=when)
            assert outcome.allowed == expect_allowed, (spends, when, amount, outcome)
            assert (verdict.allowed, verdict.error, tuple(verdict.args)) == (
                outcome.allowed,
                outcome.error,
                outcome.args,
            )
            if not expect_allowed and amount <= PER_TX:
                total = counted_at(spends, when)
                assert (outcome.error, outcome.args) == (
                    "CustodyGuardDailyLimitExceeded", (ZERO_ADDRESS, amount, total, DAILY)
                )  # fmt: skip
            seen["allowed" if outcome.allowed else "refused"] += 1
            seen["anchors"].add(anchor)
        finally:
            session.chain.revert(snapshot)

    run()
    # the generator reached both sides of the edge from every anchor
    assert seen["allowed"] >= 5 and seen["refused"] >= 5, seen
    assert len(seen["anchors"]) == 6, seen


def test_window_edge_one_hour_short_would_be_a_breach(session, window_vault):
    """The explicit case the property generalises: 12 ETH at hh:59:59, then 1 wei at hh+24:59:59 (24 h
    later, still inside the window) is refused; at hh+25:00:00 the whole limit is free again."""
    t = monday_of_next_week(session) + 8 * HOUR + HOUR - 1  # 08:59:59
    for offset, amount in enumerate((PER_TX, PER_TX, 2 * ETH)):
        assert submit(session, window_vault, to=BROKER, value=amount, timestamp=t - 2 + offset).allowed
    refused = submit(session, window_vault, to=BROKER, value=1, timestamp=t + DAY)
    assert (refused.error, refused.args) == ("CustodyGuardDailyLimitExceeded", (ZERO_ADDRESS, 1, DAILY, DAILY))
    assert submit(session, window_vault, to=BROKER, value=PER_TX, timestamp=(t // HOUR + 25) * HOUR).allowed


FINALIZE = sel("finalize()")


def _finalize_at(session, module_address: str, timestamp: int, sender_index: int = 0):
    """Send ``finalize()`` mined at exactly ``timestamp`` (fixed gas: no estimation at another time)."""
    return send_at(session, module_address, FINALIZE, timestamp, sender_index=sender_index)


def test_exit_finalizes_at_ready_at_and_not_one_second_earlier(session):
    vault = resilient_vault(session)
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    module = session.contract("ExitModule", vault.exit_module)
    ready = int(module.functions.readyAt().call())
    status = vault_exit.status(session, vault.id)
    assert status.ready_at == ready
    # the CLI-level pre-check refuses while the latest block is readyAt − 2 (its next block: readyAt − 1)
    session.chain.set_next_timestamp(ready - 2)
    session.chain.mine()
    with pytest.raises(VaultError, match=f"becomes final at {ready} \\(in 2 s\\)"):
        vault_exit.finalize(session, vault.id)
    early = _finalize_at(session, vault.exit_module, ready - 1)
    assert (early.allowed, early.error, early.args) == (False, "ExitModuleTooEarly", (ready - 1, ready))
    final = _finalize_at(session, vault.exit_module, ready)
    assert final.allowed and final.timestamp == ready
    assert vault_exit.status(session, vault.id).pending is False
    assert session.chain.w3.eth.get_balance(vault.safe) == 0  # everything moved to the custodian


def test_exit_module_exposes_no_finalize_before_ready_for_any_signer(session):
    """``finalize`` is permissionless; ``readyAt − 1`` is refused whoever sends it."""
    vault = resilient_vault(session, name="resilient-2")
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    ready = int(session.contract("ExitModule", vault.exit_module).functions.readyAt().call())
    early = _finalize_at(session, vault.exit_module, ready - 1, sender_index=7)
    assert (early.error, early.args) == ("ExitModuleTooEarly", (ready - 1, ready))


READY_STATE_BITMAP = (1 << 2).to_bytes(32, "big")  # OpenZeppelin OperationState.Ready, as a state bitmap


def test_timelock_executes_at_ready_at_and_not_one_second_earlier(session, tmp_path):
    vault = resilient_vault(session, name="resilient-timelock")
    proposal, op = resilience.change_threshold(session, vault.id, 3, tmp_path)
    _what, scheduled = execute_with(session, proposal)
    op = timelock_ops.get_op(session, op.op_id)
    # readyAt from the model (the scheduling block's time + the delay), then as the chain and the service see it
    ready = session.chain.w3.eth.get_block(scheduled.block_number)["timestamp"] + op.delay
    op_id = bytes.fromhex(op.op_id[2:])
    lock = session.contract("VaultTimelock", vault.timelock)
    assert int(lock.functions.getTimestamp(op_id).call()) == ready == op.ready_at
    # the service's pre-check refuses while the latest block is readyAt − 2 (its next block: readyAt − 1)
    session.chain.set_next_timestamp(ready - 2)
    session.chain.mine()
    with pytest.raises(TimelockNotReady, match="\\(in 2 s\\)"):
        change.execute(session, proposal.id)
    execute = bytes.fromhex(lock.encode_abi("executeBatch", list(timelock_ops.batch_args(op.calls, op.salt)))[2:])
    early = send_at(session, vault.timelock, execute, ready - 1, sender_index=7)  # anyone may execute
    assert (early.allowed, early.error) == (False, "TimelockUnexpectedOperationState")
    assert early.args == (op_id, READY_STATE_BITMAP)
    assert service.read_state(session, service.get_vault(session, vault.id)).threshold == 2
    final = send_at(session, vault.timelock, execute, ready, sender_index=7)
    assert final.allowed and final.timestamp == ready
    assert service.read_state(session, service.get_vault(session, vault.id)).threshold == 3
    assert lock.functions.isOperationDone(op_id).call()


def test_after_an_idle_gap_of_25_hours_the_whole_limit_is_free_again(session, window_vault):
    """Nothing of a window idle for ≥ 25 h still counts: the daily limit can be spent in full, to the wei,
    and the pre-flight agrees with the chain on every step (a stale remainder would refuse the last one)."""
    t = monday_of_next_week(session) + 8 * HOUR + 600
    for offset, amount in enumerate((PER_TX, PER_TX, 2 * ETH)):
        assert submit(session, window_vault, to=BROKER, value=amount, timestamp=t + offset).allowed
    later = (t // HOUR + 26) * HOUR + 5  # 26 hours on: every bucket of the old window has left it
    # the whole limit in one batch (so a single pre-flight call sees the window after the gap), then 1 wei
    batch = multisend(*[(0, BROKER, amount, b"") for amount in (PER_TX, PER_TX, 2 * ETH)])
    for offset, (to, value, data, operation) in enumerate(
        [(MULTISEND_CALL_ONLY, 0, batch, Operation.DELEGATECALL), (BROKER, 1, b"", Operation.CALL)]
    ):
        tx = {"to": to, "value": value, "data": data, "operation": operation, "timestamp": later + offset}
        verdict, outcome = predict(session, window_vault, **tx), submit(session, window_vault, **tx)
        assert (verdict.allowed, verdict.error, tuple(verdict.args)) == (outcome.allowed, outcome.error, outcome.args)
        assert outcome.allowed == (offset == 0) and not outcome.inner_failed, (offset, outcome)


def test_exit_operations_on_a_vault_without_an_exit_module_name_the_cause(session, window_vault):
    """rules.yaml has no `exit:` section: every exit operation says so instead of calling address zero."""
    for operation in (vault_exit.status, vault_exit.finalize):
        with pytest.raises(
            VaultError, match="vault window has no exit module \\(its template has no `exit:` section\\)"
        ):
            operation(session, window_vault.id)
