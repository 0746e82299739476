"""The curated public API (custody/__init__.py), checked as httpx's tests/test_exported_members.py does:
every name in ``__all__`` exists and is documented, nothing public is exported by accident, and
``import custody`` stays cheap (names load lazily; no web3 until one is used)."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from types import ModuleType

import pytest

import custody
from custody.exceptions import CustodyError
from tests.conftest import REPO

API_DOC = REPO / "docs" / "api.md"
API_CLASSES = ("Workspace", "MicroVault", "Proposal", "Audit", "Attestations")
# public calls that take no argument and can raise nothing worth naming (they say so in words instead)
NO_RAISES = {"Workspace.close", "Workspace.vaults"}


def exported() -> dict[str, object]:
    return {name: getattr(custody, name) for name in custody.__all__}


def test_all_is_sorted_and_every_name_exists() -> None:
    assert custody.__all__ == sorted(custody.__all__)
    assert len(set(custody.__all__)) == len(custody.__all__)
    for name, value in exported().items():
        assert value is not None, name
    assert custody.__version__ == __import__("importlib.metadata").metadata.version("custody")


def test_nothing_public_is_exported_by_accident() -> None:
    exported()  # load every lazy name, then look at what the package namespace holds
    public = {
        name
        for name, value in vars(custody).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)  # submodules appear once imported
    }
    public.discard("annotations")  # `from __future__ import annotations`
    assert public == set(custody.__all__) - {"__version__"}
    assert set(dir(custody)) >= set(custody.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Session'"):
        custody.Session  # noqa: B018  (internals are not reachable as custody.X)


def test_exported_exceptions_are_the_one_tree() -> None:
    errors = [v for v in exported().values() if isinstance(v, type) and issubclass(v, BaseException)]
    assert errors and all(issubclass(e, CustodyError) and e.__module__ == "custody.exceptions" for e in errors)


def _public_calls():
    """(qualified name, callable) of every exported function and every public method/property of the API classes."""
    for name, value in exported().items():
        if inspect.isfunction(value):
            yield name, value
    for cls_name in API_CLASSES:
        cls = getattr(custody, cls_name)
        for attr, member in vars(cls).items():
            if attr.startswith("_"):
                continue
            if isinstance(member, property):
                yield f"{cls_name}.{attr}", member.fget
            elif inspect.isfunction(member):
                yield f"{cls_name}.{attr}", member


def test_every_public_call_documents_args_returns_raises() -> None:
    calls = dict(_public_calls())
    assert {"open", "Workspace.create_vault", "MicroVault.propose_transfer", "Proposal.sign", "Proposal.execute",
            "Audit.verify", "Workspace.reconcile", "Workspace.drill", "MicroVault.initiate_exit"} <= set(calls)  # fmt: skip
    problems = []
    for qualname, fn in calls.items():
        doc = inspect.getdoc(fn) or ""
        if not doc.strip():
            problems.append(f"{qualname}: no docstring")
            continue
        signature = inspect.signature(fn)
        params = [p for p in signature.parameters if p != "self"]
        is_property = (
            qualname.split(".")[-1]
            in {a for c in API_CLASSES for a, m in vars(getattr(custody, c)).items() if isinstance(m, property)}
            and "." in qualname
        )
        if is_property:
            continue  # attributes: one sentence; those that read the chain name their errors (checked below)
        if params and "Args:" not in doc:
            problems.append(f"{qualname}: parameters {params} but no Args:")
        for param in params:
            if "Args:" in doc and f"{param}:" not in doc.split("Args:", 1)[1]:
                problems.append(f"{qualname}: Args: does not describe {param}")
        returns = signature.return_annotation
        if returns not in ("None", None, inspect.Signature.empty) and "Returns:" not in doc:
            problems.append(f"{qualname}: returns {returns} but no Returns:")
        if "Raises:" not in doc and qualname not in NO_RAISES:
            problems.append(f"{qualname}: no Raises:")
    assert not problems, "\n".join(problems)


def test_properties_that_read_the_chain_name_their_errors() -> None:
    for cls_name, attr in (("MicroVault", "owners"), ("MicroVault", "threshold"), ("MicroVault", "policy"),
                           ("Proposal", "vault")):  # fmt: skip
        doc = inspect.getdoc(getattr(getattr(custody, cls_name), attr)) or ""
        assert "Raises:" in doc, f"{cls_name}.{attr}"


def test_every_exported_name_is_in_the_api_doc() -> None:
    text = API_DOC.read_text(encoding="utf-8")
    missing = [name for name in custody.__all__ if f"`{name}" not in text and f"custody.{name}" not in text]
    assert not missing, f"docs/api.md does not mention {missing}"
    calls = [q for q, _fn in _public_calls() if "." in q]
    undocumented = [q for q in calls if q.split(".", 1)[1] not in text]
    assert not undocumented, f"docs/api.md does not mention {undocumented}"


def test_import_custody_loads_no_web3_and_names_load_on_first_use() -> None:
    probe = (
        "import sys, custody\n"
        "heavy = [m for m in ('web3', 'sqlalchemy', 'click', 'rich', 'eth_account') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "custody.CustodyError, custody.parse_amount('1', 18)\n"
        "assert 'web3' not in sys.modules, 'an exception class or amount helper must not need web3'\n"
        "custody.open\n"
        "assert 'web3' in sys.modules\n"
        "print(custody.__file__)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(REPO / "custody" / "__init__.py")  # a regular package, from this tree


def test_startup_snapshot_records_both_trees_and_the_floors() -> None:
    """benchmarks/snapshots/startup.json (benchmarks/bench_startup.py --before REV --write) agrees with what
    the probes check live (here and in tests/test_cli_lazy.py): neither the package nor `custody --help`
    imports web3; `vault list` does (it reads the chain)."""
    snapshot = json.loads((REPO / "benchmarks" / "snapshots" / "startup.json").read_text(encoding="utf-8"))
    floors = {"python_pass", "import_web3", "import_vault_service"}
    assert set(snapshot["floors_wall_seconds"]) == floors and snapshot["before_rev"]
    for tree in ("before", "after"):
        assert set(snapshot[tree]) == {"import_custody", "custody_help", "vault_list"}
        assert all(v["wall_seconds"] > 0 for v in snapshot[tree].values())
    assert snapshot["after"]["import_custody"]["imports_web3"] is False
    assert snapshot["after"]["custody_help"]["imports_web3"] is False
    assert snapshot["after"]["custody_help"]["heavy_imported"] == ["rich"]
    assert snapshot["after"]["vault_list"]["imports_web3"] is True
