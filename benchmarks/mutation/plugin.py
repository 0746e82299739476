"""pytest plugin (``-p benchmarks.mutation.plugin``): import one module of ``custody`` as a mutant.

``$CUSTODY_MUTANT=package.module:INDEX`` makes every import of that module in this process compile the
mutated AST (benchmarks.mutation.operators) instead of the file; nothing on disk changes. Loaded as a
plugin, it is installed before the test modules (and so the code under test) are imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

from benchmarks.mutation.operators import mutant


class _MutantLoader(importlib.machinery.SourceFileLoader):
    def __init__(self, fullname: str, path: str, index: int) -> None:
        super().__init__(fullname, path)
        self.index = index

    def source_to_code(self, data, path, *, _optimize=-1):  # type: ignore[override]
        tree, _site = mutant(data.decode("utf-8"), self.index)
        return compile(tree, path, "exec", dont_inherit=True)

    def get_code(self, fullname):  # never use (or write) the cached bytecode of the original
        source = self.get_data(self.path)
        return self.source_to_code(source, self.path)


class _MutantFinder(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, index: int) -> None:
        self.module = module
        self.index = index

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.module:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.origin is None:
            return None
        loader = _MutantLoader(fullname, spec.origin, self.index)
        return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)


def install(spec: str) -> None:
    module, _, index = spec.rpartition(":")
    if module in sys.modules:
        raise RuntimeError(f"{module} was imported before the mutant could be installed")
    sys.meta_path.insert(0, _MutantFinder(module, int(index)))


def module_path(module: str) -> Path:
    return Path(__file__).resolve().parents[2] / (module.replace(".", "/") + ".py")


if os.environ.get("CUSTODY_MUTANT"):
    install(os.environ["CUSTODY_MUTANT"])


def pytest_collection_modifyitems(session, config, items) -> None:
    """``$CUSTODY_MUTANT_FIRST`` (node ids, one a line) runs those tests first, in that order: with ``-x``,
    a mutant killed by a test that killed an earlier one stops after that test."""
    first = [line for line in os.environ.get("CUSTODY_MUTANT_FIRST", "").splitlines() if line]
    if not first:
        return
    rank = {test_id: position for position, test_id in enumerate(first)}
    items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))  # stable: the rest keep their order
