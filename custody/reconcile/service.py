"""One reconciliation run: read the bar list(s), bring the token's index up to date, check the index
against the chain, reconcile, record the run (workspace + audit-ledger hook), optionally write HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from custody._progress import Progress
from custody.chain.logs import SyncResult
from custody.contracts.deploy import read_many
from custody.exceptions import ReconcileError
from custody.reconcile import index
from custody.reconcile.barlist import BarList
from custody.reconcile.collateral import require_collateral_token
from custody.reconcile.engine import Reconciliation, reconcile
from custody.reconcile.ingest import load_bar_list
from custody.reconcile.ledger import RECONCILIATION_RUN, canonical_json, record_event
from custody.reconcile.report import write_html
from custody.session import Session
from custody.store import inserted_id, utcnow
from custody.types import parse_address

EXIT_OK = 0  # backed, no critical finding
EXIT_BACKING_SHORT = 2  # supply exceeds verified backing or on-chain allocation
EXIT_INVALID_INPUT = 3  # a bar list was rejected (BarListError.exit_code)
EXIT_CRITICAL = 4  # backed, but other critical findings


@dataclass(frozen=True)
class RunResult:
    token: str
    chain_id: int
    at_block: int
    bars: BarList
    previous: BarList | None
    since_block: int | None
    reconciliation: Reconciliation
    sync: SyncResult
    run_id: int
    ledger_entry: int | None
    html: str | None
    seconds: dict[str, float]

    @property
    def exit_code(self) -> int:
        if self.reconciliation.backing_short:
            return EXIT_BACKING_SHORT
        return EXIT_CRITICAL if self.reconciliation.critical else EXIT_OK

    def summary(self) -> dict[str, Any]:
        """The run without the finding list: what the ledger records."""
        r = self.reconciliation
        return {
            "token": self.token,
            "chain_id": self.chain_id,
            "at_block": self.at_block,
            "bars": _list_info(self.bars),
            "previous": None if self.previous is None else _list_info(self.previous),
            "since_block": self.since_block,
            "totals": r.totals.as_dict(),
            "finding_counts": r.counts(),
            "critical": r.critical,
            "backing_short": r.backing_short,
            "exit_code": self.exit_code,
        }

    def as_dict(self) -> dict[str, Any]:
        r = self.reconciliation
        return {
            **self.summary(),
            "run_id": self.run_id,
            "ledger_entry": self.ledger_entry,
            "html": self.html,
            "findings": [f.as_dict() for f in r.findings],
            "custodians": list(r.custodians),
            "diff": None if r.diff is None else r.diff.as_dict(),
            "index": {
                "from_block": self.sync.from_block,
                "to_block": self.sync.to_block,
                "new_events": self.sync.logs,
                "reorg": None if self.sync.reorg is None else vars(self.sync.reorg),
            },
            "seconds": self.seconds,
        }


def _list_info(bars: BarList) -> dict[str, Any]:
    return {"source": bars.source, "sha256": bars.sha256, "format": bars.format, "bars": len(bars)}


def check_index(session: Session, token: str, record: index.OnchainRecord, onchain_allocated: int, supply: int) -> None:
    """The index must agree with the contract's own counters at the block (else it is incomplete/stale)."""
    contract = session.contract("CollateralToken", token)
    total_supply, allocated = read_many(
        session.chain, [contract.functions.totalSupply(), contract.functions.allocatedFineWeight()], record.at_block
    )
    if (int(total_supply), int(allocated)) != (supply, onchain_allocated):
        raise ReconcileError(
            f"the index of {token} disagrees with the contract at block {record.at_block}: supply {supply} vs "
            f"totalSupply() {total_supply}, allocation {onchain_allocated} vs allocatedFineWeight() {allocated}",
            hint="re-index: remove this token's rows from the workspace's collateral_events and log cursor",
        )


def previous_block(session: Session, token: str, previous: BarList) -> int:
    """The block a previous bar list was reconciled at, from this workspace's recorded runs."""
    index.ensure_tables(session.store)
    runs = index.reconcile_runs
    with session.store.connect() as conn:
        block = conn.execute(
            sa.select(runs.c.at_block)
            .where(runs.c.chain_id == session.chain_id, runs.c.token == token.lower())
            .where(runs.c.bars_sha256 == previous.sha256)
            .order_by(runs.c.id.desc())
        ).scalar()
    if block is None:
        raise ReconcileError(
            f"the previous bar list {previous.source} (sha256 {previous.sha256[:16]}…) was never reconciled for "
            f"{token} in this workspace, so the block it was valid at is unknown",
            hint="pass --since-block N (the block the previous list was valid at)",
        )
    return int(block)


def _load(
    path: str | Path, progress: Callable[[str], AbstractContextManager[Progress]] | None, description: str
) -> BarList:
    if progress is None:
        return load_bar_list(path)
    with progress(description) as update:
        return load_bar_list(path, progress=update)


def run_reconcile(
    session: Session,
    token: str,
    bars_path: str | Path,
    *,
    previous_path: str | Path | None = None,
    since_block: int | None = None,
    at_block: int | None = None,
    html_path: str | Path | None = None,
    progress: Callable[[str], AbstractContextManager[Progress]] | None = None,
) -> RunResult:
    """Reconcile ``token`` against the bar list at ``bars_path``. ``progress(description)`` (optional) gives a
    context manager yielding a ``(done_bytes, total_bytes)`` callback, used while bar lists are read."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    address = parse_address(token, what="token")
    require_collateral_token(session, address)  # before reading a large file: is it a CollateralToken at all?
    bars = _load(bars_path, progress, "reading the bar list")
    previous = _load(previous_path, progress, "reading the previous bar list") if previous_path is not None else None
    lap("read_bar_lists")
    head = int(session.chain.rpc("eth_blockNumber"), 16)
    block = head if at_block is None else at_block
    if not 0 <= block <= head:
        raise ReconcileError(f"block {block} is not on chain {session.chain_id} (head is {head})")
    synced = index.sync(session, address)
    lap("index")
    record = index.load_record(session.store, session.chain_id, address, block)
    lap("load_events")
    if previous is not None and since_block is None:
        since_block = previous_block(session, address, previous)
    result = reconcile(bars, record, previous=previous, since_block=since_block)
    check_index(session, address, record, result.totals.onchain_allocated, result.totals.supply)
    hashes = record.tx_hashes((e.block, e.log_index) for f in result.findings for e in f.events)
    result = Reconciliation(
        at_block=result.at_block,
        totals=result.totals,
        findings=tuple(f.with_tx_hashes(hashes) for f in result.findings),
        custodians=result.custodians,
        diff=result.diff,
        allocated=result.allocated,
    )
    lap("reconcile")
    html = None
    if html_path is not None:
        html = str(write_html(Path(html_path), bars, record, result, title=f"{address} at block {block}"))
        lap("html")
    run = RunResult(
        token=address,
        chain_id=session.chain_id,
        at_block=block,
        bars=bars,
        previous=previous,
        since_block=since_block,
        reconciliation=result,
        sync=synced,
        run_id=0,
        ledger_entry=None,
        html=html,
        seconds=timings,
    )
    return _record(session, run)


def _record(session: Session, run: RunResult) -> RunResult:
    summary = run.summary()
    r = run.reconciliation
    with session.store.begin() as conn:
        run_id = inserted_id(
            conn.execute(
                index.reconcile_runs.insert().values(
                    chain_id=run.chain_id,
                    token=run.token.lower(),
                    at_block=run.at_block,
                    bars_sha256=run.bars.sha256,
                    bars_source=run.bars.source,
                    previous_sha256=None if run.previous is None else run.previous.sha256,
                    since_block=run.since_block,
                    supply=str(r.totals.supply),
                    verified_backing=str(r.totals.verified_backing),
                    findings=len(r.findings),
                    critical=r.critical,
                    backing_short=r.backing_short,
                    summary=canonical_json(summary),
                    created_at=utcnow(),
                )
            )
        )
        entry = record_event(session, RECONCILIATION_RUN, {**summary, "run_id": run_id}, conn=conn)
    return RunResult(**{**run.__dict__, "run_id": run_id, "ledger_entry": entry})


def recorded_runs(session: Session, token: str) -> list[dict[str, Any]]:
    """Earlier runs for ``token`` on this chain, newest first."""
    index.ensure_tables(session.store)
    runs = index.reconcile_runs
    with session.store.connect() as conn:
        rows = conn.execute(
            sa.select(runs)
            .where(runs.c.chain_id == session.chain_id, runs.c.token == token.lower())
            .order_by(runs.c.id.desc())
        ).mappings()
        return [
            {**json.loads(row["summary"]), "run_id": row["id"], "created_at": _iso(row["created_at"])} for row in rows
        ]


def _iso(value: dt.datetime) -> str:
    return value.isoformat()
