"""Policy changes go through the timelock: diff, schedule, wait, complete; the Safe can cancel."""

import json

import pytest

from custody.exceptions import PolicyViolation, TimelockNotReady
from custody.policy import change
from custody.policy.onchain import installed_guard, read_guard
from custody.signers.local import anvil_address, anvil_signer
from custody.vault import proposals, service, timelock_ops
from tests.conftest import POLICIES

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


@pytest.fixture
def hot(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=record.safe, value=50 * 10**18, what="fund")
    return record


def _edited(tmp_path, **replacements):
    text = (POLICIES / "hot.yaml").read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "hot-v2.yaml"
    path.write_text(text)
    return path


def _sign_execute(session, proposal, signers=(1,)):
    for i in signers:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(i))
    return change.execute(session, proposal.id)


def _advance(session, seconds):
    session.chain.rpc("evm_increaseTime", [seconds])
    session.chain.mine()


def test_diff_lists_every_change(session, hot, tmp_path):
    new = _edited(
        tmp_path,
        **{
            'per_tx_limit: "5"': 'per_tx_limit: "2"',
            "      label: ops-desk-2\n": "      label: ops-desk-2\n    - address: 0x90F79bf6EB2c4f870365E785982E1f101E93b906\n      label: ops-desk-3\n",
            "  delay: 1h": "  delay: 2h",
        },
    )
    plan = change.plan_change(session, hot.id, new)
    text = [c.description for c in plan.changes]
    assert "add owner 0x90F79bf6EB2c4f870365E785982E1f101E93b906" in text
    assert "ETH per-tx limit 5 -> 2" in text
    assert "timelock delay 3600s -> 7200s" in text
    assert plan.needs_guard
    assert [c.description for c in plan.calls] == [
        "add owner 0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "timelock delay 3600s -> 7200s",
    ]


def test_unchanged_template_changes_nothing(session, hot):
    plan = change.plan_change(session, hot.id, POLICIES / "hot.yaml")
    assert plan.changes == () and plan.calls == () and not plan.needs_guard


def test_change_applies_only_after_the_delay(session, hot, tmp_path):
    old_guard = installed_guard(session, hot.safe)
    new = _edited(
        tmp_path,
        **{
            'per_tx_limit: "5"': 'per_tx_limit: "2"',
            "      label: ops-desk-2\n": "      label: ops-desk-2\n    - address: 0x90F79bf6EB2c4f870365E785982E1f101E93b906\n      label: ops-desk-3\n",
            "  threshold: 1": "  threshold: 2",
        },
    )
    proposal, op = change.apply_change(session, hot.id, new)
    assert op.state is timelock_ops.OpState.PROPOSED and op.new_guard is not None
    what, _receipt = _sign_execute(session, proposal)
    assert what == "proposal"
    op = timelock_ops.get_op(session, op.op_id)
    assert op.state is timelock_ops.OpState.SCHEDULED and op.ready_at >= session.chain.latest_timestamp() + 3600 - 5
    # nothing changed yet, and executing early is refused with the time it becomes possible
    assert installed_guard(session, hot.safe) == old_guard
    with pytest.raises(TimelockNotReady, match=r"becomes executable at .* \(in \d+ s\)"):
        change.execute(session, proposal.id)
    _advance(session, 3601)
    what, _receipt = change.execute(session, proposal.id)
    assert what == "timelock_operation"
    new_guard = installed_guard(session, hot.safe)
    assert new_guard == op.new_guard != old_guard
    info = read_guard(session, new_guard)
    assert info.previous_guard == old_guard
    state = service.read_state(session, service.get_vault(session, hot.id))
    assert state.threshold == 2 and anvil_address(3) in state.owners
    assert state.recorded_policy_matches and state.template_file_status == "matches"
    assert timelock_ops.get_op(session, op.op_id).state is timelock_ops.OpState.EXECUTED
    # the new limits are in force
    with pytest.raises(PolicyViolation, match="exceeds the per-transaction limit of 2 ETH"):
        proposals.propose_transfer(session, hot.id, to=PRIME_BROKER, amount="3")


def test_safe_can_cancel_a_scheduled_change(session, hot, tmp_path):
    new = _edited(tmp_path, **{'per_tx_limit: "5"': 'per_tx_limit: "4"'})
    proposal, op = change.apply_change(session, hot.id, new)
    _sign_execute(session, proposal)
    cancel = change.cancel_change(session, hot.id, op.op_id)
    _sign_execute(session, cancel)
    assert timelock_ops.get_op(session, op.op_id).state is timelock_ops.OpState.CANCELLED
    _advance(session, 7200)
    with pytest.raises(TimelockNotReady, match="was cancelled"):
        change.execute(session, proposal.id)
    assert installed_guard(session, hot.safe) == hot.guard


def test_unscheduled_change_is_withdrawn_by_cancel(session, hot, tmp_path):
    new = _edited(tmp_path, **{'per_tx_limit: "5"': 'per_tx_limit: "4"'})
    proposal, op = change.apply_change(session, hot.id, new)
    withdrawn = change.cancel_change(session, hot.id, op.op_id)
    assert withdrawn.id == proposal.id and withdrawn.state is proposals.ProposalState.DISCARDED
    assert timelock_ops.get_op(session, op.op_id).state is timelock_ops.OpState.CANCELLED


def test_one_pending_change_at_a_time(session, hot, tmp_path):
    from custody.exceptions import ProposalError

    change.apply_change(session, hot.id, _edited(tmp_path, **{'per_tx_limit: "5"': 'per_tx_limit: "4"'}))
    with pytest.raises(ProposalError, match="pending timelock operation"):
        change.apply_change(session, hot.id, _edited(tmp_path, **{'per_tx_limit: "5"': 'per_tx_limit: "3"'}))


def test_rolling_window_carries_over_to_the_new_guard(session, hot, tmp_path):
    p = proposals.propose_transfer(session, hot.id, to=PRIME_BROKER, amount="5")
    _sign_execute(session, p)
    proposal, _op = change.apply_change(session, hot.id, _edited(tmp_path, **{'daily_limit: "20"': 'daily_limit: "6"'}))
    _sign_execute(session, proposal)
    _advance(session, 3601)
    change.execute(session, proposal.id)
    # 5 ETH left less than 24 h ago under the old guard: only 1 ETH remains under the new 6 ETH limit
    with pytest.raises(PolicyViolation, match=r"already sent, 1 ETH remaining"):
        proposals.propose_transfer(session, hot.id, to=PRIME_BROKER, amount="2")
    ok = proposals.propose_transfer(session, hot.id, to=PRIME_BROKER, amount="1")
    _sign_execute(session, ok)


def test_cli_diff_apply_ops(run_cli, session, hot, tmp_path):
    new = _edited(tmp_path, **{'per_tx_limit: "5"': 'per_tx_limit: "4"'})
    diff = json.loads(run_cli("policy", "diff", str(new), "--vault", "hot-ops", "--json").stdout)
    assert "ETH per-tx limit 5 -> 4" in [c["description"] for c in diff["changes"]]
    applied = run_cli("policy", "apply", str(new), "--vault", "hot-ops", "--json")
    assert applied.exit_code == 0, applied.output
    data = json.loads(applied.stdout)
    ops = json.loads(run_cli("policy", "ops", "--json").stdout)
    assert [o["op_id"] for o in ops] == [data["operation"]["op_id"]]
    assert run_cli("tx", "sign", str(data["proposal"]), "--signer", "anvil:1").exit_code == 0
    assert run_cli("tx", "execute", str(data["proposal"])).exit_code == 0
    early = run_cli("tx", "execute", str(data["proposal"]))
    assert early.exit_code == 1 and "becomes executable at" in early.stderr
