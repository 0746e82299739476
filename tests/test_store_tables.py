"""Which module owns which table (issue 13: each domain owns its tables).

``OWNERS`` is the map. Every ``sa.Table(...)`` under custody/ is found in the source with ``ast``; a table
that moves, a new table nobody listed, or one name defined in two modules fails here. The store core
(custody/store/core.py) defines no table and imports no table module: the domains' modules register on
its metadata, and the package ``custody.store`` imports them all before any :class:`Store` is opened.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

import custody.store
from custody.store import core
from tests.conftest import REPO
from tests.test_layers import imports_of, module_name

PACKAGE = REPO / "custody"

# module -> the tables it defines; the store's modules share custody.store.core.metadata, the audit ledger
# and reconciliation keep metadata of their own and create their tables on first use
OWNERS: dict[str, set[str]] = {
    "custody.store.contracts": {"deployments"},
    "custody.store.vault": {
        "vaults",
        "proposals",
        "signatures",
        "timelock_ops",
        "exit_requests",
        "exit_signatures",
        "tx_journal",
    },
    "custody.store.oob": {"oob_confirmers", "oob_confirmer_keys", "oob_challenges", "oob_confirmations"},
    "custody.store.policy": {"templates"},
    "custody.store.attest": {"badges", "attest_batches"},
    "custody.store.logs": {"log_cursors", "log_blocks"},
    "custody.store.binding": {"chain_bindings", "chain_anchors"},
    "custody.audit.schema": {"audit_state", "audit_entries", "audit_refs", "audit_heads", "audit_anchors"},
    "custody.reconcile.index": {"collateral_events", "reconcile_runs"},
}
STORE_MODULES = [name for name in OWNERS if name.startswith("custody.store.")]


def _table_names(tree: ast.Module) -> set[str]:
    """How the module can spell SQLAlchemy's ``Table``: ``sa.Table``, ``sqlalchemy.Table``, ``Table``."""
    spellings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            spellings |= {f"{a.asname or a.name}.Table" for a in node.names if a.name == "sqlalchemy"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            spellings |= {a.asname or a.name for a in node.names if a.name == "Table"}
    return spellings


def _spelled(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def tables_defined(path: Path) -> list[str]:
    """The names of the tables ``path`` defines (``sa.Table("name", ...)``), in source order."""
    tree = ast.parse(path.read_text(), filename=str(path))
    spellings = _table_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _spelled(node.func) in spellings:
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                raise AssertionError(f"{path}:{node.lineno}: a table's name must be a string literal")
            found.append(first.value)
    return found


def table_map(paths: list[tuple[Path, str]]) -> dict[str, list[str]]:
    """module -> the tables it defines (modules that define none are left out)."""
    return {module: names for path, module in paths if (names := tables_defined(path))}


def ownership_problems(found: dict[str, list[str]], owners: dict[str, set[str]]) -> list[str]:
    problems = []
    defined_in: dict[str, list[str]] = defaultdict(list)
    for module, names in found.items():
        for name in names:
            defined_in[name].append(module)
    for name, modules in sorted(defined_in.items()):
        if len(modules) > 1:
            problems.append(f"table {name!r} is defined {len(modules)} times: in {', '.join(sorted(modules))}")
    owner_of = {name: module for module, names in owners.items() for name in names}
    for name, modules in sorted(defined_in.items()):
        if name not in owner_of:
            problems.append(f"table {name!r} ({', '.join(modules)}) has no owner: add it to OWNERS")
        elif owner_of[name] not in modules or len(set(modules)) > 1:
            problems.append(f"table {name!r} belongs to {owner_of[name]} but is defined in {', '.join(modules)}")
    for name, module in sorted(owner_of.items()):
        if name not in defined_in:
            problems.append(f"table {name!r} is listed for {module} but defined nowhere")
    return problems


def _custody_modules() -> list[tuple[Path, str]]:
    return [(path, module_name(path)) for path in sorted(PACKAGE.rglob("*.py"))]


def test_each_table_is_defined_in_exactly_its_owners_module() -> None:
    assert ownership_problems(table_map(_custody_modules()), OWNERS) == []


def test_the_store_core_defines_no_table_and_imports_no_domain_module() -> None:
    path = PACKAGE / "store" / "core.py"
    assert tables_defined(path) == []
    assert [str(imp) for imp in imports_of(path) if imp.target.startswith("custody.store")] == []


def test_the_store_schema_is_exactly_the_store_modules_tables() -> None:
    """What Store creates on open: every table the store's modules define, and nothing else."""
    expected = set().union(*(OWNERS[name] for name in STORE_MODULES))
    assert set(core.metadata.tables) == expected


def test_each_store_table_is_reachable_from_custody_store() -> None:
    """``from custody.store import vaults`` (and every other table) keeps working."""
    for module in STORE_MODULES:
        for name in OWNERS[module]:
            table = getattr(custody.store, name)
            assert isinstance(table, sa.Table) and table.name == name and table.metadata is core.metadata


def test_a_planted_duplicate_or_a_moved_table_is_caught(tmp_path: Path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text('import sqlalchemy as sa\nm = sa.MetaData()\nvaults = sa.Table("vaults", m)\n')
    found = table_map([*_custody_modules(), (planted, "custody.attest.planted")])
    problems = ownership_problems(found, OWNERS)
    assert any("'vaults' is defined 2 times" in p for p in problems), problems

    moved = {**found, "custody.store.vault": [n for n in found["custody.store.vault"] if n != "tx_journal"]}
    moved["custody.store.logs"] = [*moved["custody.store.logs"], "tx_journal"]
    moved.pop("custody.attest.planted")
    assert ownership_problems(moved, OWNERS) == [
        "table 'tx_journal' belongs to custody.store.vault but is defined in custody.store.logs"
    ]
