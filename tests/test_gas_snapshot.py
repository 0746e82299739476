"""Gas from real receipts, compared with the committed benchmark snapshot (benchmarks/snapshots/)."""

import json

import pytest

from benchmarks.scenarios import foundation_gas
from tests.conftest import POLICIES, REPO

SNAPSHOT = REPO / "benchmarks" / "snapshots" / "foundation.json"
# Signature bytes differ run to run (calldata zero-byte count), so allow a few hundred gas.
TOLERANCE = 300


def test_foundation_gas_matches_committed_snapshot(session):
    committed = json.loads(SNAPSHOT.read_text())["gas"]
    measured = foundation_gas(session, POLICIES / "cold.yaml")
    assert set(measured) == set(committed)
    for name, gas in measured.items():
        assert gas == pytest.approx(committed[name], abs=TOLERANCE), (
            f"{name}: measured {gas}, snapshot {committed[name]}"
        )
