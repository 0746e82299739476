"""The public API (custody.open → Workspace → MicroVault → Proposal) end to end on the real Anvil."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

import custody
from custody.signers.keystore import PASSPHRASE_ENV, create_keystore
from custody.signers.local import anvil_address, anvil_private_key
from custody.types import Operation
from tests.conftest import POLICIES, REPO

API_DOC = REPO / "docs" / "api.md"

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


def tour_block() -> str:
    """The first ```python block of docs/api.md: the tour."""
    match = re.search(r"^```python\n(.*?)^```$", API_DOC.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    assert match, "docs/api.md lost its tour"
    return match.group(1)


def test_the_tour_in_docs_api_runs_as_written(anvil, chain, api_home, monkeypatch):
    code = tour_block()
    for step in ("custody.open(home=None, rpc=None)", 'create_vault("policies/cold.yaml")',
                 'propose_transfer(to, "2.5")', 'p.sign("keystore:officer-1")', "p.execute()", "audit.verify()"):  # fmt: skip
        assert step in code, f"the tour lost {step!r}"
    assert len(code.strip().splitlines()) <= 12
    monkeypatch.setenv("CUSTODY_HOME", str(api_home))  # home=None and rpc=None resolve to the test's workspace
    monkeypatch.setenv("CUSTODY_RPC", anvil.url)
    monkeypatch.chdir(REPO)  # the tour's template path is relative to the repository root
    before = chain.w3.eth.get_balance(PRIME_BROKER)
    scope: dict = {}
    exec(compile(code, str(API_DOC), "exec"), scope)
    ws, vault, p, receipt = scope["ws"], scope["vault"], scope["p"], scope["receipt"]
    # what the tour promised happened, on chain and in the workspace
    mined = chain.w3.eth.get_transaction_receipt(receipt.tx_hash)
    assert mined["status"] == 1 and mined["to"] == vault.safe
    assert chain.w3.eth.get_balance(PRIME_BROKER) - before == Decimal("2.5") * 10**18
    assert not (REPO / ".custody").exists() or (REPO / ".custody").resolve() != api_home.resolve()
    with custody.open(home=api_home, rpc=anvil.url) as again:
        vault = again.vault("cold-reserve")
        assert vault.balance().amount == "7.5" and vault.balance("ETH").balance == 75 * 10**17
        p = again.proposal(p.id)
        assert p.status is custody.ProposalState.EXECUTED and p.exec_tx_hash == receipt.tx_hash
        assert {s.signer for s in p.signatures} == {anvil_address(1), anvil_address(2)}
        assert again.vault(vault.safe) == vault and [q.id for q in vault.proposals()] == [p.id]
        assert [q.id for q in again.proposals()] == [p.id] and p.vault == vault
        report = again.audit.verify()
        assert report.verdict == "ok" and report.as_dict()["chain"]["executions_checked"] == 1
        kinds = [entry["kind"] for entry in _jsonl(again.audit.export("jsonl")["text"])]
        assert {"vault_created", "proposal_created", "approval_signed", "execution"} <= set(kinds), kinds
    assert ws.home == api_home.resolve()


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


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
        # a risky payload (DELEGATECALL) is only signed when its risk kind is acknowledged, as `--i-understand`
        risky = vault.propose(anvil_address(9), operation=Operation.DELEGATECALL, force=True)
        with pytest.raises(custody.ProposalError, match="delegatecall") as refused:
            risky.sign("keystore:officer-1")
        assert type(refused.value).__name__ == "RiskNotAcknowledged" and risky.refresh().signatures == ()
