"""``custody audit index``: each vault's on-chain history into the ledger, from raw ``eth_getLogs``.

One stream per vault (``audit:<chain>:<safe>``) through the generic :class:`~custody.chain.logs.LogIndexer`
(raw batched ``eth_getLogs``, decoding by slicing, cursor and block hashes committed with the entries):

* the Safe: ``ExecutionSuccess`` / ``ExecutionFailure`` (→ ``execution_observed``, enriched with the
  ``SafeMultiSigTransaction`` fields of the same transaction: to, value, data, nonce), ``SafeReceived``
  (→ ``deposit_observed``, ETH), owner/threshold/module/guard/fallback-handler changes (→ ``chain_event``);
* the vault's timelock (``CallScheduled``, ``CallExecuted``, ``Cancelled``, ``MinDelayChange``) and
  guard (``CustodyGuardConfigured``, …) (→ ``chain_event``);
* ERC-20 ``Transfer`` logs of the tokens the vault's policy names, to the vault (→ ``deposit_observed``).

Idempotent (the cursor moves in the same transaction as the entries; a log already in the ledger is
never appended twice) and resumable. On a reorg the indexer's rollback — inside the transaction that
rewinds the cursor — appends a ``correction`` entry superseding every indexed entry at or above the
fork and every recorded transaction entry of the vault whose transaction is no longer where the ledger
says; nothing is ever deleted. The surviving chain is then indexed again as new entries.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from hexbytes import HexBytes
from sqlalchemy import RowMapping
from sqlalchemy.engine import Connection

from custody._perf import gc_paused
from custody._progress import Progress
from custody.audit.entries import EntryKind
from custody.audit.record import ledger_for
from custody.audit.schema import audit_refs
from custody.chain.logs import DecodedLog, LogIndexer, SyncResult, layouts_from_abi, rpc_batch
from custody.contracts import load_artifact
from custody.session import Session
from custody.vault.service import VaultRecord, get_vault, list_vaults

INDEXED_KINDS = (EntryKind.EXECUTION_OBSERVED.value, EntryKind.DEPOSIT_OBSERVED.value, EntryKind.CHAIN_EVENT.value)
_SAFE_EVENTS = (
    "ExecutionSuccess",
    "ExecutionFailure",
    "SafeMultiSigTransaction",
    "SafeReceived",
    "AddedOwner",
    "RemovedOwner",
    "ChangedThreshold",
    "EnabledModule",
    "DisabledModule",
    "ChangedGuard",
    "ChangedFallbackHandler",
    "SafeSetup",
    "ExecutionFromModuleSuccess",
    "ExecutionFromModuleFailure",
    "SafeModuleTransaction",
)
_TIMELOCK_EVENTS = ("CallScheduled", "CallExecuted", "Cancelled", "MinDelayChange")
_GUARD_EVENTS = ("CustodyGuardConfigured", "CustodyGuardSpendImported")
# an emergency exit moves funds through the module path, not execTransaction: its events are the record
_EXIT_EVENTS = ("ExitInitiated", "ExitCancelled", "ExitFinalized", "ExitAssetMoved", "ExitConfigChanged")
ACTOR = "indexer"


@functools.cache
def layouts() -> dict[str, Any]:
    merged = {}
    merged.update(layouts_from_abi(load_artifact("SafeL2").abi, _SAFE_EVENTS))
    merged.update(layouts_from_abi(load_artifact("VaultTimelock").abi, _TIMELOCK_EVENTS))
    merged.update(layouts_from_abi(load_artifact("CustodyGuard").abi, _GUARD_EVENTS))
    merged.update(layouts_from_abi(load_artifact("ExitModule").abi, _EXIT_EVENTS))
    merged.update(layouts_from_abi(load_artifact("TestERC20").abi, ["Transfer"]))
    return merged


def _json(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, HexBytes)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


@dataclass(frozen=True)
class VaultSync:
    vault: str
    safe: str
    sync: SyncResult
    appended: int
    corrections: int

    def as_dict(self) -> dict[str, Any]:
        reorg = self.sync.reorg
        return {
            "vault": self.vault,
            "safe": self.safe,
            "from_block": self.sync.from_block,
            "to_block": self.sync.to_block,
            "logs": self.sync.logs,
            "entries": self.appended,
            "corrections": self.corrections,
            "reorg": None if reorg is None else {"first_invalid_block": reorg.first_invalid_block},
        }


class VaultIndexer:
    """Indexes one vault's history into the ledger."""

    def __init__(self, session: Session, vault: VaultRecord, *, chunk_blocks: int = 2_000) -> None:
        self.session = session
        self.vault = vault
        self.safe = vault.safe.lower()
        self.tokens = {a.token.lower() for a in vault.policy().assets if a.token is not None}
        addresses = [
            vault.safe,
            vault.timelock,
            *([vault.guard] if vault.guard else []),
            *([vault.exit_module] if vault.exit_module else []),
            *sorted(self.tokens),
        ]
        self.indexer = LogIndexer(
            session.chain,
            session.store,
            f"audit:{session.chain_id}:{self.safe}",
            addresses,
            layouts(),
            start_block=vault.created_block,
            chunk_blocks=chunk_blocks,
        )
        self.ledger = ledger_for(session.store)
        self.appended = 0
        self.corrections = 0

    def sync(self, progress: Progress | None = None) -> VaultSync:
        self.ledger.state()  # tables exist before the indexer's own transactions start
        result = self.indexer.sync(self._sink, self._rollback, progress=progress)
        return VaultSync(self.vault.name, self.vault.safe, result, self.appended, self.corrections)

    # -- decoded logs → entries -----------------------------------------------------------------------
    def _items(self, logs: list[DecodedLog]) -> list[dict[str, Any]]:
        items, pending = [], {}
        safe, tokens, vault, chain_id = self.safe, self.tokens, self.vault, self.session.chain_id
        deposit, observed, event = EntryKind.DEPOSIT_OBSERVED, EntryKind.EXECUTION_OBSERVED, EntryKind.CHAIN_EVENT
        for log in logs:
            name, values = log.event, log.values
            refs = {"tx_hash": log.tx_hash, "block": log.block_number, "log_index": log.log_index}
            if name == "Transfer":
                if log.address in tokens and values[1] == safe:
                    items.append(
                        {
                            "kind": deposit,
                            "actor": ACTOR,
                            "vault": vault.name,
                            "chain_id": chain_id,
                            "refs": refs,
                            "payload": {
                                "safe": vault.safe,
                                "asset": log.address,
                                "from": values[0],
                                "amount": str(values[2]),
                            },
                        }
                    )
            elif name == "SafeMultiSigTransaction":
                to, value, data, operation = values[:4]
                pending[log.tx_hash] = {
                    "to": to,
                    "value": str(value),
                    "data": "0x" + bytes(data).hex(),
                    "operation": int(operation),
                    "nonce": _nonce(values[10]),
                }
            elif name in ("ExecutionSuccess", "ExecutionFailure") and log.address == safe:
                payload = {
                    "safe": vault.safe,
                    "success": name == "ExecutionSuccess",
                    "payment": str(values[1]),
                    **pending.pop(log.tx_hash, {}),
                }
                items.append(
                    {
                        "kind": observed,
                        "actor": ACTOR,
                        "vault": vault.name,
                        "chain_id": chain_id,
                        "refs": {**refs, "safe_tx_hash": "0x" + bytes(values[0]).hex()},
                        "payload": payload,
                    }
                )
            elif name == "SafeReceived" and log.address == safe:
                items.append(
                    {
                        "kind": deposit,
                        "actor": ACTOR,
                        "vault": vault.name,
                        "chain_id": chain_id,
                        "refs": refs,
                        "payload": {"safe": vault.safe, "asset": "ETH", "from": values[0], "amount": str(values[1])},
                    }
                )
            else:
                fields = {n: _json(v) for n, v in zip(_names(log), values)}
                items.append(
                    {
                        "kind": event,
                        "actor": ACTOR,
                        "vault": vault.name,
                        "chain_id": chain_id,
                        "refs": refs,
                        "payload": {"safe": vault.safe, "event": name, "contract": log.address, "fields": fields},
                    }
                )
        return items

    def _sink(self, conn: Connection, logs: list[DecodedLog]) -> None:
        with gc_paused():
            items = self._items(logs)
        if not items:
            return
        seen = self._already_indexed(conn, logs[0].block_number, logs[-1].block_number)
        fresh = [i for i in items if (i["refs"]["tx_hash"], i["refs"]["log_index"]) not in seen]
        self.ledger.append_many(conn, fresh, entries=False)
        self.appended += len(fresh)

    def _already_indexed(self, conn: Connection, first: int, last: int) -> set[tuple[str, int]]:
        """(tx hash, log index) of live indexed entries in these blocks: a re-delivered log (after a cursor
        reset) is never appended twice."""
        rows = conn.execute(
            sa.select(audit_refs.c.tx_hash, audit_refs.c.log_index).where(
                audit_refs.c.chain_id == self.session.chain_id,
                audit_refs.c.safe == self.safe,
                audit_refs.c.block_number.between(first, last),
                audit_refs.c.kind.in_(INDEXED_KINDS),
                audit_refs.c.superseded_by.is_(None),
            )
        )
        return {(r.tx_hash, r.log_index) for r in rows}

    # -- reorgs ------------------------------------------------------------------------------------------
    def _rollback(self, conn: Connection, first_invalid: int) -> None:
        rows = (
            conn.execute(
                sa.select(audit_refs)
                .where(
                    audit_refs.c.chain_id == self.session.chain_id,
                    audit_refs.c.safe == self.safe,
                    audit_refs.c.block_number >= first_invalid,
                    audit_refs.c.superseded_by.is_(None),
                    audit_refs.c.kind != EntryKind.CORRECTION.value,
                )
                .order_by(audit_refs.c.seq)
            )
            .mappings()
            .all()
        )
        indexed = [r for r in rows if r["kind"] in INDEXED_KINDS]
        recorded = [r for r in rows if r["kind"] not in INDEXED_KINDS and r["tx_hash"]]
        now = self._receipts([r["tx_hash"] for r in recorded])
        items = []
        for row in indexed:
            items.append(self._correction(row, first_invalid, "reorg: the block that held this log was replaced", None))
        for row in recorded:
            receipt = now.get(row["tx_hash"])
            if receipt is not None and int(receipt["blockNumber"], 16) == row["block_number"]:
                continue  # re-mined in the same block number on the new branch: the entry still holds
            reason = (
                "reorg: the transaction is no longer on the chain"
                if receipt is None
                else "reorg: the transaction was mined again in another block"
            )
            items.append(self._correction(row, first_invalid, reason, receipt))
        if items:
            self.ledger.append_many(conn, items)
            self.corrections += len(items)

    def _correction(
        self, row: RowMapping, first_invalid: int, reason: str, receipt: dict[str, Any] | None
    ) -> dict[str, Any]:
        payload = {
            "reason": reason,
            "first_invalid_block": first_invalid,
            "superseded_kind": row["kind"],
            "superseded_block": row["block_number"],
        }
        if receipt is not None:
            payload.update(now_block=int(receipt["blockNumber"], 16), now_status=int(receipt["status"], 16))
        return {
            "kind": EntryKind.CORRECTION,
            "actor": ACTOR,
            "vault": self.vault.name,
            "chain_id": self.session.chain_id,
            "refs": {"supersedes": row["seq"], "superseded_tx_hash": row["tx_hash"]},
            "payload": payload,
        }

    def _receipts(self, tx_hashes: list[str]) -> dict[str, dict[str, Any] | None]:
        if not tx_hashes:
            return {}
        results = rpc_batch(self.session.chain, [("eth_getTransactionReceipt", [h]) for h in tx_hashes])
        return dict(zip(tx_hashes, results))


@functools.cache
def _field_names() -> dict[str, tuple[str, ...]]:
    return {layout.name: layout.field_names for layout in layouts().values()}


def _names(log: DecodedLog) -> tuple[str, ...]:
    return _field_names().get(log.event) or tuple(f"arg{i}" for i in range(len(log.values)))


def _nonce(additional_info: bytes) -> int | None:
    """The Safe nonce from SafeMultiSigTransaction's ``additionalInfo`` = abi.encode(nonce, sender, threshold)."""
    raw = bytes(additional_info)
    return int.from_bytes(raw[:32], "big") if len(raw) >= 32 else None


def index_vaults(
    session: Session, vault_refs: list[str] | None = None, *, progress: Progress | None = None
) -> list[VaultSync]:
    """Index every vault of this chain (or the named ones); returns what each sync did. ``progress(blocks
    scanned, blocks to scan)`` counts over all the vaults together."""

    records = [get_vault(session, r) for r in vault_refs] if vault_refs else list_vaults(session)
    indexers = [VaultIndexer(session, record) for record in records]
    if progress is None:
        return [ix.sync() for ix in indexers]
    planned = [ix.indexer.pending() for ix in indexers]
    results, done = [], 0
    for k, ix in enumerate(indexers):
        later = sum(planned[k + 1 :])

        def step(scanned: int, total: int, before: int = done, later: int = later) -> None:
            progress(before + scanned, before + total + later)

        result = ix.sync(step)
        done += max(0, result.sync.to_block - result.sync.from_block + 1)
        results.append(result)
    return results
