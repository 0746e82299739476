"""custody is a regular package now (custody/__init__.py): its package data still ships and loads.

The wheel's contents are what setuptools' discovery and ``package-data`` globs in pyproject.toml select;
this checks them against the files on disk, and loads each kind of data through importlib.resources from
this tree (as an installed wheel would)."""

from __future__ import annotations

import tomllib
from importlib import resources

from setuptools import find_namespace_packages, find_packages

import custody
from custody.contracts import load_artifact
from tests.conftest import REPO

DATA_DIRS = ("contracts/artifacts", "contracts/vendor", "risk/data", "reconcile/data")


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_python_folder_is_a_regular_package_and_is_discovered() -> None:
    folders = {p.parent for p in (REPO / "custody").rglob("*.py")}
    missing = sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"folders with modules but no __init__.py: {missing}"
    config = pyproject()["tool"]["setuptools"]["packages"]["find"]
    find = find_namespace_packages if config.get("namespaces", True) else find_packages
    discovered = set(find(where=str(REPO), include=config["include"]))
    expected = {".".join(f.relative_to(REPO).parts) for f in folders}
    assert expected <= discovered, sorted(expected - discovered)
    assert custody.__file__ == str(REPO / "custody" / "__init__.py")


def test_every_data_file_is_matched_by_package_data() -> None:
    globs = pyproject()["tool"]["setuptools"]["package-data"]["custody"]
    files = [p for d in DATA_DIRS for p in (REPO / "custody" / d).rglob("*") if p.is_file()]
    assert len(files) >= 10
    shipped = {p for g in globs for p in (REPO / "custody").glob(g)}  # setuptools' glob semantics: * stops at /
    unshipped = [str(p.relative_to(REPO)) for p in files if p not in shipped]
    assert not unshipped, f"package data that would not ship: {unshipped}"
    assert "py.typed" in globs and (REPO / "custody" / "py.typed").is_file()


def test_package_data_loads_through_importlib_resources() -> None:
    assert load_artifact("CustodyGuard").abi
    for package, *path in (("custody.risk", "data", "sanctions-snapshot.json"),
                           ("custody.reconcile", "data", "refiners.csv"),
                           ("custody.contracts", "vendor", "safe-singleton-factory-31337.json")):  # fmt: skip
        resource = resources.files(package).joinpath(*path)
        assert resource.is_file() and resource.read_bytes(), (package, path)
        assert str(REPO) in str(resource)
