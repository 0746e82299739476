"""The Safe transaction as a value: EIP-712 domain, struct hash, safeTxHash — hashed one way only.

Matches Safe v1.3.0+ (``EIP712Domain(uint256 chainId,address verifyingContract)``). The same
typed-data payload is what a hardware wallet displays field by field when it signs in clear.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from typing import Any

from eth_utils import is_checksum_address

from custody._keccak import keccak256 as keccak
from custody.types import ZERO_ADDRESS, Address, Operation

DOMAIN_TYPEHASH = keccak(b"EIP712Domain(uint256 chainId,address verifyingContract)")
SAFE_TX_TYPEHASH = keccak(
    b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
    b"uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
)


def _uint_word(value: int, bits: int = 256) -> bytes:
    """ABI word of an unsigned integer; out-of-range values are refused, never wrapped."""
    if type(value) is not int or not 0 <= value < 1 << bits:
        raise ValueError(f"{value!r} is not a uint{bits}")
    return value.to_bytes(32, "big")


@functools.lru_cache(maxsize=4096)  # a vault's transactions name the same few addresses again and again
def _address_word(address: str) -> bytes:
    """ABI word of a 0x-prefixed 20-byte hex address: all one letter case, or a valid EIP-55 checksum."""
    if not isinstance(address, str) or len(address) != 42 or not address.startswith("0x"):
        raise ValueError(f"{address!r} is not a 0x-prefixed 20-byte hex address")
    digits = address[2:]
    raw = bytes.fromhex(digits)  # ValueError on a non-hex character
    if digits != digits.lower() and digits != digits.upper() and not is_checksum_address(address):
        raise ValueError(f"{address} has mixed letter case but not a valid EIP-55 checksum")
    return bytes(12) + raw


EIP712_TYPES = {
    "EIP712Domain": [
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "SafeTx": [
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "data", "type": "bytes"},
        {"name": "operation", "type": "uint8"},
        {"name": "safeTxGas", "type": "uint256"},
        {"name": "baseGas", "type": "uint256"},
        {"name": "gasPrice", "type": "uint256"},
        {"name": "gasToken", "type": "address"},
        {"name": "refundReceiver", "type": "address"},
        {"name": "nonce", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class SafeTx:
    """One Safe transaction (``execTransaction`` arguments minus signatures) bound to a Safe + chain."""

    safe: Address
    chain_id: int
    to: Address
    value: int
    data: bytes
    operation: Operation
    nonce: int
    safe_tx_gas: int = 0
    base_gas: int = 0
    gas_price: int = 0
    gas_token: Address = ZERO_ADDRESS
    refund_receiver: Address = ZERO_ADDRESS
    _hash_cache: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @property
    def domain_separator(self) -> bytes:
        if "domain" not in self._hash_cache:
            self._hash_cache["domain"] = keccak(DOMAIN_TYPEHASH + _uint_word(self.chain_id) + _address_word(self.safe))
        return self._hash_cache["domain"]

    @property
    def message_hash(self) -> bytes:
        """``hashStruct(SafeTx)``: the EIP-712 message hash a hardware wallet shows."""
        if "message" not in self._hash_cache:
            # abi.encode of the SafeTx struct: eleven 32-byte words, ``data`` by its hash
            self._hash_cache["message"] = keccak(
                SAFE_TX_TYPEHASH
                + _address_word(self.to)
                + _uint_word(self.value)
                + keccak(bytes(self.data))
                + _uint_word(int(self.operation), 8)
                + _uint_word(self.safe_tx_gas)
                + _uint_word(self.base_gas)
                + _uint_word(self.gas_price)
                + _address_word(self.gas_token)
                + _address_word(self.refund_receiver)
                + _uint_word(self.nonce)
            )
        return self._hash_cache["message"]

    @property
    def safe_tx_hash(self) -> bytes:
        """``keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct)`` — what owners sign."""
        return keccak(b"\x19\x01" + self.domain_separator + self.message_hash)

    @property
    def eip712(self) -> dict[str, Any]:
        """The full typed-data payload (``eth_signTypedData_v4`` shape)."""
        return {
            "types": EIP712_TYPES,
            "primaryType": "SafeTx",
            "domain": {"chainId": self.chain_id, "verifyingContract": self.safe},
            "message": {
                "to": self.to,
                "value": self.value,
                "data": "0x" + self.data.hex(),
                "operation": int(self.operation),
                "safeTxGas": self.safe_tx_gas,
                "baseGas": self.base_gas,
                "gasPrice": self.gas_price,
                "gasToken": self.gas_token,
                "refundReceiver": self.refund_receiver,
                "nonce": self.nonce,
            },
        }

    def exec_args(self, signatures: bytes) -> tuple[Any, ...]:
        """Arguments of ``Safe.execTransaction`` in ABI order."""
        return (
            self.to,
            self.value,
            self.data,
            int(self.operation),
            self.safe_tx_gas,
            self.base_gas,
            self.gas_price,
            self.gas_token,
            self.refund_receiver,
            signatures,
        )

    def with_nonce(self, nonce: int) -> SafeTx:
        return replace(self, nonce=nonce, _hash_cache={})
