"""Reconciliation on a real chain: a seeded scenario yields exactly the seeded findings, a clean one none;
supply at any block; the index is checked against the contract; previous-list periods."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from eth_utils import keccak

from custody.exceptions import ReconcileError
from custody.harness import scenario
from custody.reconcile import index, issuance
from custody.reconcile.findings import FindingKind, Severity
from custody.reconcile.service import EXIT_BACKING_SHORT, EXIT_CRITICAL, EXIT_OK, recorded_runs, run_reconcile
from tests.collateral_helpers import HOLDER, altered_weight, deploy, units, write

BARS = scenario.generate_rows(12, seed=11, prefix="SEED")
A = BARS  # A[0]..A[11]


def hexid(row) -> str:
    return "0x" + issuance.row_bar_id(row).hex()


def test_clean_scenario_has_zero_findings_across_mint_transfer_burn(session, tmp_path):
    issuer = deploy(session)
    b1, _ = issuer.allocate(A[:6])
    issuer.mint(units(A[:6]), b1)
    issuer.transfer(HOLDER, units(A[:2]))  # holder transfers never change supply
    list1 = write(tmp_path, "1.csv", A[:6])
    first = run_reconcile(session, issuer.token, list1)
    assert first.reconciliation.findings == () and first.exit_code == EXIT_OK
    b2, _ = issuer.allocate(A[6:10])
    issuer.mint(units(A[6:10]), b2)
    list2 = write(tmp_path, "2.csv", A[:10])
    second = run_reconcile(session, issuer.token, list2, previous_path=list1)  # period found from run 1
    assert second.since_block == first.at_block and second.reconciliation.findings == ()
    d = second.reconciliation.diff
    assert (d.added, d.removed, d.altered, d.minted, d.burned) == (4, 0, 0, units(A[6:10]), 0)
    # redemption: release two bars, burn their weight citing the release batch, publish the smaller list
    released, _ = issuer.deallocate(A[2:4])
    issuer.burn(units(A[2:4]), released)
    custodian, location = next(v for v in scenario.VAULTS if v != (A[4]["custodian"], A[4]["vault_location"]))
    moved = [{**r, "custodian": custodian, "vault_location": location} if r is A[4] else r for r in A[:2] + A[4:10]]
    list3 = write(tmp_path, "3.csv", moved)
    third = run_reconcile(session, issuer.token, list3, previous_path=list2)
    assert third.reconciliation.findings == () and third.exit_code == EXIT_OK
    t = third.reconciliation.totals
    assert t.supply == t.verified_backing == t.onchain_allocated == t.listed == units(A[:2] + A[4:10])
    assert (third.reconciliation.diff.removed, third.reconciliation.diff.burned) == (2, units(A[2:4]))
    # custodian/location totals: every listed bar counted once, in its own vault, exactly
    expected: dict = {}
    for r in moved:
        key = (r["custodian"], r["vault_location"])
        n, w = expected.get(key, (0, 0))
        expected[key] = (n + 1, w + issuance.row_units(r))
    got = {(c["custodian"], c["vault_location"]): (c["bars"], int(c["fine"])) for c in third.reconciliation.custodians}
    assert got == expected
    assert all(
        c["bars_allocated"] == c["bars"] and c["allocated_fine"] == c["fine"] for c in third.reconciliation.custodians
    )
    assert third.reconciliation.diff.moved == 1  # a bar moving vaults is reported, not a discrepancy
    assert [r["run_id"] for r in recorded_runs(session, issuer.token)] == [third.run_id, second.run_id, first.run_id]


def test_seeded_scenario_yields_exactly_the_seeded_findings(session, tmp_path):
    issuer = deploy(session)
    b1, _ = issuer.allocate(A[:6])
    issuer.mint(units(A[:6]), b1)
    previous = write(tmp_path, "previous.csv", A[:6])
    since = issuer.head()
    b2, _ = issuer.allocate(A[6:10])
    issuer.mint(units(A[6:10]), b2)
    # on-chain discrepancies
    issuer.allocate([A[3]])  # A3 allocated again while still allocated
    issuer.deallocate([A[11]])  # A11 released although never allocated
    bogus = keccak(text="no such batch")
    unprovenanced = issuer.mint(100 * 10**18, bogus)  # cites nothing that was allocated
    issuer.mint(3 * 10**18, b2)  # b2 is now over-minted by 3 oz
    # list discrepancies: A1 missing, A10 never allocated, A2 weighs 1 oz less, A4's year changed
    current_rows = [A[0], altered_weight(A[2], -1_000), A[3], {**A[4], "year": "2011"}, *A[5:10], A[10]]
    current = write(tmp_path, "current.csv", current_rows)

    run = run_reconcile(session, issuer.token, current, previous_path=previous, since_block=since)
    found = {(f.kind, f.bar_id) for f in run.reconciliation.findings}
    assert found == {
        (FindingKind.DUPLICATE_ALLOCATION, hexid(A[3])),
        (FindingKind.DEALLOCATED_NOT_ALLOCATED, hexid(A[11])),
        (FindingKind.ALLOCATED_NOT_IN_LIST, hexid(A[1])),
        (FindingKind.LISTED_NOT_ALLOCATED, hexid(A[10])),
        (FindingKind.WEIGHT_MISMATCH, hexid(A[2])),
        (FindingKind.BAR_ALTERED, hexid(A[2])),
        (FindingKind.BAR_ALTERED, hexid(A[4])),
        (FindingKind.MINT_WITHOUT_PROVENANCE, None),
        (FindingKind.MINT_EXCEEDS_PROVENANCE, None),
        (FindingKind.SUPPLY_EXCEEDS_ALLOCATION, None),
        (FindingKind.BACKING_SHORTFALL, None),
        (FindingKind.LIST_CHANGE_UNMATCHED, None),
    }
    assert len(run.reconciliation.findings) == len(found) == 12
    assert {f.kind for f in run.reconciliation.findings} == set(FindingKind)  # every kind demonstrated
    assert run.reconciliation.diff.altered == 2  # A[2] (fine weight) and A[4] (year)

    by_kind = {f.kind: f for f in run.reconciliation.findings if f.kind is not FindingKind.BAR_ALTERED}
    supply = units(A[:10]) + 103 * 10**18
    allocated = units(A[:10]) + units([A[3]]) - units([A[11]])
    verified = units([A[0], A[3], *A[4:10]]) + units([A[2]]) - 10**18  # A2 at the smaller (listed) weight
    t = run.reconciliation.totals
    assert (t.supply, t.onchain_allocated, t.verified_backing) == (supply, allocated, verified)
    assert by_kind[FindingKind.BACKING_SHORTFALL].amounts["shortfall"] == str(supply - verified)
    assert by_kind[FindingKind.SUPPLY_EXCEEDS_ALLOCATION].amounts["excess"] == str(supply - allocated)
    assert by_kind[FindingKind.MINT_EXCEEDS_PROVENANCE].amounts == {
        "minted": str(units(A[6:10]) + 3 * 10**18), "batch_fine_weight": str(units(A[6:10])),
        "excess": str(3 * 10**18), "batch": "0x" + b2.hex(),
    }  # fmt: skip
    # evidence: the offending transaction and block
    mint = by_kind[FindingKind.MINT_WITHOUT_PROVENANCE]
    assert (mint.tx_hash, mint.block) == (unprovenanced.tx_hash, unprovenanced.block_number)
    dup = by_kind[FindingKind.DUPLICATE_ALLOCATION]
    assert len(dup.events) == 2 and all(e.tx_hash and e.tx_hash.startswith("0x") for e in dup.events)
    assert [e.event for e in dup.events] == ["BarAllocated", "BarAllocated"]
    first, again = (e.block for e in dup.events)
    assert f"is allocated 2 times (first in block {first}, again in block {again})" in dup.message
    assert by_kind[FindingKind.ALLOCATED_NOT_IN_LIST].bar["serial"] == A[1]["serial"]  # named from the previous list
    assert by_kind[FindingKind.LISTED_NOT_ALLOCATED].bar["row"] == 11
    change = by_kind[FindingKind.LIST_CHANGE_UNMATCHED]
    assert change.severity is Severity.CRITICAL  # supply grew more than the list
    assert change.amounts["net_minted"] == str(units(A[6:10]) + 103 * 10**18)
    assert run.exit_code == EXIT_BACKING_SHORT and run.reconciliation.backing_short


def test_critical_findings_without_shortfall_exit_4(session, tmp_path):
    issuer = deploy(session)
    b1, _ = issuer.allocate(A[:4])
    issuer.mint(units(A[:3]), b1)
    issuer.mint(10**18, keccak(text="typo"))  # 1 oz unprovenanced, still covered by A3's metal
    run = run_reconcile(session, issuer.token, write(tmp_path, "l.csv", A[:4]))
    assert [f.kind for f in run.reconciliation.findings] == [FindingKind.MINT_WITHOUT_PROVENANCE]
    assert run.exit_code == EXIT_CRITICAL


def test_reconcile_at_an_earlier_block_and_supply_at_any_block(session, tmp_path):
    issuer = deploy(session)
    b1, _ = issuer.allocate(A[:3])
    m1 = issuer.mint(units(A[:2]), b1)
    m2 = issuer.mint(units([A[2]]), b1)
    c = session.contract("CollateralToken", issuer.token)
    index.sync(session, issuer.token)
    for block in range(m1.block_number - 2, m2.block_number + 1):
        assert index.supply_at(session.store, session.chain_id, issuer.token, block) == c.functions.totalSupply().call(
            block_identifier=block
        )
    early = run_reconcile(session, issuer.token, write(tmp_path, "l.csv", A[:3]), at_block=m1.block_number)
    assert early.reconciliation.totals.supply == units(A[:2]) and early.reconciliation.findings == ()
    with pytest.raises(ReconcileError, match="is not on chain"):
        run_reconcile(session, issuer.token, write(tmp_path, "l.csv", A[:3]), at_block=m2.block_number + 50)


def test_an_incomplete_index_is_refused(session, tmp_path):
    issuer = deploy(session)
    b1, _ = issuer.allocate(A[:3])
    issuer.mint(units(A[:3]), b1)
    listed = write(tmp_path, "l.csv", A[:3])
    run_reconcile(session, issuer.token, listed)
    with session.store.begin() as conn:  # lose one indexed bar event
        conn.execute(
            sa.delete(index.collateral_events).where(
                index.collateral_events.c.bar_id == issuance.row_bar_id(A[1]), index.collateral_events.c.kind == 1
            )
        )
    with pytest.raises(ReconcileError, match="index is incomplete"):
        run_reconcile(session, issuer.token, listed)


def test_previous_list_needs_a_known_block(session, tmp_path):
    issuer = deploy(session)
    b1, _ = issuer.allocate(A[:2])
    issuer.mint(units(A[:2]), b1)
    never_reconciled = write(tmp_path, "old.csv", A[:1])
    with pytest.raises(ReconcileError, match="was never reconciled") as caught:
        run_reconcile(session, issuer.token, write(tmp_path, "l.csv", A[:2]), previous_path=never_reconciled)
    assert "--since-block" in caught.value.hint


def test_reorg_after_indexing_is_reconciled_against_the_new_chain(session, tmp_path):
    issuer = deploy(session)
    b1, _ = issuer.allocate(A[:3])
    issuer.mint(units(A[:3]), b1)
    listed = write(tmp_path, "l.csv", A[:3])
    assert run_reconcile(session, issuer.token, listed).reconciliation.findings == ()
    session.chain.rpc("anvil_reorg", [1, []])  # the mint's block is replaced by an empty one
    run = run_reconcile(session, issuer.token, listed)
    assert run.sync.reorg is not None
    assert run.reconciliation.totals.supply == 0 and run.reconciliation.findings == ()
