"""`ape compile` works offline with the same solc (solc-js shim) and agrees with our artifacts."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from custody.contracts import load_artifact
from tests.conftest import REPO

VENV_BIN = Path(sys.executable).parent


def _strip_metadata(code: bytes) -> bytes:
    return code[: -(int.from_bytes(code[-2:], "big") + 2)]


def test_ape_compile_offline_matches_custody_build(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(REPO / "contracts", project / "contracts", ignore=shutil.ignore_patterns(".cache"))
    shutil.copy(REPO / "ape-config.yaml", project)
    (project / "node_modules").symlink_to(REPO / "node_modules")
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN.parent / 'solc-bin'}:{VENV_BIN}:{os.environ['PATH']}",
        "APE_DATA_FOLDER": str(tmp_path / "ape-data"),
        "SOLCX_BINARY_PATH": str(tmp_path / "solcx"),
    }
    (tmp_path / "solcx").mkdir()
    steps = [
        [str(VENV_BIN / "python"), "-c", "import solcx; assert solcx.import_installed_solc()"],
        [str(VENV_BIN / "ape"), "pm", "install"],
        [str(VENV_BIN / "ape"), "compile"],
    ]
    for step in steps:
        done = subprocess.run(step, cwd=project, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{step}: {done.stdout}\n{done.stderr}"
    compiled = json.loads((project / ".build" / "__local__.json").read_text())["contractTypes"]
    for name in ("VaultTimelock", "VaultSetup", "TestERC20", "MicroVaultFactory", "CustodyGuard"):
        assert compiled[name]["abi"] == load_artifact(name).abi, name
    # same compiler and settings: identical runtime code up to the metadata hash (source paths differ;
    # VaultSetup and MicroVaultFactory embed other contracts' creation code, metadata hash included)
    for name in ("VaultTimelock", "CustodyGuard", "TestERC20"):
        ape_code = bytes.fromhex(compiled[name]["runtimeBytecode"]["bytecode"][2:])
        assert _strip_metadata(ape_code) == _strip_metadata(load_artifact(name).deployed_bytecode), name
