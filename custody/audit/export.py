"""Exports for people and spreadsheets: JSONL and CSV (stable columns), both redacted.

Entries are built without secrets (see :mod:`custody.audit.record`); as defence in depth every
export for people goes through :func:`redact`, which masks the fields of an explicit list of secret names
(:data:`SECRET_FIELDS`: passphrase, PIN, private key, TOTP/OTP secret, challenge code, mnemonic, …) and e-mail
addresses and phone-number-like strings in free text (personal data). JSONL lines carry each entry's ledger hash
and the hashes of the values they mask, so every exported entry stays checkable against the signed heads. The bundle is the exception: it ships the
entries verbatim, because their bytes are what the signed heads commit to.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable
from typing import Any

import orjson

REDACTED = "[redacted]"
# Secret fields, by exact name (case-insensitive; "-" and "_" alike). An explicit list: a pattern such as
# "…code$" also masked every reconciliation's exit_code, hiding which run found problems.
SECRET_FIELDS = frozenset(
    {
        "password",
        "passphrase",
        "pass",
        "pin",
        "secret",
        "private_key",
        "privkey",
        "priv_key",
        "mnemonic",
        "seed",
        "totp",
        "totp_secret",
        "otp",
        "otp_secret",
        "challenge_code",
        "code",
        "api_key",
        "token_pin",
        "credential",
        "credentials",
    }
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![0-9A-Za-z])\+[0-9][0-9 ()-]{7,}[0-9](?![0-9A-Za-z])")  # international format

CSV_COLUMNS = (
    "seq",
    "time",
    "kind",
    "actor",
    "vault",
    "chain_id",
    "safe",
    "safe_tx_hash",
    "tx_hash",
    "block",
    "log_index",
    "asset",
    "to",
    "from",
    "amount",
    "success",
    "supersedes",
    "description",
    "payload",
)


def scrub_text(value: str) -> str:
    """Free text without e-mail addresses and international phone numbers (personal data)."""
    return PHONE.sub(REDACTED, EMAIL.sub(REDACTED, value))


# Lists whose items carry a public `code` naming a rule, not a secret: the risk engine's reasons and the integrity
# check's problems (an auditor needs "lookalike_destination", "leaf_mismatch"; an out-of-band challenge code is
# never stored, only the method, and a `code` anywhere else is still masked).
REASON_CODE_LISTS = frozenset({"reasons", "problems"})
_LIST_ITEM = re.compile(r"(?:^|\.)([A-Za-z_]+)\[[0-9]+\]$")


def is_secret_field(key: str, parent_path: str = "") -> bool:
    """Whether a field named ``key`` under ``parent_path`` (``payload.reasons[0]``) holds a secret."""
    normal = key.lower().replace("-", "_")
    if normal == "code":
        item_of = _LIST_ITEM.search(parent_path)
        if item_of and item_of.group(1) in REASON_CODE_LISTS:
            return False
    return normal in SECRET_FIELDS


def redact(value: Any, key: str = "", *, path: str = "", hashes: dict[str, str] | None = None) -> Any:
    """A copy of ``value`` with secret fields masked and personal data patterns removed from text. Each changed
    value's hash is put in ``hashes`` under its path (``payload.description``), if given."""
    if key and is_secret_field(key, path.rpartition(".")[0]):
        return _masked(value, REDACTED, path, hashes)
    if isinstance(value, dict):
        return {k: redact(v, k, path=f"{path}.{k}" if path else k, hashes=hashes) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, path=f"{path}[{i}]", hashes=hashes) for i, v in enumerate(value)]
    if isinstance(value, str) and not value.startswith("0x"):
        scrubbed = scrub_text(value)
        return value if scrubbed == value else _masked(value, scrubbed, path, hashes)
    return value


def _masked(original: Any, shown: Any, path: str, hashes: dict[str, str] | None) -> Any:
    if hashes is not None:
        hashes[path] = "sha256:" + hashlib.sha256(orjson.dumps(original, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return shown


def entry_hash(entry: dict[str, Any]) -> str:
    """The entry's ledger leaf hash (what the signed heads and Merkle proofs commit to)."""
    return "0x" + hashlib.sha256(b"\x00" + orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)).hexdigest()


def jsonl(entries: Iterable[dict[str, Any]]) -> Iterable[str]:
    """One line per entry: the entry (redacted), ``entry_hash`` (its ledger leaf hash) and, when something was
    masked, ``redacted_hashes`` (path → sha256 of the original value's canonical JSON). Without the two added keys
    an unredacted line hashes to ``entry_hash``; a redacted one does once its originals are put back."""
    for entry in entries:
        hashes: dict[str, str] = {}
        line = redact(entry, hashes=hashes)
        line["entry_hash"] = entry_hash(entry)
        if hashes:
            line["redacted_hashes"] = hashes
        yield json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def csv_row(entry: dict[str, Any]) -> dict[str, Any]:
    e = redact(entry)
    refs, payload = e.get("refs", {}), e.get("payload", {})
    amount = payload.get("amount", payload.get("value"))
    return {
        "seq": e["seq"],
        "time": e["time"],
        "kind": e["kind"],
        "actor": e["actor"],
        "vault": e.get("vault") or "",
        "chain_id": e.get("chain_id") if e.get("chain_id") is not None else "",
        "safe": payload.get("safe", ""),
        "safe_tx_hash": refs.get("safe_tx_hash", ""),
        "tx_hash": refs.get("tx_hash", ""),
        "block": refs.get("block", ""),
        "log_index": refs.get("log_index", ""),
        "asset": payload.get("asset", ""),
        "to": payload.get("to", ""),
        "from": payload.get("from", ""),
        "amount": "" if amount is None else amount,
        "success": "" if "success" not in payload else str(payload["success"]).lower(),
        "supersedes": refs.get("supersedes", ""),
        "description": payload.get("description", ""),
        "payload": json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    }


def to_csv(entries: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow(csv_row(entry))
    return buffer.getvalue()
