"""The layer direction of custody/ (docs/architecture.md#layers), enforced on the source with ``ast``.

Every module under custody/ is parsed; every ``custody`` import is collected, at module level, under
``if TYPE_CHECKING:`` and inside functions. Two rules:

1. **Dependencies point down.** A module may import only modules of its own layer or of a lower one
   (``LAYERS``; type-checking imports count too: a type is a dependency).
2. **No function-level custody imports** — they hide import cycles. The only exceptions are listed in
   ``LAZY_FOR_STARTUP`` with their reason: the CLI's lazy command loading and the package's lazy
   attribute loading, both measured by benchmarks/snapshots/startup.json.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "custody"

# lowest first; a module belongs to the layer of its longest matching prefix
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "custody.exceptions",
            "custody.types",
            "custody.amounts",
            "custody.events",
            "custody._keccak",
            "custody._paths",
            "custody._perf",
            "custody._progress",
            "custody._passphrase",
            "custody.durability",
        ),
    ),
    ("store", ("custody.store",)),
    ("chain", ("custody.chain",)),
    ("signers", ("custody.signers", "custody.safe")),
    ("contracts", ("custody.contracts",)),
    ("workspace", ("custody.workspace", "custody.binding", "custody.session")),
    (
        "domains",
        (
            "custody.policy",
            "custody.risk",
            "custody.vault",
            "custody.audit",
            "custody.attest",
            "custody.reconcile",
            "custody.drills",
            "custody.workspace_repair",
        ),
    ),
    ("harness", ("custody.harness",)),  # generated data for the pilot and the tests: no domain imports it
    ("api", ("custody._api", "custody._wiring", "custody.pilots")),
    ("entry", ("custody.cli", "custody.__main__", "custody")),
]

# function-level imports kept on purpose: (importing module prefix, reason)
LAZY_FOR_STARTUP: dict[str, str] = {
    "custody.cli": "lazy command loading keeps `custody --help` fast (benchmarks/snapshots/startup.json)",
    "custody": "custody/__init__.py loads its public names on first use: `import custody` imports no web3",
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported custody module
    where: str  # "module", "type_checking" or "function"
    path: Path
    line: int

    def __str__(self) -> str:
        shown = self.path.relative_to(REPO) if self.path.is_relative_to(REPO) else self.path
        return f"{shown}:{self.line}: {self.module} imports {self.target} ({self.where})"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(name: str) -> bool:
    base = REPO / name.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, module: str | None = None) -> list[Import]:
    module = module or module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def record(node: ast.stmt, where: str) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "custody":
                    found.append(Import(module, alias.name, where, path, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "custody":
                return
            for alias in node.names:  # `from custody.audit import record` imports the submodule
                candidate = f"{source}.{alias.name}"
                found.append(Import(module, candidate if _is_module(candidate) else source, where, path, node.lineno))

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and where == "module" and _is_type_checking(child.test):
                for stmt in child.body:
                    record(stmt, "type_checking")
                    visit(stmt, "type_checking")
                for stmt in child.orelse:
                    record(stmt, where)
                    visit(stmt, where)
                continue
            inner = "function" if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) else where
            if isinstance(child, ast.stmt):
                record(child, inner)
            visit(child, inner)

    visit(ast.parse(path.read_text(), filename=str(path)), "module")
    return found


def all_imports() -> list[Import]:
    return [imp for path in sorted(PACKAGE.rglob("*.py")) for imp in imports_of(path)]


def layer_of(module: str) -> int:
    best: tuple[int, int] | None = None  # (prefix length, layer index)
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return best[1]


def _matches(module: str, prefix: str) -> bool:
    return module == prefix if prefix == "custody" else module == prefix or module.startswith(prefix + ".")


def layer_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        low, high = layer_of(imp.module), layer_of(imp.target)
        if high > low:
            bad.append(f"{imp}: layer {LAYERS[low][0]!r} must not depend on layer {LAYERS[high][0]!r}")
    return bad


def hidden_imports(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        if imp.where != "function":
            continue
        if any(_matches(imp.module, prefix) for prefix in LAZY_FOR_STARTUP):
            continue
        bad.append(f"{imp}: function-level custody import (move it to module level and break the cycle)")
    return bad


def test_every_module_has_a_layer() -> None:
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_dependencies_point_down_the_layers() -> None:
    assert layer_violations(all_imports()) == []


def test_no_function_level_custody_imports_outside_the_allow_list() -> None:
    assert hidden_imports(all_imports()) == []


PLANTS = [  # (source, importing module, expected finding)
    ("from custody.vault.service import get_vault\n", "custody.chain.rpc", "layer"),
    ("def f():\n    from custody.exceptions import InputError\n", "custody.vault.service", "hidden"),
    (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from custody.session import Session\n",
        "custody.store",
        "layer",
    ),
    ("def f():\n    import custody.chain.rpc\n", "custody.cli.vault_cmd", "none"),
    ("from custody.chain import rpc\n", "custody.vault.service", "none"),
    ("from custody.harness import scenario\n", "custody.reconcile.collateral", "layer"),  # a domain on the harness
    ("from custody.harness.scenario import write_csv\n", "custody.pilots.reconcile", "none"),
]


@pytest.mark.parametrize(("source", "module", "expect"), PLANTS)
def test_the_checks_catch_planted_violations(tmp_path: Path, source: str, module: str, expect: str) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(source)
    found = imports_of(planted, module)
    assert found, "the planted import was not collected"
    layer, hidden = layer_violations(found), hidden_imports(found)
    assert (bool(layer), bool(hidden)) == (expect == "layer", expect == "hidden"), (layer, hidden)
