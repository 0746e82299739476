"""Streamed reading of CSV bar lists: the file is read in chunks of whole lines, each chunk is parsed and
validated like a small bar list of its own (the header prepended, row numbers shifted), and only the validated
columns are kept, compactly (serials in one string, the bar ids in one buffer, the other columns coded:
:class:`~custody.reconcile.barlist.Coded`). Peak memory is the columns plus one chunk, whatever the file size; the
sha256 is computed over the bytes as they are read.

Quoted CSV (a field may then hold a newline, so a chunk boundary cannot be found by looking for one) is rare
in bar lists; on the first quote the caller falls back to reading the whole file (:func:`stream_csv` returns
None).
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any, BinaryIO

from custody._perf import gc_paused
from custody._progress import Progress
from custody.reconcile.barlist import BarList, Coded, PackedIds, PackedText
from custody.reconcile.validation import (
    CheckedRows,
    RowError,
    RowErrors,
    assemble,
    check_rows,
    csv_records,
    decode_text,
)

CHUNK_BYTES = 256 * 1024
_FIELDS = tuple(CheckedRows.__dataclass_fields__)
CODED = ("codes", "years", "gross", "fineness", "fine", "locations", "custodians")  # few distinct values each


def stream_csv(handle: BinaryIO, *, source: str, total: int, progress: Progress | None = None) -> BarList | None:
    digest = hashlib.sha256()
    errors = RowErrors()
    columns: dict[str, Any] = {name: [] for name in _FIELDS}
    columns.update({name: Coded() for name in CODED}, serials=PackedText())  # compact: see barlist.Coded
    columns["_packed"] = bytearray()  # the bar ids, 32 bytes each
    header: str | None = None
    data_lines = 0  # data lines (after the header) in earlier chunks
    done = 0
    pending = b""
    first = True
    with gc_paused():
        while True:
            chunk = handle.read(CHUNK_BYTES)
            if chunk:
                digest.update(chunk)
                done += len(chunk)
                if first:
                    chunk, first = (chunk[3:] if chunk.startswith(b"\xef\xbb\xbf") else chunk), False
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                if not cut:
                    pending = data
                    continue
                block, pending = data[:cut], data[cut:]
            else:
                block, pending = pending, b""
                if not block:
                    break
            if b'"' in block:
                return None  # quoted CSV: read whole (see the module docstring)
            text, bad = decode_text(block, errors)
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            if header is None:
                end = text.find("\n") + 1 or len(text)
                header, text = text[:end] if text[:end].endswith("\n") else text[:end] + "\n", text[end:]
                csv_records(header, errors)  # header problems are reported once, here
                errors.raise_if_any(source)
            if text:
                data_lines += _add_chunk(columns, header, text, data_lines, bad, errors)
            if progress is not None:
                progress(done, total)
            if not chunk:
                break
    if header is None:
        errors.add(1, None, "the bar list is empty: the first row must be the header")
        errors.raise_if_any(source)
    if not columns["rows"] and not errors.count:
        errors.add(1, None, "the bar list contains no bars")
        errors.raise_if_any(source)
    columns["rows"] = _join_rows(columns["rows"])
    if "_packed" in columns:  # every chunk's ids were packed (no bad row anywhere)
        columns["ids"] = PackedIds(columns.pop("_packed"))
    fields = {name: columns[name] for name in _FIELDS}
    return assemble([CheckedRows(**fields)], errors, source=source, sha256=digest.hexdigest(), fmt="csv")


def _join_rows(parts: list[Any]) -> range | list[int]:
    """Row numbers: one range when every chunk's rows follow on (a valid list), else the full list."""
    if (
        parts
        and all(isinstance(p, range) for p in parts)
        and all(a.stop == b.start for a, b in itertools.pairwise(parts))
    ):
        return range(parts[0].start, parts[-1].stop)
    return [n for part in parts for n in part]


def _add_chunk(columns: dict[str, Any], header: str, text: str, offset: int, bad: bool, errors: RowErrors) -> int:
    """Validate one chunk of data lines (rows numbered after ``offset`` earlier data lines); returns its line
    count."""
    local = RowErrors()
    rows, cells = csv_records(header + text, local)
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    for e in local.items:
        errors.items.append(RowError(e.row + offset if e.row > 1 else e.row, e.column, e.message))
    errors.count += local.count
    if rows:
        checked = check_rows([n + offset for n in rows], cells, local_errors := RowErrors(), bad)
        for e in local_errors.items:
            errors.items.append(e)
        errors.count += local_errors.count
        for name in _FIELDS:
            values = getattr(checked, name)
            if name == "rows" and values[-1] - values[0] == len(values) - 1:  # rows only ever increase
                values = range(values[0], values[0] + len(values))  # the usual case: consecutive rows
            elif name == "ids":
                packed = columns.get("_packed")
                if packed is not None and all(len(i) == 32 for i in values):
                    packed.extend(b"".join(values))
                    continue
                if packed is not None:  # a bad row (the list will be refused): back to a plain list
                    columns["ids"].extend(PackedIds(packed))
                    del columns["_packed"]
            columns[name].append(values) if name == "rows" else columns[name].extend(values)
    return lines
