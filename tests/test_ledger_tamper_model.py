"""The ledger against an attacker who controls the whole workspace database, at the product's real cadence.

Custody signs a tree head in every append transaction (CT-style: the entries and the head covering them
commit together). The attacker may rewrite any table: entries with their leaf hashes and hash chain
recomputed, the state row, heads, anchor rows. They do not hold the ledger key (it lives outside the
database, in ``<workspace>/audit``). Each attack is asserted by its problem code:

================================  ===================================================================
attack                            detected by
================================  ===================================================================
swap two rows                     ``sequence_mismatch`` at both rows
rewrite entries + leaves + chain  ``head_root_mismatch`` and ``heads_inconsistent`` (a real check)
delete every head / the latest    ``unsigned_entries`` from the last verified head on
truncate the tail                 ``head_beyond_log``
truncate tail and its heads,      nothing local can tell (an earlier, correctly signed state); the chain
roll every table back             does: ``anchored_beyond_log`` (docs/ledger-tamper-model.md)
re-sign everything with a new key ``untrusted_key`` with the pinned key (``--key``); with the chain also
                                  ``anchor_root_mismatch``
================================  ===================================================================
"""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from custody.audit import service as audit_service
from custody.audit.entries import Entry
from custody.audit.keys import Ed25519LedgerKey, SignedHead, head_message
from custody.audit.merkle import Frontier, MerkleTree, leaf_hash
from custody.audit.record import ledger_for
from custody.audit.schema import audit_anchors, audit_entries, audit_heads, audit_state
from custody.contracts.infra import DEMO_TOKEN_ADDRESS
from custody.signers.local import anvil_signer
from custody.vault import proposals, service
from tests.conftest import POLICIES

PRIME = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
MINT = function_signature_to_4byte_selector("mint(address,uint256)")


@pytest.fixture
def hot(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=record.safe, value=10 * 10**18, what="ETH deposit")
    session.send(to=DEMO_TOKEN_ADDRESS, data=MINT + encode(["address", "uint256"], [record.safe, 5_000 * 10**6]),
                 what="dUSD deposit")  # fmt: skip
    return record


def transfer(session, vault, amount="1"):
    proposal = proposals.propose_transfer(session, vault.id, to=PRIME, amount=amount, proposer="alice")
    proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(1))
    return proposals.execute(session, proposals.get_proposal(session, proposal.id))


def codes(report) -> dict[str, list[int | None]]:
    found: dict[str, list[int | None]] = {}
    for problem in [*report.integrity.problems, *report.extra]:
        found.setdefault(problem.code, []).append(problem.sequence)
    return found


def legit_key(session) -> str:
    return Ed25519LedgerKey.load_or_create(session.workspace.home / "audit").key_id


# -- what an attacker with the database can do ----------------------------------------------------------
def rows(store) -> list[dict]:
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(audit_entries).order_by(audit_entries.c.seq)).mappings()]


def forge_from(store, start: int, actor: str = "mallory") -> list[bytes]:
    """Rewrite entry ``start`` (actor) and re-chain everything after it: entries, leaf hashes, the state row.
    Returns the forged leaves of the whole log."""
    everything = rows(store)
    leaves = [bytes(r["leaf"]) for r in everything[:start]]
    prev = leaves[-1] if leaves else bytes(32)
    frontier = Frontier()
    for leaf in leaves:
        frontier.push(leaf)
    with store.begin() as conn:
        for row in everything[start:]:
            entry = Entry.parse(bytes(row["entry"]))
            fields = {**entry.__dict__, "prev": prev.hex()}
            if row["seq"] == start:
                fields["actor"] = actor
            blob = Entry(**fields).canonical()
            prev = leaf_hash(blob)
            leaves.append(prev)
            frontier.push(prev)
            conn.execute(audit_entries.update().where(audit_entries.c.seq == row["seq"]).values(entry=blob, leaf=prev))
        conn.execute(audit_state.update().values(size=frontier.size, last_leaf=prev, frontier=frontier.to_bytes()))
    return leaves


def truncate(store, keep: int, *, heads_too: bool) -> None:
    """Delete the entries from ``keep`` on and move the state row back (and the heads above, if asked)."""
    leaves = [bytes(r["leaf"]) for r in rows(store)[:keep]]
    frontier = Frontier()
    for leaf in leaves:
        frontier.push(leaf)
    with store.begin() as conn:
        conn.execute(audit_entries.delete().where(audit_entries.c.seq >= keep))
        conn.execute(audit_state.update().values(size=keep, last_leaf=leaves[-1], frontier=frontier.to_bytes()))
        if heads_too:
            doomed = sa.select(audit_heads.c.id).where(audit_heads.c.size > keep)
            conn.execute(audit_anchors.delete().where(audit_anchors.c.head_id.in_(doomed)))
            conn.execute(audit_heads.delete().where(audit_heads.c.size > keep))


def sqlite_file(session):
    url = session.store.url
    assert url.startswith("sqlite:///")
    return url[len("sqlite:///") :]


def backup(source: str, target: str) -> None:
    """A consistent copy of a whole SQLite database (WAL included) — every table at once."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


# -- the cadence ----------------------------------------------------------------------------------------
def test_every_append_transaction_commits_with_its_signed_head(session, hot):
    ledger = ledger_for(session.store)
    before = ledger.size
    transfer(session, hot)
    heads = ledger.heads()
    assert ledger.size > before and heads[-1].size == ledger.size  # no entry outside a signed head
    assert {h.key_id for h in heads} == {legit_key(session)}
    assert all(h.signature_valid() for h in heads)
    report = audit_service.verify(store=session.store, chain=session.chain, keys=[legit_key(session)])
    assert report.exit_code == 0, report.as_dict()["integrity"]["problems"]


# -- attacks ---------------------------------------------------------------------------------------------
def test_swapped_rows_are_named_at_both_rows(session, hot):
    transfer(session, hot)
    a, b = 1, ledger_for(session.store).size - 1
    ra, rb = (r for r in rows(session.store) if r["seq"] in (a, b))
    with session.store.begin() as conn:
        for seq, other in ((a, rb), (b, ra)):
            conn.execute(audit_entries.update().where(audit_entries.c.seq == seq)
                         .values(entry=other["entry"], leaf=other["leaf"]))  # fmt: skip
    found = codes(audit_service.verify(store=session.store))
    assert sorted(found["sequence_mismatch"]) == [a, b]


def test_a_consistent_rewrite_fails_the_heads_and_their_consistency(session, hot):
    transfer(session, hot)
    transfer(session, hot, amount="2")
    start = ledger_for(session.store).size - 2
    forge_from(session.store, start)
    report = audit_service.verify(store=session.store)
    found = codes(report)
    assert report.exit_code == 2 and report.first_bad_sequence == start
    assert "head_root_mismatch" in found
    # the consistency check is real: the signed head just below the rewrite does not extend to the heads above
    assert min(found["heads_inconsistent"]) == start


def test_deleting_heads_leaves_unsigned_entries(session, hot):
    transfer(session, hot)
    size = ledger_for(session.store).size
    heads = ledger_for(session.store).heads()
    with session.store.begin() as conn:
        conn.execute(audit_heads.delete().where(audit_heads.c.id == heads[-1].id))
    found = codes(audit_service.verify(store=session.store))
    assert found == {"unsigned_entries": [heads[-2].size]} and heads[-2].size < size
    with session.store.begin() as conn:
        conn.execute(audit_heads.delete())
    assert codes(audit_service.verify(store=session.store)) == {"unsigned_entries": [0]}


def test_truncating_the_tail_is_caught_by_the_heads(session, hot):
    transfer(session, hot)
    size = ledger_for(session.store).size
    truncate(session.store, size - 2, heads_too=False)
    found = codes(audit_service.verify(store=session.store))
    assert set(found) == {"head_beyond_log"} and set(found["head_beyond_log"]) == {size - 2}


def test_truncating_tail_and_heads_is_caught_by_the_chain_anchor(session, hot):
    transfer(session, hot)
    audit_service.anchor(session)  # the latest head goes on chain
    size = ledger_for(session.store).size
    truncate(session.store, size - 2, heads_too=True)
    assert audit_service.verify(store=session.store).exit_code == 0  # locally an earlier, correctly signed state
    report = audit_service.verify(store=session.store, chain=session.chain, keys=[legit_key(session)])
    assert codes(report) == {"anchored_beyond_log": [size - 2]} and report.exit_code == 2


def test_rolling_every_table_back_is_caught_only_by_an_outside_witness(session, hot, tmp_path):
    transfer(session, hot)
    earlier = str(tmp_path / "earlier.db")
    backup(sqlite_file(session), earlier)  # the attacker keeps a copy of the whole database
    old_size = ledger_for(session.store).size
    transfer(session, hot, amount="2")
    audit_service.anchor(session)
    session.store.close()
    backup(earlier, sqlite_file(session))  # ...and puts it back: entries, heads, anchors, state, vault tables
    assert ledger_for(session.store).size == old_size
    pinned = [legit_key(session)]
    # what the database alone (even with the pinned key) cannot tell: documented in docs/ledger-tamper-model.md
    assert audit_service.verify(store=session.store, keys=pinned).exit_code == 0
    report = audit_service.verify(store=session.store, chain=session.chain, keys=pinned)
    assert codes(report)["anchored_beyond_log"] == [old_size] and report.exit_code == 2


def test_re_signing_every_head_with_a_new_key_is_caught_by_the_pinned_key(session, hot):
    transfer(session, hot)
    audit_service.anchor(session)
    ledger = ledger_for(session.store)
    sizes = sorted({h.size for h in ledger.heads()})
    leaves = forge_from(session.store, 1)
    tree, attacker = MerkleTree(leaves), Ed25519LedgerKey(Ed25519PrivateKey.generate())
    log_id = ledger.state().log_id
    forged = [SignedHead(log_id, s, tree.root(s), 1_900_000_000, attacker.key_id,
                         attacker.sign(head_message(log_id, s, tree.root(s), 1_900_000_000))) for s in sizes]  # fmt: skip
    with session.store.begin() as conn:
        conn.execute(audit_anchors.delete())
        conn.execute(audit_heads.delete())
    ledger.add_heads(forged)
    assert audit_service.verify(store=session.store).exit_code == 0  # self-consistent under the attacker's key
    pinned = audit_service.verify(store=session.store, keys=[legit_key(session)])
    assert set(codes(pinned)) == {"untrusted_key", "unsigned_entries"} and pinned.exit_code == 2
    assert codes(pinned)["unsigned_entries"] == [0]
    with_chain = audit_service.verify(store=session.store, chain=session.chain, keys=[legit_key(session)])
    assert "anchor_root_mismatch" in codes(with_chain)


def test_the_workspace_database_copy_helper_copies_every_table(session, hot, tmp_path):
    """The rollback test's copy really is the whole database (so the rollback is complete)."""
    transfer(session, hot)
    copy = tmp_path / "copy.db"
    backup(sqlite_file(session), str(copy))
    with sqlite3.connect(sqlite_file(session)) as live, sqlite3.connect(copy) as copied:
        tables = [t for (t,) in live.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        assert tables == [
            t for (t,) in copied.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        ]
        for table in tables:
            assert (
                live.execute(f"SELECT count(*) FROM {table}").fetchone()
                == copied.execute(f"SELECT count(*) FROM {table}").fetchone()
            )
