"""Exports for people and spreadsheets: JSONL and CSV (stable columns), both redacted.

Entries are built without secrets (see :mod:`custody.audit.record`); as defence in depth every
export for people goes through :func:`redact`, which masks values under secret-like keys
(passphrase, PIN, private key, TOTP/OTP secret or code, mnemonic, …) and e-mail addresses and
phone-number-like strings in free text (personal data). The bundle is the exception: it ships the
entries verbatim, because their bytes are what the signed heads commit to.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"
SECRET_KEYS = re.compile(
    r"(pass(word|phrase)?|pin|secret|private[_-]?key|priv[_-]?key|mnemonic|seed|totp|otp|challenge[_-]?code|"
    r"code|api[_-]?key|token[_-]?pin|credential)$",
    re.IGNORECASE,
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![0-9A-Za-z])\+[0-9][0-9 ()-]{7,}[0-9](?![0-9A-Za-z])")  # international format

CSV_COLUMNS = (
    "seq", "time", "kind", "actor", "vault", "chain_id", "safe", "safe_tx_hash", "tx_hash", "block", "log_index",
    "asset", "to", "from", "amount", "success", "supersedes", "description", "payload",
)  # fmt: skip


def scrub_text(value: str) -> str:
    """Free text without e-mail addresses and international phone numbers (personal data)."""
    return PHONE.sub(REDACTED, EMAIL.sub(REDACTED, value))


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with secret-like keys masked and personal data patterns removed from text."""
    if key and SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, str) and not value.startswith("0x"):
        return scrub_text(value)
    return value


def jsonl(entries: Iterable[dict]) -> Iterable[str]:
    for entry in entries:
        yield json.dumps(redact(entry), sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def csv_row(entry: dict) -> dict[str, Any]:
    e = redact(entry)
    refs, payload = e.get("refs", {}), e.get("payload", {})
    amount = payload.get("amount", payload.get("value"))
    return {
        "seq": e["seq"], "time": e["time"], "kind": e["kind"], "actor": e["actor"], "vault": e.get("vault") or "",
        "chain_id": e.get("chain_id") if e.get("chain_id") is not None else "", "safe": payload.get("safe", ""),
        "safe_tx_hash": refs.get("safe_tx_hash", ""), "tx_hash": refs.get("tx_hash", ""),
        "block": refs.get("block", ""), "log_index": refs.get("log_index", ""), "asset": payload.get("asset", ""),
        "to": payload.get("to", ""), "from": payload.get("from", ""), "amount": "" if amount is None else amount,
        "success": "" if "success" not in payload else str(payload["success"]).lower(),
        "supersedes": refs.get("supersedes", ""), "description": payload.get("description", ""),
        "payload": json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    }  # fmt: skip


def to_csv(entries: Iterable[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entry in entries:
        writer.writerow(csv_row(entry))
    return buffer.getvalue()
