"""Selectors and interface ids in the custody contracts come from the compiler (`.selector`,
`type(I).interfaceId`), never from hand-copied hex (issue 15): a copied constant can silently name
another function, and the compiler cannot check it."""

from __future__ import annotations

import re
from pathlib import Path

CONTRACTS = Path(__file__).resolve().parent.parent / "contracts"

# A four-byte hex literal where a selector or an interface id goes: a bytes4 constant, a comparison
# with an interface id or a selector.
COPIED = re.compile(r"bytes4[^;=]*=\s*0x[0-9a-fA-F]{8}\b|(?:interfaceId|selector)\s*[!=]=\s*0x[0-9a-fA-F]{8}\b")
# Four-byte values that are not selectors: ERC-1271's "not valid" answer is any value but the magic one.
NOT_SELECTORS = {"bytes4 private constant ERC1271_INVALID = 0xffffffff"}


def copied_selectors(text: str) -> list[str]:
    return [match.group(0) for match in COPIED.finditer(text) if match.group(0) not in NOT_SELECTORS]


def test_no_custody_contract_hand_copies_a_selector_or_interface_id() -> None:
    sources = [path for path in sorted(CONTRACTS.rglob("*.sol")) if "test" not in path.relative_to(CONTRACTS).parts]
    assert len(sources) > 10
    found = {
        path.relative_to(CONTRACTS).as_posix(): hits
        for path in sources
        if (hits := copied_selectors(path.read_text(encoding="utf-8")))
    }
    assert not found, f"hand-copied selectors (use .selector / type(I).interfaceId): {found}"


def test_the_scan_finds_the_forms_it_refuses() -> None:
    # The forms issue 15 found in the guard and the fallback handler before they used the compiler's.
    assert copied_selectors("bytes4 internal constant TRANSFER = 0xa9059cbb; // IERC20.transfer")
    assert copied_selectors("return interfaceId == 0x01ffc9a7 // ERC-165")
    assert copied_selectors("if (selector != 0x8d80ff0a) revert X();")
    assert not copied_selectors("bytes4 internal constant TRANSFER = IERC20.transfer.selector;")
    assert not copied_selectors("bytes4 private constant ERC1271_INVALID = 0xffffffff")
