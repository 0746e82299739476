"""EIP-1559 transaction serialisation around eth-account's (private) helpers, kept in one place."""

from __future__ import annotations

from typing import Any

from eth_account._utils.legacy_transactions import encode_transaction, serializable_unsigned_transaction_from_dict
from eth_account.typed_transactions import TypedTransaction

from custody.exceptions import SignerError, UnsupportedOperation
from custody.signers.ecdsa import EcdsaSignature

_REQUIRED = ("chainId", "nonce", "gas", "maxFeePerGas", "maxPriorityFeePerGas")


def unsigned(tx: dict[str, Any], *, chain_id: int) -> TypedTransaction:
    """Validate and build an unsigned EIP-1559 transaction; its chain id must be ``chain_id``."""
    missing = [k for k in _REQUIRED if k not in tx]
    if missing:
        raise SignerError(f"transaction is missing {', '.join(missing)}")
    if "gasPrice" in tx:
        raise UnsupportedOperation("only EIP-1559 (type 2) transactions are signed; got a legacy gasPrice")
    if int(tx["chainId"]) != chain_id:
        raise SignerError(f"transaction is for chain id {tx['chainId']}, but the signer was asked for {chain_id}")
    payload = dict(tx)
    payload["type"] = 2
    built = serializable_unsigned_transaction_from_dict(payload)
    if not isinstance(built, TypedTransaction):  # type 2 always builds one
        raise SignerError(f"eth-account built a {type(built).__name__}, not an EIP-1559 transaction")
    return built


def encode(unsigned_tx: TypedTransaction, signature: EcdsaSignature) -> bytes:
    return encode_transaction(unsigned_tx, vrs=(signature.v - 27, signature.r, signature.s))


def unsigned_bytes(unsigned_tx: TypedTransaction) -> bytes:
    """``0x02 ‖ rlp([chainId, nonce, …, accessList])`` — exactly what is hashed and what a device parses."""
    import rlp
    from eth_account._utils.transaction_utils import transaction_rpc_to_rlp_structure

    # the concrete DynamicFeeTransaction: its rlp fields and serializer are not on the abstract base's static type
    inner: Any = unsigned_tx.transaction
    fields = {k: v for k, v in inner.dictionary.items() if k not in ("v", "r", "s")}
    serializer = type(inner)._unsigned_transaction_serializer
    encoded: bytes = rlp.encode(serializer.from_dict(transaction_rpc_to_rlp_structure(fields)))
    return bytes([unsigned_tx.transaction_type]) + encoded
