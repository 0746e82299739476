"""Static checks of the library run as part of the test command (issue 13).

* mypy with the `[tool.mypy]` configuration of pyproject.toml (strict, `files = ["custody"]`, cache in .mypy_cache);
* `ruff check custody` and `ruff format --check custody`.

Each test fails with the tool's own output, so the failing file and line are in the pytest report. No chain is
needed: these run in the fast tier.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)


def test_mypy_strict_passes_on_custody() -> None:
    result = _run(sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"))
    assert result.returncode == 0, f"mypy failed:\n{result.stdout}{result.stderr}"


def test_ruff_check_passes_on_custody() -> None:
    result = _run(str(BIN / "ruff"), "check", "custody")
    assert result.returncode == 0, f"ruff check failed:\n{result.stdout}{result.stderr}"


def test_ruff_format_check_passes_on_custody() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", "custody")
    assert result.returncode == 0, f"ruff format --check failed:\n{result.stdout}{result.stderr}"
