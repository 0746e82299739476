"""`custody chain up|status|down` through the installed console script; vaults survive a restart."""

import json
import os
import subprocess
import sys
from pathlib import Path

from custody.chain.anvil import pid_is_anvil

CUSTODY = Path(sys.executable).parent / "custody"
POLICIES = Path(__file__).resolve().parent.parent / "policies"


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env["CUSTODY_HOME"] = str(home)
    return subprocess.run([str(CUSTODY), *args], env=env, capture_output=True, text=True, timeout=120)


def test_consecutive_calls_share_the_workspace_chain_across_restarts(tmp_path):
    home = tmp_path / "ws"
    assert run(home, "chain", "status").returncode == 3
    up = json.loads(run(home, "chain", "up", "--json").stdout)
    try:
        assert up["started"] and pid_is_anvil(up["pid"])
        assert json.loads(run(home, "chain", "up", "--json").stdout)["started"] is False
        created = run(home, "vault", "create", str(POLICIES / "hot.yaml"), "--json")
        assert created.returncode == 0, created.stderr
        safe = json.loads(created.stdout)["safe"]
        status = json.loads(run(home, "chain", "status", "--json").stdout)
        assert status["running"] and status["block"] > 0
    finally:
        down = json.loads(run(home, "chain", "down", "--json").stdout)
    assert down["stopped"] and not pid_is_anvil(up["pid"])
    # the next command auto-starts the chain from the saved state and sees the same vault
    shown = run(home, "vault", "show", "hot-ops", "--json")
    try:
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["safe"] == safe
        assert "started local chain" in shown.stderr
    finally:
        run(home, "chain", "down")
    assert run(home, "chain", "status").returncode == 3


def test_chain_up_restores_the_clock(tmp_path):
    """A saved chain that ran ahead of the wall clock (tests and drills fast-forward) comes back with its
    clock: new blocks are never older than the last saved one (the guard's rolling window relies on it)."""
    from custody.chain.anvil import rpc_call

    home = tmp_path / "ws"
    up = json.loads(run(home, "chain", "up", "--json").stdout)
    url = up["url"]
    try:
        latest = int(rpc_call(url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
        rpc_call(url, "evm_setNextBlockTimestamp", [latest + 30 * 86400])
        rpc_call(url, "evm_mine", [])
        ahead = int(rpc_call(url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    finally:
        run(home, "chain", "down")
    up = json.loads(run(home, "chain", "up", "--json").stdout)
    url = up["url"]
    try:
        assert int(rpc_call(url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16) == ahead
        rpc_call(url, "evm_mine", [])
        assert int(rpc_call(url, "eth_getBlockByNumber", ["latest", False])["timestamp"], 16) > ahead
    finally:
        run(home, "chain", "down")


def test_chain_up_keeps_one_port_per_workspace(tmp_path):
    """A saved --rpc stays valid: the port is chosen once and kept in the workspace."""
    home = tmp_path / "ws"
    first = json.loads(run(home, "chain", "up", "--json").stdout)
    try:
        assert (home / "chain-port").read_text().strip() == str(first["url"].rsplit(":", 1)[1])
    finally:
        run(home, "chain", "down")
    second = json.loads(run(home, "chain", "up", "--json").stdout)
    try:
        assert second["started"] and second["url"] == first["url"]
        listed = subprocess.run([str(CUSTODY), "--home", str(home), "--rpc", first["url"], "vault", "list", "--json"],
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert listed.returncode == 0, listed.stderr
    finally:
        run(home, "chain", "down")
