"""The bar list as values: a columnar :class:`BarList`, bar ids, units, and the refiner list.

A bar list can hold a million bars, so it is stored column by column (one Python list per field)
rather than as a million objects. Weights are exact integers: gross and fine weight in thousandths
of a troy ounce ("milli-oz"), fineness in tenths of a part per thousand (999.9 → 9999). The token's
base unit is 1e-18 fine oz, so a fine weight in milli-oz times 10**15 is its token amount.

A bar is identified by refiner and serial (serials are unique per refiner under the LBMA Good
Delivery rules): ``bar_id = keccak256(refinerCode + "/" + serial)`` (UTF-8; refiner codes never
contain "/", so the first "/" separates the two) — the value ``CollateralToken.barId(refinerCode,
serial)`` returns, so anyone can recompute it. One keccak block per bar: a million ids take ~0.7 s.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
from array import array
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TypeVar, overload

from custody._keccak import keccak256

MILLI_OZ_UNITS = 10**15  # token base units per 0.001 fine oz (1 fine oz = 10**18)
TOKEN_DECIMALS = 18

COLUMNS = (
    "serial",
    "refiner",
    "year",
    "gross_weight_oz",
    "fineness",
    "fine_weight_oz",
    "vault_location",
    "custodian",
)


@dataclass(frozen=True)
class Refiner:
    code: str
    name: str
    country: str


@functools.cache
def refiners() -> dict[str, Refiner]:
    """The committed refiner list (``custody/reconcile/data/refiners.csv``), by code and by name."""
    text = resources.files("custody.reconcile").joinpath("data", "refiners.csv").read_text(encoding="utf-8")
    table: dict[str, Refiner] = {}
    for row in csv.DictReader(text.splitlines()):
        refiner = Refiner(row["code"], row["name"], row["country"])
        table[refiner.code] = refiner
        table[refiner.name] = refiner
    return table


def bar_id(refiner_code: str, serial: str) -> bytes:
    """keccak256(refinerCode + "/" + serial) — equal to ``CollateralToken.barId``."""
    return keccak256(f"{refiner_code}/{serial}".encode())


def format_milli(value: int) -> str:
    """Milli-oz as an exact decimal string with three places (``400125`` → ``"400.125"``)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 1000)
    return f"{sign}{whole}.{frac:03d}"


def format_units(units: int) -> str:
    """Token base units as fine troy ounces, exact (trailing zeros trimmed, at least 3 places)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**TOKEN_DECIMALS)
    text = f"{frac:018d}".rstrip("0")
    return f"{sign}{whole}.{text.ljust(3, '0')}"


def format_fineness(tenths: int) -> str:
    return f"{tenths // 10}.{tenths % 10}"


@dataclass(frozen=True)
class Bar:
    """One bar, materialised on demand (findings, reports) from a :class:`BarList` row."""

    row: int
    serial: str
    refiner: str  # refiner code
    year: int
    gross_milli: int
    fineness_tenths: int
    fine_milli: int
    vault_location: str
    custodian: str
    bar_id: bytes

    @property
    def fine_units(self) -> int:
        return self.fine_milli * MILLI_OZ_UNITS

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "serial": self.serial,
            "refiner": self.refiner,
            "year": self.year,
            "gross_weight_oz": format_milli(self.gross_milli),
            "fineness": format_fineness(self.fineness_tenths),
            "fine_weight_oz": format_milli(self.fine_milli),
            "vault_location": self.vault_location,
            "custodian": self.custodian,
            "bar_id": "0x" + self.bar_id.hex(),
        }


class PackedIds(Sequence[bytes]):
    """Bar ids packed in one buffer, 32 bytes each (a streamed list of a million bars keeps 32 MB of ids
    instead of a million bytes objects); items are ``bytes`` made on access."""

    __slots__ = ("_buffer",)

    def __init__(self, buffer: bytes | bytearray) -> None:
        if len(buffer) % 32:
            raise ValueError("packed bar ids must be 32 bytes each")
        self._buffer = memoryview(buffer)

    @property
    def buffer(self) -> memoryview:
        """The packed ids, 32 bytes each (for numpy: ``np.frombuffer(ids.buffer, dtype="V32")``)."""
        return self._buffer

    def __len__(self) -> int:
        return len(self._buffer) // 32

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | list[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("bar id index out of range")
        return self._buffer[32 * i : 32 * i + 32].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        buffer = self._buffer
        return (buffer[k : k + 32].tobytes() for k in range(0, len(buffer), 32))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


_T = TypeVar("_T")
_H = TypeVar("_H", bound=Hashable)


class _Column(Sequence[_T]):
    """A read-only column that compares equal to any sequence with the same items (a list, another column)."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    @overload
    def __getitem__(self, i: int) -> _T: ...
    @overload
    def __getitem__(self, i: slice) -> list[_T]: ...
    def __getitem__(self, i: int | slice) -> _T | list[_T]:
        if isinstance(i, slice):
            return [self._item(j) for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("bar list column index out of range")
        return self._item(i)

    def _item(self, i: int) -> _T:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} items)"


_CODE_TYPES = (("B", 1 << 8), ("H", 1 << 16), ("I", 1 << 32))


class Coded(_Column[_H]):
    """A column with few distinct values (refiner codes, years, weights, locations, custodians): each distinct
    value stored once, a small integer code per bar (1-4 bytes instead of an 8-byte pointer)."""

    __slots__ = ("_codes", "_index", "values")

    def __init__(self, values: Iterable[_H] = ()) -> None:
        self.values: list[_H] = []
        self._index: dict[_H, int] = {}
        self._codes = array("B")
        self.extend(values)

    def extend(self, values: Iterable[_H]) -> None:
        values = values if isinstance(values, (list, tuple)) else list(values)
        index = self._index
        for value in set(values) - index.keys():
            index[value] = len(self.values)
            self.values.append(value)
        for code, limit in _CODE_TYPES:
            if len(self.values) <= limit:
                if code != self._codes.typecode:
                    self._codes = array(code, self._codes)
                break
        self._codes.extend(map(index.__getitem__, values))

    @property
    def codes(self) -> array[int]:
        return self._codes

    def __len__(self) -> int:
        return len(self._codes)

    def _item(self, i: int) -> _H:
        return self.values[self._codes[i]]

    def __iter__(self) -> Iterator[_H]:
        return map(self.values.__getitem__, self._codes)


class PackedText(_Column[str]):
    """A column of distinct short strings (serials) in one string with offsets, instead of one object each."""

    __slots__ = ("_offsets", "_parts", "_text")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._parts: list[str] = []
        self._text = ""
        self._offsets = array("I", [0])  # 4 bytes per item while the text stays under 4 G characters
        self.extend(values)

    def extend(self, values: Iterable[str]) -> None:
        values = values if isinstance(values, (list, tuple)) else list(values)
        part = "".join(values)
        if self._offsets.typecode == "I" and self._offsets[-1] + len(part) >= 1 << 32:
            self._offsets = array("q", self._offsets)
        self._parts.append(part)
        self._offsets.extend(itertools.accumulate(map(len, values), initial=self._offsets[-1]))
        self._offsets.pop(len(self._offsets) - len(values) - 1)  # accumulate repeats the running total first

    def _joined(self) -> str:
        if self._parts:
            self._text = "".join([self._text, *self._parts])
            self._parts = []
        return self._text

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _item(self, i: int) -> str:
        return self._joined()[self._offsets[i] : self._offsets[i + 1]]

    def __iter__(self) -> Iterator[str]:
        text, offsets = self._joined(), self._offsets
        return map(text.__getitem__, map(slice, offsets, itertools.islice(offsets, 1, None)))


@dataclass(frozen=True)
class BarList:
    """A validated bar list, column by column (position i of every list is bar i)."""

    source: str
    sha256: str  # of the file's bytes, as read
    format: str  # "csv" | "json"
    rows: list[int]
    serials: list[str]
    refiners: list[str]  # refiner codes
    years: list[int]
    gross_milli: list[int]
    fineness_tenths: list[int]
    fine_milli: list[int]
    vault_locations: list[str]
    custodians: list[str]
    bar_ids: Sequence[bytes]  # a list, or PackedIds for streamed lists
    _index: dict[bytes, int] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.bar_ids)

    def index(self) -> dict[bytes, int]:
        """bar id → position (built once)."""
        if not self._index and self.bar_ids:
            self._index.update(zip(self.bar_ids, range(len(self.bar_ids))))
        return self._index

    def bar(self, i: int) -> Bar:
        return Bar(
            self.rows[i],
            self.serials[i],
            self.refiners[i],
            self.years[i],
            self.gross_milli[i],
            self.fineness_tenths[i],
            self.fine_milli[i],
            self.vault_locations[i],
            self.custodians[i],
            self.bar_ids[i],
        )

    def total_fine_milli(self) -> int:
        return sum(self.fine_milli)

    def total_fine_units(self) -> int:
        return self.total_fine_milli() * MILLI_OZ_UNITS


def sha256_file(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
