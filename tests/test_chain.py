"""The local chain: start/stop without orphans, attach, errors for unreachable / wrong chains."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from custody.chain.anvil import AnvilProcess, pid_is_anvil, rpc_call
from custody.chain.connection import connect, next_base_fee
from custody.exceptions import AnvilError, ChainIdMismatch, ChainNotRunning, RpcUnreachable
from custody.workspace import Workspace
from tests.conftest import revert_test_chain


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_is_anvil(pid):
            return True
        time.sleep(0.05)
    return False


def test_start_answers_and_stop_leaves_no_process():
    with AnvilProcess() as anvil:
        pid = anvil.pid
        assert int(rpc_call(anvil.url, "eth_chainId"), 16) == 31337
        assert pid_is_anvil(pid)
    assert _wait_gone(pid)


def test_fixed_port_clash_is_a_clear_error():
    with AnvilProcess() as first:
        clash = AnvilProcess(port=first.port)
        with pytest.raises(AnvilError, match=f"port {first.port} on 127.0.0.1 is already in use"):
            clash.start(timeout=5)
        assert clash.process is None


def test_anvil_dies_with_its_parent_even_on_sigkill(tmp_path):
    pid_file = tmp_path / "pid"
    script = textwrap.dedent(
        f"""
        import time
        from custody.chain.anvil import AnvilProcess
        a = AnvilProcess().start()
        open({str(pid_file)!r}, "w").write(str(a.pid))
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "child never started anvil"
        time.sleep(0.05)
    anvil_pid = int(pid_file.read_text())
    assert pid_is_anvil(anvil_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_gone(anvil_pid), "anvil survived its parent"


def test_connect_unreachable_is_one_sentence():
    with pytest.raises(RpcUnreachable, match=r"RPC http://127.0.0.1:9 is unreachable: connection refused"):
        connect("http://127.0.0.1:9", timeout=2)


def test_connect_rejects_non_http_url():
    with pytest.raises(RpcUnreachable, match="must start with http"):
        connect("ws://127.0.0.1:8545")


def test_chain_id_mismatch(anvil):
    with pytest.raises(ChainIdMismatch, match="serves chain id 31337, expected 1"):
        connect(anvil.url, expected_chain_id=1)


def test_a_reverted_test_leaves_no_trace_in_the_node(chain):
    """After a test's revert the next block is priced from the restored head, as on a chain that never saw
    the reverted blocks (Anvil's evm_revert alone keeps the base fee of the reverted history), nothing the
    test sent is still pending, and automine is on again."""
    head = chain.w3.eth.get_block("latest")
    expected = next_base_fee(head["baseFeePerGas"], head["gasUsed"], head["gasLimit"])
    snapshot = chain.snapshot()
    chain.mine(40)  # empty blocks: the base fee falls by 1/8 each
    assert chain.w3.eth.get_block("latest")["baseFeePerGas"] < expected // 100
    chain.rpc("evm_setAutomine", [False])
    chain.w3.eth.send_transaction({"from": chain.w3.eth.accounts[0], "to": chain.w3.eth.accounts[1], "value": 1})
    revert_test_chain(chain, snapshot)
    assert chain.rpc("anvil_getAutomine") is True and chain.rpc("txpool_content")["pending"] == {}
    chain.mine()
    assert chain.w3.eth.get_block("latest")["baseFeePerGas"] == expected


def test_workspace_chain_up_down_keeps_state(tmp_path):
    ws = Workspace(tmp_path / "ws")
    record, started = ws.chain_up()
    try:
        assert started
        again, started_again = ws.chain_up()
        assert again == record and not started_again
        chain, _ = ws.connect(autostart=False)
        sent = chain.w3.eth.send_transaction(
            {"from": chain.w3.eth.accounts[0], "to": "0x000000000000000000000000000000000000dEaD", "value": 1234}
        )
        # Anvil's automine answers eth_sendTransaction before the block exists; on a busy machine a read
        # can overtake it, so wait for the receipt.
        chain.w3.eth.wait_for_transaction_receipt(sent, timeout=10, poll_latency=0.005)
        assert chain.w3.eth.get_balance("0x000000000000000000000000000000000000dEaD") == 1234
    finally:
        stopped = ws.chain_down()
    assert stopped is not None and _wait_gone(record.pid)
    assert ws.chain_record() is None
    with pytest.raises(ChainNotRunning, match="no local chain is running"):
        ws.connect(autostart=False)
    record2, _ = ws.chain_up()
    try:
        chain, _ = ws.connect(autostart=False)
        assert chain.w3.eth.get_balance("0x000000000000000000000000000000000000dEaD") == 1234
    finally:
        ws.chain_down()
    assert _wait_gone(record2.pid)


def test_stale_chain_record_is_dropped(tmp_path):
    ws = Workspace(tmp_path / "ws").ensure()
    ws.chain_file.write_text(
        '{"pid": 999999, "port": 9, "chain_id": 31337, "state_file": "x", "log_file": "y", "started_at": 0}'
    )
    assert ws.chain_record() is None
    assert not ws.chain_file.exists()


def test_missing_anvil_binary_is_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("CUSTODY_ANVIL", str(tmp_path / "nope"))
    monkeypatch.setattr("custody._paths.NODE_MODULES", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AnvilError, match="anvil binary was not found"):
        AnvilProcess()


def test_sigint_to_pilot_leaves_no_anvil(tmp_path):
    """Ctrl-C in the middle of `custody pilot` stops its chain."""
    env = {**os.environ, "CUSTODY_HOME": str(tmp_path / "home")}
    before = _anvil_pids()
    proc = subprocess.Popen(
        [sys.executable, "-m", "custody", "pilot"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 30
    new = set()
    while not new and time.monotonic() < deadline:
        new = {pid for pid in _anvil_pids() - before if _descends_from(pid, proc.pid)}  # not other sessions' anvils
        time.sleep(0.02)
    assert new, "pilot never started anvil"
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    for pid in new:
        assert _wait_gone(pid), f"anvil {pid} left running after Ctrl-C"


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def _anvil_pids() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit() and pid_is_anvil(int(p))}
