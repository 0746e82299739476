"""The numeric bounds the contracts enforce (contracts/CustodyLimits.sol) and the ones the Python toolkit checks
before anything is sent (custody/policy/limits.py) are the same numbers, constant for constant."""

import re

from custody.policy import limits
from tests.conftest import REPO

SOLIDITY_UNITS = {"": 1, "seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
CONSTANT = re.compile(r"^uint256 constant (?P<name>[A-Z_0-9]+) = (?P<value>\d+)(?: (?P<unit>[a-z]+))?;", re.MULTILINE)


def solidity_limits(source: str) -> dict[str, int]:
    return {m["name"]: int(m["value"]) * SOLIDITY_UNITS[m["unit"] or ""] for m in CONSTANT.finditer(source)}


def test_the_parser_reads_solidity_time_units():
    parsed = solidity_limits("uint256 constant A = 2 hours;\nuint256 constant B = 7;\nuint256 constant C = 3 days;\n")
    assert parsed == {"A": 7200, "B": 7, "C": 259200}


def test_every_contract_bound_has_the_same_value_in_python():
    contract = solidity_limits((REPO / "contracts" / "CustodyLimits.sol").read_text())
    assert len(contract) >= 10, "CustodyLimits.sol was not parsed"
    python = {name: getattr(limits, name) for name in contract if hasattr(limits, name)}
    assert python == contract


def test_python_mirrors_no_bound_the_contracts_do_not_have():
    contract = solidity_limits((REPO / "contracts" / "CustodyLimits.sol").read_text())
    mirrored = {name for name in vars(limits) if name.isupper() and name not in ("HOUR", "DAY")}
    assert mirrored <= set(contract), f"only in Python: {sorted(mirrored - set(contract))}"
