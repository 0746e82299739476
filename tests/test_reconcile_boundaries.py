"""Reconciliation at its smallest units: one base unit (10⁻¹⁸ oz) of weight or supply is a finding.

The seeded scenario's discrepancies are all ≥ 1 oz; a tolerance (say, ignoring differences up to
0.001 oz) would pass it. These tests put the difference at exactly one base unit, both ways.
"""

from __future__ import annotations

import pytest

from custody.exceptions import ReconcileError
from custody.harness import scenario
from custody.reconcile import issuance, token
from custody.reconcile.engine import reconcile
from custody.reconcile.findings import FindingKind
from custody.reconcile.index import EventColumns, EventKind, OnchainRecord
from custody.reconcile.ingest import load_bar_list
from custody.reconcile.service import EXIT_OK, run_reconcile
from tests.collateral_helpers import HOLDER, deploy, units, write

BARS = scenario.generate_rows(3, seed=23, prefix="UNIT")


def hexid(row) -> str:
    return "0x" + issuance.row_bar_id(row).hex()


@pytest.mark.parametrize("delta", [1, -1], ids=["one unit heavier on chain", "one unit lighter on chain"])
def test_one_base_unit_of_weight_difference_is_a_weight_mismatch(session, tmp_path, delta):
    issuer = deploy(session)
    ids = [issuance.row_bar_id(r) for r in BARS]
    weights = [issuance.row_units(r) for r in BARS]
    weights[1] += delta  # bar 1 allocated with one base unit more / less than the list says
    issuer.call(token.allocate_data(ids, weights), "allocate")
    batch = token.batch_hash(ids, weights)
    issuer.mint(min(sum(weights), units(BARS)), batch, to=HOLDER)
    run = run_reconcile(session, issuer.token, write(tmp_path, "bars.csv", BARS))
    mismatches = [f for f in run.reconciliation.findings if f.kind is FindingKind.WEIGHT_MISMATCH]
    assert [f.bar_id for f in mismatches] == [hexid(BARS[1])]
    assert mismatches[0].amounts == {
        "onchain_fine_weight": str(weights[1]), "listed_fine_weight": str(issuance.row_units(BARS[1])),
    }  # fmt: skip
    # the evidence cited is the bar's allocation event
    assert [e.event for e in mismatches[0].events] == ["BarAllocated"]
    assert run.exit_code != EXIT_OK
    # verified backing counts the smaller of the two weights
    assert run.reconciliation.totals.verified_backing == units(BARS) + min(delta, 0)


def test_one_base_unit_of_supply_over_the_backing_is_a_shortfall(session, tmp_path):
    issuer = deploy(session)
    batch, _ = issuer.allocate(BARS)
    issuer.mint(units(BARS), batch, to=HOLDER)
    exact = run_reconcile(session, issuer.token, write(tmp_path, "bars.csv", BARS))
    assert not exact.reconciliation.findings and exact.exit_code == EXIT_OK
    assert exact.reconciliation.totals.shortfall == 0
    issuer.mint(1, batch, to=HOLDER)  # one base unit more than the bars back
    over = run_reconcile(session, issuer.token, write(tmp_path, "bars2.csv", BARS))
    kinds = {f.kind: f for f in over.reconciliation.findings}
    assert set(kinds) == {
        FindingKind.SUPPLY_EXCEEDS_ALLOCATION,
        FindingKind.BACKING_SHORTFALL,
        FindingKind.MINT_EXCEEDS_PROVENANCE,
    }
    assert (
        kinds[FindingKind.BACKING_SHORTFALL].amounts["shortfall"] == "1" and over.reconciliation.totals.shortfall == 1
    )
    assert kinds[FindingKind.SUPPLY_EXCEEDS_ALLOCATION].amounts["excess"] == "1"


def test_a_previous_list_without_the_block_it_was_valid_at_is_refused_before_any_work(tmp_path):
    """The library call (the service derives the block from its recorded runs before it gets here)."""
    bars = load_bar_list(write(tmp_path, "bars.csv", BARS))
    empty = EventColumns([], [], [], [], [], [], [])
    record = OnchainRecord(chain_id=31337, token=HOLDER, at_block=10, bars=empty, batches=empty, supply=empty,
                           transfers=empty)  # fmt: skip
    with pytest.raises(ReconcileError, match="needs the block that list was valid at"):
        reconcile(bars, record, previous=bars)
    assert reconcile(bars, record, previous=bars, since_block=10).diff is not None


def test_a_previous_list_valid_after_the_reconciliation_block_is_refused(tmp_path):
    """The period (since_block, at_block] cannot start after it ends: refused, naming both blocks (a previous list
    valid at the reconciliation block itself, an empty period, is allowed: the test above)."""
    bars = load_bar_list(write(tmp_path, "bars.csv", BARS))
    empty = EventColumns([], [], [], [], [], [], [])
    record = OnchainRecord(
        chain_id=31337, token=HOLDER, at_block=10, bars=empty, batches=empty, supply=empty, transfers=empty
    )
    with pytest.raises(ReconcileError, match="previous list's block 11 is after the reconciliation block 10"):
        reconcile(bars, record, previous=bars, since_block=11)


def test_an_unmatched_list_change_cites_the_first_50_supply_events_of_the_period(tmp_path):
    """Chain-free: 51 one-unit mints after the previous list's block, the list unchanged."""
    bars = load_bar_list(write(tmp_path, "bars.csv", BARS))
    empty = EventColumns([], [], [], [], [], [], [])
    mints = EventColumns(kinds=[int(EventKind.MINTED)] * 51, blocks=list(range(2, 53)), log_indexes=[0] * 51,
                         keys=[b"\x00" * 32] * 51, accounts=[HOLDER] * 51, counterparties=[], amounts=[1] * 51)  # fmt: skip
    record = OnchainRecord(chain_id=31337, token=HOLDER, at_block=60, bars=empty, batches=empty, supply=mints,
                           transfers=empty)  # fmt: skip
    result = reconcile(bars, record, previous=bars, since_block=1)
    (unmatched,) = [f for f in result.findings if f.kind is FindingKind.LIST_CHANGE_UNMATCHED]
    assert unmatched.amounts == {"list_change": "0", "net_minted": "51", "difference": "51"}
    assert [(e.event, e.block) for e in unmatched.events] == [("Minted", block) for block in range(2, 52)]
