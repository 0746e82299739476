"""The per-value rules of a bar list (LBMA Good Delivery for gold): ranges, formats, messages.

Each check takes one cell's text and returns ``(parsed value, None)`` or ``(None, problem sentence)``;
:mod:`custody.reconcile.ingest` applies them column by column and adds row/column to each problem.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Callable

from custody.amounts import is_amount_text
from custody.reconcile.barlist import refiners

Check = Callable[[str], tuple[object, str | None]]

MIN_YEAR = 1900
MIN_FINENESS_TENTHS = 9950  # 995.0 parts per thousand (Good Delivery minimum)
MAX_FINENESS_TENTHS = 9999  # 999.9
MIN_FINE_MILLI = 350_000  # 350 fine oz (Good Delivery range)
MAX_FINE_MILLI = 430_000  # 430 fine oz
FINE_TOLERANCE_MILLI = 1  # stated fine weight may differ from gross × fineness by at most 0.001 oz
WEIGHT_PLACES = 3
FINENESS_PLACES = 1
SERIAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9./-]{0,31}")
SERIAL_BLOCK = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9./-]{0,31}\n)*")
DIGITS = re.compile(r"[0-9]+")  # ASCII only: str.isdigit() would accept '²' and other scripts' digits
SERIAL_CHARS = re.compile(r"[^A-Za-z0-9./-]")


def decimal_check(name: str, places: int, low: int, high: int, limits: tuple[str, str]) -> Check:
    """Non-negative decimal text with at most ``places`` places, as an int in 10**-places units."""
    scale = 10**places

    def check(s: str) -> tuple[int | None, str | None]:
        value = None
        if is_amount_text(s):  # the one amount grammar (custody/amounts.py)
            whole, dot, frac = s.partition(".")
            if not dot:
                value = int(whole) * scale
            elif len(frac) <= places:
                value = int(whole) * scale + int(frac.ljust(places, "0"))
        if value is None:
            return None, decimal_problem(name, s, places)
        if value < low:
            return None, f"{name} {s} {limits[0]}"
        if value > high:
            return None, f"{name} {s} {limits[1]}"
        return value, None

    return check


def decimal_problem(name: str, s: str, places: int) -> str:
    if s == "":
        return f"{name} is empty"
    if s != s.strip():
        return f"{name} {s!r} has leading or trailing whitespace"
    whole, dot, frac = s.lstrip("-").partition(".")
    numeric = bool(DIGITS.fullmatch(whole)) and (not dot or bool(DIGITS.fullmatch(frac)))
    if s.startswith("-") and numeric:
        return f"{name} {s} is negative"
    if numeric and len(frac) > places:
        return f"{name} {s} has {len(frac)} decimal places; at most {places} are allowed"
    return f"{name} {s!r} is not a decimal number (expected digits with an optional '.')"


def text_check(name: str) -> Check:
    def check(s: str) -> tuple[str | None, str | None]:
        if not s:
            return None, f"{name} is empty"
        if s != s.strip():
            return None, f"{name} {s!r} has leading or trailing whitespace"
        if not s.isprintable():
            return None, f"{name} {s!r} contains a control character"
        return s, None

    return check


def year_check(s: str) -> tuple[int | None, str | None]:
    this_year = dt.datetime.now(dt.UTC).year
    if len(s) == 4 and DIGITS.fullmatch(s):
        year = int(s)
        if MIN_YEAR <= year <= this_year:
            return year, None
        return None, f"year {year} is outside {MIN_YEAR}–{this_year}"
    return None, f"year {s!r} is not a four-digit year"


def refiner_check(s: str) -> tuple[str | None, str | None]:
    table = refiners()
    refiner = table.get(s)
    if refiner is not None:
        return refiner.code, None
    close = difflib.get_close_matches(s, list(table), n=1) if len(s) < 80 else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return None, f"refiner {s!r} is not on the Good Delivery refiner list{hint}"


def serial_problem(s: str) -> str:
    if s == "":
        return "serial is empty"
    if s != s.strip():
        return f"serial {s!r} has leading or trailing whitespace"
    if len(s) > 32:
        return f"serial {s[:40]!r} is {len(s)} characters long; at most 32 are allowed"
    bad = SERIAL_CHARS.search(s[1:]) if s[0].isascii() and s[0].isalnum() else None
    char = bad.group() if bad else s[0]
    return f"serial {s!r} contains {char!r}; allowed are letters, digits and . / - (not first)"


GROSS = decimal_check("gross_weight_oz", WEIGHT_PLACES, 1, 10**12, ("must be greater than zero", "is not a bar weight"))
FINENESS = decimal_check(
    "fineness",
    FINENESS_PLACES,
    MIN_FINENESS_TENTHS,
    MAX_FINENESS_TENTHS,
    ("is below the Good Delivery minimum of 995.0", "is above 999.9"),
)
FINE = decimal_check(
    "fine_weight_oz",
    WEIGHT_PLACES,
    MIN_FINE_MILLI,
    MAX_FINE_MILLI,
    ("is below the Good Delivery minimum of 350 fine oz", "is above the Good Delivery maximum of 430 fine oz"),
)
