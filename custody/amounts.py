"""The one amount grammar, for the CLI, policy templates and bar lists (docs/amounts.md)::

    amount  = digits [ "." digits ]
    digits  = ("0" | "1" | ... | "9") { "0" | ... | "9" }

ASCII digits only, at most one dot with a digit on each side. No sign, exponent (``1e3``), digit separators
(``1_000``, ``1,000``), whitespace, or non-ASCII digits (``١``, ``１``). The text is then read exactly into
base units; it is never rounded.
"""

from __future__ import annotations

import re

AMOUNT_GRAMMAR = (
    "ASCII digits with at most one '.' between digits (e.g. 1000 or 0.25); no sign, exponent, separators or spaces"
)

_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def is_amount_text(text: str) -> bool:
    """Does ``text`` follow the amount grammar exactly?"""
    return isinstance(text, str) and _AMOUNT.fullmatch(text) is not None


def why_not_amount(text: str) -> str:
    """A short reason ``text`` breaks the grammar (for error sentences)."""
    if text == "":
        return "it is empty"
    if text != text.strip():
        return "it has surrounding spaces"
    if any(c in "eE" for c in text):
        return "exponents are not allowed"
    if any(c in "_,'" for c in text) or " " in text:
        return "digit separators are not allowed"
    if text.startswith(("-", "+")):
        return "signs are not allowed"
    if any(c.isdigit() and not c.isascii() for c in text):
        return "only ASCII digits 0-9 are allowed"
    if text.count(".") > 1:
        return "it has more than one '.'"
    if text.startswith(".") or text.endswith("."):
        return "a '.' needs a digit on each side"
    return "it is not a decimal number"
