"""Offline (air-gapped) signing: the exchange files.

``tx export`` writes everything an air-gapped machine needs to verify and sign a proposal; the
air-gapped side (``tx sign-offline``, no RPC) recomputes every hash from the fields and refuses a file
whose hashes do not match; ``tx import-signature`` brings the signature back and checks it against the
chain. Field names are the Safe Transaction Service's (``safe, to, value, data, operation, safeTxGas,
baseGas, gasPrice, gasToken, refundReceiver, nonce, contractTransactionHash, sender, signature``), so
Safe tooling can read both files; custody adds ``chainId``, ``domainHash``, ``messageHash``,
``typedData`` (EIP-712, what a hardware wallet displays) and review context (decoded call, owners).
Uint256 values travel as decimal strings, bytes as 0x-hex.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from custody.exceptions import ExchangeFileError, InputError
from custody.safe.safe_tx import SafeTx
from custody.signers.base import typed_data_digest
from custody.types import Operation, parse_address

FORMAT = "custody.safe-tx/1"
SIGNATURE_FORMAT = "custody.safe-signature/1"
TX_FIELDS = (
    "safe",
    "to",
    "value",
    "data",
    "operation",
    "safeTxGas",
    "baseGas",
    "gasPrice",
    "gasToken",
    "refundReceiver",
    "nonce",
)


def tx_fields(safe_tx: SafeTx) -> dict[str, Any]:
    """The Safe Transaction Service's field names and encodings for one SafeTx."""
    return {
        "safe": safe_tx.safe,
        "to": safe_tx.to,
        "value": str(safe_tx.value),
        "data": "0x" + safe_tx.data.hex() if safe_tx.data else None,
        "operation": int(safe_tx.operation),
        "safeTxGas": str(safe_tx.safe_tx_gas),
        "baseGas": str(safe_tx.base_gas),
        "gasPrice": str(safe_tx.gas_price),
        "gasToken": safe_tx.gas_token,
        "refundReceiver": safe_tx.refund_receiver,
        "nonce": safe_tx.nonce,
        "contractTransactionHash": "0x" + safe_tx.safe_tx_hash.hex(),
    }


def export_document(safe_tx: SafeTx, description: dict[str, Any]) -> dict[str, Any]:
    """The export file for a proposal (``description``: :func:`custody.vault.proposals.describe`'s output)."""
    return {
        "format": FORMAT,
        **tx_fields(safe_tx),
        "chainId": safe_tx.chain_id,
        "domainHash": "0x" + safe_tx.domain_separator.hex(),
        "messageHash": "0x" + safe_tx.message_hash.hex(),
        "typedData": safe_tx.eip712,
        "origin": "custody",
        "review": {
            "proposal": description["id"],
            "description": description["description"],
            "decoded": description["decoded"],
            "riskKinds": description["risk_kinds"],
            "owners": description["owners"],
            "threshold": description["threshold"],
            "onchainSafeTxHash": description["onchain_safe_tx_hash"],
        },
        "confirmations": [
            {"owner": s["signer"], "signature": s["signature"]} for s in description["signatures"] if s["valid"]
        ],
    }


def _int(doc: dict[str, Any], key: str, what: str) -> int:
    value = doc.get(key)
    try:
        number = int(value, 0) if isinstance(value, str) else int(value)  # type: ignore[arg-type]  # None/objects: TypeError below
    except (TypeError, ValueError):
        raise ExchangeFileError(f"{what}: field {key!r} must be an integer, got {value!r}") from None
    if not 0 <= number < 2**256:
        raise ExchangeFileError(f"{what}: field {key!r} is out of the uint256 range")
    return number


def _hex(doc: dict[str, Any], key: str, what: str, *, length: int | None = None) -> bytes:
    value = doc.get(key)
    if value is None and length is None:
        return b""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ExchangeFileError(f"{what}: field {key!r} must be 0x-prefixed hex")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise ExchangeFileError(f"{what}: field {key!r} is not valid hex") from None
    if length is not None and len(raw) != length:
        raise ExchangeFileError(f"{what}: field {key!r} must be {length} bytes, got {len(raw)}")
    return raw


def safe_tx_from_fields(doc: dict[str, Any], *, chain_id: int | None, what: str) -> SafeTx:
    """Rebuild the SafeTx from Safe Transaction Service fields."""
    missing = [k for k in TX_FIELDS if k not in doc]
    if missing:
        raise ExchangeFileError(f"{what}: missing field(s) {', '.join(missing)}")
    cid = doc.get("chainId", chain_id)
    if cid is None:
        raise ExchangeFileError(f"{what}: no chainId in the file; the hash cannot be checked without it")
    operation = _int(doc, "operation", what)
    if operation not in (0, 1):
        raise ExchangeFileError(f"{what}: operation must be 0 (CALL) or 1 (DELEGATECALL), got {operation}")
    try:
        return SafeTx(
            safe=parse_address(str(doc["safe"]), what=f"{what} safe"),
            chain_id=_int({"chainId": cid}, "chainId", what),
            to=parse_address(str(doc["to"]), what=f"{what} to", allow_zero=True),
            value=_int(doc, "value", what),
            data=_hex(doc, "data", what),
            operation=Operation(operation),
            nonce=_int(doc, "nonce", what),
            safe_tx_gas=_int(doc, "safeTxGas", what),
            base_gas=_int(doc, "baseGas", what),
            gas_price=_int(doc, "gasPrice", what),
            gas_token=parse_address(str(doc["gasToken"]), what=f"{what} gasToken", allow_zero=True),
            refund_receiver=parse_address(str(doc["refundReceiver"]), what=f"{what} refundReceiver", allow_zero=True),
        )
    except InputError as exc:
        raise ExchangeFileError(f"{what}: {exc.message}") from exc


def verified_safe_tx(doc: dict[str, Any], *, what: str, chain_id: int | None = None) -> SafeTx:
    """The SafeTx of an exchange file, after every hash in it was recomputed and matched."""
    safe_tx = safe_tx_from_fields(doc, chain_id=chain_id, what=what)
    if chain_id is not None and "chainId" in doc and int(doc["chainId"]) != chain_id:
        raise ExchangeFileError(f"{what} is for chain id {doc['chainId']}, but this chain is {chain_id}")
    claimed = _hex(doc, "contractTransactionHash", what, length=32)
    if claimed != safe_tx.safe_tx_hash:
        raise ExchangeFileError(
            f"{what}: contractTransactionHash 0x{claimed.hex()} does not match the transaction's fields "
            f"(recomputed 0x{safe_tx.safe_tx_hash.hex()}); refusing it",
            claimed="0x" + claimed.hex(),
            recomputed="0x" + safe_tx.safe_tx_hash.hex(),
        )
    for key, actual in (("domainHash", safe_tx.domain_separator), ("messageHash", safe_tx.message_hash)):
        if key in doc and _hex(doc, key, what, length=32) != actual:
            raise ExchangeFileError(f"{what}: {key} does not match the transaction's fields; refusing it")
    if "typedData" in doc and doc["typedData"] is not None:
        try:
            digest = typed_data_digest(doc["typedData"])
        except Exception as exc:
            raise ExchangeFileError(f"{what}: typedData is not a valid EIP-712 payload") from exc
        if digest != safe_tx.safe_tx_hash:
            raise ExchangeFileError(f"{what}: typedData hashes to 0x{digest.hex()}, not the contractTransactionHash")
    return safe_tx


def signature_document(safe_tx: SafeTx, sender: str, signature: bytes) -> dict[str, Any]:
    """What the air-gapped side hands back: the Safe Transaction Service's proposal body plus chainId."""
    return {
        "format": SIGNATURE_FORMAT,
        **tx_fields(safe_tx),
        "chainId": safe_tx.chain_id,
        "sender": sender,
        "signature": "0x" + signature.hex(),
        "origin": "custody sign-offline",
    }


def read_document(path: str | Path, *, what: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8") if str(path) != "-" else __import__("sys").stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ExchangeFileError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExchangeFileError(f"{what} {path} is not JSON ({exc.msg} at line {exc.lineno})") from exc
    except ValueError as exc:  # e.g. an integer literal past the digit limit
        raise ExchangeFileError(f"{what} {path} is not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise ExchangeFileError(f"{what} {path} must hold a JSON object")
    return doc
