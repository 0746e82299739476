"""Submit owner-signed Safe transactions at exact clock positions and read the guard's on-chain verdict.

Transactions are sent with a fixed gas limit (no estimation), so a guard rejection is mined as a
failed transaction; the revert data comes from the call trace. This is how the tests compare the
Python model (custody.policy.preflight) with the deployed CustodyGuard.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import to_checksum_address

from custody.chain.transactions import send_raw, wait_for_receipt
from custody.contracts.errors import decode_custom_error
from custody.exceptions import TransactionFailed
from custody.policy.onchain import guard_model
from custody.safe.safe_tx import SafeTx
from custody.safe.signatures import pack_signatures, verify_owner_signature
from custody.signers.local import anvil_signer
from custody.types import ZERO_ADDRESS, Operation
from custody.vault.proposals import exec_calldata, safe_nonce


@dataclass(frozen=True)
class Outcome:
    """The guard's on-chain verdict. ``inner_failed``: the guard allowed it but the call itself
    reverted (the Safe's GS013), e.g. cancelling an unknown timelock operation."""

    allowed: bool
    error: str | None
    args: tuple
    tx_hash: str
    timestamp: int
    inner_failed: bool = False


GS013 = bytes.fromhex("08c379a0") + encode(["string"], ["GS013"])


def _norm(value):
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return bytes(value)
    return value


def normalize(args) -> tuple:
    return tuple(_norm(a) for a in args)


def submit(
    session, vault, *, to, value=0, data=b"", operation=Operation.CALL, timestamp=None, signers=(1,),
    gas_price=0, refund_receiver=ZERO_ADDRESS, sender_index=0,
) -> Outcome:  # fmt: skip
    """Sign with the given anvil owners and execute at ``timestamp`` (next block), bypassing pre-flight."""
    safe_tx = SafeTx(
        safe=vault.safe, chain_id=session.chain_id, to=to, value=value, data=data, operation=operation,
        nonce=safe_nonce(session, vault.safe), gas_price=gas_price, refund_receiver=refund_receiver,
    )  # fmt: skip
    sigs = [verify_owner_signature(anvil_signer(i).sign_safe_tx(safe_tx), safe_tx.safe_tx_hash) for i in signers]
    calldata = exec_calldata(session, safe_tx, pack_signatures(sigs))
    return send_at(session, vault.safe, calldata, timestamp, sender_index=sender_index)


def send_at(session, to: str, data: bytes, timestamp: int | None, *, sender_index: int = 0) -> Outcome:
    """Send ``data`` to ``to`` from an anvil account, mined at ``timestamp`` (next block), with a fixed
    gas limit: a revert is mined and decoded from the call trace (custom error name and arguments)."""
    if timestamp is not None:
        session.chain.set_next_timestamp(timestamp)
    sender = anvil_signer(sender_index)
    tx = {
        "chainId": session.chain_id,
        "nonce": session.chain.w3.eth.get_transaction_count(sender.address, "pending"),
        "gas": 1_500_000,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "to": to,
        "value": 0,
        "data": data,
    }
    raw = sender.sign_transaction(tx, chain_id=session.chain_id)
    tx_hash = send_raw(session.chain, raw)
    try:
        receipt = wait_for_receipt(session.chain, tx_hash, what="harness tx")
    except TransactionFailed:
        trace = session.chain.rpc("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        output = bytes.fromhex((trace.get("output") or "0x")[2:])
        decoded = decode_custom_error(output)
        block = session.chain.w3.eth.get_transaction_receipt(tx_hash)["blockNumber"]
        ts = session.chain.w3.eth.get_block(block)["timestamp"]
        if output == GS013:
            return Outcome(True, None, (), tx_hash, ts, inner_failed=True)
        if decoded is None:
            return Outcome(False, f"raw:0x{output.hex()}", (), tx_hash, ts)
        return Outcome(False, decoded[0], normalize(decoded[1]), tx_hash, ts)
    ts = session.chain.w3.eth.get_block(receipt.block_number)["timestamp"]
    return Outcome(True, None, (), tx_hash, ts)


def predict(
    session,
    vault,
    *,
    to,
    value=0,
    data=b"",
    operation=Operation.CALL,
    timestamp,
    gas_price=0,
    refund_receiver=ZERO_ADDRESS,
):
    model = guard_model(session, vault.safe, timestamp=timestamp)
    verdict, _ = model.check(
        to=to, value=value, data=data, operation=operation, timestamp=timestamp, gas_price=gas_price,
        refund_receiver=refund_receiver,
    )  # fmt: skip
    return verdict


def erc20(name: str, *args) -> bytes:
    if name == "transfer":
        return sel("transfer(address,uint256)") + encode(["address", "uint256"], list(args))
    if name == "approve":
        return sel("approve(address,uint256)") + encode(["address", "uint256"], list(args))
    if name == "transferFrom":
        return sel("transferFrom(address,address,uint256)") + encode(["address", "address", "uint256"], list(args))
    raise ValueError(name)


def multisend(*calls: tuple[int, str, int, bytes]) -> bytes:
    packed = b"".join(
        bytes([op]) + bytes.fromhex(to[2:]) + value.to_bytes(32, "big") + len(data).to_bytes(32, "big") + data
        for op, to, value, data in calls
    )
    return sel("multiSend(bytes)") + encode(["bytes"], [packed])


def module_call(safe: str, to: str, value: int, data: bytes, operation: int = 0) -> bytes:
    return sel("execTransactionFromModule(address,uint256,bytes,uint8)") + encode(
        ["address", "uint256", "bytes", "uint8"], [to, value, data, operation]
    )


def schedule(target: str, value: int, payload: bytes, delay: int, salt: bytes = b"\x01" * 32) -> bytes:
    return sel("schedule(address,uint256,bytes,bytes32,bytes32,uint256)") + encode(
        ["address", "uint256", "bytes", "bytes32", "bytes32", "uint256"],
        [target, value, payload, b"\x00" * 32, salt, delay],
    )


def monday_of_next_week(session) -> int:
    """Unix time of a Monday 00:00 UTC at least a week ahead of the chain's clock."""
    now = session.chain.latest_timestamp()
    return now - (now + 259200) % 604800 + 604800 * 2
