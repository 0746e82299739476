"""Compile pipeline: solc-js (through the native-CLI wrapper) via py-solc-x, committed artifacts.

``build()`` compiles every ``contracts/**/*.sol`` in one Standard-JSON run with fixed settings and
writes one artifact per contract (ABI, creation and runtime bytecode, metadata, compiler version
and settings) to ``custody/contracts/artifacts/``. ``check()`` rebuilds in memory and compares
byte for byte; any difference is an :class:`ArtifactMismatch`.

Only this module needs Node (and only for ``custody build``); the runtime reads the artifacts.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from custody import _paths
from custody.exceptions import ArtifactMismatch, BuildError

SOLC_VERSION = "0.8.28"
SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 30000},
    "metadata": {"bytecodeHash": "ipfs", "appendCBOR": True},
    "outputSelection": {
        "*": {
            "*": [
                "abi",
                "evm.bytecode.object",
                "evm.deployedBytecode.object",
                "metadata",
                "devdoc",
                "userdoc",
            ]
        }
    },
}


@dataclass(frozen=True)
class BuildResult:
    """Serialized artifacts, by file name, exactly as they are (or should be) committed."""

    files: dict[str, bytes]
    compiler_version: str


def source_units(contracts_dir: Path | None = None) -> dict[str, str]:
    """Source unit name (path relative to the repo root) → file content, sorted."""
    root = contracts_dir or _paths.CONTRACTS_DIR
    if not root.is_dir():
        raise BuildError(f"no contracts/ folder at {root}; `custody build` needs a source checkout of the project")
    units = {}
    for path in sorted(root.rglob("*.sol")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue  # tool caches such as Ape's contracts/.cache
        units[path.relative_to(root.parent).as_posix()] = path.read_text(encoding="utf-8")
    if not units:
        raise BuildError(f"no .sol files under {root}")
    return units


def standard_json_input(units: dict[str, str]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": content} for name, content in units.items()},
        "settings": SETTINGS,
    }


_compiled: dict[str, dict[str, Any]] = {}


def _run_solc(input_json: dict[str, Any]) -> dict[str, Any]:
    """Compile a Standard-JSON input (memoised in-process: solc is deterministic for equal input)."""
    key = hashlib.sha256(json.dumps(input_json, sort_keys=True).encode()).hexdigest()
    if key not in _compiled:
        _compiled[key] = _invoke_solc(input_json)
    return _compiled[key]


def _invoke_solc(input_json: dict[str, Any]) -> dict[str, Any]:
    if shutil.which("node") is None:
        raise BuildError("node is not installed; `custody build` runs the solc-js compiler under Node")
    if not (_paths.NODE_MODULES / "solc").is_dir():
        raise BuildError("npm package `solc` is missing; run `npm ci` in the repository root")
    import solcx.wrapper
    from solcx.exceptions import SolcError

    try:
        stdout, _stderr, _cmd, _proc = solcx.wrapper.solc_wrapper(
            solc_binary=_paths.SOLC_WRAPPER,
            stdin=json.dumps(input_json),
            standard_json=True,
            base_path=_paths.REPO_ROOT,
            include_path=_paths.NODE_MODULES,
        )
    except SolcError as exc:
        raise BuildError(f"solc failed: {exc}") from exc
    output = json.loads(stdout)
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BuildError("compilation failed:\n" + "\n".join(e["formattedMessage"] for e in errors))
    compiled: dict[str, Any] = output
    return compiled


def compiler_version() -> str:
    import solcx.wrapper

    return str(solcx.wrapper.get_solc_version(_paths.SOLC_WRAPPER, with_commit_hash=True))


def serialize(artifact: dict[str, Any]) -> bytes:
    return (json.dumps(artifact, indent=2, sort_keys=True) + "\n").encode("utf-8")


def compile_all(contracts_dir: Path | None = None) -> BuildResult:
    units = source_units(contracts_dir)
    output = _run_solc(standard_json_input(units))
    version = compiler_version()
    files: dict[str, bytes] = {}
    for source_name in units:
        for name, data in sorted(output["contracts"].get(source_name, {}).items()):
            if f"{name}.json" in files:
                raise BuildError(f"two contracts are named {name}; artifact names must be unique")
            artifact = {
                "contractName": name,
                "sourceName": source_name,
                "abi": data["abi"],
                "bytecode": "0x" + data["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "metadata": data["metadata"],
                "devdoc": data.get("devdoc", {}),
                "userdoc": data.get("userdoc", {}),
                "compiler": {"name": "solc", "version": version, "settings": SETTINGS},
            }
            files[f"{name}.json"] = serialize(artifact)
    return BuildResult(files=files, compiler_version=version)


def write(result: BuildResult, artifacts_dir: Path | None = None) -> list[str]:
    """Write artifacts, delete stale ones; return the names that changed."""
    target = artifacts_dir or _paths.ARTIFACTS_DIR
    target.mkdir(parents=True, exist_ok=True)
    changed = []
    for stale in sorted(set(p.name for p in target.glob("*.json")) - set(result.files)):
        (target / stale).unlink()
        changed.append(stale)
    for name, content in sorted(result.files.items()):
        path = target / name
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            changed.append(name)
    return changed


def diff(result: BuildResult, artifacts_dir: Path | None = None) -> dict[str, str]:
    """Artifact name → what is wrong with the committed copy (empty when identical)."""
    target = artifacts_dir or _paths.ARTIFACTS_DIR
    problems: dict[str, str] = {}
    committed = {p.name: p.read_bytes() for p in target.glob("*.json")} if target.is_dir() else {}
    for name in sorted(set(result.files) | set(committed)):
        if name not in committed:
            problems[name] = "missing from the committed artifacts"
        elif name not in result.files:
            problems[name] = "committed but no longer produced by the sources"
        elif committed[name] != result.files[name]:
            a, b = committed[name], result.files[name]
            first = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            problems[name] = f"differs from the rebuild at byte {first}"
    return problems


def check(artifacts_dir: Path | None = None, contracts_dir: Path | None = None) -> BuildResult:
    result = compile_all(contracts_dir)
    problems = diff(result, artifacts_dir)
    if problems:
        listing = "; ".join(f"{name}: {why}" for name, why in problems.items())
        raise ArtifactMismatch(
            f"{len(problems)} committed artifact(s) do not match a rebuild ({listing})",
            hint="run `custody build` and commit the artifacts",
            artifacts=problems,
        )
    return result
