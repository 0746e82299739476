"""The amount grammar (custody/amounts.py): the parser accepts exactly ASCII digits with one optional dot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custody.amounts import is_amount_text
from custody.exceptions import AmountError
from custody.policy.template import check_policy
from custody.reconcile.ingest import parse_bar_list
from custody.types import parse_amount

ASCII_DIGITS = "0123456789"
# the grammar, written independently of the implementation: digits, optionally "." and digits
REFERENCE = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)

digits = st.text(alphabet=ASCII_DIGITS, min_size=1, max_size=30)
grammatical = st.builds(lambda w, f: w if f is None else f"{w}.{f}", digits, st.none() | digits)
# near misses: every character class people type into amount fields, in any arrangement
tricky_chars = st.sampled_from(
    list(ASCII_DIGITS) + list(".eE_-+, '\t\n") + ["١", "٥", "１", "５", "²", "۳", "߁", "\u00a0", "٫", "x", "∞"]
)
anything = st.text(alphabet=tricky_chars, max_size=20) | st.text(max_size=12)


@given(grammatical)
def test_every_grammatical_amount_parses_exactly(text: str) -> None:
    assert is_amount_text(text)
    decimals = 30
    units = parse_amount(text, decimals, allow_zero=True)
    whole, _dot, fraction = text.partition(".")
    assert units == int(whole) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")


@given(anything)
def test_parser_accepts_exactly_the_grammar(text: str) -> None:
    in_grammar = REFERENCE.fullmatch(text) is not None
    assert is_amount_text(text) == in_grammar
    try:
        parse_amount(text, 40, allow_zero=True)
        accepted = True
    except AmountError:
        accepted = False
    assert accepted == in_grammar, text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1e3", "exponents are not allowed"),
        ("5E-1", "exponents are not allowed"),
        ("1_0", "digit separators are not allowed"),
        ("1,000", "digit separators are not allowed"),
        ("١٢", "only ASCII digits 0-9 are allowed"),
        ("１０", "only ASCII digits 0-9 are allowed"),
        ("-1", "signs are not allowed"),
        (" 1", "it has surrounding spaces"),
        ("1.", "a '.' needs a digit on each side"),
        ("1.2.3", "it has more than one '.'"),
        ("NaN", "it is not a decimal number"),
    ],
)
def test_refusals_say_why(text: str, reason: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(text, 18)
    assert f"amount {text!r} is not a plain decimal: {reason}" in caught.value.message


TEMPLATE = Path(__file__).resolve().parents[1] / "policies" / "hot.yaml"


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        ('per_tx_limit: "1_0"', "amount '1_0' is not a plain decimal: digit separators are not allowed"),
        ('per_tx_limit: "5e0"', "amount '5e0' is not a plain decimal: exponents are not allowed"),
        (
            "per_tx_limit: 0.30000000000000004",
            '0.30000000000000004 is a bare YAML float; write the amount as a quoted decimal string, "0.30000000000000004"',
        ),
    ],
)
def test_template_limits_follow_the_grammar(tmp_path: Path, replacement: str, message: str) -> None:
    text = TEMPLATE.read_text()
    lines = text.splitlines()
    line_no = next(i for i, line in enumerate(lines, 1) if 'per_tx_limit: "5"' in line)
    indent = lines[line_no - 1][: len(lines[line_no - 1]) - len(lines[line_no - 1].lstrip())]
    lines[line_no - 1] = indent + replacement
    path = tmp_path / "hot.yaml"
    path.write_text("\n".join(lines) + "\n")
    problems = [str(p) for p in check_policy(path)]
    assert any(p.startswith(f"{path}:{line_no}: assets[0].per_tx_limit: ") and message in p for p in problems), problems


def test_bar_list_weights_follow_the_grammar() -> None:
    header = "serial,refiner,year,gross_weight_oz,fineness,fine_weight_oz,vault_location,custodian\n"
    good = "AB1,VALCAMBI,2020,400.000,999.9,399.960,LDN-1,Acme Vaults\n"
    parse_bar_list((header + good).encode())
    for bad in ("4e2", "400_000", "٤00.000"):
        with pytest.raises(Exception) as caught:
            parse_bar_list((header + good.replace("400.000", bad, 1)).encode())
        assert "gross_weight_oz" in str(caught.value.details), caught.value.details
