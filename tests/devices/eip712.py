"""An independent EIP-712 hasher for the device doubles (no eth-account, no custody code).

Works on *decoded* values (ints, bytes, bools, str, dicts, lists) — what a device holds after it has
parsed the fields the host sent — so a double that signs ``digest(...)`` proves the host sent the
right structured data.
"""

from __future__ import annotations

import re

from eth_utils import keccak

_ARRAY = re.compile(r"^(.*)\[(\d*)\]$")


def _deps(primary: str, types: dict, found: set[str]) -> set[str]:
    if primary in found or primary not in types:
        return found
    found.add(primary)
    for field in types[primary]:
        base = field["type"]
        while m := _ARRAY.match(base):
            base = m.group(1)
        _deps(base, types, found)
    return found


def encode_type(primary: str, types: dict) -> str:
    deps = _deps(primary, types, set()) - {primary}
    return "".join(
        f"{name}({','.join(f['type'] + ' ' + f['name'] for f in types[name])})" for name in [primary, *sorted(deps)]
    )


def _word(type_name: str, value) -> bytes:
    if type_name.startswith("uint"):
        return int(value).to_bytes(32, "big")
    if type_name.startswith("int"):
        return int(value).to_bytes(32, "big", signed=True)
    if type_name == "bool":
        return (1 if value else 0).to_bytes(32, "big")
    if type_name == "address":
        return bytes(12) + bytes(value)
    if type_name.startswith("bytes"):  # fixed bytesN
        return bytes(value).ljust(32, b"\x00")
    raise ValueError(type_name)


def encode_value(type_name: str, value, types: dict) -> bytes:
    if m := _ARRAY.match(type_name):
        return keccak(b"".join(encode_value(m.group(1), v, types) for v in value))
    if type_name in types:
        return hash_struct(type_name, value, types)
    if type_name == "string":
        return keccak(value.encode() if isinstance(value, str) else bytes(value))
    if type_name == "bytes":
        return keccak(bytes(value))
    return _word(type_name, value)


def hash_struct(name: str, value: dict, types: dict) -> bytes:
    return keccak(
        keccak(text=encode_type(name, types))
        + b"".join(encode_value(f["type"], value[f["name"]], types) for f in types[name])
    )


def digest(types: dict, primary: str, domain: dict, message: dict) -> tuple[bytes, bytes, bytes]:
    """(domain hash, message hash, signing digest)."""
    domain_hash = hash_struct("EIP712Domain", domain, types)
    message_hash = hash_struct(primary, message, types)
    return domain_hash, message_hash, keccak(b"\x19\x01" + domain_hash + message_hash)
