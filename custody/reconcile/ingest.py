"""Reading and validating bar lists (CSV or JSON) with row/column errors; nothing dropped or coerced.

Columns (CSV header / JSON keys, exactly these, any order)::

    serial, refiner, year, gross_weight_oz, fineness, fine_weight_oz, vault_location, custodian

Every problem becomes a :class:`RowError` (row, column, one sentence). Rows are CSV line numbers
(the header is row 1) or, for JSON, the bar's 1-based position in the ``bars`` array (row 0 is the
document itself). A list with any error is rejected as a whole (:class:`BarListError`), listing
every error found (the first :data:`MAX_ERRORS` in row order) — a bad row is never skipped, and no
value is trimmed, rounded or re-interpreted. Weights are parsed from their decimal text straight
into integers (milli-oz, tenths of a per-mille); a JSON number is read as its literal text, never
as a float.

Speed: a million rows validate in a few seconds. Columns are checked as whole lists (no per-bar
objects), quote-free CSV is split with ``str.split`` (identical to RFC 4180 parsing when no field
is quoted; files with quotes go through :mod:`csv`), and the cyclic GC is paused while the large
lists are built.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
from pathlib import Path

from custody._perf import gc_paused
from custody._progress import Progress
from custody.exceptions import BarListError
from custody.reconcile.barlist import BarList, sha256_file
from custody.reconcile.stream import stream_csv
from custody.reconcile.validation import (
    CheckedRows,
    RowError,
    RowErrors,
    assemble,
    check_rows,
    csv_records,
    decode_text,
    json_records,
)


# -- entry points ---------------------------------------------------------------------------------
def load_bar_list(path: str | Path, *, format: str | None = None, progress: Progress | None = None) -> BarList:
    """Read and validate the bar list at ``path``; raises :class:`BarListError` listing every problem.

    CSV files are streamed (:mod:`custody.reconcile.stream`): memory holds the validated columns and one chunk
    of text, never the whole file. JSON documents, and CSV files with quoted fields, are read whole."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
            fmt = format or _guess_format(path, head)
            if fmt == "csv":
                handle.seek(0)
                streamed = stream_csv(handle, source=str(path), total=path.stat().st_size, progress=progress)
                if streamed is not None:
                    return streamed
            handle.seek(0)
            data = handle.read()
    except OSError as exc:
        raise BarListError(f"cannot read bar list {path}: {exc.strerror or exc}", source=str(path)) from exc
    if progress is not None:
        progress(len(data), len(data))
    return parse_bar_list(data, source=str(path), format=fmt)


def parse_bar_list(data: bytes, *, source: str = "<bytes>", format: str = "csv") -> BarList:
    if format not in ("csv", "json"):
        raise BarListError(f"unknown bar list format {format!r} (expected csv or json)", source=source)
    errors = RowErrors()
    text, bad_encoding = decode_text(data, errors)
    sha256 = sha256_file(data)
    with gc_paused():
        if format == "csv" and "\r" in text:
            text = text.replace("\r\n", "\n")  # CRLF line ends; a stray CR stays and is reported
        if format == "csv" and _splittable(text):
            parts = _parse_halves(text, errors, bad_encoding)
        else:
            rows, cells = (csv_records if format == "csv" else json_records)(text, errors)
            errors.raise_if_any(source)  # structural problems (header, JSON shape) first
            if not rows:
                errors.add(1 if format == "csv" else 0, None, "the bar list contains no bars")
                errors.raise_if_any(source)
            parts = [check_rows(rows, cells, errors, bad_encoding)]
        return assemble(parts, errors, source=source, sha256=sha256, fmt=format)


# Lists this long are checked in two processes (fork): the parent takes the first half of the lines,
# a child the second, and sends its columns back pickled. Quoted CSV (rare) and JSON stay serial.
PARALLEL_MIN_ROWS = 200_000


def _splittable(text: str) -> bool:
    return (
        len(text) > PARALLEL_MIN_ROWS * 40
        and '"' not in text
        and (os.cpu_count() or 1) > 1
        and "fork" in multiprocessing.get_all_start_methods()
        and text.count("\n") > PARALLEL_MIN_ROWS
    )


def _parse_halves(text: str, errors: RowErrors, bad: bool) -> list[CheckedRows]:
    header_end = text.index("\n") + 1
    middle = text.index("\n", max(header_end, len(text) // 2)) + 1
    offset = text.count("\n", 0, middle) - 1  # data lines in the first half
    first, second = text[:middle], text[:header_end] + text[middle:]
    reader, writer = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_child, args=(second, offset, bad, writer), daemon=True)
    child.start()
    writer.close()
    try:
        rows, cells = csv_records(first, errors)
        part = check_rows(rows, cells, errors, bad) if rows else None
        payload = pickle.loads(reader.recv_bytes())
    finally:
        reader.close()
        child.join()
    if isinstance(payload, BaseException):
        raise payload
    other, items, count = payload
    errors.items += items
    errors.count += count
    return [p for p in (part, other) if p is not None]


def _child(
    text: str, offset: int, bad: bool, writer: multiprocessing.connection.Connection
) -> None:  # pragma: no cover - runs in the forked child
    try:
        errors = RowErrors()
        rows, cells = csv_records(text, errors)
        rows = [n + offset for n in rows]
        errors.items = [RowError(e.row + offset if e.row > 1 else e.row, e.column, e.message) for e in errors.items]
        part = check_rows(rows, cells, errors, bad) if rows else None
        writer.send_bytes(pickle.dumps((part, errors.items, errors.count), protocol=pickle.HIGHEST_PROTOCOL))
    except BaseException as exc:
        writer.send_bytes(pickle.dumps(exc))
    finally:
        writer.close()
        os._exit(0)


def _guess_format(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in (".csv", ".txt"):
        return "csv"
    return "json" if data.lstrip()[:1] in (b"[", b"{") else "csv"
