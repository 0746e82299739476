"""Streamed bar-list reading (custody/reconcile/stream.py) gives exactly what whole-file parsing gives — columns,
sha256 and every row error with its row number — across chunk boundaries, and reports progress as it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from custody.exceptions import BarListError
from custody.harness import scenario
from custody.reconcile import stream
from custody.reconcile.barlist import PackedIds
from custody.reconcile.ingest import load_bar_list, parse_bar_list

FIELDS = ("rows", "serials", "refiners", "years", "gross_milli", "fineness_tenths", "fine_milli", "vault_locations",
          "custodians", "bar_ids")  # fmt: skip


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(stream, "CHUNK_BYTES", 997)  # many chunks, boundaries inside lines


def _write(tmp_path: Path, lines: list[str], *, crlf: bool = False, bom: bool = False) -> Path:
    path = tmp_path / "bars.csv"
    text = ("\r\n" if crlf else "\n").join(lines) + ("\r\n" if crlf else "\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def _lines(count: int) -> list[str]:
    rows = scenario.generate_rows(count, seed=5)
    header = ",".join(rows[0].keys())
    return [header] + [",".join(r.values()) for r in rows]


@pytest.mark.parametrize(("crlf", "bom"), [(False, False), (True, True)])
def test_streamed_equals_whole_file(tmp_path, small_chunks, crlf, bom):
    path = _write(tmp_path, _lines(600), crlf=crlf, bom=bom)
    seen: list[tuple[int, int]] = []
    streamed = load_bar_list(path, progress=lambda done, total: seen.append((done, total)))
    whole = parse_bar_list(path.read_bytes(), source=str(path))
    for name in FIELDS:
        assert list(getattr(streamed, name)) == list(getattr(whole, name)), name
    assert streamed.rows == range(2, 602)  # consecutive rows are kept as a range, not 600 ints
    assert isinstance(streamed.bar_ids, PackedIds)  # and the ids in one buffer
    assert streamed.sha256 == whole.sha256 and len(streamed) == 600
    size = path.stat().st_size
    assert len(seen) > 10 and seen[-1] == (size, size)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def _errors(load) -> list[dict]:
    with pytest.raises(BarListError) as caught:
        load()
    return caught.value.details["errors"]


@pytest.mark.parametrize("kind", ["structure", "values"])
def test_streamed_errors_keep_their_rows(tmp_path, small_chunks, kind):
    lines = _lines(400)
    if kind == "structure":  # reported before any value is judged, by both readers
        lines[120] = lines[120].rsplit(",", 1)[0]  # one field short
        lines.insert(300, "")  # an empty row
        expected = {(121, None), (301, None)}
    else:
        lines[250] = lines[250].replace(lines[250].split(",")[3], "4e2", 1)  # an exponent in gross_weight_oz
        lines[399] = lines[10]  # a duplicate bar, in another chunk than its first listing
        expected = {(251, "gross_weight_oz"), (400, "serial")}
    path = _write(tmp_path, lines)
    streamed = _errors(lambda: load_bar_list(path))
    assert streamed == _errors(lambda: parse_bar_list(path.read_bytes(), source=str(path)))
    assert {(e["row"], e["column"]) for e in streamed} == expected
