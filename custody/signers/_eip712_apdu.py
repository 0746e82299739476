"""Encoding of EIP-712 typed data into the Ledger Ethereum app's "full implementation" APDUs.

The app receives every struct *definition* (INS 0x1A) and then the struct *implementation* — the
domain and the message, field by field (INS 0x1C) — recomputes the hash itself and shows each field
before it signs (INS 0x0C, P2=0x01). Wire format (Ledger app-ethereum, ``doc/ethapp.adoc``):

* definition, P2=0x00: struct name; P2=0xFF: one field =
  ``TypeDesc [TypeNameLen TypeName] [TypeSize] [ArrayLevelCount (ArrayLevelType [Size])…] KeyNameLen KeyName``
  with TypeDesc = ``array<<7 | has_size<<6 | type`` (0 custom, 1 int, 2 uint, 3 address, 4 bool,
  5 string, 6 fixed bytes, 7 dynamic bytes);
* implementation, P2=0x00: root struct name; P2=0x0F: array length (1 byte); P2=0xFF: field value as
  ``len (2 bytes BE) ‖ value``, split in chunks of at most 255 bytes with P1=0x01 on all but the last.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from custody.exceptions import UnsupportedOperation

CLA = 0xE0
INS_STRUCT_DEF = 0x1A
INS_STRUCT_IMPL = 0x1C
INS_SIGN_EIP712 = 0x0C
P2_NAME = 0x00
P2_FIELD = 0xFF
P2_ARRAY = 0x0F
P1_COMPLETE = 0x00
P1_PARTIAL = 0x01

TYPE_CUSTOM, TYPE_INT, TYPE_UINT, TYPE_ADDRESS, TYPE_BOOL, TYPE_STRING, TYPE_FIXED_BYTES, TYPE_BYTES = range(8)

_ARRAY = re.compile(r"^(.*)\[(\d*)\]$")


def apdu(ins: int, p1: int, p2: int, data: bytes) -> bytes:
    if len(data) > 255:
        raise UnsupportedOperation(f"APDU data of {len(data)} bytes exceeds 255")
    return bytes([CLA, ins, p1, p2, len(data)]) + data


def split_type(type_name: str) -> tuple[str, list[int | None]]:
    """``"uint8[2][]"`` → ``("uint8", [2, None])`` (array levels outermost last, as written)."""
    levels: list[int | None] = []
    base = type_name
    while match := _ARRAY.match(base):
        base, size = match.group(1), match.group(2)
        levels.insert(0, int(size) if size else None)
    return base, levels


def _field_definition(name: str, type_name: str, types: dict[str, Any]) -> bytes:
    base, levels = split_type(type_name)
    size: int | None = None
    custom: bytes | None = None
    if base in types:
        kind, custom = TYPE_CUSTOM, base.encode()
    elif base.startswith("uint"):
        kind, size = TYPE_UINT, int(base[4:] or 256) // 8
    elif base.startswith("int"):
        kind, size = TYPE_INT, int(base[3:] or 256) // 8
    elif base == "address":
        kind = TYPE_ADDRESS
    elif base == "bool":
        kind = TYPE_BOOL
    elif base == "string":
        kind = TYPE_STRING
    elif base == "bytes":
        kind = TYPE_BYTES
    elif base.startswith("bytes"):
        kind, size = TYPE_FIXED_BYTES, int(base[5:])
    else:
        raise UnsupportedOperation(f"EIP-712 type {type_name!r} is unknown to the Ledger encoder")
    out = bytearray([(0x80 if levels else 0) | (0x40 if size is not None else 0) | kind])
    if custom is not None:
        out += bytes([len(custom)]) + custom
    if size is not None:
        out.append(size)
    if levels:
        out.append(len(levels))
        for level in levels:
            out += b"\x00" if level is None else bytes([1, level])
    key = name.encode()
    return bytes(out) + bytes([len(key)]) + key


def definition_apdus(types: dict[str, list[dict[str, Any]]]) -> Iterator[bytes]:
    for struct_name, fields in types.items():
        yield apdu(INS_STRUCT_DEF, P1_COMPLETE, P2_NAME, struct_name.encode())
        for f in fields:
            yield apdu(INS_STRUCT_DEF, P1_COMPLETE, P2_FIELD, _field_definition(f["name"], f["type"], types))


def _hex(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text[:2].lower() == "0x" else text)


def encode_value(base: str, value: Any) -> bytes:
    """One atomic value as the app expects it (integers minimal big-endian, two's complement for int)."""
    if base.startswith("uint") or base.startswith("int"):
        number = int(value, 0) if isinstance(value, str) else int(value)
        if base.startswith("int") and number < 0:
            bits = int(base[3:] or 256)
            number += 1 << bits
        return number.to_bytes(max(1, (number.bit_length() + 7) // 8), "big")
    if base == "address":
        raw = _hex(value)
        if len(raw) != 20:
            raise UnsupportedOperation(f"EIP-712 address value has {len(raw)} bytes")
        return raw
    if base == "bool":
        return b"\x01" if value else b"\x00"
    if base == "string":
        return str(value).encode()
    if base.startswith("bytes"):
        return _hex(value)
    raise UnsupportedOperation(f"EIP-712 type {base!r} is unknown to the Ledger encoder")


def _field_apdus(value: bytes) -> Iterator[bytes]:
    data = len(value).to_bytes(2, "big") + value
    chunks = [data[i : i + 255] for i in range(0, len(data), 255)] or [b""]
    for i, chunk in enumerate(chunks):
        yield apdu(INS_STRUCT_IMPL, P1_PARTIAL if i < len(chunks) - 1 else P1_COMPLETE, P2_FIELD, chunk)


def _value_apdus(type_name: str, value: Any, types: dict[str, Any]) -> Iterator[bytes]:
    base, levels = split_type(type_name)
    if levels:
        inner = type_name[: type_name.rindex("[")]
        if len(value) > 255:
            raise UnsupportedOperation("EIP-712 arrays longer than 255 elements cannot be sent to a Ledger")
        yield apdu(INS_STRUCT_IMPL, P1_COMPLETE, P2_ARRAY, bytes([len(value)]))
        for item in value:
            yield from _value_apdus(inner, item, types)
    elif base in types:
        for f in types[base]:
            yield from _value_apdus(f["type"], value[f["name"]], types)
    else:
        yield from _field_apdus(encode_value(base, value))


def implementation_apdus(typed_data: dict[str, Any]) -> Iterator[bytes]:
    types = typed_data["types"]
    for root, value in (("EIP712Domain", typed_data["domain"]), (typed_data["primaryType"], typed_data["message"])):
        yield apdu(INS_STRUCT_IMPL, P1_COMPLETE, P2_NAME, root.encode())
        for f in types[root]:
            yield from _value_apdus(f["type"], value[f["name"]], types)
