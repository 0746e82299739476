"""The chain as an outside witness of the ledger: every anchored head of this log, read from the chain.

The database cannot vouch for itself: an attacker who controls all of it can roll every table back to
an earlier, correctly signed state, deleting the later entries, heads and anchor records alike. The
chain keeps what was anchored. This check reads **every** ``LedgerAnchored`` event on the chain (not the
anchor rows in the database), keeps those whose signature verifies for this log under one of the
accepted keys (the pinned ``--key`` ids, else the keys of the log's own heads), and compares each with
the recomputed log:

* ``anchored_beyond_log`` — the chain holds a head of this log larger than the log (rolled back or
  truncated); the first missing entry is the log's size;
* ``anchor_root_mismatch`` — an anchored head's root differs from the recomputed root at its size
  (rewritten after it was anchored).
"""

from __future__ import annotations

from collections.abc import Iterable

from eth_abi import decode

from custody.audit.chaincheck import ANCHORED
from custody.audit.integrity import IntegrityResult, Problem
from custody.audit.keys import head_message, verify_signature
from custody.chain.connection import Chain


def anchored_heads(chain: Chain, log_id: str, keys: Iterable[str]) -> list[tuple[int, bytes, int, str, str]]:
    """(size, root, time, key id, tx hash) of every on-chain anchor of ``log_id`` signed by one of ``keys``."""
    keys = sorted(set(keys))
    logs = chain.rpc("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "topics": [ANCHORED]}])
    found = []
    for log in logs:
        size = int(log["topics"][2], 16)
        root, when, signature = decode(["bytes32", "uint64", "bytes"], bytes.fromhex(log["data"][2:]))
        message = head_message(log_id, size, root, when)
        for key_id in keys:
            if verify_signature(key_id, message, signature):
                found.append((size, bytes(root), int(when), key_id, log["transactionHash"]))
                break
    return found


def check_anchored(chain: Chain, log_id: str, keys: Iterable[str], integrity: IntegrityResult) -> list[Problem]:
    """Problems of the recomputed log against the chain's anchors of it (see the module docstring)."""
    problems = []
    n = integrity.size
    for size, root, _when, key_id, tx_hash in anchored_heads(chain, log_id, keys):
        if size > n:
            problems.append(
                Problem(
                    n,
                    "anchored_beyond_log",
                    f"the chain holds a head of size {size} of this log (tx {tx_hash}, "
                    f"key {key_id}) but the log has {n} entries: it was rolled back or truncated",
                )
            )
        elif integrity.tree.root(size) != root:
            verified_below = [s for s in integrity.verified_sizes if s < size]
            problems.append(
                Problem(
                    verified_below[-1] if verified_below else 0,
                    "anchor_root_mismatch",
                    f"the head of size {size} anchored in tx {tx_hash} signs root {root.hex()[:16]}…, "
                    "the entries recompute to another root (rewritten after anchoring)",
                    until=size,
                )
            )
    return problems
