"""Sending transactions: estimate (decoding reverts), sign through any signer, broadcast once, wait.

Nothing is broadcast when estimation reverts. A receipt with ``status == 0`` raises. ``on_signed``
lets callers journal the signed raw bytes before broadcast, so that a retry — or a later run after a
crash — re-sends exactly the same transaction (never a second one with the same nonce).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from custody.chain.connection import Chain
from custody.exceptions import ChainError, NonceConsumed, ReceiptTimeout, RpcUnreachable, TransactionFailed

RevertDecoder = Callable[[bytes | None], str]


class TransactionSigner(Protocol):
    @property
    def address(self) -> str: ...

    def sign_transaction(self, tx: dict[str, Any], *, chain_id: int) -> bytes: ...


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    gas_used: int
    status: int
    contract_address: str | None
    logs: list[Any]
    raw: dict[str, Any]

    @classmethod
    def from_web3(cls, receipt: Any) -> Receipt:
        return cls(
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            status=int(receipt["status"]),
            contract_address=receipt.get("contractAddress"),
            logs=list(receipt["logs"]),
            raw=dict(receipt),
        )


def _default_decoder(data: bytes | None) -> str:
    return f"reverted (data 0x{(data or b'').hex()})" if data else "reverted without a reason"


def _revert_data(error: Any) -> bytes | None:
    if isinstance(error, dict):
        data = error.get("data")
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                return None
    return None


def estimate_gas(chain: Chain, tx: dict[str, Any], *, what: str, decoder: RevertDecoder | None = None) -> int:
    """``eth_estimateGas`` through raw RPC so the revert payload survives; raises TransactionFailed."""
    decoder = decoder or _default_decoder
    params = {k: (hex(v) if isinstance(v, int) else v) for k, v in tx.items() if v is not None}
    response = chain.call(chain.w3.provider.make_request, "eth_estimateGas", [params])
    if "error" in response:
        error = response["error"]
        data = _revert_data(error)
        reason = decoder(data) if data else (error.get("message") if isinstance(error, dict) else str(error))
        raise TransactionFailed(f"{what} would revert: {reason}", reason=reason, revert_data=data)
    return int(response["result"], 16)


def build_transaction(
    chain: Chain, sender: str, *, to: str | None, data: bytes, value: int, gas: int
) -> dict[str, Any]:
    latest = chain.call(chain.w3.eth.get_block, "latest")
    base_fee = int(latest.get("baseFeePerGas", 0))
    priority = int(chain.call(lambda: chain.w3.eth.max_priority_fee))
    tx: dict[str, Any] = {
        "chainId": chain.chain_id,
        "nonce": int(chain.call(chain.w3.eth.get_transaction_count, sender, "pending")),
        "gas": gas,
        "maxFeePerGas": 2 * base_fee + priority,
        "maxPriorityFeePerGas": priority,
        "value": value,
        "data": HexBytes(data),
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return tx


def raw_sender_nonce(raw: bytes) -> tuple[str, int]:
    """(sender, nonce) of a signed raw transaction, recovered locally."""
    from eth_account import Account
    from eth_account.typed_transactions import TypedTransaction

    sender = Account.recover_transaction(raw)
    if raw and raw[0] < 0x7F:
        nonce = int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["nonce"])
    else:  # legacy RLP list: [nonce, gasPrice, gas, to, value, data, v, r, s]
        import rlp

        nonce = int.from_bytes(rlp.decode(raw)[0], "big")
    return to_checksum_address(sender), nonce


def _known(chain: Chain, tx_hash: str) -> bool:
    try:
        return chain.call(chain.w3.eth.get_transaction, HexBytes(tx_hash)) is not None
    except TransactionNotFound:
        return False


def send_raw(chain: Chain, raw: bytes) -> str:
    """Broadcast signed bytes; idempotent. Re-sending the same bytes is how every retry works:
    'already known' means the node has them, 'nonce too low' with our hash known means they were mined.
    'nonce too low' for a hash the node does not know raises :class:`NonceConsumed`."""
    tx_hash = "0x" + keccak(raw).hex()
    response = chain.call(chain.w3.provider.make_request, "eth_sendRawTransaction", ["0x" + raw.hex()])
    if "error" in response:
        message = str(response["error"].get("message", response["error"]))
        lowered = message.lower()
        if "already known" in lowered or "already imported" in lowered:
            return tx_hash
        if "nonce too low" in lowered:
            if _known(chain, tx_hash):
                return tx_hash
            sender, nonce = raw_sender_nonce(raw)
            raise NonceConsumed(
                f"transaction {tx_hash} can never be mined: nonce {nonce} of {sender} was used by another transaction",
                tx_hash=tx_hash,
                sender=sender,
                nonce=nonce,
            )
        raise ChainError(f"the node refused the transaction {tx_hash}: {message}", tx_hash=tx_hash)
    return tx_hash


def get_receipt(chain: Chain, tx_hash: str) -> Receipt | None:
    """The receipt of ``tx_hash`` if it is mined, else None (one bounded call)."""
    try:
        receipt = chain.call(chain.w3.eth.get_transaction_receipt, HexBytes(tx_hash))
    except TransactionNotFound:
        return None
    return None if receipt is None else Receipt.from_web3(receipt)


def wait_for_receipt(chain: Chain, tx_hash: str, *, what: str, decoder: RevertDecoder | None = None) -> Receipt:
    """Poll for the receipt until ``chain.receipt_timeout``; an RPC outage while polling is waited out
    (each poll is bounded by the RPC policy). Raises ReceiptTimeout at the deadline."""
    deadline = time.monotonic() + chain.receipt_timeout
    outage: RpcUnreachable | None = None
    while True:
        try:
            result = get_receipt(chain, tx_hash)
            outage = None
        except RpcUnreachable as exc:
            result, outage = None, exc
        if result is not None:
            break
        if time.monotonic() >= deadline:
            why = f"; the RPC did not answer: {outage.message}" if outage is not None else ""
            raise ReceiptTimeout(
                f"{what} ({tx_hash}) was not mined within {chain.receipt_timeout:.0f}s{why}", tx_hash=tx_hash
            ) from outage
        time.sleep(chain.poll_latency)
    if result.status != 1:
        reason = _replay_reason(chain, tx_hash, result.block_number, decoder or _default_decoder)
        raise TransactionFailed(
            f"{what} reverted on chain in block {result.block_number} ({tx_hash}): {reason}",
            tx_hash=tx_hash,
            reason=reason,
        )
    return result


def _replay_reason(chain: Chain, tx_hash: str, block: int, decoder: RevertDecoder) -> str:
    tx = chain.call(chain.w3.eth.get_transaction, HexBytes(tx_hash))
    call = {
        "from": tx["from"],
        "to": tx["to"],
        "data": "0x" + bytes(tx["input"]).hex(),
        "value": hex(tx["value"]),
        "gas": hex(tx["gas"]),
    }
    response = chain.call(chain.w3.provider.make_request, "eth_call", [call, hex(max(block - 1, 0))])
    if "error" in response:
        return decoder(_revert_data(response["error"]))
    return "reverted (out of gas or state changed since)"


def send_transaction(
    chain: Chain,
    signer: TransactionSigner,
    *,
    to: str | None,
    data: bytes = b"",
    value: int = 0,
    gas: int | None = None,
    what: str = "transaction",
    decoder: RevertDecoder | None = None,
    on_signed: Callable[[str, bytes], None] | None = None,
) -> Receipt:
    """Estimate, sign, broadcast, wait. ``on_signed(tx_hash, raw)`` runs before broadcast (journaling)."""
    if gas is None:
        probe = {"from": signer.address, "to": to, "data": "0x" + data.hex(), "value": value}
        gas = estimate_gas(chain, probe, what=what, decoder=decoder)
        gas = gas + gas // 5 + 10_000  # margin: EIP-150 63/64 rule for nested calls, refunds
    tx = build_transaction(chain, signer.address, to=to, data=data, value=value, gas=gas)
    raw = signer.sign_transaction(tx, chain_id=chain.chain_id)
    tx_hash = "0x" + keccak(raw).hex()
    if on_signed is not None:
        on_signed(tx_hash, raw)
    send_raw(chain, raw)
    return wait_for_receipt(chain, tx_hash, what=what, decoder=decoder)
