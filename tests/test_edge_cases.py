"""Edges an operator meets (issue 17): a short or 0x-less safeTxHash prefix is named as such; the offline-signing
commands take --json; of two racing executions exactly one sends and the other is told the proposal was executed
(by which transaction), as is a run that finds it executed outside the workspace; repeating sign or execute exits 0
and sends nothing; after a discard no message points at a proposal that does not exist."""

from __future__ import annotations

import json

import pytest

from custody.exceptions import AlreadyExecuted
from custody.safe.signatures import pack_signatures
from custody.session import Session
from custody.signers.local import anvil_signer
from custody.vault import proposals, service
from tests.conftest import POLICIES

SETTLEMENT = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def _proposal(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=record.safe, value=10**19, what="fund")
    return proposals.propose_transfer(
        session, record.id, to=SETTLEMENT, amount="1", proposer="anvil:3 (0x90F79bf6EB2c4f870365E785982E1f101E93b906)"
    )


def test_short_safe_tx_hash_prefix_is_named(session, run_cli):
    proposal = _proposal(session)
    short = run_cli("tx", "show", proposal.safe_tx_hash[:6])
    assert short.exit_code == 1
    assert (
        f"error: safeTxHash prefix {proposal.safe_tx_hash[:6]} is too short: give at least 8 hex digits after 0x"
        in (short.stderr)
    )
    assert run_cli("tx", "show", proposal.safe_tx_hash[:10]).exit_code == 0
    assert "is neither a proposal id nor a safeTxHash" in run_cli("tx", "show", "0xzz").stderr
    bare = run_cli("tx", "show", proposal.safe_tx_hash[2:12])
    assert bare.exit_code == 1
    assert bare.stderr.splitlines() == [
        f"error: '{proposal.safe_tx_hash[2:12]}' is not a proposal id (those are decimal) and a safeTxHash prefix "
        f"starts with 0x: write {proposal.safe_tx_hash[:12]}"
    ]
    assert run_cli("tx", "show", "0x").stderr.startswith("error: safeTxHash prefix 0x is too short")


def test_offline_commands_take_json(session, run_cli, tmp_path):
    proposal = _proposal(session)
    exported = run_cli("tx", "export", str(proposal.id), "--out", str(tmp_path / "tx.json"), "--json")
    assert exported.exit_code == 0, exported.stderr
    assert json.loads(exported.stdout) == {"path": str(tmp_path / "tx.json"), "safe_tx_hash": proposal.safe_tx_hash}
    signed = run_cli(
        "tx", "sign-offline", str(tmp_path / "tx.json"), "--signer", "anvil:1", "--out", str(tmp_path / "sig.json"),
        "--json",
    )  # fmt: skip
    assert signed.exit_code == 0, signed.stderr
    assert json.loads(signed.stdout)["safe_tx_hash"] == proposal.safe_tx_hash


def test_the_loser_of_an_execute_race_is_told_its_own_proposal_won(session):
    proposal = _proposal(session)
    proposals.sign(session, proposal, anvil_signer(1))
    seen_by_loser = proposals.get_proposal(session, proposal.id)  # read before the winner executes
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    executed = proposals.get_proposal(session, proposal.id)
    with pytest.raises(AlreadyExecuted) as lost:
        proposals.execute(session, seen_by_loser)
    assert lost.value.message == (
        f"proposal {proposal.id} was executed meanwhile by another process in {executed.exec_tx_hash} "
        f"(block {executed.exec_block}); nothing was sent"
    )


class _SignsAfter:
    """The loser's gas payer: before it signs, the winner runs a whole execution (the loser has passed every
    check by then, and its gas estimate succeeded)."""

    def __init__(self, inner, before):
        self.inner, self.before, self.uri, self.address = inner, before, inner.uri, inner.address

    def sign_transaction(self, tx, *, chain_id):
        self.before()
        return self.inner.sign_transaction(tx, chain_id=chain_id)


def test_a_race_lost_after_every_check_sends_nothing_and_names_the_winner(session):
    proposal = _proposal(session)
    proposals.sign(session, proposal, anvil_signer(1))
    winner = Session(workspace=session.workspace, chain=session.chain, sender_uri="anvil:5")
    loser = Session(workspace=session.workspace, chain=session.chain)
    loser._sender = _SignsAfter(
        anvil_signer(0), lambda: proposals.execute(winner, proposals.get_proposal(winner, proposal.id))
    )
    loser_nonce = session.chain.w3.eth.get_transaction_count(anvil_signer(0).address)
    with pytest.raises(AlreadyExecuted) as lost:
        proposals.execute(loser, proposals.get_proposal(loser, proposal.id))
    won = proposals.get_proposal(session, proposal.id)
    assert won.state is proposals.ProposalState.EXECUTED  # the winner's record is intact
    assert lost.value.message == (
        f"proposal {proposal.id} was executed meanwhile by another process in {won.exec_tx_hash} "
        f"(block {won.exec_block}); nothing was sent"
    )
    assert session.chain.w3.eth.get_transaction_count(anvil_signer(0).address) == loser_nonce  # nothing was sent


def test_a_proposal_executed_outside_the_workspace_is_named_not_blamed_on_another_transaction(session):
    proposal = _proposal(session)
    proposals.sign(session, proposal, anvil_signer(1))
    signed = proposals.get_proposal(session, proposal.id)
    data = proposals.exec_calldata(session, signed.safe_tx, pack_signatures(list(signed.signatures)))
    elsewhere = session.send(to=signed.safe_tx.safe, data=data, what="another tool executing the proposal")
    with pytest.raises(AlreadyExecuted) as refused:
        proposals.execute(session, signed)
    assert refused.value.message == (
        f"proposal {proposal.id} was executed outside this workspace in {elsewhere.tx_hash} "
        f"(block {elsewhere.block_number}); nothing was sent"
    )
    assert refused.value.details["state"] == "executed_elsewhere"


def test_repeating_sign_or_execute_is_safe_and_exits_0(session, run_cli):
    proposal = _proposal(session)
    for expected in ("signed by", "already signed by"):
        signed = run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:1")
        assert signed.exit_code == 0, signed.stderr
        assert signed.stdout.startswith(expected), signed.stdout
    again = json.loads(run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:1", "--json").stdout)
    assert (again["added"], again["already_signed"]) == (False, True)

    first = run_cli("tx", "execute", str(proposal.id), "--json")
    assert first.exit_code == 0, first.stderr
    done = json.loads(first.stdout)
    assert (done["sent"], done["already_executed"]) == (True, False)
    payer_nonce = session.chain.w3.eth.get_transaction_count(anvil_signer(0).address)
    repeat = run_cli("tx", "execute", str(proposal.id))
    assert repeat.exit_code == 0, repeat.stderr
    assert repeat.stdout.strip() == (
        f"proposal {proposal.id} was executed already in {done['tx_hash']} (block {done['block']}); nothing was sent"
    )
    repeat_json = json.loads(run_cli("tx", "execute", str(proposal.id), "--json").stdout)
    assert (repeat_json["sent"], repeat_json["already_executed"], repeat_json["tx_hash"]) == (
        False, True, done["tx_hash"]
    )  # fmt: skip
    assert session.chain.w3.eth.get_transaction_count(anvil_signer(0).address) == payer_nonce

    # signing an executed proposal is no repeat of anything: refused
    late = run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:2", "--json")
    assert late.exit_code == 1
    error = json.loads(late.stdout)
    assert error["error"] == "AlreadyExecuted" and error["message"].endswith("; nothing was signed")


def test_after_a_discard_every_hint_names_what_exists(session, run_cli):
    first = _proposal(session)
    second = proposals.propose_transfer(session, first.vault_id, to=SETTLEMENT, amount="2", proposer="anvil:3")
    assert (first.safe_tx.nonce, second.safe_tx.nonce) == (0, 1)
    discarded = run_cli("tx", "discard", str(first.id))
    assert discarded.exit_code == 0, discarded.stderr
    assert discarded.stdout.splitlines() == [
        f"proposal {first.id} discarded; nonce 0 is free again",
        f"proposal {second.id} (nonce 1) now waits for a transaction with nonce 0: propose one with --nonce 0, or "
        "discard and propose them again",
    ]
    assert run_cli("tx", "sign", str(second.id), "--signer", "anvil:1").exit_code == 0
    blocked = run_cli("tx", "execute", str(second.id))
    assert blocked.exit_code == 1
    assert blocked.stderr.splitlines() == [
        f"error: proposal {second.id} has nonce 1, but the vault is at nonce 0: propose a transaction for nonce 0 "
        f"(discarded: proposal {first.id}), e.g. `custody tx propose … --nonce 0` first; nothing was sent",
        f"hint: or discard proposal {second.id} and propose it again: it then gets the next free nonce",
    ]
    late = run_cli("tx", "sign", str(first.id), "--signer", "anvil:1", "--json")
    assert late.exit_code == 1
    assert json.loads(late.stdout) == {
        "error": "ProposalError", "message": f"proposal {first.id} was discarded; nothing was signed",
        "hint": "proposing the same transaction again with --nonce 0 reopens it", "details": {"proposal": first.id},
    }  # fmt: skip
    # the hints hold: the same transaction proposed again with --nonce 0 is proposal 1 again, and both execute
    reopened = run_cli("tx", "propose", "hot-ops", "--to", SETTLEMENT, "--amount", "1", "--nonce", "0",
                       "--proposer", "anvil:3", "--json")  # fmt: skip
    assert reopened.exit_code == 0, reopened.stderr
    assert json.loads(reopened.stdout)["id"] == first.id
    for proposal in (first, second):
        assert run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:1").exit_code == 0
        executed = run_cli("tx", "execute", str(proposal.id))
        assert executed.exit_code == 0, executed.stderr


def test_an_execution_is_recorded_once_when_two_runs_wait_for_the_same_transaction(session):
    from custody.audit.record import ledger_for

    proposal = _proposal(session)
    proposals.sign(session, proposal, anvil_signer(1))
    receipt = proposals.execute(
        session, proposals.get_proposal(session, proposal.id)
    )  # one run resumed and recorded it …
    kinds = [e.kind for e in ledger_for(session.store).entries()]
    with pytest.raises(AlreadyExecuted) as late:  # … the run that sent it records its receipt afterwards
        proposals._finalize(session, proposal, receipt)
    assert late.value.message == (
        f"proposal {proposal.id} was executed meanwhile by another process in {receipt.tx_hash} "
        f"(block {receipt.block_number}); nothing was sent"
    )
    assert [e.kind for e in ledger_for(session.store).entries()] == kinds  # no second execution entry
