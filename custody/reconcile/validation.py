"""Bar list rows into validated columns: the CSV/JSON records, each column checked as a whole list, every
problem a :class:`RowError` collected in :class:`RowErrors`. Shared by the whole-file reader
(:mod:`custody.reconcile.ingest`) and the streamed one (:mod:`custody.reconcile.stream`)."""

from __future__ import annotations

import csv
import difflib
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from custody._keccak import keccak256
from custody.exceptions import BarListError
from custody.reconcile import rules
from custody.reconcile.barlist import COLUMNS, BarList, PackedIds, format_milli

MAX_ERRORS = 1000


@dataclass(frozen=True, order=True)
class RowError:
    """One problem in a bar list: where (row, column) and what (one sentence)."""

    row: int
    column: str | None  # None: the whole row (or file)
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "message": self.message}


class RowErrors:
    """Collects errors; keeps every one up to a generous cap but counts them all."""

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.count = 0
        self.settled: set[tuple[int, str | None]] = set()  # cells already reported as undecodable

    def add(self, row: int, column: str | None, message: str) -> None:
        if (row, column) in self.settled:
            return
        self.count += 1
        if len(self.items) < 50 * MAX_ERRORS:
            self.items.append(RowError(row, column, message))

    def raise_if_any(self, source: str) -> None:
        if not self.count:
            return
        shown = sorted(self.items, key=lambda e: (e.row, _column_order(e.column)))[:MAX_ERRORS]
        more = f" ({self.count - len(shown)} more not shown)" if self.count > len(shown) else ""
        raise BarListError(
            f"bar list {source} is invalid: {self.count} error(s); first: {shown[0]}{more}",
            hint="fix the listed rows; a bar list is accepted only when every row is valid",
            errors=[e.as_dict() for e in shown],
            error_count=self.count,
            source=source,
        )


def _column_order(column: str | None) -> int:
    return COLUMNS.index(column) if column in COLUMNS else -1


def decode_text(data: bytes, errors: RowErrors) -> tuple[str, bool]:
    """UTF-8 (a leading BOM is an encoding marker, not data). Undecodable bytes are kept as escapes
    so that each affected cell is reported with its row and column."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return body.decode("utf-8", errors="surrogateescape"), True


# -- CSV / JSON → (row numbers, column lists) ------------------------------------------------------
def _header(names: list[str], errors: RowErrors, row: int, what: str) -> dict[str, int] | None:
    positions: dict[str, int] = {}
    ok = True
    for i, name in enumerate(names):
        if name in positions:
            errors.add(row, name, f"{what} {name!r} appears twice")
            ok = False
        elif name not in COLUMNS:
            close = difflib.get_close_matches(name, COLUMNS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (expected: {', '.join(COLUMNS)})"
            errors.add(row, name, f"unexpected {what} {name!r}{hint}")
            ok = False
        else:
            positions[name] = i
    for name in COLUMNS:
        if name not in names:
            errors.add(row, name, f"missing {what} {name!r}")
            ok = False
    return positions if ok else None


def csv_records(text: str, errors: RowErrors) -> tuple[list[int], dict[str, list[str]]]:
    if '"' in text:
        records: list[list[str]] = []
        numbers: list[int] = []
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        start = 1
        try:
            for record in reader:
                records.append(record)
                numbers.append(start)
                start = reader.line_num + 1
        except csv.Error as exc:  # reported on the row where the broken record starts
            errors.add(start, None, f"malformed CSV: {exc}")
            return [], {}
    else:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        records = [line.split(",") for line in lines]
        numbers = list(range(1, len(records) + 1))
    if not records or records[0] in ([], [""]):
        errors.add(1, None, "the bar list is empty: the first row must be the header")
        return [], {}
    positions = _header(records[0], errors, 1, "column")
    if positions is None:
        return [], {}
    width = len(records[0])
    body, rows = records[1:], numbers[1:]
    if set(map(len, body)) - {width}:
        keep = []
        for n, record in zip(rows, body):
            if len(record) == width:
                keep.append((n, record))
            elif record in ([], [""]):
                errors.add(n, None, "empty row")
            else:
                errors.add(n, None, f"row has {len(record)} field(s) but the header has {width}")
        rows, body = [n for n, _ in keep], [r for _, r in keep]
    columns = list(zip(*body)) if body else [()] * width
    return rows, {name: list(columns[i]) for name, i in positions.items()}


def json_records(text: str, errors: RowErrors) -> tuple[list[int], dict[str, list[str]]]:
    try:
        doc = json.loads(text, parse_float=str, parse_int=str, parse_constant=str)
    except json.JSONDecodeError as exc:
        errors.add(0, None, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        return [], {}
    items = doc.get("bars") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        errors.add(0, None, 'a JSON bar list must be an array of bars or an object with a "bars" array')
        return [], {}
    rows: list[int] = []
    columns: dict[str, list[str]] = {name: [] for name in COLUMNS}
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            errors.add(n, None, f"bar must be a JSON object, got {_json_kind(item)}")
            continue
        if _header(list(item), errors, n, "field") is None:
            continue
        bad = False
        for name in COLUMNS:
            value = item[name]
            if not isinstance(value, str):
                errors.add(n, name, f"{name} must be a string or a number, got {_json_kind(value)}")
                bad = True
        if bad:
            continue
        rows.append(n)
        for name in COLUMNS:
            columns[name].append(item[name])
    return rows, columns


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    # numbers arrive as their literal text (parse_int/parse_float), so they cannot be told from strings here
    kinds = {bool: "a boolean", list: "an array", dict: "an object", str: "a string or number"}
    return kinds.get(type(value), type(value).__name__)


# -- validation, column by column ------------------------------------------------------------------
# Most columns have few distinct values (refiners, years, fineness, locations, custodians; even
# weights repeat at 0.001 oz resolution), so each distinct value is checked once and the result is
# mapped back onto the column. A check returns (parsed value, None) or (None, problem sentence).


def _column(name: str, values: list[str], rows: list[int], check: rules.Check, errors: RowErrors) -> list[Any]:
    verdicts = {value: check(value) for value in set(values)}
    bad = {value: problem for value, (_parsed, problem) in verdicts.items() if problem is not None}
    if bad:
        for i, value in enumerate(values):
            if value in bad:
                errors.add(rows[i], name, bad[value])
    parsed = {value: verdict[0] for value, verdict in verdicts.items()}
    return list(map(parsed.__getitem__, values))


def _serials(values: list[str], rows: list[int], errors: RowErrors) -> list[bool]:
    # one regex pass over the whole column; per-value only when something is wrong
    joined = "\n".join(values) + "\n"
    if joined.count("\n") == len(values) and rules.SERIAL_BLOCK.fullmatch(joined):  # no cell hides a newline
        return [True] * len(values)
    match = rules.SERIAL.fullmatch
    ok = [match(s) is not None for s in values]
    for i, good in enumerate(ok):
        if not good:
            errors.add(rows[i], "serial", rules.serial_problem(values[i]))
    return ok


def _undecodable(columns: dict[str, list[str]], rows: list[int], errors: RowErrors) -> None:
    for name in COLUMNS:
        for i, s in enumerate(columns[name]):
            try:
                s.encode("utf-8")
            except UnicodeEncodeError as exc:
                byte = ord(s[exc.start]) - 0xDC00
                errors.add(rows[i], name, f"{name} contains byte 0x{byte:02x}, which is not valid UTF-8")
                errors.settled.add((rows[i], name))  # its content is not judged a second time


@dataclass(frozen=True)
class CheckedRows:
    """Checked columns of some rows (a whole list, or one half of it). Repeated values (refiner codes,
    years, weights, locations, custodians) share one object each, which keeps memory and pickling small."""

    rows: list[int]
    serials: list[str]
    codes: list[Any]
    years: list[Any]
    gross: list[Any]
    fineness: list[Any]
    fine: list[Any]
    locations: list[Any]
    custodians: list[Any]
    ids: list[bytes]


def check_rows(rows: list[int], cells: dict[str, list[str]], errors: RowErrors, bad: bool) -> CheckedRows:
    if bad:
        _undecodable(cells, rows, errors)
    serial_ok = _serials(cells["serial"], rows, errors)
    codes = _column("refiner", cells["refiner"], rows, rules.refiner_check, errors)
    years = _column("year", cells["year"], rows, rules.year_check, errors)
    gross = _column("gross_weight_oz", cells["gross_weight_oz"], rows, rules.GROSS, errors)
    fineness = _column("fineness", cells["fineness"], rows, rules.FINENESS, errors)
    fine = _column("fine_weight_oz", cells["fine_weight_oz"], rows, rules.FINE, errors)
    locations = _column("vault_location", cells["vault_location"], rows, rules.text_check("vault_location"), errors)
    custodians = _column("custodian", cells["custodian"], rows, rules.text_check("custodian"), errors)
    _check_fine_weights(rows, cells, gross, fineness, fine, errors)
    ids = _bar_ids(codes, cells["serial"], serial_ok)
    return CheckedRows(rows, cells["serial"], codes, years, gross, fineness, fine, locations, custodians, ids)


def assemble(parts: list[CheckedRows], errors: RowErrors, *, source: str, sha256: str, fmt: str) -> BarList:
    if len(parts) == 1:
        p = parts[0]
    else:
        joined: dict[str, list[Any]] = {}
        for name in CheckedRows.__dataclass_fields__:
            joined[name] = column = []
            for part in parts:
                column += getattr(part, name)
        p = CheckedRows(**joined)
    ids, rows, serials = p.ids, p.rows, p.serials
    if _has_duplicates(ids):
        first: dict[bytes, int] = {}
        for i, bid in enumerate(ids):
            if bid:
                j = first.setdefault(bid, i)
                if j != i:
                    errors.add(
                        rows[i], "serial", f"bar {p.codes[i]} {serials[i]} is listed twice (first on row {rows[j]})"
                    )
    errors.raise_if_any(source)
    return BarList(
        source=source,
        sha256=sha256,
        format=fmt,
        rows=rows,
        serials=serials,
        refiners=p.codes,
        years=p.years,
        gross_milli=p.gross,
        fineness_tenths=p.fineness,
        fine_milli=p.fine,
        vault_locations=p.locations,
        custodians=p.custodians,
        bar_ids=ids,
    )


def _has_duplicates(ids: list[bytes]) -> bool:
    """Might a bar id be listed twice? The first 8 bytes of every id, sorted (8 bytes per bar, no million-entry
    dict just to ask); a shared prefix (a duplicate, or a 2**-64 coincidence) sends the caller to the exact check."""
    if len(ids) < 2:
        return False
    if isinstance(ids, PackedIds):  # a streamed list: the first 8 bytes of each id straight from the buffer
        prefixes = np.frombuffer(ids.buffer, dtype="<u8")[::4].copy()
    else:
        prefixes = np.fromiter((int.from_bytes(i[:8], "little") for i in ids), dtype=np.uint64, count=len(ids))
    prefixes.sort()
    return bool((prefixes[1:] == prefixes[:-1]).any())


def _bar_ids(codes: list[str | None], serials: list[str], ok: list[bool]) -> list[bytes]:
    """bar_id() for every row (serials are ASCII once valid; a bad row gets b"")."""
    return [
        keccak256(f"{code}/{serial}".encode()) if good and code else b""
        for code, serial, good in zip(codes, serials, ok)
    ]


def _check_fine_weights(
    rows: list[int],
    cells: dict[str, list[str]],
    gross: list[Any],
    fineness: list[Any],
    fine: list[Any],
    errors: RowErrors,
) -> None:
    """Exact: |fine - gross × fineness/1000| <= tolerance, in integers (fineness in tenths of per mille)."""
    if None in gross or None in fineness or None in fine:
        candidates = [i for i, t in enumerate(zip(gross, fineness, fine)) if None not in t]
        g = np.array([gross[i] for i in candidates], dtype=np.int64)
        f = np.array([fineness[i] for i in candidates], dtype=np.int64)
        w = np.array([fine[i] for i in candidates], dtype=np.int64)
    else:
        candidates = None
        g, f, w = (np.array(c, dtype=np.int64) for c in (gross, fineness, fine))
    # |values| < 1e10: no int64 overflow
    off = np.nonzero(np.abs(w * 10_000 - g * f) > rules.FINE_TOLERANCE_MILLI * 10_000)[0]
    for k in off.tolist():
        i = candidates[k] if candidates is not None else k
        expected = Decimal(gross[i] * fineness[i]) / Decimal(10**7)
        errors.add(
            rows[i],
            "fine_weight_oz",
            f"fine_weight_oz {cells['fine_weight_oz'][i]} differs from gross_weight_oz × fineness = "
            f"{cells['gross_weight_oz'][i]} × {cells['fineness'][i]}/1000 = {expected.normalize():f} "
            f"by more than {format_milli(rules.FINE_TOLERANCE_MILLI)} oz",
        )
