"""Documentation figures are the committed snapshots' figures (benchmarks/figures.py renders them).

The blocks live in the docs page of their topic (figures.DOCUMENTS); README.md and every other page may not
hold a copy.
"""

import re
import shutil
from pathlib import Path

import pytest

from benchmarks import figures


def _copy_docs(tmp_path: Path) -> Path:
    shutil.copy(figures.ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(figures.ROOT / "docs", tmp_path / "docs")
    return tmp_path


def test_every_figure_block_is_in_its_document_once_and_matches_its_snapshot():
    assert figures.misplaced() == []
    for name, relative in figures.DOCUMENTS.items():
        current = figures.blocks((figures.ROOT / relative).read_text(encoding="utf-8"))
        assert current.get(name) == figures.BLOCKS[name](), (
            f"{relative}: figure block {name} is stale: run python -m benchmarks.figures --write"
        )
    assert figures.main([]) == 0


def test_a_figure_edited_by_hand_is_reported_stale(tmp_path):
    root = _copy_docs(tmp_path)
    guard = root / figures.DOCUMENTS["guard-overhead"]
    text = guard.read_text(encoding="utf-8")
    gas = figures._snapshot("guard")["gas"]["overhead_eth_steady"]
    edited = text.replace(f"| ETH, steady state | {gas:,} |", f"| ETH, steady state | {gas - 165:,} |")
    assert edited != text
    guard.write_text(edited, encoding="utf-8")
    assert figures.main([], root=root) == 1
    assert figures.main(["--write"], root=root) == 0 and guard.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("name", sorted(figures.BLOCKS))
def test_one_changed_digit_in_any_block_is_reported_stale(tmp_path, name):
    root = _copy_docs(tmp_path)
    page = root / figures.DOCUMENTS[name]
    text = page.read_text(encoding="utf-8")
    body = figures.blocks(text)[name]
    digit = re.search(r"\d", body)
    assert digit is not None
    changed = body[: digit.start()] + str((int(digit.group()) + 1) % 10) + body[digit.end() :]
    page.write_text(text.replace(body, changed, 1), encoding="utf-8")
    assert figures.stale(root) == {figures.DOCUMENTS[name]: [name]}
    assert figures.main([], root=root) == 1


def test_a_block_copied_into_another_page_or_missing_is_an_error(tmp_path):
    root = _copy_docs(tmp_path)
    home = root / figures.DOCUMENTS["audit"]
    text = home.read_text(encoding="utf-8")
    block = re.search(r"<!-- figures:audit -->\n.*?\n<!-- /figures:audit -->", text, re.S)
    assert block is not None
    readme = root / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + "\n" + block.group() + "\n", encoding="utf-8")
    assert any("README.md holds figure block 'audit'" in p for p in figures.misplaced(root))
    assert figures.main([], root=root) == 1
    readme.write_text((figures.ROOT / "README.md").read_text(encoding="utf-8"), encoding="utf-8")
    home.write_text(text.replace(block.group(), ""), encoding="utf-8")
    assert figures.misplaced(root) == [
        f"{figures.DOCUMENTS['audit']} has 0 blocks named 'audit' (expected exactly one)"
    ]
    assert figures.main(["--write"], root=root) == 1
