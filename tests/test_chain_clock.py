"""The pre-flight judges a transaction at the time the chain will give it, by the chain's own clock.

A local Anvil started at another instant (``--timestamp``, a restored state, a test's pinned week) keeps its
clock offset from the wall clock. The next block's time is predicted from the node's pending block, so a
freeze window is in force exactly when it is on the chain: with the wall clock instead, every proposal on such
a chain was refused on Sundays from 02:00 to 04:00 UTC (the shipped templates' maintenance window), and
proposals made in a chain's freeze window passed the pre-flight only to revert on chain.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from custody.chain.anvil import AnvilProcess
from custody.chain.connection import connect
from custody.policy.onchain import next_block_timestamp, preflight
from custody.session import Session
from custody.types import Operation
from custody.vault import service
from custody.workspace import Workspace
from tests.conftest import POLICIES, move_clock_to

PAST = 1_767_000_000  # late December 2025: the chain's clock runs about a year behind the wall clock
SETTLEMENT = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # on hot-ops' ETH allowlist
SUNDAY, TUESDAY = 6, 1


@pytest.fixture
def past_session(tmp_path: Path) -> Iterator[Session]:
    anvil = AnvilProcess(extra_args=["--timestamp", str(PAST)]).start()
    ws = Workspace(tmp_path / "ws").ensure()
    try:
        session = Session(workspace=ws, chain=connect(anvil.url, expected_chain_id=anvil.chain_id))
        session.infrastructure()
        yield session
    finally:
        ws.close()
        anvil.stop()


def test_the_next_block_time_is_the_chains_clock_not_the_wall_clock(past_session):
    session = past_session
    pinned = move_clock_to(session.chain, weekday=TUESDAY, hour=10)
    predicted = next_block_timestamp(session)
    assert pinned < predicted <= pinned + 120, (pinned, predicted)
    assert time.time() - predicted > 300 * 86400  # the wall clock is far ahead: it is not what was used


def test_a_freeze_window_is_judged_by_the_chains_time_whatever_the_wall_clock_says(past_session):
    session = past_session
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.chain.rpc("anvil_setBalance", [record.safe, hex(10**20)])
    transfer = {"to": SETTLEMENT, "value": 10**18, "data": b"", "operation": Operation.CALL}
    # inside hot.yaml's Sunday 02:00-04:00 freeze window, on the chain
    move_clock_to(session.chain, weekday=SUNDAY, hour=2, minute=30)
    frozen = preflight(session, record.safe, **transfer)
    assert (frozen.allowed, frozen.error) == (False, "CustodyGuardFrozen"), frozen
    move_clock_to(session.chain, weekday=TUESDAY, hour=10)  # a working day on the chain, not the wall clock's
    assert preflight(session, record.safe, **transfer).allowed
