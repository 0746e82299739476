"""Dual control that means it: the proposer is a known identity, the out-of-band confirmer is neither the proposer,
nor the holder of the key that proposed, nor excluded by the template, on every CLI path; and no confirmer secret is
readable in the workspace's files."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest

from custody.signers.local import anvil_address, anvil_signer
from custody.store import oob_confirmations, utcnow
from custody.vault import proposals, service
from tests.conftest import POLICIES

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
OFFICER_1 = anvil_address(1)  # an owner the template excludes from confirming
PASSPHRASE = "out-of-band passphrase for tests"


@pytest.fixture(autouse=True)
def _oob_passphrase(monkeypatch):
    monkeypatch.setenv("CUSTODY_OOB_PASSPHRASE", PASSPHRASE)


@pytest.fixture
def cold(session, tmp_path: Path):
    text = (POLICIES / "cold.yaml").read_text()
    text = text.replace(
        "out_of_band:\n  risky_operations: true\n",
        f"out_of_band:\n  risky_operations: true\n  exclude: [{OFFICER_1}, carol]\n",
    )
    template = tmp_path / "cold.yaml"
    template.write_text(text)
    record, _ = service.create_vault(session, template)
    session.send(to=record.safe, value=300 * 10**18, what="fund")
    return record


def _enroll(run_cli, name: str, *keys: str) -> pyotp.TOTP:
    args = [a for k in keys for a in ("--key", k)]
    result = run_cli("oob", "enroll", name, *args, "--json")
    assert result.exit_code == 0, result.stderr
    return pyotp.TOTP(parse_qs(urlparse(json.loads(result.stdout)["otpauth_uri"]).query)["secret"][0])


def _propose(run_cli, proposer: str, amount: str = "60") -> int:
    result = run_cli(
        "tx", "propose", "cold-reserve", "--to", PRIME_BROKER, "--amount", amount, "--proposer", proposer, "--json"
    )
    assert result.exit_code == 0, result.stderr
    return int(json.loads(result.stdout)["id"])


def _sign_both(session, proposal_id: int) -> None:
    for i in (2, 3):
        proposals.sign(session, proposals.get_proposal(session, proposal_id), anvil_signer(i))


def _refused(result, message: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert message in result.stderr, result.stderr


def test_proposer_is_a_known_identity(run_cli, cold):
    missing = run_cli("tx", "propose", "cold-reserve", "--to", PRIME_BROKER, "--amount", "60")
    assert missing.exit_code == 2 and "Missing option '--proposer'" in missing.stderr
    free_text = run_cli("tx", "propose", "cold-reserve", "--to", PRIME_BROKER, "--amount", "60", "--proposer", "bob")
    _refused(free_text, "error: proposer 'bob' is neither a signer URI nor an enrolled person")
    bad_uri = run_cli(
        "tx", "propose", "cold-reserve", "--to", PRIME_BROKER, "--amount", "60", "--proposer", "keystore:nobody"
    )
    _refused(bad_uri, "error: proposer keystore:nobody is not a usable signer")
    assert json.loads(run_cli("tx", "list", "--json").stdout) == []


def test_no_cli_path_lets_a_proposer_confirm_their_own_transfer(run_cli, session, cold, workspace):
    alice = _enroll(run_cli, "alice", "anvil:4")  # alice holds the key anvil:4
    bob = _enroll(run_cli, "bob")
    carol = _enroll(run_cli, "carol")  # excluded by name in the template
    dave = _enroll(run_cli, "dave", OFFICER_1)  # holds an owner key the template excludes

    by_person = _propose(run_cli, "alice")
    by_key = _propose(run_cli, "anvil:4", amount="61")
    for proposal_id in (by_person, by_key):
        _sign_both(session, proposal_id)
    self_refusals = {
        by_person: "alice proposed proposal 1 and cannot also confirm it out of band",
        by_key: f"alice holds key {anvil_address(4)}, which proposed proposal 2, and cannot also confirm it out of band",
    }
    for proposal_id, message in self_refusals.items():
        ref = str(proposal_id)
        _refused(run_cli("tx", "confirm", ref, "--totp", alice.now(), "--confirmer", "alice"), message)
        _refused(run_cli("tx", "challenge", ref, "--confirmer", "alice", "--issued-by", "bob"), message)
        _refused(run_cli("tx", "confirm", ref, "--code", "12345678", "--confirmer", "alice"), message)
        # case games do not make another person
        _refused(
            run_cli("tx", "confirm", ref, "--totp", alice.now(), "--confirmer", "ALICE"),
            "ALICE is not an enrolled confirmer",
        )
    excluded = {
        carol: "carol may not confirm transfers of vault 1 out of band: its template excludes carol (out_of_band.exclude)",
        dave: f"dave may not confirm transfers of vault 1 out of band: its template excludes {OFFICER_1} (out_of_band.exclude)",
    }
    for totp, message in excluded.items():
        name = message.split()[0]
        _refused(run_cli("tx", "confirm", "1", "--totp", totp.now(), "--confirmer", name), message)
        _refused(run_cli("tx", "challenge", "1", "--confirmer", name), message)

    # a self-confirmation that reached the table anyway (an older build, an edited database) does not count
    with session.store.begin() as conn:
        conn.execute(oob_confirmations.insert().values(
            proposal_id=by_person, confirmer="alice", safe_tx_hash=proposals.get_proposal(session, by_person).safe_tx_hash,
            method="totp", reason="planted", confirmed_at=utcnow(),
        ))  # fmt: skip
    _refused(run_cli("tx", "execute", str(by_person)), "error: proposal 1 needs an out-of-band confirmation")
    _refused(run_cli("tx", "execute", str(by_key)), "error: proposal 2 needs an out-of-band confirmation")

    # positive control: a different, non-excluded person confirms, and the transfer goes out
    confirmed = run_cli("tx", "confirm", str(by_person), "--totp", bob.now(), "--confirmer", "bob")
    assert confirmed.exit_code == 0, confirmed.stderr
    executed = run_cli("tx", "execute", str(by_person), "--json")
    assert executed.exit_code == 0, executed.stderr
    issued = run_cli("tx", "challenge", str(by_key), "--confirmer", "bob", "--json")
    assert issued.exit_code == 0, issued.stderr
    code = json.loads(issued.stdout)["code"]
    assert run_cli("tx", "confirm", str(by_key), "--code", code, "--confirmer", "bob").exit_code == 0
    assert run_cli("tx", "execute", str(by_key)).exit_code == 0

    _no_secret_in_workspace_files(workspace.home, [alice, bob, carol, dave])


def _no_secret_in_workspace_files(home: Path, totps: list[pyotp.TOTP]) -> None:
    needles = []
    for totp in totps:
        raw = base64.b32decode(totp.secret)
        needles += [totp.secret.encode(), totp.secret.lower().encode(), raw, raw.hex().encode()]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "challenge.key.sealed" for p in files) and any(p.name == "custody.db" for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"a confirmer secret is readable in {path}"
