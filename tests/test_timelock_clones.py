"""Each vault's timelock is an EIP-1167 clone of one VaultTimelock implementation (issue 15): its own
storage per vault, bound once by the factory, and an implementation nobody can bind or use."""

from __future__ import annotations

import pytest
from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector as selector
from eth_utils import to_checksum_address
from web3.exceptions import ContractCustomError

from custody.contracts.deploy import minimal_proxy_code
from custody.vault import service
from tests.conftest import POLICIES

ATTACKER = "0x000000000000000000000000000000000000a77A"


def custom_error(call, sender: str) -> tuple[str, tuple]:
    """The custom error ``call`` reverts with when sent by ``sender`` (name from our ABI, decoded args)."""
    with pytest.raises(ContractCustomError) as raised:
        call.call({"from": sender})
    data = bytes.fromhex(str(raised.value.data).removeprefix("0x"))
    errors = {
        "VaultTimelockAlreadyBound": ["address"],
        "AccessControlUnauthorizedAccount": ["address", "bytes32"],
    }
    for name, types in errors.items():
        if data[:4] == selector(f"{name}({','.join(types)})"):
            values = decode(types, data[4:])
            return name, tuple(to_checksum_address(v) if t == "address" else v for t, v in zip(types, values))
    raise AssertionError(f"unexpected revert data {data.hex()}")


@pytest.fixture
def factory(session):
    return session.contract("MicroVaultFactory", session.infrastructure().vault_factory)


def test_every_timelock_is_the_factorys_clone_with_its_own_storage(session, factory):
    cold, _ = service.create_vault(session, POLICIES / "cold.yaml")
    hot, _ = service.create_vault(session, POLICIES / "hot.yaml")
    implementation = factory.functions.TIMELOCK_IMPLEMENTATION().call()
    for record in (cold, hot):
        assert bytes(session.chain.w3.eth.get_code(record.timelock)) == minimal_proxy_code(implementation)
        assert service.read_state(session, record).timelock_is_factory_clone
    locks = [session.contract("VaultTimelock", r.timelock) for r in (cold, hot)]
    # per-vault storage: each clone knows its own Safe and delay, the implementation neither
    assert [lock.functions.vault().call() for lock in locks] == [cold.safe, hot.safe]
    delays = [lock.functions.getMinDelay().call() for lock in locks]
    assert delays == [policy.timelock_delay for policy in (cold.policy(), hot.policy())] and delays[0] != delays[1]
    assert session.contract("VaultTimelock", implementation).functions.vault().call() == "0x" + "00" * 20


def test_vault_show_flags_a_timelock_that_is_not_the_factorys_clone(session, factory):
    record, _ = service.create_vault(session, POLICIES / "cold.yaml")
    state = service.read_state(session, record)
    assert state.timelock_is_factory_clone and state.timelock_roles_ok
    # the implementation's full code over the clone's storage answers the roles check exactly as the
    # clone did; only the code comparison tells them apart
    implementation = factory.functions.TIMELOCK_IMPLEMENTATION().call()
    full_code = "0x" + bytes(session.chain.w3.eth.get_code(implementation)).hex()
    session.chain.rpc("anvil_setCode", [record.timelock, full_code])
    state = service.read_state(session, record)
    assert state.timelock_roles_ok
    assert not service.read_state(session, record).timelock_is_factory_clone


def test_nobody_binds_the_implementation_or_rebinds_a_clone(session, factory):
    record, _ = service.create_vault(session, POLICIES / "cold.yaml")
    implementation = session.contract("VaultTimelock", factory.functions.TIMELOCK_IMPLEMENTATION().call())
    clone = session.contract("VaultTimelock", record.timelock)
    # the factory is the only binder: impersonating it still cannot bind the implementation, nor bind
    # a vault's timelock a second time (eth_call from the factory's address)
    for lock, sender in ((implementation, ATTACKER), (implementation, factory.address), (clone, factory.address)):
        assert custom_error(lock.functions.bind(ATTACKER, 3600), sender) == (
            "VaultTimelockAlreadyBound",
            (sender,),
        )
    # the implementation holds no role: nobody schedules on it
    proposer = implementation.functions.PROPOSER_ROLE().call()
    schedule = implementation.functions.schedule(ATTACKER, 0, b"", b"\x00" * 32, b"\x00" * 32, 3600)
    assert custom_error(schedule, ATTACKER) == ("AccessControlUnauthorizedAccount", (ATTACKER, proposer))


def test_a_bound_timelock_has_exactly_the_fixed_roles_and_its_implementation_none(session, factory):
    # The roles are computed from the bound Safe (no role storage): the Safe proposes and cancels, execution
    # of a ready operation is open (the zero address holds the executor role), and nobody, the Safe and
    # the timelock included, holds the admin role or any other.
    record, _ = service.create_vault(session, POLICIES / "cold.yaml")
    lock = session.contract("VaultTimelock", record.timelock)
    implementation = factory.functions.TIMELOCK_IMPLEMENTATION().call()
    names = ("PROPOSER_ROLE", "CANCELLER_ROLE", "EXECUTOR_ROLE", "DEFAULT_ADMIN_ROLE")
    roles = {name: lock.functions[name]().call() for name in names}
    roles["SOME_OTHER_ROLE"] = b"\x11" * 32
    zero = "0x" + "00" * 20
    accounts = (record.safe, record.timelock, factory.address, implementation, zero, ATTACKER)
    expected = {"PROPOSER_ROLE": {record.safe}, "CANCELLER_ROLE": {record.safe}, "EXECUTOR_ROLE": {zero}}
    for name, role in roles.items():
        holders = {a for a in accounts if lock.functions.hasRole(role, a).call()}
        assert holders == expected.get(name, set()), name
        # the implementation is never bound, so nobody holds any role on it
        unbound = session.contract("VaultTimelock", implementation)
        assert not any(unbound.functions.hasRole(role, a).call() for a in accounts), name
    # the grants are announced as AccessControl would have announced them
    grants = lock.events.RoleGranted().get_logs(from_block=record.created_block, to_block=record.created_block)
    announced = {(e["args"]["role"], e["args"]["account"]) for e in grants}
    assert announced == {(roles["PROPOSER_ROLE"], record.safe), (roles["CANCELLER_ROLE"], record.safe),
                         (roles["EXECUTOR_ROLE"], zero)}  # fmt: skip
