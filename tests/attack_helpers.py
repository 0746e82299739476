"""Raw-web3 tools for the attacker's test suite: no custody code path is used to build an attack.

Transactions are signed with Anvil dev keys and sent with a fixed gas limit, so a refusal is mined as a
failed transaction; its reason is the *innermost* revert in the call trace, decoded from the artifacts'
ABIs (a guard error under a Safe, a token error under a verifier, a setup error under the proxy factory).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import keccak, to_checksum_address

from custody.chain.transactions import send_raw, wait_for_receipt
from custody.contracts.deploy import deploy_plain
from custody.contracts.errors import decode_custom_error
from custody.exceptions import TransactionFailed
from custody.signers.local import anvil_address, anvil_private_key, anvil_signer
from custody.types import ZERO_ADDRESS
from tests.guard_harness import module_call, schedule

SAFE_MSG_TYPEHASH = keccak(text="SafeMessage(bytes message)")
SAFE_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(uint256 chainId,address verifyingContract)")
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
ATTACKER = "0x000000000000000000000000000000000000a77A"
GAS = 15_000_000


@dataclass(frozen=True)
class Sent:
    """A mined transaction: succeeded, or the innermost decoded revert (name, args)."""

    ok: bool
    error: str | None
    args: tuple
    tx_hash: str


def anvil_index(address: str) -> int:
    for i in range(10):
        if anvil_address(i) == to_checksum_address(address):
            return i
    raise AssertionError(f"{address} is not an Anvil dev account")


def _innermost_revert(frame: dict) -> bytes | None:
    """Output of the deepest failed call frame that carries revert data."""
    for child in frame.get("calls", []) or []:
        found = _innermost_revert(child)
        if found:
            return found
    if frame.get("error") and frame.get("output") not in (None, "0x"):
        return bytes.fromhex(frame["output"][2:])
    return None


def send_as(session, sender_index: int, to: str | None, data: bytes = b"", value: int = 0, gas: int = GAS) -> Sent:
    """Sign with Anvil key ``sender_index`` and send; a failure is decoded from the trace."""
    sender = anvil_signer(sender_index)
    tx = {
        "chainId": session.chain_id,
        "nonce": session.chain.w3.eth.get_transaction_count(sender.address, "pending"),
        "gas": gas,
        "maxFeePerGas": 100 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "value": value,
        "data": data,
    }
    if to is not None:
        tx["to"] = to
    tx_hash = send_raw(session.chain, sender.sign_transaction(tx, chain_id=session.chain_id))
    try:
        wait_for_receipt(session.chain, tx_hash, what="attack tx")
    except TransactionFailed:
        trace = session.chain.rpc("debug_traceTransaction", [tx_hash, {"tracer": "callTracer"}])
        raw = _innermost_revert(trace) or b""
        decoded = decode_custom_error(raw)
        if decoded is None:
            return Sent(False, f"raw:0x{raw.hex()}", (), tx_hash)
        return Sent(False, decoded[0], tuple(_norm(a) for a in decoded[1]), tx_hash)
    return Sent(True, None, (), tx_hash)


def _norm(value):
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return bytes(value) if isinstance(value, bytes) else value


def call_as(session, sender: str, to: str, data: bytes) -> bytes:
    return bytes(session.chain.w3.eth.call({"from": sender, "to": to, "data": data}))


# -- controls --------------------------------------------------------------------------------------------


def plain_safe(session, owners: list[str], threshold: int, salt: int) -> SimpleNamespace:
    """A Safe v1.4.1 as Safe's own tools set it up: CompatibilityFallbackHandler, no guard, no module."""
    infra = session.infrastructure()
    setup = sel("setup(address[],uint256,address,bytes,address,address,uint256,address)") + encode(
        ["address[]", "uint256", "address", "bytes", "address", "address", "uint256", "address"],
        [owners, threshold, ZERO_ADDRESS, b"", infra.safe_fallback_handler, ZERO_ADDRESS, 0, ZERO_ADDRESS],
    )
    factory = session.contract("SafeProxyFactory", infra.proxy_factory)
    address = session.chain.call(factory.functions.createProxyWithNonce(infra.safe_singleton, setup, salt).call)
    sent = send_as(
        session, 0, infra.proxy_factory, bytes.fromhex(factory.encode_abi("createProxyWithNonce", [infra.safe_singleton, setup, salt])[2:])
    )  # fmt: skip
    assert sent.ok, sent
    return SimpleNamespace(safe=to_checksum_address(address), name=f"plain-safe-{salt}")


def deploy(session, name: str, types: list[str] | None = None, args: list | None = None) -> str:
    return deploy_plain(
        session.chain, session.sender, name, constructor_types=types or [], constructor_args=args or []
    ).address


# -- Safe message signatures (what CompatibilityFallbackHandler accepts) -----------------------------------


def safe_message_hash(session, safe: str, digest: bytes) -> bytes:
    """The SafeMessage hash CompatibilityFallbackHandler checks owner signatures against for ``digest``."""
    domain = keccak(encode(["bytes32", "uint256", "address"], [SAFE_DOMAIN_TYPEHASH, session.chain_id, safe]))
    struct = keccak(encode(["bytes32", "bytes32"], [SAFE_MSG_TYPEHASH, keccak(encode(["bytes32"], [digest]))]))
    return keccak(b"\x19\x01" + domain + struct)


def owner_signatures(message_hash: bytes, owners: list[str]) -> bytes:
    """Plain ECDSA signatures (v 27/28) of ``message_hash`` by Anvil-key owners, in ascending owner order."""
    packed = b""
    for owner in sorted(owners, key=lambda a: int(a, 16)):
        signed = Account._sign_hash(message_hash, anvil_private_key(anvil_index(owner)))
        packed += signed.r.to_bytes(32, "big") + signed.s.to_bytes(32, "big") + bytes([signed.v])
    return packed


def approved_hash_signatures(owners: list[str]) -> bytes:
    """Safe's 'approved hash' signatures (v = 1): valid once each owner called approveHash."""
    return b"".join(
        int(o, 16).to_bytes(32, "big") + b"\x00" * 32 + b"\x01" for o in sorted(owners, key=lambda a: int(a, 16))
    )


def approve_hash(session, safe: str, owner: str, message_hash: bytes) -> None:
    sent = send_as(session, anvil_index(owner), safe, sel("approveHash(bytes32)") + message_hash)
    assert sent.ok, sent


# -- the AuthorizationToken (USDC v2.2-style ERC-1271 transfers) ------------------------------------------


def authorization_digest(session, token: str, holder: str, to: str, value: int, nonce: bytes) -> bytes:
    contract = session.contract("AuthorizationToken", token)
    return bytes(contract.functions.transferWithAuthorizationDigest(holder, to, value, 0, 2**255, nonce).call())


def transfer_with_authorization(token: str, holder: str, to: str, value: int, nonce: bytes, signature: bytes) -> bytes:
    return sel("transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)") + encode(
        ["address", "address", "uint256", "uint256", "uint256", "bytes32", "bytes"],
        [holder, to, value, 0, 2**255, nonce, signature],
    )


# -- timelock payloads -----------------------------------------------------------------------------------


def config_call(safe: str, signature: str, types: list[str], args: list) -> bytes:
    """``execTransactionFromModule(safe, 0, <Safe config call>, CALL)``: what the timelock makes the Safe do."""
    return module_call(safe, safe, 0, sel(signature) + encode(types, args))


def schedule_payload(target: str, payload: bytes, delay: int, salt: bytes = b"\x07" * 32) -> bytes:
    return schedule(target, 0, payload, delay, salt)


def execute_payload(target: str, payload: bytes, salt: bytes = b"\x07" * 32) -> bytes:
    return sel("execute(address,uint256,bytes,bytes32,bytes32)") + encode(
        ["address", "uint256", "bytes", "bytes32", "bytes32"], [target, 0, payload, b"\x00" * 32, salt]
    )
