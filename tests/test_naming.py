"""Imports bind real names (issue 13), enforced on the source with ``ast``.

An import may not bind a one- or two-letter alias (``from custody.vault import proposals as P``,
``import custody.vault.exit as X``, ``from trezorlib import messages as m``): the same letter stood for
different modules in different files, and a reader had to scroll to the imports to learn which. Bind the
module's own name (``proposals``), or ``<parent>_<name>`` where that name is taken (``vault_exit``,
``audit_service``). Every import counts: module level, ``if TYPE_CHECKING:`` and inside functions.

The only short aliases allowed are the conventional ones in ``CONVENTIONAL``, each with its module
(``numpy as np`` is fine, ``pandas as np`` is not), and each still in use, so the list cannot go stale.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from tests.conftest import REPO

DIRECTORIES = ("custody", "tests", "scripts", "benchmarks")
MAX_SHORT = 2
# (imported module or object, alias): aliases readers of the field know without looking them up
CONVENTIONAL: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy", "np"),
        ("pandas", "pd"),
        ("sqlalchemy", "sa"),
        ("datetime", "dt"),
        ("hypothesis.strategies", "st"),
    }
)


@functools.cache
def python_sources() -> tuple[Path, ...]:
    """Every .py file, plus extension-less scripts that run under Python."""
    files = []
    for directory in DIRECTORIES:
        for path in sorted((REPO / directory).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            if path.suffix == ".py":
                files.append(path)
            elif not path.suffix:
                with path.open("rb") as f:
                    first = f.readline()
                if first.startswith(b"#!") and b"python" in first:
                    files.append(path)
    return tuple(files)


@functools.cache
def source_of(path: Path) -> str:
    return path.read_text()


@functools.cache
def aliases(source: str) -> tuple[tuple[int, str, str], ...]:
    """(line, imported target, alias) for every ``as`` in every import of the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, a.asname) for a in node.names if a.asname]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            prefix = f"{module}." if node.level == 0 or node.module else module
            found += [(node.lineno, f"{prefix}{a.name}", a.asname) for a in node.names if a.asname]
    return tuple(found)


def short_aliases(source: str, where: str) -> list[str]:
    problems = []
    for line, target, alias in aliases(source):
        if len(alias) <= MAX_SHORT and (target, alias) not in CONVENTIONAL:
            name = target.rsplit(".", 1)[-1]
            problems.append(f"{where}:{line}: {target} is imported as {alias!r}; bind a real name such as {name!r}")
    return problems


def test_no_short_import_aliases() -> None:
    problems = []
    for path in python_sources():
        problems += short_aliases(source_of(path), str(path.relative_to(REPO)))
    assert not problems, "one- or two-letter import aliases (issue 13):\n" + "\n".join(problems)


def test_every_conventional_alias_is_in_use() -> None:
    used = {(target, alias) for path in python_sources() for _, target, alias in aliases(source_of(path))}
    assert used >= CONVENTIONAL, f"unused entries in CONVENTIONAL, remove them: {sorted(CONVENTIONAL - used)}"


PLANTS = [
    ("from custody.vault import proposals as P\n", ["custody.vault.proposals is imported as 'P'"]),
    ("import custody.vault.exit as X\n", ["custody.vault.exit is imported as 'X'"]),
    ("from trezorlib import messages as m\n", ["trezorlib.messages is imported as 'm'"]),
    ("def f():\n    from custody.attest import batch as BT\n", ["custody.attest.batch is imported as 'BT'"]),
    (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from custody.audit import service as A\n",
        ["custody.audit.service is imported as 'A'"],
    ),
    (
        "from custody.reconcile.findings import (\n    FindingKind as K,\n    Severity,\n)\n",
        ["FindingKind is imported as 'K'"],
    ),
    ("from . import scenario as S\n", [".scenario is imported as 'S'"]),
    ("import pandas as np\n", ["pandas is imported as 'np'"]),  # a conventional alias only with its module
    ("import numpy as np\nimport sqlalchemy as sa\nimport datetime as dt\n", []),
    ("from custody.vault import proposals\nfrom custody.vault import exit as vault_exit\n", []),
    ("P = 1\nprint('import x as P', P)\n", []),  # the letter elsewhere is no import alias
]


@pytest.mark.parametrize(("source", "expect"), PLANTS)
def test_the_check_catches_planted_aliases(source: str, expect: list[str]) -> None:
    problems = short_aliases(source, "planted.py")
    assert len(problems) == len(expect), problems
    for problem, fragment in zip(problems, expect, strict=True):
        assert fragment in problem, problem
