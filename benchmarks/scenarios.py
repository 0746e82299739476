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


def _mint(session: Session, token: str, to: str, amount: int) -> None:
    from eth_abi import encode
    from eth_utils import function_signature_to_4byte_selector

    data = function_signature_to_4byte_selector("mint(address,uint256)") + encode(["address", "uint256"], [to, amount])
    session.send(to=token, data=data, what="mint")


def _transfer(session: Session, vault: str, *, amount: str, token: str | None = None) -> int:
    p = P.propose_transfer(session, vault, to=PRIME_BROKER, amount=amount, token=token)
    P.sign(session, p, anvil_signer(1))
    return P.execute(session, P.get_proposal(session, p.id)).gas_used


def guard_overhead_gas(session: Session, policy_path) -> dict[str, int]:
    """Guard overhead from real receipts: the same transfers from a guarded and an unguarded vault
    created from one template (1-of-2 hot), at the same clock positions."""
    from custody.contracts.infra import DEMO_TOKEN_ADDRESS

    vaults = {}
    for label, guarded in (("guarded", True), ("plain", False)):
        record, _facts = service.create_vault(session, policy_path, name=f"gas-{label}", with_guard=guarded)
        session.send(to=record.safe, value=20 * 10**18, what="fund")
        _mint(session, DEMO_TOKEN_ADDRESS, record.safe, 10**12)
        vaults[label] = record.name
    _mint(session, DEMO_TOKEN_ADDRESS, PRIME_BROKER, 1)  # recipient balance slot already non-zero for both
    hour = 3600
    # Tuesday 10:00 UTC of the week after next: outside every freeze window of the shipped templates
    now = session.chain.latest_timestamp()
    week_start = now - (now + 259200) % 604800 + 2 * 604800  # a Monday 00:00 UTC in the future
    base = week_start + 86400 + 10 * hour
    phases = [
        (
            0,
            [
                ("eth_first_ever", None),
                ("erc20_first_ever", DEMO_TOKEN_ADDRESS),
                ("eth_steady", None),
                ("erc20_steady", DEMO_TOKEN_ADDRESS),
            ],
        ),
        (3 * hour, [("eth_new_hour", None)]),
        (30 * hour, [("eth_first_of_day", None), ("erc20_first_of_day", DEMO_TOKEN_ADDRESS)]),
    ]
    gas: dict[str, dict[str, int]] = {"guarded": {}, "plain": {}}
    for offset, steps in phases:
        for label, vault in vaults.items():
            session.chain.set_next_timestamp(base + offset + (60 if label == "plain" else 0))
            for name, token in steps:
                gas[label][name] = _transfer(session, vault, amount="10" if token else "0.1", token=token)
    return {f"overhead_{k}": gas["guarded"][k] - gas["plain"][k] for k in gas["guarded"]} | {
        f"guarded_{k}": v for k, v in gas["guarded"].items()
    }
