"""SIGKILL at five points of propose → sign → execute → record, ten runs each.

A flow runs in a separate process (tests/kill_driver.py forks one per run) talking to Anvil through the
loopback fault proxy. The proxy stalls the flow at a well-defined moment — the test checks that the
workspace and the chain are exactly at that point — and the process is killed with SIGKILL. The flow
is then resumed with the real CLI (``tx list`` / ``tx sign`` / ``tx execute``). After every run: the
intent was executed exactly once (Safe nonce +1, the recipient got exactly the amount: 0 double
executions), every intent is recorded as executed (0 lost intents), no nonce of the operator
account ever carried two different transactions (0 duplicate-nonce broadcasts at the proxy), and once
the signed execution was journaled, the transaction mined is exactly the journaled one. A transaction
signed again comes out byte-identical when the base fee has not moved, so between the kill and the
resume one block is mined at another base fee: a resume that re-signs instead of re-sending the
journaled bytes is caught at every point after the journal, whatever the fee history of the chain.

The five points:
  proposal_recorded    the proposal row exists, nobody has signed (stalled in the first signer's chain read)
  first_signature      one owner signature is stored (stalled in the second signer's chain read)
  raw_tx_journaled     the signed execTransaction is journaled, not broadcast (its broadcast is held, then dropped)
  broadcast_not_mined  the node has the transaction in its mempool, unmined (automine off; in half of the
                       runs the node then loses it, so the resume must re-send the same bytes)
  mined_not_recorded   mined with a receipt, but the workspace still says "executing" (the receipt is held)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal

import pytest
import sqlalchemy as sa

from custody.drills.faultproxy import FaultProxy
from custody.store import proposals
from custody.vault import proposals as vault_proposals
from tests.conftest import REPO
from tests.resilience_helpers import BROKER, OWNERS, resilient_vault

POINTS = ("proposal_recorded", "first_signature", "raw_tx_journaled", "broadcast_not_mined", "mined_not_recorded")
RUNS = 10


class Driver:
    """The forking flow driver (one process for the whole module)."""

    def __init__(self, log_path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
        self.log_path = log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.kill_driver"], cwd=REPO, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
        )  # fmt: skip

    def _ask(self, request: dict) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the kill driver died: {self.log_path.read_text()}"
        return json.loads(line)

    def run(self, **flow) -> int:
        return self._ask({"op": "run", **flow})["pid"]

    def wait(self, pid: int) -> dict:
        return self._ask({"op": "wait", "pid": pid})

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    d = Driver(tmp_path_factory.mktemp("kill-driver") / "driver.log")
    try:
        yield d
    finally:
        d.stop()


def _arm(proxy: FaultProxy, point: str, chain):
    if point == "proposal_recorded":
        return proxy.inject("hold", method="eth_blockNumber")  # the first signer's consistent chain read
    if point == "first_signature":
        return proxy.inject("hold", method="eth_blockNumber", skip=1)  # the second signer's
    if point == "raw_tx_journaled":
        return proxy.inject("hold", method="eth_sendRawTransaction")
    if point == "broadcast_not_mined":
        chain.rpc("evm_setAutomine", [False])
        return proxy.inject("hold", method="eth_getTransactionReceipt")
    return proxy.inject(
        "hold_response", method="eth_getTransactionReceipt", count=None, when=lambda r: r.get("result") is not None
    )


def _row(session, proposal_id: int) -> dict | None:
    with session.store.connect() as conn:
        row = conn.execute(sa.select(proposals).where(proposals.c.id == proposal_id)).mappings().first()
    return None if row is None else dict(row)


def _check_kill_point(point: str, session, proposal_id: int) -> None:
    """The workspace and the chain are exactly at ``point`` while the flow is stalled."""
    row = _row(session, proposal_id)
    assert row is not None, "the proposal row must exist at every kill point"
    proposal = vault_proposals.get_proposal(session, proposal_id)
    chain = session.chain
    if point in ("proposal_recorded", "first_signature"):
        assert row["state"] == "proposed" and row["exec_raw_tx"] is None
        assert len(proposal.signatures) == (0 if point == "proposal_recorded" else 1)
        return
    assert row["state"] == "executing" and row["exec_raw_tx"] and len(proposal.signatures) == 2
    known = chain.rpc("eth_getTransactionByHash", [row["exec_tx_hash"]])
    if point == "raw_tx_journaled":
        assert known is None, "the journaled transaction must not have reached the node yet"
    elif point == "broadcast_not_mined":
        assert known is not None and known["blockNumber"] is None, "the transaction must be pending, unmined"
    else:
        receipt = chain.rpc("eth_getTransactionReceipt", [row["exec_tx_hash"]])
        assert receipt is not None and int(receipt["status"], 16) == 1


def _the_base_fee_moves(chain) -> None:
    """While the flow is down the network moves on: the next block has another base fee (+50 %), so that
    a transaction signed again differs from the journaled one whatever the fee history (at the EIP-1559
    floor, or with no block in between, it would come out byte-identical)."""
    base = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])
    chain.rpc("anvil_setNextBlockBaseFeePerGas", [hex(base + base // 2 + 1)])


def _resume_with_cli(run_cli, env: dict) -> None:
    """What an operator does after a crash: finish every open proposal with the CLI."""
    listing = run_cli("tx", "list", "--json", env=env)
    assert listing.exit_code == 0, listing.output
    for item in json.loads(listing.stdout):
        if item["state"] == "proposed":
            for index in OWNERS[:2]:
                signed = run_cli("tx", "sign", str(item["id"]), "--signer", f"anvil:{index}", "--json", env=env)
                assert signed.exit_code == 0, signed.output
        if item["state"] in ("proposed", "executing"):
            done = run_cli("tx", "execute", str(item["id"]), "--json", env=env)
            assert done.exit_code == 0, done.output + done.stderr


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_resume_executes_every_intent_exactly_once(point, session, anvil, driver, run_cli):
    vault = resilient_vault(session)
    chain = session.chain
    start_nonce = vault_proposals.safe_nonce(session, vault.safe)
    start_balance = chain.w3.eth.get_balance(BROKER)
    expected = 0
    try:
        with FaultProxy(anvil.url) as proxy:
            env = {"CUSTODY_RPC": proxy.url}
            for run in range(RUNS):
                amount = Decimal("0.01") * (run + 1)
                fault = _arm(proxy, point, chain)
                pid = driver.run(home=str(session.workspace.home), rpc=proxy.url, vault=vault.name, to=BROKER,
                                 amount=str(amount), signers=list(OWNERS[:2]))  # fmt: skip
                assert fault.wait_held(20), f"run {run}: the flow never reached {point}: {driver.log_path.read_text()}"
                _check_kill_point(point, session, run + 1)
                journaled = _row(session, run + 1)["exec_tx_hash"]  # None before the execution is signed
                os.kill(pid, signal.SIGKILL)
                assert driver.wait(pid) == {"signal": signal.SIGKILL, "code": None}
                fault.release(forward=False)
                proxy.clear()
                _the_base_fee_moves(chain)
                if point == "broadcast_not_mined":
                    if run % 2 == 0:  # the node loses the pending transaction: the resume must re-send it
                        chain.rpc("anvil_dropTransaction", [_row(session, run + 1)["exec_tx_hash"]])
                    chain.rpc("evm_setAutomine", [True])
                chain.mine()
                _resume_with_cli(run_cli, env)
                expected += int(amount * 10**18)
                assert vault_proposals.safe_nonce(session, vault.safe) == start_nonce + run + 1, (
                    f"run {run}: not exactly once"
                )
                assert chain.w3.eth.get_balance(BROKER) - start_balance == expected, f"run {run}: paid wrongly"
                if journaled is not None:
                    mined = vault_proposals.get_proposal(session, run + 1).exec_tx_hash
                    assert mined == journaled, f"run {run}: resumed with {mined}, not the journaled {journaled}"
            assert proxy.duplicate_nonces() == []
            assert proxy.calls["eth_sendRawTransaction"] >= RUNS
    finally:
        chain.rpc("evm_setAutomine", [True])
    recorded = vault_proposals.list_proposals(session, vault)
    assert len(recorded) == RUNS, "no intent lost, none duplicated"
    assert all(p.state is vault_proposals.ProposalState.EXECUTED for p in recorded)
    assert sorted(p.safe_tx.value for p in recorded) == [int(Decimal("0.01") * (i + 1) * 10**18) for i in range(RUNS)]
    for p in recorded:
        receipt = chain.w3.eth.get_transaction_receipt(p.exec_tx_hash)
        assert receipt["status"] == 1 and receipt["blockNumber"] == p.exec_block
