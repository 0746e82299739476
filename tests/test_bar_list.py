"""Bar list ingestion: valid lists parse exactly; every kind of bad row is reported with row, column and a
specific sentence; nothing is dropped or coerced."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from custody.exceptions import BarListError
from custody.reconcile.barlist import bar_id, refiners
from custody.reconcile.ingest import load_bar_list, parse_bar_list

HEADER = "serial,refiner,year,gross_weight_oz,fineness,fine_weight_oz,vault_location,custodian"
ROWS = [
    "AB1001,Valcambi SA,2019,400.125,999.9,400.084,London,Brink's",
    "PX-77/2,PAMP SA,2021,395.500,999.5,395.302,Zurich,Loomis",
    "K9.1,The Perth Mint,2015,401.000,995.0,398.995,Singapore,Malca-Amit",
]
VALID = "\n".join([HEADER, *ROWS]) + "\n"
THIS_YEAR = dt.datetime.now(dt.UTC).year


def with_row3(**changes: str) -> str:
    """The valid list with some fields of its third line (second bar) replaced."""
    names = HEADER.split(",")
    fields = dict(zip(names, ROWS[1].split(",")))
    fields.update(changes)
    return "\n".join([HEADER, ROWS[0], ",".join(fields[n] for n in names), ROWS[2]]) + "\n"


def errors_of(data: bytes | str, fmt: str = "csv") -> list[dict]:
    with pytest.raises(BarListError) as caught:
        parse_bar_list(data.encode() if isinstance(data, str) else data, source="list", format=fmt)
    return caught.value.details["errors"]


def test_valid_csv_parses_exactly():
    bars = parse_bar_list(VALID.encode(), source="list")
    assert len(bars) == 3 and bars.rows == [2, 3, 4]
    assert bars.gross_milli == [400_125, 395_500, 401_000]
    assert bars.fineness_tenths == [9999, 9995, 9950]
    assert bars.fine_milli == [400_084, 395_302, 398_995]
    assert bars.refiners == ["VALCAMBI", "PAMP", "PERTH"]
    assert bars.bar_ids[1] == bar_id("PAMP", "PX-77/2")
    assert bars.total_fine_units() == (400_084 + 395_302 + 398_995) * 10**15
    assert bars.bar(2).as_dict()["fine_weight_oz"] == "398.995"


def test_csv_json_bom_crlf_and_quoted_fields_all_give_the_same_list():
    base = parse_bar_list(VALID.encode())
    names = HEADER.split(",")
    items = [dict(zip(names, r.split(","))) for r in ROWS]
    for item in items:  # JSON numbers are read as their literal text, never as floats
        item["fineness"] = json.loads(f'{{"x": {item["fineness"]}}}', parse_float=str)["x"]
    doc = json.dumps({"bars": items}).replace('"999.9"', "999.9").replace('"2019"', "2019")
    assert '"fineness": 999.9' in doc
    variants = [
        parse_bar_list(doc.encode(), format="json"),
        parse_bar_list(b"\xef\xbb\xbf" + VALID.replace("\n", "\r\n").encode()),
        parse_bar_list(VALID.replace("Brink's", '"Brink\'s"').encode()),  # quoted: the csv module path
    ]
    for other in variants:
        assert (other.bar_ids, other.fine_milli, other.fineness_tenths, other.custodians, other.years) == (
            base.bar_ids, base.fine_milli, base.fineness_tenths, base.custodians, base.years,
        )  # fmt: skip


def test_refiner_codes_cannot_contain_the_bar_id_separator():
    assert all("/" not in r.code and r.code == r.code.strip() for r in refiners().values())


def test_load_from_file_reports_sha256(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text(VALID)
    import hashlib

    assert load_bar_list(path).sha256 == hashlib.sha256(VALID.encode()).hexdigest()
    with pytest.raises(BarListError, match="cannot read bar list"):
        load_bar_list(tmp_path / "missing.csv")


MALFORMED = {
    "missing column": (
        VALID.replace(",custodian", "").replace(",Brink's", "").replace(",Loomis", "").replace(",Malca-Amit", ""),
        (1, "custodian", "missing column 'custodian'"),
    ),
    "extra column": (
        "\n".join([HEADER + ",colour", *(r + ",yellow" for r in ROWS)]),
        (
            1,
            "colour",
            "unexpected column 'colour' (expected: serial, refiner, year, gross_weight_oz, fineness, "
            "fine_weight_oz, vault_location, custodian)",
        ),
    ),
    "duplicate column": (
        "\n".join([HEADER + ",serial", *(r + ",X" for r in ROWS)]),
        (1, "serial", "column 'serial' appears twice"),
    ),
    "too many fields": (with_row3(custodian="Loomis,extra"), (3, None, "row has 9 field(s) but the header has 8")),
    "too few fields": (
        with_row3(custodian="").replace(",\n", "\n", 1).replace("Zurich,\n", "Zurich\n"),
        (3, None, "row has 7 field(s) but the header has 8"),
    ),
    "empty row": ("\n".join([HEADER, ROWS[0], "", *ROWS[1:]]), (3, None, "empty row")),
    "bad encoding": (
        with_row3(custodian="Loomis").encode().replace(b"Loomis", b"Lo\xe9mis"),
        (3, "custodian", "custodian contains byte 0xe9, which is not valid UTF-8"),
    ),
    "empty serial": (with_row3(serial=""), (3, "serial", "serial is empty")),
    "serial with a newline": (
        with_row3(serial='"PX\nQ7"'),
        (3, "serial", "serial 'PX\\nQ7' contains '\\n'; allowed are letters, digits and . / - (not first)"),
    ),
    "serial with whitespace": (
        with_row3(serial=" PX-77/2"),
        (3, "serial", "serial ' PX-77/2' has leading or trailing whitespace"),
    ),
    "serial with a bad character": (
        with_row3(serial="PX#77"),
        (3, "serial", "serial 'PX#77' contains '#'; allowed are letters, digits and . / - (not first)"),
    ),
    "serial too long": (
        with_row3(serial="P" * 33),
        (3, "serial", f"serial {'P' * 33!r} is 33 characters long; at most 32 are allowed"),
    ),
    "duplicate bar": (
        with_row3(serial="AB1001", refiner="Valcambi SA"),
        (3, "serial", "bar VALCAMBI AB1001 is listed twice (first on row 2)"),
    ),
    "unknown refiner": (
        with_row3(refiner="Valcambi"),
        (3, "refiner", "refiner 'Valcambi' is not on the Good Delivery refiner list (did you mean 'Valcambi SA'?)"),
    ),
    "year not a number": (with_row3(year="20x9"), (3, "year", "year '20x9' is not a four-digit year")),
    "year out of range": (with_row3(year="1850"), (3, "year", f"year 1850 is outside 1900–{THIS_YEAR}")),
    "year in the future": (
        with_row3(year=str(THIS_YEAR + 1)),
        (3, "year", f"year {THIS_YEAR + 1} is outside 1900–{THIS_YEAR}"),
    ),
    "non-numeric weight": (
        with_row3(gross_weight_oz="heavy"),
        (
            3,
            "gross_weight_oz",
            "gross_weight_oz 'heavy' is not a decimal number (expected digits with an optional '.')",
        ),
    ),
    "exponent notation": (
        with_row3(gross_weight_oz="3.955e2"),
        (
            3,
            "gross_weight_oz",
            "gross_weight_oz '3.955e2' is not a decimal number (expected digits with an optional '.')",
        ),
    ),
    "negative weight": (
        with_row3(gross_weight_oz="-395.500"),
        (3, "gross_weight_oz", "gross_weight_oz -395.500 is negative"),
    ),
    "zero weight": (
        with_row3(gross_weight_oz="0.000"),
        (3, "gross_weight_oz", "gross_weight_oz 0.000 must be greater than zero"),
    ),
    "too many decimals": (
        with_row3(gross_weight_oz="395.5001"),
        (3, "gross_weight_oz", "gross_weight_oz 395.5001 has 4 decimal places; at most 3 are allowed"),
    ),
    "empty weight": (with_row3(fine_weight_oz=""), (3, "fine_weight_oz", "fine_weight_oz is empty")),
    "fineness below 995": (
        with_row3(fineness="994.9"),
        (3, "fineness", "fineness 994.9 is below the Good Delivery minimum of 995.0"),
    ),
    "fineness above 999.9": (with_row3(fineness="1000.0"), (3, "fineness", "fineness 1000.0 is above 999.9")),
    "fine weight below 350 oz": (
        with_row3(gross_weight_oz="351.000", fineness="995.0", fine_weight_oz="349.245"),
        (3, "fine_weight_oz", "fine_weight_oz 349.245 is below the Good Delivery minimum of 350 fine oz"),
    ),
    "fine weight above 430 oz": (
        with_row3(gross_weight_oz="433.000", fineness="999.9", fine_weight_oz="432.956"),
        (3, "fine_weight_oz", "fine_weight_oz 432.956 is above the Good Delivery maximum of 430 fine oz"),
    ),
    "fine weight != gross x fineness": (
        with_row3(gross_weight_oz="401.000", fineness="995.0", fine_weight_oz="400.000"),
        (
            3,
            "fine_weight_oz",
            "fine_weight_oz 400.000 differs from gross_weight_oz × fineness = 401.000 × 995.0/1000 "
            "= 398.995 by more than 0.001 oz",
        ),
    ),
    "empty vault location": (with_row3(vault_location=""), (3, "vault_location", "vault_location is empty")),
    "control character": (
        with_row3(custodian="Loo\x07mis"),
        (3, "custodian", "custodian 'Loo\\x07mis' contains a control character"),
    ),
    "unterminated quote": (VALID.replace("Loomis", '"Loomis'), (3, None, "malformed CSV: unexpected end of data")),
    "empty file": ("", (1, None, "the bar list is empty: the first row must be the header")),
    "header only": (HEADER + "\n", (1, None, "the bar list contains no bars")),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_each_kind_of_bad_row_is_reported_with_row_column_and_message(kind):
    data, (row, column, message) = MALFORMED[kind]
    assert errors_of(data) == [{"row": row, "column": column, "message": message}]


def test_a_misspelt_column_is_both_unexpected_and_missing():
    assert errors_of(VALID.replace("fineness,", "finenes,", 1)) == [
        {"row": 1, "column": "finenes", "message": "unexpected column 'finenes' (did you mean 'fineness'?)"},
        {"row": 1, "column": "fineness", "message": "missing column 'fineness'"},
    ]


def test_json_shape_errors_name_the_bar_and_field():
    good = {"serial": "AB1", "refiner": "PAMP SA", "year": 2020, "gross_weight_oz": "395.500", "fineness": 999.5,
            "fine_weight_oz": "395.302", "vault_location": "Zurich", "custodian": "Loomis"}  # fmt: skip
    assert errors_of(json.dumps([good, {**good, "serial": "AB2", "fineness": None}]), "json") == [
        {"row": 2, "column": "fineness", "message": "fineness must be a string or a number, got null"}
    ]
    missing = {k: v for k, v in good.items() if k != "year"}
    assert errors_of(json.dumps({"bars": [missing]}), "json") == [
        {"row": 1, "column": "year", "message": "missing field 'year'"}
    ]
    assert errors_of(json.dumps({"bars": [good, 7]}), "json") == [
        {"row": 2, "column": None, "message": "bar must be a JSON object, got a string or number"}
    ]
    assert errors_of('{"bars": [', "json")[0]["message"].startswith("not valid JSON: Expecting value at line 1")


def test_every_error_in_a_list_is_reported_in_row_order_and_nothing_is_dropped():
    data = "\n".join(
        [HEADER, ROWS[0].replace("2019", "19"), ROWS[1].replace("999.5", "990.0").replace("Zurich", ""), ROWS[2]]
    )
    with pytest.raises(BarListError) as caught:
        parse_bar_list(data.encode(), source="q.csv")
    err = caught.value
    assert [(e["row"], e["column"]) for e in err.details["errors"]] == [
        (2, "year"), (3, "fineness"), (3, "vault_location"),
    ]  # fmt: skip
    assert err.details["error_count"] == 3 and err.exit_code == 3
    assert (
        str(err)
        == "bar list q.csv is invalid: 3 error(s); first: row 2, column year: year '19' is not a four-digit year"
    )


def test_large_lists_checked_in_two_processes_give_the_same_result_and_row_numbers(monkeypatch):
    from custody.harness import scenario
    from custody.reconcile import ingest

    rows = scenario.generate_rows(400, seed=4)
    text = "\n".join([HEADER] + [",".join(r[c] for c in HEADER.split(",")) for r in rows]) + "\n"
    serial = parse_bar_list(text.encode())
    monkeypatch.setattr(ingest, "PARALLEL_MIN_ROWS", 50)
    assert ingest._splittable(text)
    forked = parse_bar_list(text.encode())
    assert (forked.rows, forked.bar_ids, forked.fine_milli, forked.custodians) == (
        serial.rows, serial.bar_ids, serial.fine_milli, serial.custodians,
    )  # fmt: skip
    # errors from both halves, with their own row numbers, and a duplicate across the halves
    lines = text.splitlines()
    lines[3] = lines[3].replace(rows[2]["fineness"], "990.0")
    lines[390] = (
        lines[390].replace(rows[389]["serial"], rows[5]["serial"]).replace(rows[389]["refiner"], rows[5]["refiner"])
    )
    lines[391] = lines[391].replace(rows[390]["year"], "19")
    assert [(e["row"], e["column"]) for e in errors_of("\n".join(lines) + "\n")] == [
        (4, "fineness"), (391, "serial"), (392, "year"),
    ]  # fmt: skip
