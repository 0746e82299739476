"""docs/error-codes.md lists every exit code the CLI uses, and each error class with a code of its own under it:
the table is checked against the exception tree, the report constants and the literal codes in custody/cli."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click

from custody import exceptions
from custody.audit import verify
from custody.reconcile import service as reconcile

ROOT = Path(__file__).resolve().parents[1]


def _documented() -> dict[int, str]:
    """code -> the text of its rows in the table."""
    rows: dict[int, str] = {}
    for line in (ROOT / "docs" / "error-codes.md").read_text().splitlines():
        match = re.match(r"\| (\d+) \|(.*)\|$", line)
        if match:
            rows[int(match[1])] = rows.get(int(match[1]), "") + match[2]
    return rows


def _codes_in_cli() -> set[int]:
    """Integer literals passed to click's exits in custody/cli (``Exit(3)``, ``ctx.exit(0 if ok else 2)``)."""
    found: set[int] = set()
    for path in (ROOT / "custody" / "cli").glob("*.py"):
        for args in re.findall(r"(?:Exit|ctx\.exit|SystemExit)\(([^()]*)\)", path.read_text()):
            found |= {int(n) for n in re.findall(r"\b\d+\b", args)}
        found |= {int(n) for n in re.findall(r"\bcode = (\d+)\b", path.read_text())}
    return found


def test_every_exit_code_is_documented_and_nothing_else():
    classes = [c for _n, c in inspect.getmembers(exceptions, inspect.isclass) if issubclass(c, exceptions.CustodyError)]
    used = (
        {0, 1, click.UsageError.exit_code}
        | {c.exit_code for c in classes}
        | {v for k, v in vars(reconcile).items() if k.startswith("EXIT_")}
        | {verify.EXIT_OK, verify.EXIT_TAMPERED, verify.EXIT_CHAIN}
        | _codes_in_cli()
    )
    assert set(_documented()) == used


def test_each_error_with_its_own_code_is_named_in_its_row():
    documented = _documented()
    own = [c for _n, c in inspect.getmembers(exceptions, inspect.isclass)
           if issubclass(c, exceptions.CustodyError) and c.exit_code != 1]  # fmt: skip
    assert own, "the tree has errors with their own exit codes"
    for error in own:
        assert f"`{error.__name__}`" in documented[error.exit_code], error.__name__
