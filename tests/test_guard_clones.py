"""Clone guards (issue 15): a template with ``guard.deployment: clone`` gets an EIP-1167 clone of the one
shared CustodyGuardClone implementation, its bindings and policy packed into the clone's immutable
arguments. The clone keeps its own storage, the implementation can be neither initialised nor used, and
the auditor's check (code = reproducible build, policy = template) works from the code alone.

The attack battery (tests/test_attacks.py) runs against the shipped cold and deep-cold templates, whose
guards are clones, as well as against the hot template's dedicated guard."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import to_checksum_address

from custody.audit.chaincheck import check_chain
from custody.contracts import load_artifact
from custody.policy.compiled import CONFIG_ABI, GuardAsset, GuardConfig, compile_policy
from custody.policy.guard_code import clone_code, decode_clone_args, guard_provenance, split_clone
from custody.signers.local import anvil_address
from custody.types import ZERO_ADDRESS
from custody.vault import service
from tests.attack_helpers import config_call, deploy, send_as
from tests.conftest import POLICIES

ATTACKER = 9  # an Anvil account that owns nothing
ETH = 10**18


def _code(session, address: str) -> bytes:
    return bytes(session.chain.w3.eth.get_code(address))


def _deployed(session, sender: int, runtime: bytes) -> str:
    """Deploy ``runtime`` as it is (OpenZeppelin's 10-byte code-returning prefix) from Anvil key ``sender``."""
    init = b"\x61" + len(runtime).to_bytes(2, "big") + bytes.fromhex("3d81600a3d39f3") + runtime
    sent = send_as(session, sender, None, init)
    assert sent.ok, sent
    return to_checksum_address(session.chain.w3.eth.get_transaction_receipt(sent.tx_hash)["contractAddress"])


def _args_with(args: bytes, offset: int, value: bytes) -> bytes:
    return args[:offset] + value + args[offset + len(value) :]


@pytest.fixture
def deployer(session):
    return session.contract("GuardDeployer", session.infrastructure().guard_deployer)


def test_a_clone_guard_is_the_shared_build_with_the_templates_policy_as_its_arguments(session, deployer):
    cold, _ = service.create_vault(session, POLICIES / "cold.yaml")
    policy = cold.policy()
    implementation = deployer.functions.GUARD_IMPLEMENTATION().call()
    code = _code(session, cold.guard)
    split = split_clone(code)
    assert split is not None and split[0] == implementation
    assert code == clone_code(implementation, split[1])
    assert _code(session, implementation) == load_artifact("CustodyGuardClone").deployed_bytecode
    decoded = decode_clone_args(split[1])
    assert decoded.config == compile_policy(policy)
    assert (decoded.safe, decoded.timelock, decoded.exit_module) == (cold.safe, cold.timelock, cold.exit_module)
    assert (decoded.previous_guard, decoded.deployer) == (ZERO_ADDRESS, deployer.address)
    # the clone reads back exactly what the code holds (planted: an offset off by one in GuardPolicyArgs)
    info = session.contract("CustodyGuard", cold.guard).functions.info().call()
    assert info[2] == compile_policy(policy).policy_hash and tuple(info[1][:7]) == (
        cold.safe, cold.timelock, decoded.multisend, cold.exit_module, decoded.fallback_handler, ZERO_ADDRESS,
        deployer.address,
    )  # fmt: skip
    assert GuardConfig.from_chain(info[6]) == compile_policy(policy)
    state = service.read_state(session, cold)
    assert state.guard_code is not None and state.guard_code.deployment == "clone" and state.guard_code.verified
    assert state.code_policy_matches and state.recorded_policy_matches
    # the hot template keeps a dedicated guard, proven by its CREATE2 address
    hot, _ = service.create_vault(session, POLICIES / "hot.yaml")
    assert split_clone(_code(session, hot.guard)) is None
    proof = guard_provenance(session.chain, hot.guard)
    assert (proof.deployment, proof.verified, proof.policy_hash) == (
        "dedicated", True, compile_policy(hot.policy()).policy_hash,
    )  # fmt: skip


def test_each_clone_keeps_its_own_spend_window(session):
    from benchmarks.scenarios import transfer_2of3

    first, _ = service.create_vault(session, POLICIES / "cold.yaml", name="clone-a")
    second, _ = service.create_vault(session, POLICIES / "cold.yaml", name="clone-b")
    assert split_clone(_code(session, first.guard))[0] == split_clone(_code(session, second.guard))[0]
    for record in (first, second):
        session.send(to=record.safe, value=10 * ETH, what="fund")
    transfer_2of3(session, first.name, amount="2")
    transfer_2of3(session, second.name, amount="3")
    totals = [
        session.contract("CustodyGuard", r.guard).functions.windowTotal(ZERO_ADDRESS).call() for r in (first, second)
    ]
    assert totals == [2 * ETH, 3 * ETH]
    implementation = split_clone(_code(session, first.guard))[0]
    assert session.contract("CustodyGuard", implementation).functions.windowTotal(ZERO_ADDRESS).call() == 0


def test_the_implementation_cannot_be_initialised_or_used_and_a_rogue_clone_cannot_be_installed(session, deployer):
    from tests.test_attacks import make_vault, owners_schedule

    vault = make_vault(session, "cold.yaml")
    implementation = deployer.functions.GUARD_IMPLEMENTATION().call()
    initialize = sel("initialize()")
    # control: a clone whose arguments name the attacker as its deployer: the attacker initialises it (the
    # check below is what refuses everybody else), but no registry vouches for it
    args = split_clone(_code(session, vault.guard))[1]
    rogue = _deployed(
        session, ATTACKER, clone_code(implementation, _args_with(args, 120, bytes.fromhex(anvil_address(ATTACKER)[2:])))
    )
    assert send_as(session, ATTACKER, rogue, initialize).ok
    install = config_call(vault.safe, "setGuard(address)", ["address"], [rogue])
    outcome = owners_schedule(session, vault, vault.safe, install)
    assert (outcome.error, outcome.args) == ("CustodyGuardSuccessorNotRegistered", (rogue, ZERO_ADDRESS))
    # the vault's own clone: only its deployer may (re)announce it, and doing so changes nothing
    sent = send_as(session, ATTACKER, vault.guard, initialize)
    assert (sent.error, sent.args) == ("CustodyGuardUnauthorized", (anvil_address(ATTACKER),))
    # the implementation: never initialised, and no caller check on it passes
    sent = send_as(session, ATTACKER, implementation, initialize)
    assert (sent.error, sent.args) == ("CustodyGuardNotAClone", ())
    guard = session.contract("CustodyGuard", implementation)
    check = guard.encode_abi("checkTransaction", [
        anvil_address(ATTACKER), ETH, b"", 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, b"", anvil_address(ATTACKER),
    ])  # fmt: skip
    sent = send_as(session, ATTACKER, implementation, bytes.fromhex(check[2:]))
    assert (sent.error, sent.args) == ("CustodyGuardNotSafe", (anvil_address(ATTACKER),))
    sent = send_as(session, ATTACKER, implementation, bytes.fromhex(guard.encode_abi("setPaused", [True])[2:]))
    assert (sent.error, sent.args) == ("CustodyGuardUnauthorized", (anvil_address(ATTACKER),))


def test_the_code_check_flags_every_guard_that_is_not_the_registered_build(session, deployer):
    cold, _ = service.create_vault(session, POLICIES / "cold.yaml")
    implementation = deployer.functions.GUARD_IMPLEMENTATION().call()
    args = split_clone(_code(session, cold.guard))[1]
    assert guard_provenance(session.chain, cold.guard).verified  # positive control
    # the genuine implementation, the vault's bindings, a looser daily limit: the build, but unregistered
    looser = _args_with(args, 188 + 32, (10**24).to_bytes(12, "big"))
    forged = _deployed(session, ATTACKER, clone_code(implementation, looser))
    proof = guard_provenance(session.chain, forged)
    assert not proof.verified and "records it for" in proof.problem
    assert proof.config == replace(
        compile_policy(cold.policy()),
        assets=(GuardAsset(ZERO_ADDRESS, compile_policy(cold.policy()).assets[0].per_tx_limit, 10**24),),
    )
    # the vault's own arguments behind another implementation
    other = deploy(session, "NoopGuard")
    proof = guard_provenance(session.chain, _deployed(session, ATTACKER, clone_code(other, args)))
    assert not proof.verified and "not the committed CustodyGuardClone build" in proof.problem
    # a dedicated guard with the vault's bindings, deployed by someone else than the GuardDeployer
    infra = session.infrastructure()
    lookalike = deploy(session, "CustodyGuard", ["address"] * 6 + [CONFIG_ABI], [
        cold.safe, cold.timelock, infra.multisend_call_only, cold.exit_module, infra.fallback_handler, ZERO_ADDRESS,
        compile_policy(cold.policy()).as_tuple(),
    ])  # fmt: skip
    proof = guard_provenance(session.chain, lookalike)
    assert (proof.deployment, proof.verified) == ("dedicated", False) and "CREATE2" in proof.problem
    # truncated arguments do not decode
    short = _deployed(session, ATTACKER, clone_code(implementation, args[:-1]))
    assert "do not decode" in guard_provenance(session.chain, short).problem


def test_audit_verify_checks_each_vaults_guard_against_the_recorded_template(session, deployer):
    cold, _ = service.create_vault(session, POLICIES / "cold.yaml")
    args = split_clone(_code(session, cold.guard))[1]
    forged = _deployed(session, ATTACKER, clone_code(deployer.functions.GUARD_IMPLEMENTATION().call(), args))

    def entry(seq: int, guard: str, policy_hash: str) -> dict:
        payload = {"safe": cold.safe, "timelock": cold.timelock, "guard": guard, "policy_hash": policy_hash}
        return {"seq": seq, "kind": "vault_created", "chain_id": session.chain_id, "vault": cold.name,
                "refs": {"tx_hash": cold.created_tx, "block": cold.created_block}, "payload": payload}  # fmt: skip

    good = entry(0, cold.guard, cold.policy_hash)
    report = check_chain(session.chain, [good])
    assert report.guards_checked == 1 and not [p for p in report.problems if p.code.startswith("guard")]
    report = check_chain(session.chain, [entry(1, forged, cold.policy_hash), entry(2, cold.guard, "0x" + "11" * 32)])
    assert [(p.sequence, p.code) for p in report.problems if p.code.startswith("guard")] == [
        (1, "guard_code"), (2, "guard_policy"),
    ]  # fmt: skip


def test_a_clone_policy_over_capacity_cannot_wrap_its_one_byte_counts(session, deployer):
    from tests.test_attacks import make_vault

    vault = make_vault(session, "cold.yaml")
    config = compile_policy(vault.policy)
    # 257 assets would read as 1 in a one-byte count: the encoder must refuse before packing them
    many = tuple(GuardAsset(to_checksum_address((0x1000 + i).to_bytes(20, "big")), 1, 1) for i in range(257))
    crowded = replace(config, assets=many, destinations=(), unrestricted_mask=0).as_tuple()
    data = bytes.fromhex(deployer.encode_abi("deploySuccessor", [vault.guard, crowded, True])[2:])
    sent = send_as(session, 0, deployer.address, data, gas=30_000_000)
    assert (sent.error, sent.args) == ("CustodyGuardInvalidConfig", ("more than 8 assets",))
    # positive control: the same call with the template's own policy deploys a clone
    assert send_as(session, 0, deployer.address, bytes.fromhex(
        deployer.encode_abi("deploySuccessor", [vault.guard, config.as_tuple(), True])[2:])).ok  # fmt: skip


def test_successors_of_either_deployment_are_proven_from_their_code(session, deployer):
    """A successor's address is salted with its predecessor: the code check proves it for both deployments."""
    hot, _ = service.create_vault(session, POLICIES / "hot.yaml")
    config = compile_policy(hot.policy()).as_tuple()
    for as_clone in (False, True):
        data = bytes.fromhex(deployer.encode_abi("deploySuccessor", [hot.guard, config, as_clone])[2:])
        assert send_as(session, 0, deployer.address, data).ok
        successor = deployer.functions.deploySuccessor(hot.guard, config, as_clone).call()
        proof = guard_provenance(session.chain, successor)
        assert (proof.deployment, proof.verified, proof.policy_hash) == (
            "clone" if as_clone else "dedicated", True, compile_policy(hot.policy()).policy_hash,
        ), proof  # fmt: skip
        assert session.contract("CustodyGuard", successor).functions.bindings().call()[5] == hot.guard
