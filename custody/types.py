"""Shared value types and strict parsers for user input (addresses, amounts, hex)."""

from __future__ import annotations

import enum
import re
from decimal import Decimal, localcontext
from typing import NewType

from eth_utils import is_checksum_address, keccak, to_checksum_address

from custody.amounts import AMOUNT_GRAMMAR, is_amount_text, why_not_amount
from custody.exceptions import AddressError, AmountError, InputError

Address = NewType("Address", str)
"""An EIP-55 checksummed address."""

ZERO_ADDRESS = Address("0x0000000000000000000000000000000000000000")

_HEX_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class Operation(enum.IntEnum):
    """Safe operation type; mirrors ``Enum.Operation`` in the Safe contracts."""

    CALL = 0
    DELEGATECALL = 1


def parse_address(value: str, *, what: str = "address", allow_zero: bool = False) -> Address:
    """Return ``value`` as a checksummed address or raise :class:`AddressError`.

    Mixed-case input must carry a valid EIP-55 checksum (a wrong one usually means a typo).
    All-lower/upper-case input carries no checksum; it is accepted and normalised.
    """
    if not isinstance(value, str):
        raise AddressError(f"{what} must be a string, got {type(value).__name__}", value=value)
    text = value.strip()
    if not _HEX_ADDRESS.match(text):
        raise AddressError(f"{what} {text!r} is not an address (expected 0x followed by 40 hex digits)", value=text)
    body = text[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(text):
        raise AddressError(
            f"{what} {text} has a bad EIP-55 checksum; check it for typos",
            value=text,
        )
    address = Address(to_checksum_address(text))
    if not allow_zero and address == ZERO_ADDRESS:
        raise AddressError(f"{what} must not be the zero address", value=text)
    return address


def parse_amount(value: str | int | Decimal, decimals: int, *, symbol: str = "", allow_zero: bool = False) -> int:
    """Parse a human amount (``"1.5"``) into integer base units with ``decimals`` places.

    Exact: never rounds. Text must follow the amount grammar of :mod:`custody.amounts` (ASCII digits, one
    optional dot; no exponent, separators, signs or non-ASCII digits); floats are refused.

    Args:
        value: the amount as text (``"2.5"``), an integer, or a finite :class:`~decimal.Decimal`.
        decimals: the asset's decimal places (18 for ETH).
        symbol: the asset's symbol, for messages.
        allow_zero: accept ``0``.

    Returns:
        The amount in base units (``2500000000000000000`` for ``"2.5"`` with 18 decimals).

    Raises:
        AmountError: not a plain decimal, zero (unless allowed), more decimal places than ``decimals``, a
            float, or too large for uint256.
    """
    unit = f" {symbol}" if symbol else ""
    if isinstance(value, (bool, float)):
        raise AmountError(f"amount must be given as text or integer, not {type(value).__name__}")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        text = format(value, "f") if value.is_finite() else str(value)
    else:
        text = value
    if not is_amount_text(text):
        raise AmountError(
            f"amount {text!r} is not a plain decimal: {why_not_amount(text)} (write {AMOUNT_GRAMMAR})",
            value=text,
        )
    amount = Decimal(text)
    if amount == 0 and not allow_zero:
        raise AmountError(f"amount must be greater than zero (got {text}{unit})", value=text)
    # Trailing zeros ("1.50") are harmless: count only significant decimal places.
    exponent = amount.normalize().as_tuple().exponent
    significant = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if significant > decimals:
        raise AmountError(
            f"amount {text}{unit} has {significant} decimal places; {symbol or 'this asset'} allows at most {decimals}",
            value=text,
            decimals=decimals,
        )
    with localcontext() as ctx:
        ctx.prec = 200  # the default 28 digits would silently round large uint256 amounts
        base_units = int(amount.scaleb(decimals))
    if base_units >= 2**256:
        raise AmountError(f"amount {text}{unit} does not fit in uint256", value=text)
    return base_units


def format_amount(base_units: int, decimals: int) -> str:
    """Render integer base units as an exact decimal string without trailing zeros.

    Args:
        base_units: the amount in base units (may be negative).
        decimals: the asset's decimal places.

    Returns:
        The exact decimal string (``"2.5"``; ``"10"`` without a dot for whole amounts), which
        :func:`parse_amount` reads back to ``base_units``.

    Raises:
        Nothing: every integer has an exact rendering.
    """
    sign = "-" if base_units < 0 else ""
    whole, frac = divmod(abs(base_units), 10**decimals) if decimals else (abs(base_units), 0)
    if not decimals or frac == 0:
        return f"{sign}{whole}"
    frac_text = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{frac_text}"


def parse_hex(value: str, *, what: str = "hex data", length: int | None = None) -> bytes:
    """Parse ``0x``-prefixed hex into bytes, optionally of an exact length."""
    text = value.strip()
    if not text.startswith("0x") or len(text) % 2:
        raise InputError(f"{what} must be 0x-prefixed hex with an even number of digits")
    try:
        data = bytes.fromhex(text[2:])
    except ValueError as exc:
        raise InputError(f"{what} contains non-hex characters") from exc
    if length is not None and len(data) != length:
        raise InputError(f"{what} must be {length} bytes, got {len(data)}")
    return data


def keccak_text(text: str) -> bytes:
    return keccak(text=text)
