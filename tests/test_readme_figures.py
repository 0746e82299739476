"""README figures are the committed snapshots' figures (benchmarks/figures.py renders them)."""

from benchmarks import figures


def test_every_figure_block_is_present_once_and_matches_its_snapshot():
    text = figures.README.read_text(encoding="utf-8")
    current = figures.blocks(text)
    assert set(current) == set(figures.BLOCKS)
    for name, make in figures.BLOCKS.items():
        assert current[name] == make(), f"README block {name} is stale: run python -m benchmarks.figures --write"


def test_a_figure_edited_by_hand_is_reported_stale(tmp_path, monkeypatch):
    edited = tmp_path / "README.md"
    text = figures.README.read_text(encoding="utf-8")
    gas = figures._snapshot("guard")["gas"]["overhead_eth_steady"]
    edited.write_text(text.replace(f"| ETH, steady state | {gas:,} |", f"| ETH, steady state | {gas - 165:,} |"))
    monkeypatch.setattr(figures, "README", edited)
    assert figures.main([]) == 1
    assert figures.main(["--write"]) == 0 and edited.read_text(encoding="utf-8") == text
