"""Shared by the attestation tests: the attested template's vault and a signed 2-of-3 transfer from it."""

from __future__ import annotations

import pytest

from custody.signers.local import anvil_signer
from custody.vault import proposals, service
from tests.conftest import FIXTURES

ATTESTED = FIXTURES / "policies" / "attested.yaml"
BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
OPS = "anvil:7"  # custody-operations attester in attested.yaml
COMPLIANCE = "anvil:9"  # KYC only
ETH = 10**18


@pytest.fixture
def vault(session):
    record, _ = service.create_vault(session, ATTESTED, name="attested")
    session.send(to=record.safe, value=150 * ETH, what="fund")
    return record


def transfer(session, vault, amount="5", signers=(1, 2)):
    """Propose (by alice) and sign a transfer to the broker; returns the proposal, not executed."""
    proposal = proposals.propose_transfer(session, vault.id, to=BROKER, amount=amount, proposer="alice")
    for i in signers:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(i))
    return proposals.get_proposal(session, proposal.id)
