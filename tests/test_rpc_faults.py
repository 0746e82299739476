"""RPC faults on the wire, against the real Anvil: the loopback fault proxy refuses, times out, answers
with JSON-RPC errors or drops the connection while a transfer (propose → sign → execute), an exit
initiation or finalization, or a timelock completion is under way.

What must hold, whatever the fault: every wait is bounded; a single fault in any call of a transfer
is absorbed (only idempotent calls are retried, and every call of the flow is one); a lasting outage
ends in a clear ``RpcUnreachable`` (or ``ReceiptTimeout`` when only the receipt is missing) with the
signed transaction journaled; the same operation resumed afterwards with the CLI finishes with the
journaled bytes — the intent happens exactly once (nonce +1, paid once) and the node never sees two
different transactions with one nonce (``proxy.duplicate_nonces() == []``).

SIGKILL at fixed points of a transfer is tests/test_kill_resume.py; the rpc-outage drill replays a
few of these faults in a playbook (tests/test_drills.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from custody.chain.connection import connect
from custody.chain.rpc import RpcPolicy
from custody.drills.faultproxy import FaultProxy
from custody.exceptions import ChainError, ReceiptTimeout, RpcUnreachable, TimelockNotReady
from custody.policy import change
from custody.session import Session
from custody.signers.local import anvil_address, anvil_signer
from custody.vault import exit as vault_exit
from custody.vault import journal, proposals, resilience, service
from tests.resilience_helpers import BROKER, CUSTODIAN, ETH, OWNERS, advance, execute_with, resilient_vault, sign_exit

# Short, strict client policy: 0.75 s per request, 2 retries, 2.5 s for a receipt.
POLICY = RpcPolicy(timeout=0.75, retries=2, backoff=0.05, receipt_timeout=2.5)
HANG = POLICY.timeout + 0.5  # a `timeout` fault holds the request this long, past the client's timeout
SLACK = 2.5  # scheduling slack on a shared 2-core machine
OPERATOR = anvil_address(0)


@dataclass
class Faulty:
    """A session whose every RPC call goes through the fault proxy (same workspace as ``direct``)."""

    proxy: FaultProxy
    session: Session
    direct: Session  # straight to Anvil: setup and checks, never faulted

    def cli_env(self) -> dict[str, str]:
        return {"CUSTODY_RPC": self.proxy.url}


@pytest.fixture
def faulty(session, anvil) -> Iterator[Faulty]:
    with FaultProxy(anvil.url) as proxy:
        chain = connect(proxy.url, expected_chain_id=anvil.chain_id, policy=POLICY)
        proxied = Session(workspace=session.workspace, chain=chain)
        proxied.infrastructure()
        yield Faulty(proxy, proxied, session)


def _transfer(session: Session, vault, amount: str = "0.01"):
    proposal = proposals.propose_transfer(session, vault.id, to=BROKER, amount=amount)
    for index in OWNERS[:2]:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(index))
    return proposal, proposals.execute(session, proposals.get_proposal(session, proposal.id))


def _timed(fn, *args):
    started = time.monotonic()
    try:
        return fn(*args), time.monotonic() - started
    except Exception as exc:  # the caller asserts on the error and the elapsed time
        return exc, time.monotonic() - started


def _single_hash_broadcasts(proxy: FaultProxy) -> set[str]:
    assert proxy.duplicate_nonces() == [], proxy.duplicate_nonces()
    return {b.tx_hash for b in proxy.broadcasts}


# -- the policy itself ----------------------------------------------------------------------------------
def test_only_idempotent_calls_are_retried_and_every_wait_is_bounded(faulty):
    proxy, chain = faulty.proxy, faulty.session.chain
    # two transient errors on a read: retried, answered
    proxy.inject("error", method="eth_blockNumber", count=2)
    assert chain.w3.eth.block_number == faulty.direct.chain.w3.eth.block_number
    assert proxy.calls["eth_blockNumber"] == 3
    # a read that keeps failing: RpcUnreachable after 1 + retries attempts, within the policy's worst case
    for mode, why in (("error", "keeps failing: internal error"), ("refuse", "is unreachable"),
                      ("timeout", "is unreachable: timed out")):  # fmt: skip
        proxy.clear()
        proxy.inject(mode, method="eth_getBalance", count=None, hang=HANG)
        calls = proxy.calls["eth_getBalance"]
        error, elapsed = _timed(chain.w3.eth.get_balance, BROKER)
        assert isinstance(error, RpcUnreachable), error
        assert why in error.message and proxy.url in error.message and error.details["attempts"] == 3
        assert proxy.calls["eth_getBalance"] - calls == 3 and elapsed <= POLICY.worst_case + SLACK
    proxy.clear()
    # a revert is an answer, not a transient fault: never retried
    proxy.inject("error", method="eth_call", count=None, error_code=3, error_message="execution reverted")
    calls = proxy.calls["eth_call"]
    assert "error" in chain.w3.provider.make_request("eth_call", [{"to": BROKER, "data": "0x"}, "latest"])
    assert proxy.calls["eth_call"] - calls == 1
    proxy.clear()
    # a non-idempotent call (mining) is sent exactly once, whatever happens to it
    block = faulty.direct.chain.w3.eth.block_number
    for mode, kind in (("refuse", RpcUnreachable), ("error", ChainError), ("drop", RpcUnreachable)):
        proxy.inject(mode, method="anvil_mine")
        calls = proxy.calls["anvil_mine"]
        with pytest.raises(kind):
            chain.mine()
        assert proxy.calls["anvil_mine"] - calls == 1, f"{mode}: anvil_mine must not be retried"
    # refused and error never reached the node; the dropped one did (its answer was lost)
    assert faulty.direct.chain.w3.eth.block_number == block + 1


# -- transfers: one fault anywhere ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["refuse", "error", "drop", "timeout"])
def test_one_fault_at_any_call_of_a_transfer_is_absorbed_exactly_once(faulty, mode):
    """Fault the k-th JSON-RPC request of propose → sign → sign → execute, for every k (every 4th for
    timeouts, each costing a client timeout): the transfer completes, paid once, Safe nonce +1."""
    proxy, direct = faulty.proxy, faulty.direct
    vault = resilient_vault(direct)
    _transfer(faulty.session, vault)  # warms the session's contract caches
    requests = len(proxy.history)
    _transfer(faulty.session, vault)  # a clean run: how many requests a transfer makes (some are batches)
    per_flow = len(proxy.history) - requests
    assert per_flow >= 25
    positions = range(0, per_flow, 4 if mode == "timeout" else 1)
    start_nonce = proposals.safe_nonce(direct, vault.safe)
    start_balance = direct.chain.w3.eth.get_balance(BROKER)
    fired = 0
    for i, k in enumerate(positions):
        fault = proxy.inject(mode, skip=k, hang=HANG)
        started, before = time.monotonic(), len(proxy.history)
        _proposal, receipt = _transfer(faulty.session, vault)
        made = len(proxy.history) - before
        # the receipt wait may poll once more or less from run to run: a flow can end before request k
        assert fault.injected == 1 or made <= k, f"call {k}: the fault never fired in a flow of {made} requests"
        fired += fault.injected
        assert time.monotonic() - started <= POLICY.worst_case + SLACK, f"call {k}: unbounded"
        assert receipt.status == 1 and proposals.safe_nonce(direct, vault.safe) == start_nonce + i + 1, f"call {k}"
        assert direct.chain.w3.eth.get_balance(BROKER) - start_balance == (i + 1) * ETH // 100, f"call {k}"
        proxy.clear()
    assert fired >= len(positions) - 2  # only the last positions can fall after a shorter flow's end
    assert proxy.duplicate_nonces() == []
    executed = [p for p in proposals.list_proposals(direct, vault) if p.state is proposals.ProposalState.EXECUTED]
    assert len(executed) == len(positions) + 2  # and the two clean runs


# -- transfers: a lasting outage, then resume with the CLI -------------------------------------------------
OUTAGES = [
    # (mode, method, error, reaches the node)
    ("refuse", "eth_sendRawTransaction", RpcUnreachable, False),
    ("timeout", "eth_sendRawTransaction", RpcUnreachable, False),
    ("error", "eth_sendRawTransaction", RpcUnreachable, False),
    ("drop", "eth_sendRawTransaction", RpcUnreachable, True),
    ("refuse", "eth_getTransactionReceipt", ReceiptTimeout, True),
    ("timeout", "eth_getTransactionReceipt", ReceiptTimeout, True),
    ("drop", "eth_getTransactionReceipt", ReceiptTimeout, True),
]


@pytest.mark.parametrize(("mode", "method", "error", "reached"), OUTAGES, ids=[f"{o[0]}-{o[1]}" for o in OUTAGES])
def test_outage_during_execution_fails_clearly_and_resumes_once(faulty, run_cli, mode, method, error, reached):
    proxy, direct = faulty.proxy, faulty.direct
    vault = resilient_vault(direct)
    start_nonce = proposals.safe_nonce(direct, vault.safe)
    start_balance = direct.chain.w3.eth.get_balance(BROKER)
    proposal = proposals.propose_transfer(faulty.session, vault.id, to=BROKER, amount="1.5")
    for index in OWNERS[:2]:
        proposals.sign(faulty.session, proposals.get_proposal(faulty.session, proposal.id), anvil_signer(index))
    proxy.inject(mode, method=method, count=None, hang=HANG)
    failure, elapsed = _timed(proposals.execute, faulty.session, proposals.get_proposal(faulty.session, proposal.id))
    assert isinstance(failure, error), failure
    bound = POLICY.worst_case if error is RpcUnreachable else POLICY.receipt_timeout + POLICY.worst_case
    assert elapsed <= bound + SLACK, f"waited {elapsed:.1f}s"
    assert proxy.url in failure.message or "was not mined within" in failure.message
    # the signed execution is journaled; on chain it happened iff the broadcast reached the node
    journaled = proposals.get_proposal(direct, proposal.id)
    assert journaled.state is proposals.ProposalState.EXECUTING and journaled.exec_tx_hash
    assert proposals.safe_nonce(direct, vault.safe) == start_nonce + (1 if reached else 0)
    # the RPC recovers; the operator resumes with the CLI: the same transaction, once
    proxy.clear()
    broadcasts = len(proxy.broadcasts)
    resumed = run_cli("tx", "execute", str(proposal.id), "--json", env=faulty.cli_env())
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    assert json.loads(resumed.stdout)["tx_hash"] == journaled.exec_tx_hash
    assert len(proxy.broadcasts) - broadcasts == (0 if reached else 1)  # mined already: nothing re-sent
    assert _single_hash_broadcasts(proxy) == {journaled.exec_tx_hash}
    assert proposals.get_proposal(direct, proposal.id).state is proposals.ProposalState.EXECUTED
    assert proposals.safe_nonce(direct, vault.safe) == start_nonce + 1
    assert direct.chain.w3.eth.get_balance(BROKER) - start_balance == 3 * ETH // 2
    broadcasts = len(proxy.broadcasts)
    again = run_cli("tx", "execute", str(proposal.id), env=faulty.cli_env())  # a repeat (docs/error-codes.md)
    assert again.exit_code == 0 and f"was executed already in {journaled.exec_tx_hash}" in again.stdout
    assert len(proxy.broadcasts) == broadcasts  # nothing sent


def test_refused_connection_before_anything_is_signed_leaves_nothing_to_resume(faulty):
    """The node is unreachable from the start: the first read fails fast, nothing is journaled."""
    proxy, direct = faulty.proxy, faulty.direct
    vault = resilient_vault(direct)
    proposal = proposals.propose_transfer(direct, vault.id, to=BROKER, amount="1")
    for index in OWNERS[:2]:
        proposals.sign(direct, proposals.get_proposal(direct, proposal.id), anvil_signer(index))
    proxy.inject("refuse", count=None)
    failure, elapsed = _timed(proposals.execute, faulty.session, proposals.get_proposal(faulty.session, proposal.id))
    assert isinstance(failure, RpcUnreachable) and "connection" in failure.message, failure
    assert elapsed <= POLICY.worst_case + SLACK and proxy.broadcasts == []
    current = proposals.get_proposal(direct, proposal.id)
    assert current.state is proposals.ProposalState.PROPOSED and current.exec_tx_hash is None
    proxy.clear()
    proposals.execute(faulty.session, current)
    assert proposals.safe_nonce(direct, vault.safe) == 1 and len(_single_hash_broadcasts(proxy)) == 1


# -- exit initiation and finalization ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["refuse", "error", "drop", "timeout"])
def test_exit_initiation_outage_resumes_with_the_journaled_transaction(faulty, run_cli, mode):
    proxy, direct = faulty.proxy, faulty.direct
    vault = resilient_vault(direct)
    request = sign_exit(direct, vault, CUSTODIAN)
    module_nonce = vault_exit.status(direct, vault.id).nonce
    operator_nonce = direct.chain.w3.eth.get_transaction_count(OPERATOR)
    proxy.inject(mode, method="eth_sendRawTransaction", count=None, hang=HANG)
    failure, elapsed = _timed(vault_exit.initiate, faulty.session, request)
    assert isinstance(failure, RpcUnreachable), failure
    assert "eth_sendRawTransaction" in str(failure.details.get("method")) and elapsed <= POLICY.worst_case + SLACK
    entry = journal.latest(direct, f"exit-initiate:{request.digest}")
    assert entry is not None and entry.state is journal.JournalState.SIGNED and entry.sender == OPERATOR
    reached = mode == "drop"
    assert vault_exit.status(direct, vault.id).pending is reached
    assert vault_exit.get_request(direct, request.id).state is vault_exit.ExitState.COLLECTING
    proxy.clear()
    resumed = run_cli("exit", "initiate", vault.name, "--custodian", CUSTODIAN, "--json", env=faulty.cli_env())
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    data = json.loads(resumed.stdout)
    assert data["tx_hash"] == entry.tx_hash and data["request"] == request.id and data["custodian"] == CUSTODIAN
    assert _single_hash_broadcasts(proxy) == {entry.tx_hash}
    assert journal.latest(direct, f"exit-initiate:{request.digest}").state is journal.JournalState.MINED
    assert vault_exit.get_request(direct, request.id).state is vault_exit.ExitState.INITIATED
    status = vault_exit.status(direct, vault.id)
    assert status.pending and status.nonce == module_nonce + 1, "initiated exactly once"
    assert direct.chain.w3.eth.get_transaction_count(OPERATOR) == operator_nonce + 1


@pytest.mark.parametrize("mode", ["refuse", "timeout", "drop"])
def test_exit_finalization_receipt_outage_then_resume_pays_the_custodian_once(faulty, run_cli, mode):
    proxy, direct = faulty.proxy, faulty.direct
    vault = resilient_vault(direct)
    vault_exit.initiate(direct, sign_exit(direct, vault, CUSTODIAN))
    advance(direct, vault_exit.status(direct, vault.id).escrow_delay + 1)
    held = direct.chain.w3.eth.get_balance(vault.safe)
    before = direct.chain.w3.eth.get_balance(CUSTODIAN)
    proxy.inject(mode, method="eth_getTransactionReceipt", count=None, hang=HANG)
    failure, elapsed = _timed(vault_exit.finalize, faulty.session, vault.id)
    assert isinstance(failure, ReceiptTimeout) and "was not mined within" in failure.message, failure
    assert elapsed <= POLICY.receipt_timeout + POLICY.worst_case + SLACK
    assert direct.chain.w3.eth.get_balance(CUSTODIAN) - before == held  # it was mined; the client never heard
    proxy.clear()
    resumed = run_cli("exit", "finalize", vault.name, "--json", env=faulty.cli_env())
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    (tx_hash,) = _single_hash_broadcasts(proxy)
    assert json.loads(resumed.stdout)["tx_hash"] == tx_hash and len(proxy.broadcasts) == 1
    assert (
        direct.chain.w3.eth.get_balance(CUSTODIAN) - before == held and not vault_exit.status(direct, vault.id).pending
    )
    again = run_cli("exit", "finalize", vault.name, env=faulty.cli_env())
    assert again.exit_code != 0 and "no pending exit" in again.stderr


# -- timelock completion --------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "method"), [("refuse", "eth_sendRawTransaction"), ("drop", "eth_sendRawTransaction"),
                                              ("error", "eth_getTransactionReceipt")])  # fmt: skip
def test_timelock_completion_outage_resumes_once(faulty, run_cli, tmp_path, mode, method):
    proxy, direct = faulty.proxy, faulty.direct
    vault = resilient_vault(direct)
    proposal, op = resilience.change_threshold(direct, vault.id, 3, tmp_path)
    execute_with(direct, proposal)  # scheduled
    advance(direct, op.delay + 1)
    operator_nonce = direct.chain.w3.eth.get_transaction_count(OPERATOR)
    proxy.inject(mode, method=method, count=None, hang=HANG)
    failure, elapsed = _timed(change.execute, faulty.session, proposal.id)
    expected = ReceiptTimeout if method == "eth_getTransactionReceipt" else RpcUnreachable
    assert isinstance(failure, expected), failure
    assert elapsed <= POLICY.receipt_timeout + POLICY.worst_case + SLACK
    entry = journal.latest(direct, f"timelock-execute:{op.op_id}")
    assert entry is not None and entry.state is journal.JournalState.SIGNED
    proxy.clear()
    resumed = run_cli("tx", "execute", str(proposal.id), "--json", env=faulty.cli_env())
    assert resumed.exit_code == 0, resumed.output + resumed.stderr
    assert _single_hash_broadcasts(proxy) == {entry.tx_hash}
    assert service.read_state(direct, service.get_vault(direct, vault.id)).threshold == 3
    assert direct.chain.w3.eth.get_transaction_count(OPERATOR) == operator_nonce + 1, "completed exactly once"
    with pytest.raises(TimelockNotReady, match="executed already"):
        change.execute(direct, proposal.id)
