"""Shared measurement scenarios: used by the benchmark scripts and by the gas-snapshot test."""

from __future__ import annotations

from custody.session import Session
from custody.signers.local import anvil_signer
from custody.vault import proposals as P
from custody.vault import service

PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"


def transfer_2of3(session: Session, vault: str, amount: str = "1") -> int:
    p = P.propose_transfer(session, vault, to=PRIME_BROKER, amount=amount)
    P.sign(session, p, anvil_signer(1))
    P.sign(session, P.get_proposal(session, p.id), anvil_signer(2))
    return P.execute(session, P.get_proposal(session, p.id)).gas_used


def foundation_gas(session: Session, policy_path, name: str = "gas-probe") -> dict[str, int]:
    """Gas from real receipts: full vault creation, first and steady-state 2-of-3 ETH transfers."""
    record, facts = service.create_vault(session, policy_path, name=name)
    session.send(to=record.safe, value=50 * 10**18, what="fund")
    first = transfer_2of3(session, record.name)
    steady = transfer_2of3(session, record.name)
    return {
        "vault_create_2of3": facts["gas_used"],
        "eth_transfer_2of3_first": first,
        "eth_transfer_2of3_steady": steady,
    }
