"""docs/quickstart.md works when copied literally: its shell blocks run, in order, in one bash session."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.conftest import REPO

QUICKSTART = REPO / "docs" / "quickstart.md"
FENCE = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def shell_blocks(markdown: str) -> list[str]:
    return FENCE.findall(markdown)


def test_the_quickstart_runs_literally(tmp_path: Path) -> None:
    blocks = shell_blocks(QUICKSTART.read_text(encoding="utf-8"))
    script = "\n".join(blocks)
    for command in ("vault fund", "tx propose", "key import", "tx sign", "tx execute", "collateral deploy",
                    "reconcile", "audit export", "audit verify"):  # fmt: skip
        assert command in script, f"the quickstart lost its {command!r} step"
    home = tmp_path / "home"
    home.mkdir()
    # a newcomer's shell: their own HOME, no custody settings, the repository as the working directory
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CUSTODY_", "VIRTUAL_ENV"))}
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    workspace = home / "custody-quickstart"
    try:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-x", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=900,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-4000:]
    finally:
        subprocess.run([str(REPO / ".venv" / "bin" / "custody"), "--home", str(workspace / ".custody"), "chain", "down"],
                       env=env, capture_output=True, timeout=60)  # fmt: skip
    assert "Traceback" not in done.stderr
    # what the walkthrough promised happened
    assert "executed proposal 1" in done.stdout
    # §9: the operator script restarted the stopped chain through the public API and read the same vault
    assert "custody daily report" in done.stdout and "quickstart (" in done.stdout
    assert re.search(r"quickstart \(\w+\) 0x[0-9a-fA-F]{40}: 8\.5 ETH", done.stdout), done.stdout[-2000:]
    assert "reconciled" in done.stdout
    assert (workspace / "reconcile.html").is_file() and (workspace / "audit-bundle.tar.gz").is_file()
    entries = [json.loads(line) for line in (workspace / "ledger.jsonl").read_text().splitlines()]
    assert {"proposal_created", "execution"} <= {e["kind"] for e in entries}
    assert done.stdout.count("[bold green]") == 0  # rich markup never leaks as text
    assert (workspace / ".custody" / "chain-port").is_file()
