"""Static analysis: slither (forge route, same solc) finds no unexplained High/Medium issue in contracts/."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from custody import _paths
from tests.conftest import REPO

SLITHER = Path(sys.executable).parent / "slither"
TRIAGE = REPO / "contracts" / "slither-triage.yaml"


def _key(result: dict) -> tuple[str, str]:
    element = result["elements"][0]
    fields = element.get("type_specific_fields", {})
    parent = fields.get("parent", {}).get("name", "")
    name = fields.get("signature", element.get("name", ""))
    return result["check"], f"{parent}.{name}" if parent else name


def test_no_unexplained_high_or_medium_findings(tmp_path):
    report = tmp_path / "slither.json"
    env = {**os.environ, "PATH": f"{_paths.foundry_binary('forge').parent}:{os.environ['PATH']}"}
    done = subprocess.run(
        [str(SLITHER), ".", "--foundry-compile-all", "--exclude-dependencies", "--filter-paths", "contracts/test/", "--json", str(report)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert report.exists(), done.stderr[-2000:]
    data = json.loads(report.read_text())
    assert data["success"], data.get("error")
    findings = [r for r in data["results"].get("detectors", []) if r["impact"] in ("High", "Medium")]
    triage = {(t["check"], t["function"]) for t in yaml.safe_load(TRIAGE.read_text())}
    unexplained = [
        f"{r['impact']} {r['check']}: {r['description'].splitlines()[0]}" for r in findings if _key(r) not in triage
    ]
    assert not unexplained, "unexplained slither findings:\n" + "\n".join(unexplained)
    stale = triage - {_key(r) for r in findings}
    assert not stale, f"triage entries that match no finding any more: {sorted(stale)}"
    analysed = {
        Path(c["source_mapping"]["filename_relative"]).name
        for r in data["results"].get("detectors", [])
        for c in r["elements"]
        if "source_mapping" in c
    }
    # the guard's rule bases, the timelock, the exit module and the fallback handler were really analysed
    core = {"GuardPolicy.sol", "GuardSpendWindow.sol", "GuardTimelockRules.sol", "VaultTimelock.sol", "ExitModule.sol"}
    assert core <= analysed, f"slither reported nothing on {sorted(core - analysed)}"
