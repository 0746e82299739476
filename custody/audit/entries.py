"""Ledger entries: typed events in one canonical JSON form, hashed one way only.

Canonical form (what the Merkle leaf hashes): a JSON object with keys sorted by code point, no
whitespace (``,`` and ``:`` separators), UTF-8 without escaping non-ASCII, strings/booleans/null/
integers/objects/arrays only — **no floats**, integers within 64 bits (amounts, balances and other
uint256 values are decimal strings). Every entry has exactly these top-level keys::

    {"actor": "...", "chain_id": 31337, "kind": "execution", "payload": {...}, "prev": "<64 hex>",
     "refs": {"block": 12, "safe_tx_hash": "0x…", "tx_hash": "0x…"}, "seq": 7,
     "time": "2026-11-24T05:16:01Z", "v": 1, "vault": "cold-reserve"}

``seq`` is the 0-based position in the log, ``prev`` the leaf hash of the entry before it (64 zeros
for the first: the previous head of the hash chain), ``refs`` what the entry points at on chain or in
the workspace, ``payload`` the event's facts. The encoder is :mod:`orjson` with sorted keys; a test
checks it is byte-identical to ``json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from custody.exceptions import AuditError

FORMAT_VERSION = 1
GENESIS_PREV = "00" * 32
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
TOP_LEVEL_KEYS = ("actor", "chain_id", "kind", "payload", "prev", "refs", "seq", "time", "v", "vault")


class EntryKind(str, enum.Enum):
    """What happened. Service-layer kinds are written in the step they record; ``*_observed`` and
    ``chain_event`` come from the indexer; ``correction`` supersedes an entry a reorg invalidated."""

    INFRASTRUCTURE_DEPLOYED = "infrastructure_deployed"
    VAULT_CREATED = "vault_created"
    DEPOSIT_OBSERVED = "deposit_observed"
    PROPOSAL_CREATED = "proposal_created"
    PROPOSAL_DISCARDED = "proposal_discarded"
    APPROVAL_SIGNED = "approval_signed"
    OUT_OF_BAND_CONFIRMATION = "out_of_band_confirmation"
    CONFIRMER_ENROLLED = "confirmer_enrolled"
    EXECUTION = "execution"
    EXECUTION_OBSERVED = "execution_observed"
    CHAIN_EVENT = "chain_event"
    POLICY_CHANGE_PROPOSED = "policy_change_proposed"
    POLICY_CHANGE_SCHEDULED = "policy_change_scheduled"
    POLICY_CHANGE_APPLIED = "policy_change_applied"
    POLICY_CHANGE_CANCELLED = "policy_change_cancelled"
    RECONCILIATION_RUN = "reconciliation_run"
    EXIT_SIGNED = "exit_signed"
    EXIT_INITIATED = "exit_initiated"
    EXIT_CANCELLED = "exit_cancelled"
    EXIT_FINALIZED = "exit_finalized"
    DRILL = "drill"
    ATTESTATION_ISSUED = "attestation_issued"
    ATTESTATION_BATCH_ANCHORED = "attestation_batch_anchored"
    ATTESTATION_REVOKED = "attestation_revoked"
    CORRECTION = "correction"
    RISK_DECISION = "risk_decision"
    RISK_LIST_CHANGED = "risk_list_changed"
    RISK_MODEL_TRAINED = "risk_model_trained"
    RISK_CASE_OPENED = "risk_case_opened"
    VAULT_FORGOTTEN = "vault_forgotten"  # `custody vault forget`: the record is gone, this entry says why
    WORKSPACE_REPAIRED = "workspace_repaired"  # `custody workspace repair`: re-bound to a chain, records dropped


KINDS = frozenset(k.value for k in EntryKind)


def _check(value: Any, where: str) -> None:
    """Refuse what canonical JSON does not allow (floats, integers beyond 64 bits, non-string keys, other
    types). Type dispatch by identity, strings first: entries are mostly strings."""
    t = type(value)
    if t is str or t is bool or value is None:
        return
    if t is int:
        if not _INT_MIN <= value <= _INT_MAX:
            raise AuditError(f"{where}: integer {value} does not fit 64 bits; write it as a decimal string")
        return
    if t is dict or isinstance(value, Mapping):
        for k, v in value.items():
            if type(k) is not str:
                raise AuditError(f"{where}: object keys must be strings, got {type(k).__name__}")
            tv = type(v)
            if tv is str or v is None or tv is bool or (tv is int and _INT_MIN <= v <= _INT_MAX):
                continue
            _check(v, f"{where}.{k}")
        return
    if t is list or t is tuple:
        for i, v in enumerate(value):
            if type(v) is not str:
                _check(v, f"{where}[{i}]")
        return
    if isinstance(value, float):
        raise AuditError(f"{where}: floats are not allowed in ledger entries; use integer strings")
    if isinstance(value, str):
        return
    if isinstance(value, int) and not isinstance(value, bool):
        _check(int(value), where)
        return
    raise AuditError(f"{where}: {type(value).__name__} is not canonical JSON")


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """The canonical bytes of ``value`` (raises :class:`AuditError` for floats, big ints, odd types)."""
    _check(value, "entry")
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def utc_time(when: dt.datetime | None = None) -> str:
    moment = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Entry:
    """One ledger entry (see the module docstring for the canonical form)."""

    seq: int
    time: str
    kind: str
    actor: str
    vault: str | None
    chain_id: int | None
    refs: Mapping[str, Any] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)
    prev: str = GENESIS_PREV
    v: int = FORMAT_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "chain_id": self.chain_id,
            "kind": self.kind,
            "payload": dict(self.payload),
            "prev": self.prev,
            "refs": dict(self.refs),
            "seq": self.seq,
            "time": self.time,
            "v": self.v,
            "vault": self.vault,
        }

    def canonical(self) -> bytes:
        return canonical_json(self.as_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        return cls(
            seq=data["seq"],
            time=data["time"],
            kind=data["kind"],
            actor=data["actor"],
            vault=data["vault"],
            chain_id=data["chain_id"],
            refs=data["refs"],
            payload=data["payload"],
            prev=data["prev"],
            v=data["v"],
        )

    @classmethod
    def parse(cls, blob: bytes) -> Entry:
        """Strict parse: the bytes must be exactly the canonical form of a well-formed entry."""
        problem = entry_problem(blob)
        if problem is not None:
            raise AuditError(f"not a canonical ledger entry: {problem}")
        return cls.from_dict(orjson.loads(blob))


def entry_problem(blob: bytes, data: dict[str, Any] | None = None) -> str | None:
    """Why ``blob`` is not a well-formed canonical entry, or None."""
    try:
        data = orjson.loads(blob) if data is None else data
    except orjson.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(data, dict) or tuple(sorted(data)) != TOP_LEVEL_KEYS:
        return "wrong set of top-level keys"
    if data["v"] != FORMAT_VERSION:
        return f"unknown format version {data['v']!r}"
    if data["kind"] not in KINDS:
        return f"unknown entry kind {data['kind']!r}"
    if not isinstance(data["seq"], int) or isinstance(data["seq"], bool):
        return "seq is not an integer"
    if not isinstance(data["refs"], dict) or not isinstance(data["payload"], dict):
        return "refs and payload must be objects"
    try:
        if canonical_json(data) != blob:
            return "not in canonical form"
    except AuditError as exc:
        return exc.message
    return None
