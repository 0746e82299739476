"""Priming the spend window (issue 15): the first write of a storage slot costs about 20,000 gas more than a
later one, and a guard's ring has 12 slots per asset. A dedicated guard writes its whole ring at creation;
a clone guard does not (cheap creation) and anyone may prime it later (``primeSpendWindow()``,
``custody vault prime``). Priming may only fill buckets never written: one that erased a recorded hour would
lose what the guard needs when that hour leaves the window (planted in benchmarks/contract_plants.py: caught
below)."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel

from custody.contracts.deploy import deploy_plain
from custody.exceptions import VaultError
from custody.types import ZERO_ADDRESS
from custody.vault import service
from custody.vault.spend_window import prime_spend_window
from tests.attack_helpers import send_as
from tests.conftest import POLICIES
from tests.guard_harness import monday_of_next_week, submit

STRANGER = 9  # an Anvil account with no role in any vault
ETH = 10**18
HOUR = 3600
PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # allowlisted in cold.yaml
PRIMED = (0, 1)  # a primed bucket: running sum 0, hour 1 (non-zero, and never a live hour)


def _rings(session, guard: str, assets: int) -> list[set[tuple[int, int]]]:
    """Each asset's ring as stored: (running sum at the hour's end, hour) per bucket."""
    reads = session.contract("CustodyGuard", guard).functions
    return [{tuple(b) for b in reads.spendState(i).call()[5]} for i in range(assets)]


def test_a_dedicated_guard_primes_its_ring_at_creation_and_a_clone_is_primed_once_by_anyone(session):
    hot, _ = service.create_vault(session, POLICIES / "hot.yaml")
    hot_assets = len(hot.policy().assets)
    # every bucket of every asset primed, none with an amount (planted: the constructor without the priming)
    assert _rings(session, hot.guard, hot_assets) == [{PRIMED}] * hot_assets
    done = prime_spend_window(session, hot.name)
    assert (done.deployment, done.slots, done.tx_hash) == ("dedicated", 0, None)

    cold, _ = service.create_vault(session, POLICIES / "cold.yaml")
    assert _rings(session, cold.guard, 1) == [{(0, 0)}]
    done = prime_spend_window(session, cold.name)
    assert (done.deployment, done.slots) == ("clone", 12) and done.gas_used is not None
    assert _rings(session, cold.guard, 1) == [{PRIMED}]
    again = prime_spend_window(session, cold.name)
    assert (again.slots, again.tx_hash) == (0, None)
    # the shared implementation is never a guard: its "asset count" would be a byte of its own code
    implementation = session.contract("GuardDeployer", session.infrastructure().guard_deployer)
    sent = send_as(session, STRANGER, implementation.functions.GUARD_IMPLEMENTATION().call(), sel("primeSpendWindow()"))
    assert (sent.error, sent.args) == ("CustodyGuardNotAClone", ())


def test_priming_by_a_stranger_after_spends_keeps_every_recorded_spend(session):
    """The attack: prime a clone's ring after it recorded spends, hoping to erase them. cold.yaml allows
    100 ETH per transfer and 250 ETH a day. The ring records each finished hour's running sum, which the guard
    reads when that hour leaves the window; planted in the guard (priming every slot, written or not), the
    10:00 bucket is overwritten and the ring no longer holds it. A control vault whose only spend is the later
    one lets the third transfer through: the refusal is the earlier spend still counting."""
    cold, _ = service.create_vault(session, POLICIES / "cold.yaml")
    session.send(to=cold.safe, value=400 * ETH, what="fund")
    ten = monday_of_next_week(session) + 10 * HOUR
    for offset in (0, HOUR):  # 10:00 and 11:00: the 10:00 spend moves into the ring at 11:00
        outcome = submit(session, cold, to=PRIME_BROKER, value=100 * ETH, timestamp=ten + offset, signers=(1, 2))
        assert outcome.allowed, outcome
    sent = send_as(session, STRANGER, cold.guard, sel("primeSpendWindow()"))
    assert sent.ok, sent
    midnight = ten + 14 * HOUR  # Tuesday 00:00, outside cold.yaml's freeze windows
    refused = submit(session, cold, to=PRIME_BROKER, value=100 * ETH, timestamp=midnight, signers=(1, 2))
    assert (refused.error, refused.args) == (
        "CustodyGuardDailyLimitExceeded", (ZERO_ADDRESS, 100 * ETH, 200 * ETH, 250 * ETH),
    )  # fmt: skip
    # the limit itself is unchanged: exactly what is left still moves
    assert submit(session, cold, to=PRIME_BROKER, value=50 * ETH, timestamp=midnight + 60, signers=(1, 2)).allowed
    recorded = _rings(session, cold.guard, 1)[0] - {PRIMED}
    # the running sum at the end of each hour: 100 ETH after 10:xx, 200 ETH after 11:xx
    assert recorded == {(100 * ETH, ten // HOUR), (200 * ETH, ten // HOUR + 1)}
    # control: what the attack wants, a window without the 10:00 spend, lets the same transfer through
    control, _ = service.create_vault(session, POLICIES / "cold.yaml", name="cold-control")
    session.send(to=control.safe, value=400 * ETH, what="fund")
    eleven = submit(session, control, to=PRIME_BROKER, value=100 * ETH, timestamp=midnight + 3 * HOUR, signers=(1, 2))
    assert eleven.allowed, eleven
    assert send_as(session, STRANGER, control.guard, sel("primeSpendWindow()")).ok
    next_day = midnight + 16 * HOUR  # 13 hours after the control's only spend, like midnight above
    assert submit(session, control, to=PRIME_BROKER, value=100 * ETH, timestamp=next_day, signers=(1, 2)).allowed


def test_cli_vault_prime_reports_what_it_wrote(run_cli):
    assert run_cli("vault", "create", str(POLICIES / "cold.yaml"), "--json").exit_code == 0
    primed = run_cli("vault", "prime", "cold-reserve", "--json")
    assert primed.exit_code == 0, primed.output
    report = json.loads(primed.stdout)
    assert (report["vault"], report["deployment"], report["slots"]) == ("cold-reserve", "clone", 12)
    assert report["gas_used"] > 12 * 20_000 and report["tx_hash"].startswith("0x")
    again = run_cli("vault", "prime", "cold-reserve")
    assert again.exit_code == 0 and "nothing to prime" in again.stdout and "written already" in again.stdout
    assert run_cli("vault", "create", str(POLICIES / "hot.yaml")).exit_code == 0
    dedicated = run_cli("vault", "prime", "hot-ops")
    assert dedicated.exit_code == 0 and "primed its ring at creation" in dedicated.stdout
    unknown = run_cli("vault", "prime", "no-such-vault")
    assert unknown.exit_code != 0 and "no vault 'no-such-vault'" in unknown.stderr


def test_priming_sends_nothing_to_a_guard_that_is_not_the_registered_build(session):
    """No guard: a specific error. A guard the owners of an unguarded Safe installed themselves (here a no-op
    guard, which has no priming function): refused before any transaction (planted: without the provenance
    check the call reaches it and fails with an undecodable revert instead)."""
    record, _ = service.create_vault(session, POLICIES / "hot.yaml", name="unguarded", with_guard=False)
    with pytest.raises(VaultError, match="vault unguarded .* has no guard: there is no spend window to prime"):
        prime_spend_window(session, record.name)
    foreign = deploy_plain(session.chain, session.sender, "NoopGuard", constructor_types=[], constructor_args=[])
    installed = submit(
        session, record, to=record.safe, data=sel("setGuard(address)") + encode(["address"], [foreign.address])
    )
    assert installed.allowed, installed
    sender = session.sender.address
    nonce = session.chain.w3.eth.get_transaction_count(sender)
    with pytest.raises(
        VaultError, match=f"the guard {foreign.address} of vault unguarded is not a registered CustodyGuard"
    ):
        prime_spend_window(session, record.name)
    assert session.chain.w3.eth.get_transaction_count(sender) == nonce
