"""Decode revert data from every ABI we know: custom errors, ``Error(string)``, ``Panic(uint256)``.

Custom errors are decoded from the artifacts' ABIs (never from hand-copied tables). Safe v1.4.1
reverts with ``Error("GSxxx")`` strings; their published meanings are attached for people.
"""

from __future__ import annotations

import functools
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector

from custody.contracts import all_artifact_names, load_artifact

ERROR_STRING = bytes.fromhex("08c379a0")
PANIC = bytes.fromhex("4e487b71")

# From the Safe contracts' documented error codes (docs/error_codes.md, v1.4.1).
SAFE_ERROR_CODES = {
    "GS000": "could not finish initialization",
    "GS001": "threshold needs to be defined",
    "GS010": "not enough gas to execute the Safe transaction",
    "GS011": "could not pay gas costs with ether",
    "GS012": "could not pay gas costs with token",
    "GS013": "the Safe transaction failed (its inner call reverted)",
    "GS020": "signatures data too short",
    "GS021": "invalid contract signature location: inside static part",
    "GS022": "invalid contract signature location: length not present",
    "GS023": "invalid contract signature location: data not complete",
    "GS024": "invalid contract signature provided",
    "GS025": "hash has not been approved",
    "GS026": "invalid owner provided (signatures not from distinct owners in ascending order)",
    "GS030": "only owners can approve a hash",
    "GS031": "method can only be called from this contract",
    "GS100": "modules have already been initialized",
    "GS101": "invalid module address provided",
    "GS102": "module has already been added",
    "GS103": "invalid prevModule, module pair provided",
    "GS104": "method can only be called from an enabled module",
    "GS200": "owners have already been set up",
    "GS201": "threshold cannot exceed owner count",
    "GS202": "threshold needs to be greater than 0",
    "GS203": "invalid owner address provided",
    "GS204": "address is already an owner",
    "GS205": "invalid prevOwner, owner pair provided",
    "GS300": "guard does not implement IERC165",
    "GS400": "fallback handler cannot be set to self",
}

PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialized function",
}


@functools.cache
def _custom_errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in all_artifact_names():
        for item in load_artifact(name).errors():
            types = [_abi_type(i) for i in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            table[function_signature_to_4byte_selector(signature)] = (
                item["name"],
                types,
                [i.get("name", "") for i in item["inputs"]],
            )
    return table


def _abi_type(item: dict[str, Any]) -> str:
    if item["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in item["components"])
        return f"({inner}){item['type'][5:]}"
    return str(item["type"])


def _fmt(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def decode_revert(data: bytes | None) -> str:
    """One readable sentence for revert ``data`` (empty data → 'reverted without a reason')."""
    if not data:
        return "reverted without a reason"
    selector, body = data[:4], data[4:]
    if selector == ERROR_STRING:
        try:
            (message,) = decode(["string"], body)
        except Exception:
            return f"reverted with malformed Error(string) data 0x{data.hex()}"
        meaning = SAFE_ERROR_CODES.get(message)
        return f"{message}: {meaning}" if meaning else message
    if selector == PANIC:
        try:
            (code,) = decode(["uint256"], body)
        except Exception:
            return f"panicked with malformed data 0x{data.hex()}"
        return f"panic 0x{code:02x}: {PANIC_CODES.get(code, 'unknown panic code')}"
    known = _custom_errors().get(selector)
    if known is None:
        return f"reverted with unknown error data 0x{data.hex()}"
    name, types, names = known
    try:
        values = decode(types, body)
    except Exception:
        return f"{name}(<undecodable arguments>)"
    args = ", ".join(f"{n}={_fmt(v)}" if n else _fmt(v) for n, v in zip(names, values))
    return f"{name}({args})"


def decode_custom_error(data: bytes | None) -> tuple[str, tuple[Any, ...]] | None:
    """(error name, decoded arguments) for custom-error revert data from our ABIs, else None."""
    if not data or len(data) < 4:
        return None
    known = _custom_errors().get(data[:4])
    if known is None:
        return None
    name, types, _names = known
    try:
        return name, tuple(decode(types, data[4:]))
    except Exception:
        return None
