"""The attacker's suite: every route around a micro-vault's policy, tried with raw web3 and Anvil keys.

Each test first shows the attack **succeeding on a control** (a plain Safe as Safe's own tools set it up,
a vanilla OpenZeppelin timelock, a vault created without a guard, or the same raw path for an allowed
action), then **failing on vaults of every shipped template** with the decoded contract error — the
innermost revert of the call trace, decoded from the artifacts' ABIs. docs/security.md maps each
entry point of a vault to its invariant and to the test here that proves it.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import keccak

from custody.chain.connection import next_utc_slot
from custody.contracts.deploy import codehash
from custody.policy.compiled import CONFIG_ABI, KIND_BITS, compile_policy
from custody.policy.limits import MAX_TIMELOCK_DELAY, MIN_TIMELOCK_DELAY
from custody.policy.onchain import GUARD_SLOT, installed_guard
from custody.policy.template import load_policy, load_policy_text
from custody.signers.local import anvil_address
from custody.types import ZERO_ADDRESS, Operation
from custody.vault import service
from tests.attack_helpers import (
    ATTACKER,
    ERC1271_MAGIC,
    anvil_index,
    approve_hash,
    approved_hash_signatures,
    authorization_digest,
    call_as,
    config_call,
    deploy,
    execute_payload,
    owner_signatures,
    plain_safe,
    safe_message_hash,
    schedule_payload,
    send_as,
    transfer_with_authorization,
)
from tests.conftest import POLICIES
from tests.guard_harness import module_call, submit

TEMPLATES = ("hot.yaml", "warm.yaml", "cold.yaml", "deep-cold.yaml")
ETH = 10**18
UNIT = 10**6  # AuthorizationToken has 6 decimals
STRANGER = "0x000000000000000000000000000000000000bEEF"
ONE_MILLION = 1_000_000 * UNIT
SALT = b"\x07" * 32
IS_VALID_SIGNATURE = sel("isValidSignature(bytes32,bytes)")


# -- fixtures --------------------------------------------------------------------------------------------


class Vault(SimpleNamespace):
    """A vault made by `custody vault create`, with what an attacker needs to know about it."""


def make_vault(session, template: str, *, name: str | None = None, with_guard: bool = True):
    """A vault of ``template``, funded with three days' worth of its ETH limit."""
    policy = load_policy(POLICIES / template)
    record, _ = service.create_vault(session, POLICIES / template, name=name, with_guard=with_guard)
    session.send(to=record.safe, value=3 * policy.asset(None).daily_limit, what="fund")
    signers = tuple(anvil_index(o) for o in policy.owner_addresses[: policy.threshold])
    eth_rule = policy.asset(None)
    return Vault(
        record=record, policy=policy, safe=record.safe, timelock=record.timelock, guard=record.guard,
        exit_module=record.exit_module, signers=signers, delay=policy.timelock_delay,
        allowed=eth_rule.allowlist[0].address, per_tx=eth_rule.per_tx_limit, daily=eth_rule.daily_limit,
        as_clone=policy.guard_deployment == "clone",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _tuesday_morning(session):
    """Every attack starts on a Tuesday at 10:00 UTC: outside every template's freeze windows, inside
    every template's allowed hours, whatever earlier tests did to the clock."""
    session.chain.set_next_timestamp(next_utc_slot(session.chain.latest_timestamp(), weekday=1, hour=10))
    session.chain.mine()


@pytest.fixture(params=TEMPLATES)
def vault(request, session):
    return make_vault(session, request.param)


def next_week_at(now: int, day: int, second: int) -> int:
    """Unix time of weekday ``day`` (0 = Monday) at ``second`` after midnight UTC, in the week after ``now``."""
    return now - (now + 259200) % 604800 + 604800 + day * 86400 + second


def owners_exec(session, vault, to, data=b"", value=0, operation=Operation.CALL):
    """The vault's owners, at threshold, sign and send a Safe transaction (raw web3, no pre-flight)."""
    return submit(session, vault, to=to, value=value, data=data, operation=operation, signers=vault.signers)


def owners_schedule(session, vault, target, payload, *, delay=None, salt=SALT):
    return owners_exec(session, vault, vault.timelock, schedule_payload(target, payload, delay or vault.delay, salt))


def wait(session, seconds: int) -> None:
    session.chain.rpc("evm_increaseTime", [seconds])
    session.chain.mine()


def anyone_executes(session, vault, target, payload, salt=SALT):
    """A ready operation is executed by an outsider (execution is open to anyone)."""
    return send_as(session, 9, vault.timelock, execute_payload(target, payload, salt))


def balance(session, address: str) -> int:
    return session.chain.w3.eth.get_balance(address)


def token_balance(session, token: str, holder: str) -> int:
    return session.contract("AuthorizationToken", token).functions.balanceOf(holder).call()


def erc1271(session, account: str, digest: bytes, signature: bytes = b"") -> bytes:
    try:
        return call_as(
            session, STRANGER, account, IS_VALID_SIGNATURE + encode(["bytes32", "bytes"], [digest, signature])
        )[:4]
    except Exception:  # a revert is a "no" for every ERC-1271 verifier
        return b""


# -- route 1: ERC-1271 (owner signatures, approveHash) ------------------------------------------------------


@pytest.mark.parametrize("proof", ["owner_signatures", "approved_hashes"])
def test_erc1271_moves_a_plain_safes_funds_but_never_a_vaults(session, vault, proof):
    token = deploy(session, "AuthorizationToken")
    owners = list(vault.policy.owner_addresses[: vault.policy.threshold])

    def attack(account: str) -> tuple:
        send_as(
            session, 0, token, sel("mint(address,uint256)") + encode(["address", "uint256"], [account, ONE_MILLION])
        )
        nonce = keccak(text=f"nonce-{account}")
        digest = authorization_digest(session, token, account, ATTACKER, ONE_MILLION, nonce)
        message_hash = safe_message_hash(session, account, digest)
        if proof == "owner_signatures":
            signature = owner_signatures(message_hash, owners)
        else:
            for owner in owners:
                approve_hash(session, account, owner, message_hash)
            signature = approved_hash_signatures(owners)
        return (
            digest,
            signature,
            send_as(
                session, 0, token, transfer_with_authorization(token, account, ATTACKER, ONE_MILLION, nonce, signature)
            ),
        )

    # control: a plain Safe (CompatibilityFallbackHandler) pays out on the owners' word alone
    control = plain_safe(
        session, list(vault.policy.owner_addresses), vault.policy.threshold, salt=anvil_index(owners[0])
    )
    _digest, _sig, sent = attack(control.safe)
    assert sent.ok, sent
    assert token_balance(session, token, ATTACKER) == ONE_MILLION

    # the vault: the same signatures (and a paused vault would be no different) move nothing
    nonce_before = session.contract("SafeL2", vault.safe).functions.nonce().call()
    digest, signature, sent = attack(vault.safe)
    assert (sent.error, sent.args) == ("AuthorizationTokenInvalidSignature", (vault.safe, digest))
    assert token_balance(session, token, vault.safe) == ONE_MILLION
    assert token_balance(session, token, ATTACKER) == ONE_MILLION  # only the control's
    assert erc1271(session, vault.safe, digest, signature) == bytes.fromhex("ffffffff")
    assert session.contract("SafeL2", vault.safe).functions.nonce().call() == nonce_before


def test_the_vault_cannot_even_approve_a_message_for_a_domain_its_policy_does_not_list(session, vault):
    token = deploy(session, "AuthorizationToken")
    separator = bytes(session.contract("AuthorizationToken", token).functions.DOMAIN_SEPARATOR().call())
    approve = sel("approveMessage(bytes32,bytes32)") + encode(["bytes32", "bytes32"], [separator, b"\x01" * 32])
    outcome = owners_exec(session, vault, vault.guard, approve)
    assert (outcome.error, outcome.args) == ("CustodyGuardMessageDomainForbidden", (separator,))
    # nor by calling the guard directly, or through the vault's fallback
    direct = send_as(session, 1, vault.guard, approve)
    assert (direct.error, direct.args) == ("CustodyGuardUnauthorized", (anvil_address(1),))
    through_fallback = send_as(session, 1, vault.safe, approve)
    assert not through_fallback.ok
    digest = keccak(b"\x19\x01" + separator + b"\x01" * 32)
    assert erc1271(session, vault.safe, digest) == bytes.fromhex("ffffffff")


# -- route 2: a bad guard bricks the vault ----------------------------------------------------------------


def test_a_foreign_guard_bricks_a_vault_that_does_not_check_its_successor(session):
    """Control: a vault created without a guard (nothing checks what the timelock installs)."""
    victim = make_vault(session, "hot.yaml", name="unguarded", with_guard=False)
    other = make_vault(session, "hot.yaml", name="other")
    install = config_call(victim.safe, "setGuard(address)", ["address"], [other.guard])
    assert owners_schedule(session, victim, victim.safe, install).allowed
    wait(session, victim.delay + 1)
    assert anyone_executes(session, victim, victim.safe, install).ok
    assert installed_guard(session, victim.safe) == other.guard
    # bricked: the foreign guard refuses every Safe transaction, including the one that would restore it
    restore = config_call(victim.safe, "setGuard(address)", ["address"], [ZERO_ADDRESS])
    outcome = owners_schedule(session, victim, victim.safe, restore, delay=2 * victim.delay, salt=b"\x08" * 32)
    assert (outcome.error, outcome.args) == ("CustodyGuardNotSafe", (victim.safe,))


def _bad_guards(session, vault):
    """Every kind of replacement guard that must never be installed (name, address, expected error, args)."""
    other = make_vault(session, "hot.yaml", name="neighbour")
    reverting = deploy(session, "RevertingGuard")
    infra = session.infrastructure()
    # a real CustodyGuard bound to this Safe, but to another timelock and not from the registry
    lookalike = deploy(
        session, "CustodyGuard", ["address"] * 6 + [CONFIG_ABI],
        [vault.safe, other.timelock, infra.multisend_call_only, vault.exit_module or ZERO_ADDRESS,
         infra.fallback_handler, vault.guard, compile_policy(vault.policy).as_tuple()],
    )  # fmt: skip
    return [
        ("another vault's guard", other.guard, "CustodyGuardSuccessorNotRegistered", (other.guard, other.safe)),
        ("a guard that always reverts", reverting, "CustodyGuardSuccessorNotRegistered", (reverting, ZERO_ADDRESS)),
        ("a lookalike bound to another timelock", lookalike, "CustodyGuardSuccessorNotRegistered", (lookalike, ZERO_ADDRESS)),
        ("the guard itself", vault.guard, "CustodyGuardSuccessorMismatch", (vault.guard, 6)),  # Binding.PreviousGuard
    ]  # fmt: skip


def test_no_bad_guard_can_be_installed_and_a_good_successor_can(session, vault):
    for what, guard, error, args in _bad_guards(session, vault):
        install = config_call(vault.safe, "setGuard(address)", ["address"], [guard])
        outcome = owners_schedule(session, vault, vault.safe, install)
        assert (outcome.error, outcome.args) == (error, args), what
    # a guard lacking the configuration kinds cannot even be built; deployFor is closed while a guard is in office
    deployer = session.contract("GuardDeployer", session.infrastructure().guard_deployer)
    crippled = compile_policy(vault.policy).as_tuple()
    crippled = (*crippled[:6], KIND_BITS["owners"], *crippled[7:])
    sent = send_as(
        session,
        0,
        deployer.address,
        bytes.fromhex(deployer.encode_abi("deploySuccessor", [vault.guard, crippled, vault.as_clone])[2:]),
    )
    assert (sent.error, sent.args) == (
        "CustodyGuardInvalidConfig",
        ("timelock kinds must include every configuration change",),
    )
    infra = session.infrastructure()
    sent = send_as(session, 0, deployer.address, bytes.fromhex(deployer.encode_abi("deployFor", [
        vault.safe, vault.timelock, infra.multisend_call_only, vault.exit_module or ZERO_ADDRESS,
        infra.fallback_handler, compile_policy(vault.policy).as_tuple(), vault.as_clone])[2:]))  # fmt: skip
    assert (sent.error, sent.args) == ("GuardDeployerGuardInstalled", (vault.safe,))
    # positive control: a real successor installs, and the vault keeps its configuration path
    successor = deployer.functions.deploySuccessor(vault.guard, compile_policy(vault.policy).as_tuple(), vault.as_clone)
    new_guard = successor.call()
    assert send_as(
        session,
        0,
        deployer.address,
        bytes.fromhex(
            deployer.encode_abi(
                "deploySuccessor", [vault.guard, compile_policy(vault.policy).as_tuple(), vault.as_clone]
            )[2:]
        ),
    ).ok
    install = config_call(vault.safe, "setGuard(address)", ["address"], [new_guard])
    assert owners_schedule(session, vault, vault.safe, install).allowed
    wait(session, vault.delay + 1)
    assert anyone_executes(session, vault, vault.safe, install).ok
    assert installed_guard(session, vault.safe) == new_guard
    pause = sel("setPaused(bool)") + encode(["bool"], [False])
    assert owners_schedule(session, vault, new_guard, pause, salt=b"\x09" * 32).allowed


@pytest.mark.parametrize("binding", range(6))
def test_each_successor_binding_is_checked_even_if_the_registry_vouched(session, binding):
    """Defence in depth behind the registry: a guard the registry (forced here with anvil_setStorageAt) says
    belongs to the vault, that names the guard in office as its predecessor, but differs in one binding."""
    vault = make_vault(session, "cold.yaml")
    infra = session.infrastructure()
    bindings = [vault.safe, vault.timelock, infra.multisend_call_only, vault.exit_module, infra.fallback_handler]
    if binding < 5:
        bindings[binding] = STRANGER
    lookalike = deploy(
        session, "CustodyGuard", ["address"] * 6 + [CONFIG_ABI],
        [*bindings, vault.guard, compile_policy(vault.policy).as_tuple()],
    )  # fmt: skip
    # the deployer of this lookalike is an EOA (binding 5), unless we check an earlier binding
    slot = keccak(encode(["address", "uint256"], [lookalike, 0]))  # GuardDeployer.safeOf is its first mapping
    session.chain.rpc(
        "anvil_setStorageAt",
        [infra.guard_deployer, "0x" + slot.hex(), "0x" + bytes.fromhex(vault.safe[2:]).rjust(32, b"\0").hex()],
    )
    assert session.contract("GuardDeployer", infra.guard_deployer).functions.safeOf(lookalike).call() == vault.safe
    install = config_call(vault.safe, "setGuard(address)", ["address"], [lookalike])
    outcome = owners_schedule(session, vault, vault.safe, install)
    assert (outcome.error, outcome.args) == ("CustodyGuardSuccessorMismatch", (lookalike, binding))


def test_concurrent_guard_swaps_cannot_reset_the_rolling_window(session):
    """Two successors of the same guard, both ready: the second would seed its window from a guard that
    is no longer in office. The timelock asks the guard in office at execution, which refuses it."""
    vault = make_vault(session, "hot.yaml")
    deployer = session.contract("GuardDeployer", session.infrastructure().guard_deployer)
    config = compile_policy(vault.policy)
    other_config = load_policy_text(vault.policy.source_text.replace('daily_limit: "20"', 'daily_limit: "19"'))
    guards = []
    for cfg in (config.as_tuple(), compile_policy(other_config).as_tuple()):
        assert send_as(
            session,
            0,
            deployer.address,
            bytes.fromhex(deployer.encode_abi("deploySuccessor", [vault.guard, cfg, vault.as_clone])[2:]),
        ).ok
        guards.append(deployer.functions.deploySuccessor(vault.guard, cfg, vault.as_clone).call())
    b, c = guards
    install_b = config_call(vault.safe, "setGuard(address)", ["address"], [b])
    install_c = config_call(vault.safe, "setGuard(address)", ["address"], [c])
    assert owners_schedule(session, vault, vault.safe, install_b, salt=b"\x0b" * 32).allowed
    assert owners_schedule(session, vault, vault.safe, install_c, salt=b"\x0c" * 32).allowed
    wait(session, vault.delay + 1)
    assert anyone_executes(session, vault, vault.safe, install_b, salt=b"\x0b" * 32).ok
    late = anyone_executes(session, vault, vault.safe, install_c, salt=b"\x0c" * 32)
    assert (late.error, late.args) == ("CustodyGuardSuccessorMismatch", (c, 6))  # Binding.PreviousGuard
    assert installed_guard(session, vault.safe) == b


# -- route 3: timelock operation kinds and roles ------------------------------------------------------------


def test_a_granted_proposer_bypasses_a_vanilla_timelock_but_vault_roles_are_fixed(session, vault):
    # control: OpenZeppelin's TimelockController administers itself, so a scheduled grantRole works
    proposer = anvil_address(1)
    plain = deploy(session, "PlainTimelock", ["uint256", "address[]", "address[]"], [3600, [proposer], [ZERO_ADDRESS]])
    lock = session.contract("PlainTimelock", plain)
    role = lock.functions.PROPOSER_ROLE().call()
    grant = sel("grantRole(bytes32,address)") + encode(["bytes32", "address"], [role, ATTACKER])
    assert send_as(session, 1, plain, schedule_payload(plain, grant, 3600)).ok
    wait(session, 3601)
    assert send_as(session, 9, plain, execute_payload(plain, grant)).ok
    assert lock.functions.hasRole(role, ATTACKER).call()

    # the vault: the guard refuses to schedule it ...
    grant = sel("grantRole(bytes32,address)") + encode(["bytes32", "address"], [role, ATTACKER])
    outcome = owners_schedule(session, vault, vault.timelock, grant)
    assert (outcome.error, outcome.args) == ("CustodyGuardTimelockKindForbidden", (0, vault.timelock, grant[:4]))
    # ... and even the timelock itself (or the Safe) cannot grant, revoke or renounce a role
    session.chain.rpc("anvil_impersonateAccount", [vault.timelock])
    session.chain.rpc("anvil_setBalance", [vault.timelock, hex(ETH)])
    for data in (
        grant,
        sel("revokeRole(bytes32,address)") + grant[4:],
        sel("renounceRole(bytes32,address)") + grant[4:],
    ):
        tx = session.chain.w3.eth.send_transaction(
            {"from": vault.timelock, "to": vault.timelock, "data": data, "gas": 200_000}
        )
        assert session.chain.w3.eth.wait_for_transaction_receipt(tx)["status"] == 0
        trace = session.chain.rpc("debug_traceTransaction", ["0x" + bytes(tx).hex(), {"tracer": "callTracer"}])
        assert trace["output"] == "0x" + sel("VaultTimelockRolesFixed()").hex()
    session.chain.rpc("anvil_stopImpersonatingAccount", [vault.timelock])
    assert not session.contract("VaultTimelock", vault.timelock).functions.hasRole(role, ATTACKER).call()


def test_a_nested_schedule_escapes_classification_only_without_a_guard(session, vault):
    inner = config_call(vault.safe, "setGuard(address)", ["address"], [STRANGER])
    nested_schedule = schedule_payload(vault.safe, inner, vault.delay, b"\x0e" * 32)
    # control: a vault without a guard lets the timelock make the Safe schedule an unclassified operation
    control = make_vault(session, vault.record.policy_path.rsplit("/", 1)[-1], name="nested-control", with_guard=False)
    via_module = module_call(
        control.safe, control.timelock, 0, schedule_payload(control.safe, inner, control.delay, b"\x0e" * 32)
    )
    assert owners_schedule(session, control, control.safe, via_module).allowed
    wait(session, control.delay + 1)
    assert anyone_executes(session, control, control.safe, via_module).ok
    lock = session.contract("VaultTimelock", control.timelock)
    inner_id = lock.functions.hashOperation(control.safe, 0, inner, b"\x00" * 32, b"\x0e" * 32).call()
    assert lock.functions.isOperation(inner_id).call()
    # the vault: refused, whatever kinds the template lists
    via_module = module_call(vault.safe, vault.timelock, 0, nested_schedule)
    outcome = owners_schedule(session, vault, vault.safe, via_module)
    assert (outcome.error, outcome.args) == ("CustodyGuardTimelockKindForbidden", (0, vault.safe, via_module[:4]))


HIDDEN_ROUTES = {
    # name: (builder(vault, session) -> (target, payload), expected error, args builder)
    "delegatecall through the timelock": (
        lambda v, s: (v.safe, module_call(v.safe, STRANGER, 0, b"\x12\x34\x56\x78", operation=1)),
        "CustodyGuardTimelockKindForbidden", lambda v, p: (0, v.safe, p[:4]),
    ),
    "an arbitrary call in the vault's name": (
        lambda v, s: (v.safe, module_call(v.safe, s.infrastructure().guard_deployer, 0, sel("deployFor(address)") + b"\x00" * 32)),
        "CustodyGuardTimelockKindForbidden", lambda v, p: (0, v.safe, p[:4]),
    ),
    "a foreign module": (
        lambda v, s: (v.safe, config_call(v.safe, "enableModule(address)", ["address"], [STRANGER])),
        "CustodyGuardModuleForbidden", lambda v, p: (STRANGER,),
    ),
    "disabling the timelock": (
        lambda v, s: (v.safe, config_call(v.safe, "disableModule(address,address)", ["address", "address"],
                                          ["0x0000000000000000000000000000000000000001", v.timelock])),
        "CustodyGuardModuleForbidden", lambda v, p: (v.timelock,),
    ),
    "disabling the timelock with dirty address bits": (
        lambda v, s: (v.safe, module_call(v.safe, v.safe, 0, sel("disableModule(address,address)")
                                          + encode(["uint256", "uint256"], [1, int(v.timelock, 16) | 1 << 200]))),
        "CustodyGuardTimelockKindForbidden", lambda v, p: (0, v.safe, p[:4]),
    ),
    "Safe's CompatibilityFallbackHandler (ERC-1271 on owner signatures)": (
        lambda v, s: (v.safe, config_call(v.safe, "setFallbackHandler(address)", ["address"], [s.infrastructure().safe_fallback_handler])),
        "CustodyGuardFallbackHandlerForbidden", lambda v, p: (v.session_infra.safe_fallback_handler,),
    ),
    "an instant timelock": (
        lambda v, s: (v.timelock, sel("updateDelay(uint256)") + encode(["uint256"], [0])),
        "CustodyGuardDelayOutOfRange", lambda v, p: (0, MIN_TIMELOCK_DELAY, MAX_TIMELOCK_DELAY),
    ),
    "a timelock locked for ages": (
        lambda v, s: (v.timelock, sel("updateDelay(uint256)") + encode(["uint256"], [2**200])),
        "CustodyGuardDelayOutOfRange", lambda v, p: (2**200, MIN_TIMELOCK_DELAY, MAX_TIMELOCK_DELAY),
    ),
    "a message approved through the timelock": (
        lambda v, s: (v.guard, sel("approveMessage(bytes32,bytes32)") + b"\x01" * 64),
        "CustodyGuardTimelockKindForbidden", lambda v, p: (0, v.guard, p[:4]),
    ),
    "value sent into the vault's own timelock": (
        lambda v, s: (v.safe, module_call(v.safe, v.timelock, ETH, b"")),
        "CustodyGuardTimelockKindForbidden", lambda v, p: (0, v.safe, p[:4]),
    ),
    "removing the guard on the normal delay": (
        lambda v, s: (v.safe, config_call(v.safe, "setGuard(address)", ["address"], [ZERO_ADDRESS])),
        "CustodyGuardZeroGuardDelay", lambda v, p: (v.delay, 2 * v.delay),
    ),
}  # fmt: skip


@pytest.mark.parametrize("route", sorted(HIDDEN_ROUTES))
def test_routes_the_first_review_did_not_list_are_refused(session, vault, route):
    build, error, expected = HIDDEN_ROUTES[route]
    vault.session_infra = session.infrastructure()
    target, payload = build(vault, session)
    outcome = owners_schedule(session, vault, target, payload)
    assert (outcome.error, outcome.args) == (error, expected(vault, payload)), route


def test_the_permitted_configuration_changes_still_pass(session, vault):
    """Positive control for the routes above: the same path carries what the policy allows."""
    allowed = [
        (vault.safe, config_call(vault.safe, "setFallbackHandler(address)", ["address"], [ZERO_ADDRESS]), vault.delay),
        (vault.timelock, sel("updateDelay(uint256)") + encode(["uint256"], [vault.delay]), vault.delay),
        (
            vault.safe,
            config_call(vault.safe, "changeThreshold(uint256)", ["uint256"], [vault.policy.threshold]),
            vault.delay,
        ),
        (vault.safe, config_call(vault.safe, "setGuard(address)", ["address"], [ZERO_ADDRESS]), 2 * vault.delay),
    ]
    if vault.exit_module:
        allowed.append(
            (vault.safe, config_call(vault.safe, "disableModule(address,address)", ["address", "address"],
                                     ["0x0000000000000000000000000000000000000001", vault.exit_module]), vault.delay)
        )  # fmt: skip
    for i, (target, payload, delay) in enumerate(allowed):
        outcome = owners_schedule(session, vault, target, payload, delay=delay, salt=bytes([0x20 + i]) * 32)
        assert outcome.allowed, (i, outcome)


# -- route 4: ready timelock operations obey pause, time windows and the rolling window ---------------------


def test_timelocked_transfers_obey_pause_freeze_and_the_rolling_window(session, vault):
    amount = vault.daily + ETH  # more than a whole day's limit, to a destination no allowlist names
    transfer = module_call(vault.safe, STRANGER, amount, b"")
    outcome = owners_schedule(session, vault, vault.safe, transfer)
    if "unlisted_transfer" not in vault.policy.timelock_operations:
        assert (outcome.error, outcome.args) == (
            "CustodyGuardTimelockKindForbidden", (KIND_BITS["unlisted_transfer"], vault.safe, transfer[:4])
        )  # fmt: skip
        return
    assert outcome.allowed
    wait(session, vault.delay + 1)
    # paused: the owners freeze the vault, and the ready transfer waits
    assert owners_exec(session, vault, vault.guard, sel("setPaused(bool)") + encode(["bool"], [True])).allowed
    refused = anyone_executes(session, vault, vault.safe, transfer)
    assert (refused.error, refused.args) == ("CustodyGuardPaused", ())
    unpause = sel("setPaused(bool)") + encode(["bool"], [False])
    assert owners_schedule(session, vault, vault.guard, unpause, salt=b"\x31" * 32).allowed  # config still passes
    wait(session, vault.delay + 1)
    assert anyone_executes(session, vault, vault.guard, unpause, salt=b"\x31" * 32).ok
    # inside a freeze window / outside allowed hours: still refused
    now = session.chain.latest_timestamp()
    if vault.policy.freeze_windows:
        start = vault.policy.freeze_windows[0].week_start
        target = next_week_at(now, 0, start + 60)
        error = "CustodyGuardFrozen"
    else:
        target = next_week_at(now, 1, vault.policy.allowed_hours.end_minute * 60 + 60)
        error = "CustodyGuardOutsideAllowedHours"
    session.chain.set_next_timestamp(target)
    refused = anyone_executes(session, vault, vault.safe, transfer)
    assert refused.error == error, refused
    # in allowed time it goes through, and it uses up the rolling window of the owners' own transfers
    session.chain.set_next_timestamp(next_week_at(target, 1, 10 * 3600))
    before = balance(session, STRANGER)
    assert anyone_executes(session, vault, vault.safe, transfer).ok
    assert balance(session, STRANGER) - before == amount
    small = owners_exec(session, vault, vault.allowed, value=ETH)
    assert (small.error, small.args) == (
        "CustodyGuardDailyLimitExceeded",
        (ZERO_ADDRESS, ETH, vault.daily, vault.daily),
    )


def test_an_operation_scheduled_under_a_looser_policy_obeys_the_stricter_one_in_force(session):
    vault = make_vault(session, "cold.yaml")
    transfer = module_call(vault.safe, STRANGER, ETH, b"")
    assert owners_schedule(session, vault, vault.safe, transfer, salt=b"\x41" * 32).allowed
    stricter = load_policy_text(vault.policy.source_text.replace(", unlisted_transfer]", "]"))
    deployer = session.contract("GuardDeployer", session.infrastructure().guard_deployer)
    cfg = compile_policy(stricter).as_tuple()
    assert send_as(
        session,
        0,
        deployer.address,
        bytes.fromhex(deployer.encode_abi("deploySuccessor", [vault.guard, cfg, vault.as_clone])[2:]),
    ).ok
    new_guard = deployer.functions.deploySuccessor(vault.guard, cfg, vault.as_clone).call()
    install = config_call(vault.safe, "setGuard(address)", ["address"], [new_guard])
    assert owners_schedule(session, vault, vault.safe, install, salt=b"\x42" * 32).allowed
    wait(session, vault.delay + 1)
    assert anyone_executes(session, vault, vault.safe, install, salt=b"\x42" * 32).ok
    refused = anyone_executes(session, vault, vault.safe, transfer, salt=b"\x41" * 32)
    assert (refused.error, refused.args) == (
        "CustodyGuardTimelockKindForbidden", (KIND_BITS["unlisted_transfer"], vault.safe, transfer[:4])
    )  # fmt: skip


# -- route 5: vault creation cannot be front-run --------------------------------------------------------


def _initializer(session, policy, name):
    infra = session.infrastructure()
    params = service._vault_params(policy, name)
    factory = session.contract("MicroVaultFactory", infra.vault_factory)
    safe, timelock = factory.functions.predictVault(params, session.sender.address).call()
    setup_contract = session.contract("VaultSetup", infra.vault_setup)
    configure = setup_contract.encode_abi("configure", [
        infra.vault_factory, [timelock], True, params[6], infra.multisend_call_only, infra.fallback_handler, params[7],
        params[8], params[9],
    ])  # fmt: skip
    setup = session.contract("SafeL2", infra.safe_singleton).encode_abi("setup", [
        policy.owner_addresses, policy.threshold, infra.vault_setup, bytes.fromhex(configure[2:]), infra.fallback_handler,
        ZERO_ADDRESS, 0, ZERO_ADDRESS,
    ])  # fmt: skip
    salt = int.from_bytes(keccak(encode(["address", "bytes32"], [session.sender.address, params[4]])), "big")
    return safe, timelock, bytes.fromhex(setup[2:]), salt


@pytest.mark.parametrize("template", TEMPLATES)
def test_replaying_a_vaults_initializer_on_the_proxy_factory_is_refused(session, template):
    infra = session.infrastructure()
    proxy_factory = session.contract("SafeProxyFactory", infra.proxy_factory)

    def create(sender: int, initializer: bytes, salt: int):
        data = proxy_factory.encode_abi("createProxyWithNonce", [infra.safe_singleton, initializer, salt])
        return send_as(session, sender, infra.proxy_factory, bytes.fromhex(data[2:]))

    # control: a plain Safe's initializer and salt are public; whoever sends first takes the address
    plain = session.contract("SafeL2", infra.safe_singleton).encode_abi("setup", [
        [anvil_address(1)], 1, ZERO_ADDRESS, b"", infra.safe_fallback_handler, ZERO_ADDRESS, 0, ZERO_ADDRESS,
    ])  # fmt: skip
    assert create(9, bytes.fromhex(plain[2:]), 77).ok  # the front-runner
    assert not create(0, bytes.fromhex(plain[2:]), 77).ok  # the victim, forever

    policy = load_policy(POLICIES / template)
    safe, timelock, initializer, salt = _initializer(session, policy, policy.name)
    sent = create(9, initializer, salt)
    assert (sent.error, sent.args) == ("VaultSetupNotByFactory", (infra.vault_factory, timelock))
    assert codehash(session.chain, safe) is None
    record, _ = service.create_vault(session, POLICIES / template)
    assert record.safe == safe and record.timelock == timelock


# -- route 6: floors checked by the contracts, not only by `policy check` -------------------------------


def test_the_contracts_enforce_delay_and_custodian_floors(session):
    # control: a vanilla timelock takes any delay
    assert deploy(session, "PlainTimelock", ["uint256", "address[]", "address[]"], [0, [], []])
    infra = session.infrastructure()
    factory = session.contract("MicroVaultFactory", infra.vault_factory)
    policy = load_policy(POLICIES / "cold.yaml")

    def create(name: str, **changes):
        params = list(service._vault_params(policy, name))
        if "delay" in changes:
            params[2] = changes["delay"]
        if "exit" in changes:
            params[9] = changes["exit"](params, factory.functions.predictVault(params, anvil_address(0)).call())
        return send_as(
            session, 0, infra.vault_factory, bytes.fromhex(factory.encode_abi("createVault", [tuple(params)])[2:])
        )

    for delay in (0, MIN_TIMELOCK_DELAY - 1, MAX_TIMELOCK_DELAY + 1):
        sent = create(f"delay-{delay}", delay=delay)
        assert (sent.error, sent.args) == (
            "VaultTimelockDelayOutOfRange",
            (delay, MIN_TIMELOCK_DELAY, MAX_TIMELOCK_DELAY),
        )
    sent = create("no-escrow", exit=lambda p, predicted: (p[9][0], p[9][1], p[9][2], 0, p[9][4], p[9][5]))
    assert (sent.error, sent.args) == ("ExitModuleInvalidConfig", ("escrow delay out of range",))
    sent = create(
        "self-custody", exit=lambda p, predicted: ([predicted[1]], p[9][1], p[9][2], p[9][3], p[9][4], p[9][5])
    )
    assert (sent.error, sent.args) == ("ExitModuleInvalidConfig", ("bad custodian",))
    assert create("within-floors").ok  # positive control: the same raw path with the template's values


def test_the_exit_module_refuses_a_vault_component_as_custodian_at_any_time(session):
    vault = make_vault(session, "cold.yaml")
    exit_config = (
        [vault.guard],
        [],
        1,
        3600,
        True,
        [a.token for a in vault.policy.assets if a.token],
    )
    configure = sel("configure((address[],address[],uint256,uint256,bool,address[]))") + encode(
        ["(address[],address[],uint256,uint256,bool,address[])"], [exit_config]
    )
    assert owners_schedule(session, vault, vault.exit_module, configure).allowed
    wait(session, vault.delay + 1)
    refused = anyone_executes(session, vault, vault.exit_module, configure)
    assert (refused.error, refused.args) == ("ExitModuleInvalidConfig", ("bad custodian",))


# -- route 7: the guard never panics when the clock runs backwards ----------------------------------------


def test_a_clock_that_goes_back_neither_panics_nor_forgets_a_spend(session, vault):
    spends = vault.daily // vault.per_tx  # fill the day, leaving less than one transfer's worth
    for _ in range(spends):
        assert owners_exec(session, vault, vault.allowed, value=vault.per_tx).allowed
    spent = spends * vault.per_tx
    remaining = vault.daily - spent
    now = session.chain.latest_timestamp()
    session.chain.rpc("evm_setTime", [now - 5400])  # 1.5 h back: a restored node, a reset clock
    # no panic 0x11 in the guard, and the earlier spends still count
    over = owners_exec(session, vault, vault.allowed, value=remaining + 1)
    assert (over.error, over.args) == (
        "CustodyGuardDailyLimitExceeded",
        (ZERO_ADDRESS, remaining + 1, spent, vault.daily),
    )
    if remaining:
        assert owners_exec(session, vault, vault.allowed, value=remaining).allowed


# -- the raw-web3 bypass, with its positive control ----------------------------------------------------------


def test_fully_signed_raw_web3_transactions_obey_the_policy(session, vault):
    """All owners sign, raw web3 sends: an allowlisted transfer within limits goes through, the same
    transaction to a stranger is refused by the chain with the guard's decoded error."""
    nonce = session.contract("SafeL2", vault.safe).functions.nonce().call()
    before = balance(session, vault.allowed)
    assert owners_exec(session, vault, vault.allowed, value=ETH).allowed
    assert balance(session, vault.allowed) - before == ETH
    refused = owners_exec(session, vault, STRANGER, value=ETH)
    assert (refused.error, refused.args) == ("CustodyGuardDestinationNotAllowed", (ZERO_ADDRESS, STRANGER))
    assert balance(session, STRANGER) == 0
    assert session.contract("SafeL2", vault.safe).functions.nonce().call() == nonce + 1


def test_the_guard_slot_is_what_the_safe_reads(session, vault):
    """The attacks above judge vaults by the guard the Safe really consults (its storage slot)."""
    raw = session.chain.w3.eth.get_storage_at(vault.safe, GUARD_SLOT)
    assert int.from_bytes(raw, "big") == int(vault.guard, 16)
    assert erc1271(session, vault.safe, b"\x00" * 32) != ERC1271_MAGIC
