"""Calldata decoded the way the guard's Solidity ``abi.decode`` decodes it, where eth_abi is stricter."""

from __future__ import annotations

from eth_abi.exceptions import DecodingError
from eth_utils import to_checksum_address

from custody.types import Address

WORD = 32


def decode_module_call(body: bytes) -> tuple[Address, int, bytes, int]:
    """``abi.decode(body, (address, uint256, bytes, uint8))``, the arguments of ``execTransactionFromModule``,
    as Solidity's decoder reads them: the offset of the bytes argument may point anywhere in ``body``, the
    head included (eth_abi refuses that; the guard accepts it), and the padding after the bytes is not read.
    Raises :class:`DecodingError`, naming the cause, wherever ``abi.decode`` reverts. (Its refusal of
    offsets and lengths above 64 bits needs no check of its own: no calldata is that long, so such a word
    already points past the end.)"""
    if len(body) < 4 * WORD:
        raise DecodingError(f"execTransactionFromModule arguments of {len(body)} bytes: four head words needed")
    to, value, offset, operation = (int.from_bytes(body[k * WORD : (k + 1) * WORD], "big") for k in range(4))
    if to >> 160:
        raise DecodingError("execTransactionFromModule's address argument has bits set above its 160")
    if operation > 0xFF:
        raise DecodingError(f"execTransactionFromModule's operation {operation} does not fit a uint8")
    if offset + WORD > len(body):
        raise DecodingError(f"execTransactionFromModule's data offset {offset} is outside its {len(body)} bytes")
    length = int.from_bytes(body[offset : offset + WORD], "big")
    if offset + WORD + length > len(body):
        raise DecodingError(f"execTransactionFromModule's data of {length} bytes runs past its {len(body)} bytes")
    data = body[offset + WORD : offset + WORD + length]
    return Address(to_checksum_address(to.to_bytes(20, "big"))), value, data, operation
