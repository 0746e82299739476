"""The audit ledger on both backends (SQLite and a throwaway PostgreSQL): appends, heads, proofs, the
single-writer guarantee across processes, crash safety under SIGKILL, and tamper detection."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from custody.audit.entries import Entry, EntryKind
from custody.audit.integrity import check_rows
from custody.audit.keys import Ed25519LedgerKey, SignedHead, head_message
from custody.audit.ledger import Ledger
from custody.audit.merkle import Frontier, leaf_hash, verify_consistency, verify_inclusion
from custody.audit.schema import audit_entries, audit_heads, audit_state
from custody.exceptions import AuditError, LedgerLocked
from custody.harness.synthetic import fill, synthetic_item
from custody.store import Store

REPO = Path(__file__).resolve().parent.parent


def verify(ledger: Ledger):
    return check_rows(ledger.rows(), ledger.heads(), log_id=ledger.state().log_id)


def test_append_heads_and_proofs(ledger_store: Store, tmp_path: Path):
    ledger = Ledger(ledger_store)
    key = Ed25519LedgerKey.load_or_create(tmp_path / "keys")
    with pytest.raises(AuditError, match="empty"):
        ledger.sign_head(key)
    first = ledger.record(EntryKind.DRILL, actor="ops", payload={"name": "fire drill", "amount": "10"})
    assert first.seq == 0 and first.prev == "00" * 32
    second = ledger.record(EntryKind.PROPOSAL_CREATED, actor="alice", vault="hot", chain_id=31337,
                           refs={"safe_tx_hash": "0x" + "ab" * 32}, payload={"value": str(2**200)})  # fmt: skip
    assert second.seq == 1 and second.prev == leaf_hash(first.canonical()).hex()
    assert ledger.entry(1) == second and ledger.entry(1).payload["value"] == str(2**200)
    head2 = ledger.sign_head(key)
    for n in range(2, 13):
        ledger.record(EntryKind.DRILL, actor="ops", payload={"n": n})
    head13 = ledger.sign_head(key)
    assert (head2.size, head13.size) == (2, 13) and head13.signature_valid()
    assert ledger.latest_head() == head13 and ledger.head_at(2) == head2
    proof = ledger.inclusion_proof(7, 13)
    assert proof.leaf == leaf_hash(ledger.entry(7).canonical())
    assert verify_inclusion(7, 13, proof.leaf, proof.path, head13.root)
    consistency = ledger.consistency_proof(2, 13)
    assert verify_consistency(2, 13, head2.root, head13.root, consistency.path)
    assert not verify_consistency(2, 13, head13.root, head2.root, consistency.path)
    report = verify(ledger)
    assert report.ok and report.size == 13 and report.root == head13.root
    reference = ledger.reference(7)
    assert reference == {"log_id": ledger.state().log_id, "seq": 7, "leaf_hash": "0x" + proof.leaf.hex()}
    with pytest.raises(AuditError):
        ledger.inclusion_proof(13, 13)
    with pytest.raises(AuditError):
        ledger.record("not_a_kind", actor="x")


def test_float_payload_is_refused_and_nothing_is_written(ledger_store: Store):
    ledger = Ledger(ledger_store)
    with pytest.raises(AuditError, match="floats"):
        ledger.record(EntryKind.DRILL, actor="ops", payload={"amount": 1.5})
    assert ledger.size == 0


def test_second_writer_waits_then_gives_up_with_ledger_locked(ledger_store: Store):
    ledger = Ledger(ledger_store)
    other = Ledger(Store(ledger_store.url), lock_timeout=0.3)
    with ledger.writing() as conn:
        ledger.append(conn, EntryKind.DRILL, actor="holder")
        with pytest.raises(LedgerLocked, match="locked by another writer"):
            other.record(EntryKind.DRILL, actor="intruder")
    assert other.record(EntryKind.DRILL, actor="later").seq == 1  # lock released at commit
    other.store.close()
    assert verify(ledger).ok


def _writer(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.audit_writer", url, *args], cwd=REPO, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def test_two_processes_appending_at_once_cannot_fork_the_log(ledger_store: Store):
    Ledger(ledger_store).state()  # initialise the state row once
    writers = [_writer(ledger_store.url, "0", "--count", "120", "--tag", tag) for tag in ("writer-a", "writer-b")]
    acks = {}
    for proc, tag in zip(writers, ("writer-a", "writer-b")):
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out.strip().endswith("done")
        acks[tag] = [int(line.split()[1]) for line in out.splitlines() if line.startswith("ack")]
    ledger = Ledger(ledger_store)
    assert ledger.size == 240 and sorted(acks["writer-a"] + acks["writer-b"]) == list(range(240))
    actors = {e.seq: e.actor for e in ledger.entries()}
    assert all(actors[s] == tag for tag, seqs in acks.items() for s in seqs)
    report = verify(ledger)
    assert report.ok, report.problems[:3]


def test_sigkill_during_1000_appends_loses_no_acknowledged_entry(ledger_store: Store, tmp_path: Path):
    Ledger(ledger_store).state()
    rng = random.Random(1000)
    acknowledged: set[int] = set()
    kills = 0
    while True:
        proc = _writer(ledger_store.url, "1000", "--key-dir", str(tmp_path / "keys"), "--heads-every", "9")
        assert proc.stdout.readline().strip() == "ready"
        budget = rng.randint(1, 180)
        finished = False
        for line in proc.stdout:
            if line.startswith("ack"):
                acknowledged.add(int(line.split()[1]))
                budget -= 1
                if budget == 0:
                    break
            elif line.strip() == "done":
                finished = True
                break
        if not finished:
            proc.send_signal(signal.SIGKILL)  # mid-append, mid-commit or mid-head: wherever it is
            kills += 1
        proc.wait(timeout=60)
        proc.stdout.close()
        ledger = Ledger(Store(ledger_store.url))  # reopen, as a new process would
        report = verify(ledger)
        assert report.ok, report.problems[:3]
        assert acknowledged <= set(range(ledger.size))
        for seq in sorted(acknowledged)[-3:]:
            assert ledger.entry(seq).payload == synthetic_item(seq)["payload"]
        size = ledger.size
        ledger.store.close()
        if finished or size >= 1000:
            break
    # a kill can land between a commit and its "ack" line: at most one unacknowledged entry per kill
    assert kills >= 3 and size == 1000 and len(acknowledged) >= 1000 - kills
    ledger = Ledger(ledger_store)
    assert all(e.payload["n"] == e.seq for e in ledger.entries())
    assert len(ledger.heads()) >= 100


# -- tamper detection on 10,000 entries ------------------------------------------------------------------
def _rows(store: Store, seqs) -> list[dict]:
    with store.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(sa.select(audit_entries).where(audit_entries.c.seq.in_(list(seqs)))).mappings()
        ]


def _put(store: Store, rows: list[dict]) -> None:
    with store.begin() as conn:
        for row in rows:
            conn.execute(
                audit_entries.update()
                .where(audit_entries.c.seq == row["seq"])
                .values(leaf=row["leaf"], entry=row["entry"])
            )


def _flip(blob: bytes, offset: int, bit: int) -> bytes:
    data = bytearray(blob)
    data[offset] ^= 1 << bit
    return bytes(data)


def test_tampering_with_10000_entries_is_always_detected_at_the_first_bad_sequence(ledger_store: Store, tmp_path: Path):
    ledger = Ledger(ledger_store)
    key = Ed25519LedgerKey.load_or_create(tmp_path / "keys")
    n = 10_000
    fill(ledger, n, key=key, head_every=1)  # a head per append, as a per-operation head policy gives
    state = ledger.state()
    assert verify(ledger).ok
    rng = random.Random(6962)
    outcomes: list[tuple[str, int, int | None]] = []

    def check(name: str, expected: int) -> None:
        outcomes.append((name, expected, verify(ledger).first_bad_sequence))

    # single-byte (bit) flips in stored entries, in stored leaf hashes, and in entries whose leaf hash the
    # tamperer recomputed too
    for i in range(18):
        seq = rng.randrange(n)
        (orig,) = _rows(ledger_store, [seq])
        column = ("entry", "leaf", "entry+leaf")[i % 3]
        field = orig["leaf"] if column == "leaf" else orig["entry"]
        flipped = _flip(field, rng.randrange(len(field)), rng.randrange(8))
        row = {**orig, "leaf": flipped} if column == "leaf" else {**orig, "entry": flipped}
        if column == "entry+leaf":
            row["leaf"] = leaf_hash(flipped)
        _put(ledger_store, [row])
        check(f"flip {column} @{seq}", seq)
        _put(ledger_store, [orig])
    # deleted rows
    for _ in range(4):
        seq = rng.randrange(n - 1)
        (orig,) = _rows(ledger_store, [seq])
        with ledger_store.begin() as conn:
            conn.execute(audit_entries.delete().where(audit_entries.c.seq == seq))
        check(f"delete @{seq}", seq)
        with ledger_store.begin() as conn:
            conn.execute(audit_entries.insert().values(**orig))
    # swapped rows (whole rows: entry and leaf hash move together)
    for _ in range(4):
        a, b = sorted(rng.sample(range(n), 2))
        ra, rb = _rows(ledger_store, [a, b])
        _put(
            ledger_store,
            [{**ra, "leaf": rb["leaf"], "entry": rb["entry"]}, {**rb, "leaf": ra["leaf"], "entry": ra["entry"]}],
        )
        check(f"swap {a}<->{b}", a)
        _put(ledger_store, [ra, rb])
    # truncation (the tamperer also rewinds the state row)
    for cut in (1, 37, 2_500):
        removed = _rows(ledger_store, range(n - cut, n))
        with ledger_store.begin() as conn:
            conn.execute(audit_entries.delete().where(audit_entries.c.seq >= n - cut))
        check(f"truncate {cut}", n - cut)
        with ledger_store.begin() as conn:
            conn.execute(audit_entries.insert(), removed)
    # a consistent rewrite from some entry on (entries, leaf hashes and hash chain recomputed): only heads tell
    start = rng.randrange(n // 2, n)
    originals = _rows(ledger_store, range(start, n))
    prev = _rows(ledger_store, [start - 1])[0]["leaf"]
    rewritten = []
    for row in sorted(originals, key=lambda r: r["seq"]):
        entry = Entry.parse(row["entry"])
        forged = Entry(
            **{**entry.__dict__, "prev": prev.hex(), "actor": "mallory" if row["seq"] == start else entry.actor}
        )
        blob = forged.canonical()
        prev = leaf_hash(blob)
        rewritten.append({**row, "entry": blob, "leaf": prev})
    _put(ledger_store, rewritten)
    check(f"rewrite from {start}", start)
    _put(ledger_store, originals)
    # forked heads: a second writer appended a different entry at seq k and signed the head of size k + 1
    for _ in range(3):
        k = rng.randrange(1, n)
        frontier = Frontier()
        for _s, leaf, _b in ledger.rows(0, k):
            frontier.push(leaf)
        alternative = Entry(**{**Entry.parse(_rows(ledger_store, [k])[0]["entry"]).__dict__, "actor": "fork"})
        frontier.push(leaf_hash(alternative.canonical()))
        root = frontier.root()
        forked = SignedHead(state.log_id, k + 1, root, 1_800_000_000, key.key_id,
                            key.sign(head_message(state.log_id, k + 1, root, 1_800_000_000)))  # fmt: skip
        ledger.add_heads([forked])
        check(f"forked head at {k + 1}", k)
        with ledger_store.begin() as conn:
            conn.execute(audit_heads.delete().where(audit_heads.c.time == 1_800_000_000))
    assert verify(ledger).ok  # everything restored
    missed = [(name, expected, got) for name, expected, got in outcomes if got != expected]
    assert not missed, missed
    assert len(outcomes) == 18 + 4 + 4 + 3 + 1 + 3
    with ledger_store.connect() as conn:
        assert conn.execute(sa.select(audit_state.c.size)).scalar() == n


def test_heads_signed_by_a_secp256k1_signer_uri_verify_and_forgeries_do_not(tmp_path: Path):
    from custody.audit.keys import SignerLedgerKey
    from custody.signers.local import anvil_signer
    from custody.signers.registry import open_signer

    ledger = Ledger(Store(f"sqlite:///{tmp_path / 'k.db'}"))
    for n in range(5):
        ledger.record(EntryKind.DRILL, actor="ops", payload={"n": n})
    key = SignerLedgerKey(open_signer("anvil:4"))
    head = ledger.sign_head(key)
    assert head.key_id == "secp256k1:" + anvil_signer(4).address and len(head.signature) == 65
    assert head.signature_valid() and verify(ledger).ok
    forged = SignedHead(**{**head.__dict__, "size": 4})
    assert not forged.signature_valid()
    other = SignedHead(**{**head.__dict__, "key_id": "secp256k1:" + anvil_signer(5).address})
    assert not other.signature_valid()
    report = check_rows(ledger.rows(), [*ledger.heads(), other], log_id=ledger.state().log_id)
    assert [p.code for p in report.problems] == ["head_signature"]
    pinned = check_rows(ledger.rows(), ledger.heads(), trusted_keys=["ed25519:" + "11" * 32])
    assert [p.code for p in pinned.problems] == ["untrusted_key"] and pinned.first_bad_sequence == 0
