"""The installed console script: usage errors are one sentence (one JSON object with --json), and Ctrl-C while
the CLI loads or runs is a sentence with exit code 130 — never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CUSTODY = Path(sys.executable).parent / "custody"

# Delivers Ctrl-C exactly while the CLI is importing web3 (a sitecustomize on PYTHONPATH installs the hook), so
# the test does not depend on when a signal happens to arrive.
INTERRUPT_ON_IMPORT = """
import os, signal, sys
class _Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["INTERRUPT_ON_IMPORT"]:
            sys.meta_path.remove(self)
            signal.raise_signal(signal.SIGINT)
        return None
sys.meta_path.insert(0, _Interrupt())
"""


def run(*args: str, env: dict[str, str] | None = None, home: Path) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    base["CUSTODY_HOME"] = str(home)
    return subprocess.run([str(CUSTODY), *args], env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message", "command"),
    [
        (("tx", "propose", "--json"), "Missing argument 'VAULT'.", "custody tx propose"),
        (("tx", "propose", "hot-ops", "--to", "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", "--amount", "1", "--json"),
         "Missing option '--proposer'.", "custody tx propose"),
        (("vault", "list", "--json", "--colour"), "No such option: --colour", "custody vault list"),
        (("nonsense", "--json"), "No such command 'nonsense'.", "custody"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_json_object_with_json(tmp_path, args, message, command):
    result = run(*args, home=tmp_path)
    assert result.returncode == 2
    error = json.loads(result.stdout)
    assert error == {"error": "UsageError", "message": message, "command": command, "exit_code": 2}
    assert "Traceback" not in result.stderr


def test_usage_errors_without_json_are_click_sentences(tmp_path):
    result = run("tx", "propose", home=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().endswith("Error: Missing argument 'VAULT'.")


def test_ctrl_c_while_starting_is_a_sentence(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(INTERRUPT_ON_IMPORT)
    env = {"PYTHONPATH": str(hook), "INTERRUPT_ON_IMPORT": "web3"}
    result = run("vault", "list", env=env, home=tmp_path / "ws")
    assert result.returncode == 130, result.stderr
    assert result.stderr == "error: interrupted while starting; nothing was done\n"
    assert not (tmp_path / "ws").exists()  # nothing was done, not even the workspace folder
