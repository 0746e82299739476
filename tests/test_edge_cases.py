"""Edges an operator meets: a short safeTxHash prefix is named as such, and the offline-signing commands take
--json like every other command."""

from __future__ import annotations

import json

from custody.vault import proposals as P
from custody.vault import service
from tests.conftest import POLICIES

SETTLEMENT = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def _proposal(session):
    record, _ = service.create_vault(session, POLICIES / "hot.yaml")
    session.send(to=record.safe, value=10**19, what="fund")
    return P.propose_transfer(
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
    from custody.exceptions import AlreadyExecuted
    from custody.signers.local import anvil_signer

    proposal = _proposal(session)
    P.sign(session, proposal, anvil_signer(1))
    seen_by_loser = P.get_proposal(session, proposal.id)  # read before the winner executes
    P.execute(session, P.get_proposal(session, proposal.id))
    try:
        P.execute(session, seen_by_loser)
    except AlreadyExecuted as exc:
        executed = P.get_proposal(session, proposal.id)
        assert exc.message == (
            f"proposal {proposal.id} was executed meanwhile by another process (tx {executed.exec_tx_hash}); "
            "nothing was sent"
        )
    else:
        raise AssertionError("the second execute did not refuse")
