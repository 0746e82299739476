"""Out-of-band confirmation: where cold.yaml asks (ETH ≥ 50, risky operations), `tx execute` refuses until a
different person than the proposer confirms the safeTxHash by TOTP or by a challenge code; who/when is recorded."""

from __future__ import annotations

import json
import stat
import time
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import sqlalchemy as sa
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from custody.exceptions import ConfirmationError, ConfirmationRequired, RiskDenied
from custody.signers.local import anvil_signer
from custody.store import oob_challenges
from custody.types import Operation
from custody.vault import oob, proposals, service
from tests.conftest import POLICIES

APPROVE = function_signature_to_4byte_selector("approve(address,uint256)")

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


@pytest.fixture(autouse=True)
def _oob_passphrase(monkeypatch):
    monkeypatch.setenv("CUSTODY_OOB_PASSPHRASE", "correct horse battery staple")


@pytest.fixture
def cold(session):
    record, _ = service.create_vault(session, POLICIES / "cold.yaml")
    session.send(to=record.safe, value=100 * 10**18, what="fund")
    return record


def _signed(session, proposal):
    for i in (1, 2):
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(i))
    return proposals.get_proposal(session, proposal.id)


def _enroll(run_cli, name: str) -> pyotp.TOTP:
    result = run_cli("oob", "enroll", name, "--json")
    assert result.exit_code == 0, result.stderr
    uri = json.loads(result.stdout)["otpauth_uri"]
    assert uri.startswith("otpauth://totp/custody:")
    return pyotp.TOTP(parse_qs(urlparse(uri).query)["secret"][0])


def test_large_transfer_needs_a_totp_confirmation_by_someone_else(run_cli, session, cold, workspace):
    proposal = _signed(
        session, proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="60", proposer="alice")
    )
    refused = run_cli("tx", "execute", str(proposal.id))
    assert refused.exit_code == 1
    assert (
        "error: proposal 1 needs an out-of-band confirmation by someone other than its proposer because it moves 60 ETH, "
        "at or above the policy's out-of-band threshold of 50 ETH; nothing was sent"
    ) in refused.stderr
    shown = run_cli("tx", "show", "1")
    assert "out-of-band     required: it moves 60 ETH" in shown.stdout and "nobody yet" in shown.stdout

    alice, bob = _enroll(run_cli, "alice"), _enroll(run_cli, "bob")
    secret_file = workspace.home / "oob" / "bob.totp.sealed"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert bob.secret.encode() not in secret_file.read_bytes()  # sealed, not plaintext
    assert "already" in run_cli("oob", "enroll", "bob").stderr
    own = run_cli("tx", "confirm", "1", "--totp", alice.now(), "--confirmer", "alice")
    assert own.exit_code == 1 and "alice proposed proposal 1 and cannot also confirm it out of band" in own.stderr
    wrong = run_cli(
        "tx", "confirm", "1", "--totp", "000000" if bob.now() != "000000" else "111111", "--confirmer", "bob"
    )
    assert "wrong TOTP code from bob for proposal 1" in wrong.stderr

    confirmed = run_cli("tx", "confirm", "1", "--totp", bob.now(), "--confirmer", "bob", "--json")
    assert confirmed.exit_code == 0, confirmed.stderr
    record = json.loads(confirmed.stdout)
    assert (record["confirmer"], record["method"], record["safe_tx_hash"]) == ("bob", "totp", proposal.safe_tx_hash)
    assert "moves 60 ETH" in record["reason"]

    executed = run_cli("tx", "execute", "1", "--json")
    assert executed.exit_code == 0, executed.stderr
    oob_view = json.loads(run_cli("tx", "show", "1", "--json").stdout)["out_of_band"]
    assert oob_view["required"] is True and [c["confirmer"] for c in oob_view["confirmations"]] == ["bob"]


def test_a_totp_code_confirms_once(session, cold, workspace):
    totp = pyotp.TOTP(pyotp.TOTP(parse_qs(urlparse(oob.enroll(workspace, "carol")).query)["secret"][0]).secret)
    oob.enroll(workspace, "dave")
    first = proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="55", proposer="dave")
    second = proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="56", proposer="dave")
    now = time.time()
    code = totp.at(now)
    oob.confirm_with_totp(session, first, "carol", code, now=now)
    with pytest.raises(ConfirmationError, match="this TOTP code of carol was used already"):
        oob.confirm_with_totp(session, second, "carol", code, now=now)


def test_printed_challenge_code_bound_to_the_safe_tx_hash(run_cli, session, cold, workspace):
    proposal = _signed(
        session, proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="75", proposer="alice")
    )
    _enroll(run_cli, "alice"), _enroll(run_cli, "bob")
    issued = run_cli("tx", "challenge", "1", "--confirmer", "bob", "--issued-by", "alice", "--json")
    assert issued.exit_code == 0, issued.stderr
    code = json.loads(issued.stdout)["code"]
    assert len(code) == 8 and code.isdigit()
    bad = "00000000" if code != "00000000" else "11111111"
    wrong = run_cli("tx", "confirm", "1", "--code", bad, "--confirmer", "bob")
    assert "wrong confirmation code for proposal 1; 4 attempt(s) left" in wrong.stderr
    # the code is bound to this proposal's safeTxHash: it does not confirm another proposal
    other = proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="76", proposer="alice")
    run_cli("tx", "challenge", str(other.id), "--confirmer", "bob")
    assert (
        "wrong confirmation code"
        in run_cli("tx", "confirm", str(other.id), "--code", code, "--confirmer", "bob").stderr
    )
    ok = run_cli("tx", "confirm", "1", "--code", code, "--confirmer", "bob")
    assert ok.exit_code == 0, ok.stderr
    reused = run_cli("tx", "confirm", "1", "--code", code, "--confirmer", "bob")
    assert "no open challenge for bob on proposal 1" in reused.stderr
    proposals.execute(session, proposals.get_proposal(session, proposal.id))
    assert proposals.get_proposal(session, proposal.id).state is proposals.ProposalState.EXECUTED


def test_challenges_expire_and_burn_after_five_attempts(session, cold, workspace):
    oob.enroll(workspace, "alice"), oob.enroll(workspace, "bob")
    proposal = proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="80", proposer="alice")
    code, _ = oob.issue_challenge(session, proposal, "bob", issued_by="alice")
    with session.store.begin() as conn:
        conn.execute(oob_challenges.update().values(expires_at=sa.func.datetime("now", "-1 minute")))
    with pytest.raises(ConfirmationError, match="expired; issue a new one"):
        oob.confirm_with_code(session, proposal, "bob", code)
    code, _ = oob.issue_challenge(session, proposal, "bob", issued_by="alice")
    for _ in range(5):
        with pytest.raises(ConfirmationError, match="wrong confirmation code"):
            oob.confirm_with_code(session, proposal, "bob", "x")
    with pytest.raises(ConfirmationError, match="no open challenge"):
        oob.confirm_with_code(session, proposal, "bob", code)


def test_below_threshold_needs_nothing_and_risky_operations_do(session, cold, workspace, demo_token):
    small = _signed(
        session, proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="49.99", proposer="alice")
    )
    assert not oob.requirement(session, small).required
    proposals.execute(session, small)
    risky = proposals.propose(
        session,
        cold.id,
        to=PRIME_BROKER,
        data=b"\x12\x34\x56\x78",
        operation=Operation.DELEGATECALL,
        proposer="alice",
        force=True,
    )
    assert oob.requirement(session, risky).reasons == ("it is a risky operation (delegatecall)",)
    # a DELEGATECALL to an account without code never gets signatures: the risk engine denies it first
    with pytest.raises(RiskDenied, match="delegatecall: DELEGATECALL to") as denied:
        _signed(session, risky)
    assert {"delegatecall", "calldata_to_eoa"} <= set(denied.value.details["reasons"])
    # a risky operation the engine only warns about (an approval) reaches execution: confirmation required
    approval = proposals.propose(
        session, cold.id, to=demo_token, data=APPROVE + encode(["address", "uint256"], [PRIME_BROKER, 10**6]),
        proposer="alice", force=True,
    )  # fmt: skip
    assert oob.requirement(session, approval).reasons == ("it is a risky operation (approval)",)
    with pytest.raises(ConfirmationRequired, match="because it is a risky operation"):
        proposals.execute(session, _signed(session, approval))
    anonymous = proposals.propose_transfer(session, cold.id, to=PRIME_BROKER, amount="51")
    oob.enroll(workspace, "bob")
    with pytest.raises(ConfirmationError, match="has no recorded proposer"):
        oob.issue_challenge(session, anonymous, "bob", issued_by="x")
    with pytest.raises(ConfirmationError, match="not an enrolled confirmer"):
        oob.issue_challenge(session, risky, "mallory", issued_by="x")
