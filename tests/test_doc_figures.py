"""Figures quoted in docs/*.md are the committed snapshots' figures (benchmarks/doc_figures.py renders them)."""

from benchmarks import doc_figures
from benchmarks.figures import ROOT


def test_every_docs_figure_block_matches_its_snapshot():
    for relative, makers in doc_figures.DOCS.items():
        text = (ROOT / relative).read_text(encoding="utf-8")
        current = doc_figures.blocks(text, makers)
        assert set(current) == set(makers), relative
        for name, make in makers.items():
            assert current[name] == make(), (
                f"{relative} block {name} is stale: run python -m benchmarks.doc_figures --write"
            )
