"""Ledger entries against the chain: every recorded execution happened as recorded, every on-chain
vault execution is in the ledger, every anchored head is on chain as recorded.

For each ``execution`` entry (not superseded by a correction): the transaction exists and succeeded,
sits in the recorded block, was sent to the vault's Safe, its ``execTransaction`` calldata carries the
recorded destination, amount, data and operation, and its receipt holds the Safe's
``ExecutionSuccess``/``ExecutionFailure`` for the recorded safeTxHash. ``execution_observed`` entries
must match their log. Then, per vault the ledger knows (``vault_created`` entries of this chain), the
Safe's ``ExecutionSuccess``/``ExecutionFailure`` logs since its creation are fetched and each must have
an entry (recorded or indexed) — nothing missing. All reads are batched JSON-RPC. Each vault's first guard
must be the reproducible build, enforcing the recorded template (``custody.policy.guard_code``: the code
itself proves it, for a clone and for a dedicated guard alike).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, keccak

from custody.audit.anchor import eas_reference
from custody.audit.integrity import Problem
from custody.audit.keys import SignedHead
from custody.chain.connection import Chain
from custody.chain.logs import rpc_batch
from custody.policy.guard_code import guard_provenance

EXEC_TYPES = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]
EXEC_SELECTOR = "0x" + function_signature_to_4byte_selector(f"execTransaction({','.join(EXEC_TYPES)})").hex()
SUCCESS = "0x" + keccak(text="ExecutionSuccess(bytes32,uint256)").hex()
FAILURE = "0x" + keccak(text="ExecutionFailure(bytes32,uint256)").hex()
ANCHORED = "0x" + keccak(text="LedgerAnchored(address,uint256,bytes32,uint64,bytes)").hex()
BATCH = 200


@dataclass
class ChainReport:
    chain_id: int
    executions_checked: int = 0
    observed_checked: int = 0
    onchain_executions: int = 0
    anchors_checked: int = 0
    guards_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "executions_checked": self.executions_checked,
            "observed_checked": self.observed_checked,
            "onchain_executions": self.onchain_executions,
            "anchors_checked": self.anchors_checked,
            "guards_checked": self.guards_checked,
            "problems": [p.as_dict() for p in self.problems],
        }


def _batched(chain: Chain, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    out = []
    for i in range(0, len(calls), BATCH):
        out += rpc_batch(chain, calls[i : i + BATCH])
    return out


def check_chain(chain: Chain, entries: Iterable[dict[str, Any]], anchors: Iterable[dict[str, Any]] = ()) -> ChainReport:
    """Check ``entries`` (parsed, any order; only this chain's are considered) and ``anchors`` against ``chain``."""
    report = ChainReport(chain.chain_id)
    entries = [e for e in entries if e.get("chain_id") == chain.chain_id or e.get("kind") == "correction"]
    superseded = {e["refs"].get("supersedes") for e in entries if e["kind"] == "correction"}
    live = [e for e in entries if e["seq"] not in superseded]
    _check_executions(chain, [e for e in live if e["kind"] == "execution"], report)
    _check_observed(chain, [e for e in live if e["kind"] == "execution_observed"], report)
    _check_complete(chain, live, report)
    _check_guards(chain, [e for e in live if e["kind"] == "vault_created" and e["payload"].get("guard")], report)
    _check_anchors(chain, list(anchors), report)
    return report


def _check_guards(chain: Chain, created: list[dict[str, Any]], report: ChainReport) -> None:
    """Each vault's first guard: its code is the committed build and the policy it proves carries the
    template hash the ledger recorded (``payload.policy_hash`` is the template file's keccak256)."""
    for entry in created:
        report.guards_checked += 1
        payload = entry["payload"]
        proof = guard_provenance(chain, payload["guard"])
        where = f"entry {entry['seq']}: vault {entry.get('vault')}'s guard {payload['guard']}"
        if not proof.verified:
            report.problems.append(Problem(entry["seq"], "guard_code", f"{where}: {proof.problem}"))
        elif proof.template_hash is None or "0x" + proof.template_hash.hex() != payload["policy_hash"]:
            found = "none" if proof.template_hash is None else "0x" + proof.template_hash.hex()
            report.problems.append(
                Problem(
                    entry["seq"],
                    "guard_policy",
                    f"{where} enforces template {found}, the ledger recorded {payload['policy_hash']}",
                )
            )


def _check_executions(chain: Chain, executions: list[dict[str, Any]], report: ChainReport) -> None:
    hashes = [e["refs"]["tx_hash"] for e in executions]
    txs = _batched(chain, [("eth_getTransactionByHash", [h]) for h in hashes])
    receipts = _batched(chain, [("eth_getTransactionReceipt", [h]) for h in hashes])
    for entry, tx, receipt in zip(executions, txs, receipts):
        report.executions_checked += 1
        problem = _execution_problem(entry, tx, receipt)
        if problem is not None:
            report.problems.append(Problem(entry["seq"], problem[0], f"entry {entry['seq']}: {problem[1]}"))


def _execution_problem(
    entry: dict[str, Any], tx: dict[str, Any] | None, receipt: dict[str, Any] | None
) -> tuple[str, str] | None:
    refs, payload = entry["refs"], entry["payload"]
    tx_hash, safe = refs["tx_hash"], payload["safe"].lower()
    if tx is None or receipt is None:
        return "tx_missing", f"transaction {tx_hash} is not on the chain"
    if int(receipt["status"], 16) != 1:
        return "tx_reverted", f"transaction {tx_hash} reverted"
    if int(receipt["blockNumber"], 16) != refs.get("block"):
        return (
            "block_mismatch",
            f"transaction {tx_hash} is in block {int(receipt['blockNumber'], 16)}, not {refs.get('block')}",
        )
    if (tx.get("to") or "").lower() != safe:
        return "wrong_safe", f"transaction {tx_hash} was sent to {tx.get('to')}, not the vault's Safe {payload['safe']}"
    data = tx.get("input") or tx.get("data") or "0x"
    if not data.startswith(EXEC_SELECTOR):
        return "not_exec_transaction", f"transaction {tx_hash} does not call execTransaction"
    try:
        to, value, inner, operation, *_ = abi_decode(EXEC_TYPES, bytes.fromhex(data[10:]))
    except Exception:
        return "bad_calldata", f"transaction {tx_hash} has undecodable execTransaction calldata"
    recorded = (payload["to"].lower(), payload["value"], payload["data"], payload["operation"])
    actual = (to.lower(), str(value), "0x" + inner.hex(), operation)
    if recorded != actual:
        names = ("destination", "amount", "data", "operation")
        differs = [f"{n} {r!r} vs chain {a!r}" for n, r, a in zip(names, recorded, actual) if r != a]
        return "calldata_mismatch", f"transaction {tx_hash} differs from the entry: {'; '.join(differs)}"
    want = SUCCESS if payload.get("success", True) else FAILURE
    logs = [
        log
        for log in receipt["logs"]
        if log["address"].lower() == safe
        and log["topics"]
        and log["topics"][0] == want
        and len(log["topics"]) > 1
        and log["topics"][1] == refs["safe_tx_hash"].lower()
    ]
    if not logs:
        event = "ExecutionSuccess" if want == SUCCESS else "ExecutionFailure"
        return "event_missing", f"transaction {tx_hash} has no {event} for safeTxHash {refs['safe_tx_hash']}"
    return None


def _check_observed(chain: Chain, observed: list[dict[str, Any]], report: ChainReport) -> None:
    hashes = [e["refs"]["tx_hash"] for e in observed]
    receipts = _batched(chain, [("eth_getTransactionReceipt", [h]) for h in hashes])
    for entry, receipt in zip(observed, receipts):
        report.observed_checked += 1
        refs = entry["refs"]
        topic = SUCCESS if entry["payload"].get("success") else FAILURE
        ok = (
            receipt is not None
            and int(receipt["blockNumber"], 16) == refs["block"]
            and any(
                int(log["logIndex"], 16) == refs["log_index"]
                and log["topics"]
                and log["topics"][0] == topic
                and len(log["topics"]) > 1
                and log["topics"][1] == refs["safe_tx_hash"].lower()
                for log in receipt["logs"]
            )
        )
        if not ok:
            report.problems.append(
                Problem(
                    entry["seq"],
                    "observed_mismatch",
                    f"entry {entry['seq']}: the indexed execution "
                    f"{refs['safe_tx_hash']} is not at {refs['tx_hash']} log {refs['log_index']} on chain",
                )
            )


def _check_complete(chain: Chain, live: list[dict[str, Any]], report: ChainReport) -> None:
    vaults = {}
    for e in live:
        if e["kind"] == "vault_created":
            vaults[e["payload"]["safe"].lower()] = (e["vault"], e["refs"].get("block", 0))
    known = {
        (e["refs"].get("tx_hash"), e["refs"].get("safe_tx_hash"))
        for e in live
        if e["kind"] in ("execution", "execution_observed")
    }
    if not vaults:
        return
    head = int(chain.rpc("eth_blockNumber"), 16)
    calls = [
        (
            "eth_getLogs",
            [{"address": safe, "fromBlock": hex(block), "toBlock": hex(head), "topics": [[SUCCESS, FAILURE]]}],
        )
        for safe, (_n, block) in vaults.items()
    ]
    for (safe, (name, _b)), logs in zip(vaults.items(), _batched(chain, calls)):
        for log in logs:
            report.onchain_executions += 1
            safe_tx_hash = log["topics"][1]  # ExecutionSuccess/Failure(bytes32 indexed txHash, uint256 payment)
            if (log["transactionHash"], safe_tx_hash) not in known:
                report.problems.append(
                    Problem(
                        None,
                        "execution_missing",
                        f"vault {name} ({safe}) executed safeTxHash {safe_tx_hash} in "
                        f"{log['transactionHash']} (block {int(log['blockNumber'], 16)}) but the ledger has no entry for it",
                    )
                )


def _check_anchors(chain: Chain, anchors: list[dict[str, Any]], report: ChainReport) -> None:
    mine = [a for a in anchors if a["chain_id"] == chain.chain_id]
    receipts = _batched(chain, [("eth_getTransactionReceipt", [a["tx_hash"]]) for a in mine])
    for anchor, receipt in zip(mine, receipts):
        report.anchors_checked += 1
        head = anchor["head"]
        if anchor.get("method") == "eas_timestamp":
            found = receipt is not None and _eas_timestamped(anchor, head, receipt)
            if not found:
                report.problems.append(
                    Problem(
                        None,
                        "anchor_mismatch",
                        f"EAS timestamp of head size {head['size']} in {anchor['tx_hash']} "
                        "is not on chain as recorded (or does not match the head)",
                    )
                )
            continue
        size_topic = "0x" + int(head["size"]).to_bytes(32, "big").hex()
        found = receipt is not None and any(
            log["address"].lower() == anchor["contract"].lower()
            and log["topics"][:1] == [ANCHORED]
            and log["topics"][2] == size_topic
            and log["data"][2:66] == head["root"]
            and head["signature"] in log["data"]
            for log in receipt["logs"]
        )
        if not found:
            report.problems.append(
                Problem(
                    None,
                    "anchor_mismatch",
                    f"anchor of head size {head['size']} in {anchor['tx_hash']} is not on chain as recorded",
                )
            )


TIMESTAMPED = "0x" + keccak(b"Timestamped(bytes32,uint64)").hex()


def _eas_timestamped(anchor: dict[str, Any], head: dict[str, Any], receipt: dict[str, Any]) -> bool:
    """The receipt carries EAS's Timestamped event for the hash of exactly this signed head."""

    want = "0x" + eas_reference(SignedHead.from_dict(head)).hex()
    return str(anchor.get("reference") or "").lower() == want and any(
        log["address"].lower() == anchor["contract"].lower() and log["topics"][:2] == [TIMESTAMPED, want]
        for log in receipt["logs"]
    )
