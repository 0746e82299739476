"""Shared helpers for the resilience tests (exit module, pause, isolation, rotation)."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel

from benchmarks.scenarios import _mint
from custody.contracts.deploy import deploy_plain
from custody.contracts.infra import DEMO_TOKEN_ADDRESS
from custody.policy import change
from custody.signers.local import anvil_address, anvil_signer
from custody.vault import exit as vault_exit
from custody.vault import proposals, service, timelock_ops
from tests.conftest import FIXTURES

RESILIENT = FIXTURES / "policies" / "resilient.yaml"
CUSTODIAN = anvil_address(5)
SECOND_CUSTODIAN = anvil_address(6)
COUNCIL = (4, 7, 9)
OWNERS = (1, 2, 3)
BROKER = anvil_address(8)
ETH = 10**18
USD = 10**6


def resilient_vault(session, name: str = "resilient", eth: int = 40 * ETH, usd: int = 50_000 * USD):
    record, _ = service.create_vault(session, RESILIENT, name=name)
    session.send(to=record.safe, value=eth, what="fund")
    _mint(session, DEMO_TOKEN_ADDRESS, record.safe, usd)
    return record


def sign_exit(session, vault, custodian: str, signers=COUNCIL[:2]):
    request = vault_exit.open_request(session, vault.id, custodian)
    for index in signers:
        request, _ = vault_exit.sign(session, request, anvil_signer(index))
    return request


def advance(session, seconds: int) -> None:
    session.chain.rpc("evm_increaseTime", [seconds])
    session.chain.mine()


def execute_with(session, proposal, signers=OWNERS[:2]):
    for index in signers:
        proposals.sign(session, proposals.get_proposal(session, proposal.id), anvil_signer(index))
    return change.execute(session, proposal.id)


def through_timelock(session, vault, calls, *, description: str, signers=OWNERS[:2]):
    """Schedule ``calls`` on the vault's timelock, wait out the delay, complete them."""
    proposal, op = timelock_ops.schedule(
        session, vault, calls, kind="test", description=description, salt_seed=description.encode()
    )
    execute_with(session, proposal, signers)
    advance(session, op.delay + 1)
    change.execute(session, proposal.id)
    return op


def module_call(safe: str, inner: bytes, description: str) -> timelock_ops.ScheduledCall:
    payload = sel("execTransactionFromModule(address,uint256,bytes,uint8)") + encode(
        ["address", "uint256", "bytes", "uint8"], [safe, 0, inner, 0]
    )
    return timelock_ops.ScheduledCall(safe, 0, payload, description)


def install_reverting_guard(session, vault) -> str:
    """Force a guard that refuses everything into the vault's guard slot: a guard gone bad.

    No owner action can do this any more (the guard in office refuses a replacement that is not a
    CustodyGuard bound to the vault: tests/test_attacks.py), so the state is written straight into the
    Safe's storage with ``anvil_setStorageAt``. It stands for a fault in the guard's own code, and shows
    that what must keep working without the guard (the exit, the other vaults) does."""
    from custody.policy.onchain import GUARD_SLOT

    bad = deploy_plain(
        session.chain, session.sender, "RevertingGuard", constructor_types=[], constructor_args=[]
    ).address
    session.chain.rpc(
        "anvil_setStorageAt", [vault.safe, hex(GUARD_SLOT), "0x" + bytes.fromhex(bad[2:]).rjust(32, b"\0").hex()]
    )
    return bad
