"""Per-store state of higher layers lives in typed slots the store holds (custody.store.StoreSlot), not in
attributes written onto the store from outside (issue 13)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import sqlalchemy as sa

from custody.audit.ledger import Ledger
from custody.audit.record import ledger_for
from custody.store import Store, StoreSlot
from custody.workspace import Workspace


def _store(tmp_path: Path, name: str = "custody.db") -> Store:
    return Store(f"sqlite:///{tmp_path / name}")


def test_a_slot_is_made_once_per_store_and_each_store_has_its_own(tmp_path: Path) -> None:
    slot: StoreSlot[list[int]] = StoreSlot("test list")
    one, two = _store(tmp_path, "one.db"), _store(tmp_path, "two.db")
    try:
        made: list[list[int]] = []

        def create() -> list[int]:
            made.append([])
            return made[-1]

        assert one.slot(slot, create) is one.slot(slot, create) is made[0]
        assert two.slot(slot, create) is made[1] and len(made) == 2
        assert one.slot(StoreSlot("test list"), list) == [] and len(made) == 2  # a slot is its object, not its name
    finally:
        one.close()
        two.close()


def test_the_ledger_handle_is_one_per_store(tmp_path: Path) -> None:
    one, two = _store(tmp_path, "one.db"), _store(tmp_path, "two.db")
    try:
        assert ledger_for(one) is ledger_for(one)
        assert ledger_for(two) is not ledger_for(one) and ledger_for(two).store is two
    finally:
        one.close()
        two.close()


def test_a_workspace_ledger_signs_with_the_workspace_key_and_a_bare_store_ledger_does_not(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    bare = _store(tmp_path)
    try:
        assert workspace.store.ledger_key_dir == tmp_path / "ws" / "audit"
        assert ledger_for(workspace.store).signs_every_append
        assert bare.ledger_key_dir is None and not ledger_for(bare).signs_every_append
    finally:
        workspace.close()
        bare.close()


def test_table_readiness_is_known_per_store_for_every_ledger_on_it(tmp_path: Path) -> None:
    store = _store(tmp_path)
    try:
        Ledger(store).ready()
        with store.begin() as conn:  # behind the ledger's back: a second ledger on this store trusts the store
            conn.execute(sa.text("DROP TABLE audit_state"))
        Ledger(store).ready()
        with store.connect() as conn:
            assert not sa.inspect(conn).has_table("audit_state")
    finally:
        store.close()
    reopened = _store(tmp_path)  # a new store checks again and creates what is missing
    try:
        Ledger(reopened).ready()
        with reopened.connect() as conn:
            assert sa.inspect(conn).has_table("audit_state")
    finally:
        reopened.close()


def test_a_store_and_its_ledger_are_freed_once_dropped(tmp_path: Path) -> None:
    """Slot values may refer back to their store (a ledger does): they must not keep it alive."""
    store = _store(tmp_path)
    ledger_for(store).ready()
    store.close()
    alive = weakref.ref(store)
    del store
    gc.collect()
    assert alive() is None
