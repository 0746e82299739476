"""The compile pipeline: committed artifacts rebuild byte-identically; one flipped byte is caught."""

import json
import shutil

import pytest

from custody import _paths
from custody.contracts import build, load_artifact


@pytest.fixture(scope="module")
def rebuilt() -> build.BuildResult:
    return build.compile_all()


def test_committed_artifacts_rebuild_byte_identically(rebuilt):
    assert build.diff(rebuilt) == {}
    assert rebuilt.compiler_version.startswith("0.8.28+commit.7893614a")


def test_cli_check_passes_then_fails_after_one_byte_changes(run_cli, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(_paths.ARTIFACTS_DIR, copy)
    ok = run_cli("build", "--check", "--artifacts-dir", str(copy), "--json")
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["ok"] is True

    target = copy / "VaultTimelock.json"
    data = bytearray(target.read_bytes())
    offset = data.index(b'"bytecode": "0x') + 20
    data[offset] = ord("0") if data[offset] != ord("0") else ord("1")
    target.write_bytes(bytes(data))
    bad = run_cli("build", "--check", "--artifacts-dir", str(copy))
    assert bad.exit_code == 1
    assert f"VaultTimelock.json: differs from the rebuild at byte {offset}" in bad.stderr
    assert "Traceback" not in bad.output


def test_missing_and_extra_artifacts_are_reported(rebuilt, tmp_path):
    copy = tmp_path / "artifacts"
    shutil.copytree(_paths.ARTIFACTS_DIR, copy)
    (copy / "VaultSetup.json").unlink()
    (copy / "Stale.json").write_text("{}")
    problems = build.diff(rebuilt, copy)
    assert problems == {
        "Stale.json": "committed but no longer produced by the sources",
        "VaultSetup.json": "missing from the committed artifacts",
    }


def test_artifacts_carry_abi_bytecode_metadata_and_settings():
    data = json.loads((_paths.ARTIFACTS_DIR / "MicroVaultFactory.json").read_text())
    assert data["compiler"]["settings"] == build.SETTINGS
    assert json.loads(data["metadata"])["settings"]["optimizer"] == build.SETTINGS["optimizer"]
    # CBOR metadata trailer names the compiler: "solc" 0.8.28 (0x00081c)
    assert load_artifact("MicroVaultFactory").deployed_bytecode.endswith(bytes.fromhex("64736f6c634300081c0033"))
