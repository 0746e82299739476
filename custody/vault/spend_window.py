"""Priming a clone guard's spend window: pre-writing the ring slots of its rolling 24 h limit.

The EVM charges about 20,000 gas more for the first write of a storage slot than for later ones. A
guard's ring has 12 slots per policy asset (two hourly buckets each): unprimed, the first spend of an hour
that lands in a slot never used pays that write. A dedicated guard primes its ring at creation; a clone
guard does not (it keeps creation cheap), and anyone may prime it later with ``primeSpendWindow()``, which
fills only buckets never written (running sum 0, hour 1: never a live hour) and changes no limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from custody.exceptions import VaultError
from custody.policy.guard_code import guard_provenance
from custody.policy.onchain import installed_guard
from custody.session import Session
from custody.types import Address
from custody.vault.service import get_vault


@dataclass(frozen=True)
class Priming:
    """What priming a vault's guard did: ``slots`` ring slots written (0: nothing left to prime)."""

    vault: str
    guard: Address
    deployment: str  # "clone" or "dedicated" (a dedicated guard is primed at creation)
    slots: int
    tx_hash: str | None = None
    gas_used: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def prime_spend_window(session: Session, vault_ref: str | int) -> Priming:
    """Prime the ring slots of the vault's installed clone guard that were never written (one transaction,
    paid by the session's sender); a guard with nothing left to prime, or a dedicated guard, sends nothing.

    Raises:
        VaultError: the vault has no guard, or its guard is not a registered CustodyGuard build.
    """
    record = get_vault(session, vault_ref)
    guard = installed_guard(session, record.safe)
    if guard is None:
        raise VaultError(f"vault {record.name} ({record.safe}) has no guard: there is no spend window to prime")
    proof = guard_provenance(session.chain, guard)
    if not proof.verified:  # never send the operator's transaction to code that is not our registered build
        raise VaultError(
            f"the guard {guard} of vault {record.name} is not a registered CustodyGuard build ({proof.problem}): "
            "nothing was primed"
        )
    if proof.deployment == "dedicated":
        return Priming(record.name, guard, "dedicated", 0)
    contract = session.contract("CustodyGuardClone", guard)
    if session.chain.call(contract.functions.primeSpendWindow().call) == 0:
        return Priming(record.name, guard, "clone", 0)
    data = contract.encode_abi("primeSpendWindow", [])
    receipt = session.send(to=guard, data=bytes.fromhex(data[2:]), what=f"priming the spend window of {record.name}")
    events = contract.events.CustodyGuardSpendWindowPrimed().process_receipt(receipt.raw)
    if not events:
        raise VaultError(f"priming the guard {guard} of {record.name} emitted no CustodyGuardSpendWindowPrimed event")
    return Priming(record.name, guard, "clone", int(events[0]["args"]["slots"]), receipt.tx_hash, receipt.gas_used)
