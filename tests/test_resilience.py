"""Pause (timelock-free freeze, timelocked unfreeze), vault isolation, signer rotation, threshold changes."""

import json

import pytest

from custody.exceptions import PolicyViolation, TimelockNotReady, TransactionFailed
from custody.policy import change
from custody.policy.onchain import installed_guard
from custody.signers.local import anvil_address, anvil_signer
from custody.vault import exit as vault_exit
from custody.vault import proposals, resilience, service
from tests.resilience_helpers import (
    BROKER,
    COUNCIL,
    CUSTODIAN,
    ETH,
    OWNERS,
    advance,
    execute_with,
    install_reverting_guard,
    resilient_vault,
    sign_exit,
)


def _send(session, vault, amount_eth="1", signers=OWNERS[:2]):
    proposal = proposals.propose_transfer(session, vault.id, to=BROKER, amount=amount_eth)
    return execute_with(session, proposal, signers)


def test_pause_freezes_now_and_only_the_timelock_unfreezes(session):
    vault = resilient_vault(session)
    execute_with(session, resilience.pause(session, vault.id))
    with pytest.raises(PolicyViolation, match="the vault is paused"):
        proposals.propose_transfer(session, vault.id, to=BROKER, amount="1")
    forced = proposals.propose_transfer(session, vault.id, to=BROKER, amount="1", force=True)
    for i in OWNERS[:2]:
        proposals.sign(session, proposals.get_proposal(session, forced.id), anvil_signer(i))
    with pytest.raises(TransactionFailed, match="CustodyGuardPaused"):
        proposals.execute(session, proposals.get_proposal(session, forced.id), force=True)
    proposals.discard(session, proposals.get_proposal(session, forced.id))
    # the owners cannot simply unpause themselves: setPaused(false) is not something the guard lets through
    from eth_abi import encode

    with pytest.raises(PolicyViolation, match="CustodyGuardCallForbidden"):
        proposals.propose(
            session,
            vault.id,
            to=installed_guard(session, vault.safe),
            data=resilience.SET_PAUSED + encode(["bool"], [False]),
        )
    proposal, op = resilience.unpause(session, vault.id)
    execute_with(session, proposal)
    with pytest.raises(TimelockNotReady):
        change.execute(session, proposal.id)
    advance(session, op.delay + 1)
    change.execute(session, proposal.id)
    _send(session, vault)  # transfers work again


def test_exit_still_works_while_paused(session):
    vault = resilient_vault(session)
    execute_with(session, resilience.pause(session, vault.id))
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN))
    advance(session, 2 * 3600)
    vault_exit.finalize(session, vault.id)
    assert session.chain.w3.eth.get_balance(vault.safe) == 0


def test_one_failing_vault_never_stops_the_others(session):
    """Isolation: vault A paused, vault B's guard refuses everything, vault C keeps paying."""
    a, b, c = (resilient_vault(session, name=n) for n in ("iso-a", "iso-b", "iso-c"))
    # no shared mutable state: every vault has its own Safe, timelock, guard and exit module
    parts = [(v.safe, v.timelock, v.guard, v.exit_module) for v in (a, b, c)]
    assert len({x for p in parts for x in p}) == 12
    execute_with(session, resilience.pause(session, a.id))
    install_reverting_guard(session, b)
    before = session.chain.w3.eth.get_balance(BROKER)
    for _ in range(3):
        _send(session, c, "2")
    assert session.chain.w3.eth.get_balance(BROKER) - before == 6 * ETH
    with pytest.raises(PolicyViolation, match="paused"):
        proposals.propose_transfer(session, a.id, to=BROKER, amount="1")
    broken = proposals.propose_transfer(session, b.id, to=BROKER, amount="1")
    with pytest.raises(TransactionFailed, match="RevertingGuardRefusesEverything"):
        execute_with(session, broken)
    # C's rolling window only counts C's spends
    assert service.read_state(session, c).nonce == 3


def test_owner_rotation_through_the_timelock(session, tmp_path):
    vault = resilient_vault(session)
    new_owner = anvil_address(0)
    proposal, op = resilience.rotate_owner(session, vault.id, anvil_address(3), new_owner, tmp_path)
    assert next(c.description for c in op.calls) == f"swap owner {anvil_address(3)} for {new_owner}"
    execute_with(session, proposal)
    assert anvil_address(3) in service.read_state(session, vault).owners  # not before the delay
    advance(session, op.delay + 1)
    change.execute(session, proposal.id)
    state = service.read_state(session, service.get_vault(session, vault.id))
    assert new_owner in state.owners and anvil_address(3) not in state.owners and state.threshold == 2
    assert state.template_file_status == "matches"
    _send(session, vault, signers=(1, 0))  # the new owner signs


def test_threshold_change_and_cli(run_cli, session):
    vault = resilient_vault(session)
    out = run_cli("vault", "set-threshold", vault.name, "3", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert "change threshold 2 -> 3" in [c["description"] for c in data["operation"]["calls"]]
    for i in OWNERS[:2]:
        assert run_cli("tx", "sign", str(data["proposal"]), "--signer", f"anvil:{i}").exit_code == 0
    assert run_cli("tx", "execute", str(data["proposal"])).exit_code == 0
    advance(session, 3601)
    assert run_cli("tx", "execute", str(data["proposal"])).exit_code == 0
    assert service.read_state(session, service.get_vault(session, vault.id)).threshold == 3
    paused = run_cli("vault", "pause", vault.name, "--json")
    assert paused.exit_code == 0 and json.loads(paused.stdout)["proposal"] > data["proposal"]


def test_council_is_independent_of_owner_rotation(session, tmp_path):
    vault = resilient_vault(session)
    proposal, op = resilience.rotate_owner(session, vault.id, anvil_address(1), anvil_address(0), tmp_path)
    execute_with(session, proposal)
    advance(session, op.delay + 1)
    change.execute(session, proposal.id)
    vault_exit.initiate(session, sign_exit(session, vault, CUSTODIAN, signers=COUNCIL[:2]))
    assert vault_exit.status(session, vault.id).pending
