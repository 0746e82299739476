"""The public API (custody.open → Workspace → MicroVault → Proposal) end to end on the real Anvil."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

import custody
from custody.signers.keystore import PASSPHRASE_ENV, create_keystore
from custody.signers.local import anvil_address, anvil_private_key
from tests.conftest import POLICIES

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # on cold.yaml's allowlist
PASSPHRASE = "api-test-only-passphrase"


def import_owner_keys(home: Path, *indexes: int) -> None:
    """Keystores officer-N holding Anvil account N's key (the shipped templates' owners)."""
    for i in indexes:
        create_keystore(home / "keystores" / f"officer-{i}.json", anvil_private_key(i), PASSPHRASE, kdf="pbkdf2")


@pytest.fixture
def api_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    home = tmp_path / "api-ws"
    import_owner_keys(home, 1, 2)
    return home


def test_the_ten_line_tour_runs_as_written(anvil, chain, api_home):
    home, rpc, to = api_home, anvil.url, PRIME_BROKER
    before = chain.w3.eth.get_balance(to)
    # -- the tour, as in docs/api.md ---------------------------------------------------------------
    ws = custody.open(home=home, rpc=rpc)
    vault = ws.create_vault(POLICIES / "cold.yaml")  # or ws.vault("cold-reserve")
    vault.fund("10")
    p = vault.propose_transfer(to, "2.5")
    p.sign("keystore:officer-1")
    p.sign("keystore:officer-2")
    receipt = p.execute()
    # ------------------------------------------------------------------------------------------------
    try:
        assert receipt.status == 1
        mined = chain.w3.eth.get_transaction_receipt(receipt.tx_hash)
        assert mined["status"] == 1 and mined["to"] == vault.safe
        assert chain.w3.eth.get_balance(to) - before == Decimal("2.5") * 10**18
        assert vault.balance().amount == "7.5" and vault.balance("ETH").balance == 75 * 10**17
        assert p.status is custody.ProposalState.EXECUTED
        assert p.exec_tx_hash == receipt.tx_hash
        assert {s.signer for s in p.signatures} == {anvil_address(1), anvil_address(2)}
        assert ws.vault("cold-reserve") == vault and ws.vault(vault.safe).id == vault.id
        assert [q.id for q in vault.proposals()] == [p.id] == [q.id for q in ws.proposals()]
        report = ws.audit.verify()
        assert report.verdict == "ok", report.as_dict()
        assert report.as_dict()["chain"]["executions_checked"] == 1
    finally:
        ws.close()
    # a second open of the same workspace finds the same vault and proposal
    with custody.open(home=home, rpc=rpc) as again:
        assert again.proposal(p.id).status.value == "executed"
        assert again.vault("cold-reserve").threshold == 2


def test_refusals_are_the_existing_exception_types(anvil, chain, api_home):
    with custody.open(home=api_home, rpc=anvil.url) as ws:
        vault = ws.create_vault(POLICIES / "cold.yaml")
        vault.fund("10")
        with pytest.raises(custody.PolicyViolation, match="rule"):
            vault.propose_transfer(anvil_address(9), "1")  # not on the allowlist: nothing recorded
        assert vault.proposals() == []
        with pytest.raises(custody.InputError):
            vault.propose_transfer(PRIME_BROKER, 2.5)  # type: ignore[arg-type]  # a float is never an amount
        p = vault.propose_transfer(PRIME_BROKER, "1", proposer="keystore:officer-1")
        assert p.record.proposer == f"keystore:officer-1 ({anvil_address(1)})"
        p.sign("keystore:officer-1")
        with pytest.raises(custody.NotEnoughSignatures):
            p.execute()
        with pytest.raises(custody.NotAnOwner):
            p.sign("anvil:7")
        with pytest.raises(custody.UnknownVault):
            ws.vault("no-such-vault")
        with pytest.raises(custody.UnknownProposal):
            ws.proposal(999)
        p.discard()
        assert p.status.value == "discarded"
        with pytest.raises(custody.ProposalError):
            p.execute()
        assert issubclass(custody.PolicyViolation, custody.CustodyError)
