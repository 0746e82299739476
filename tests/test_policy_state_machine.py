"""Owners who agree on everything, across every entry point of a vault, at once (hypothesis stateful test).

A cold vault; the owners (at threshold) mix transfers, ERC-1271 signatures and approved hashes handed to
a USDC v2.2-style token, message approvals, timelock role grants, guard swaps (foreign, broken, a real
successor), timelocked transfers, pause, unpause, the emergency exit and the passage of time, with
waits that land on delay - 1, the delay itself and rolling-window edges, and executions aimed at exactly
``readyAt - 1`` and ``readyAt`` of a scheduled operation (``readyAt`` = the scheduling block's time + the
delay) and of a pending exit (the initiation's time + the escrow delay, also ``readyAt - 60``). After every step:

- an operation executes only once it is ready and is never refused as not ready once it is: before
  ``readyAt`` the timelock answers ``TimelockUnexpectedOperationState`` and the exit ``ExitModuleTooEarly``,
  from ``readyAt`` on neither does (the model's own clock, not the contracts', decides which);

- funds left only within policy: owner-signed ETH reached allowlisted destinations only, and no 24 h
  window saw more than the daily limit; anything else left through an executed timelock operation the
  policy lists, or through the exit to the listed custodian;
- the token moved by no signature at all;
- the vault can always recover: its timelock is still an enabled module, bound to it, and the guard in
  office (if any) is a registry CustodyGuard bound to this Safe and timelock with every configuration kind.
"""

from __future__ import annotations

import os
from typing import ClassVar

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import keccak
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from custody.policy.compiled import compile_policy
from custody.policy.onchain import installed_guard
from custody.policy.template import load_policy
from custody.signers.ecdsa import sign_digest_with_key
from custody.signers.local import anvil_address, anvil_private_key
from custody.vault import service
from tests.attack_helpers import (
    approve_hash,
    approved_hash_signatures,
    authorization_digest,
    config_call,
    deploy,
    execute_payload,
    owner_signatures,
    safe_message_hash,
    schedule_payload,
    send_as,
    transfer_with_authorization,
)
from tests.conftest import POLICIES
from tests.guard_harness import module_call, submit

RUNS, STEPS = 6, 40
ETH = 10**18
TEMPLATE = POLICIES / "cold.yaml"
POLICY = load_policy(TEMPLATE)
OWNERS = (1, 2, 3)
SIGNERS = (1, 2)  # threshold 2
ALLOWED = tuple(e.address for e in POLICY.asset(None).allowlist)
STRANGER = "0x000000000000000000000000000000000000bEEF"
CUSTODIAN = POLICY.exit.custodians[0].address
DAILY = POLICY.asset(None).daily_limit
PER_TX = POLICY.asset(None).per_tx_limit
DELAY = POLICY.timelock_delay
ESCROW = POLICY.exit.escrow_delay
REQUIRED_KINDS = 0x3F
WAITS = [1, 3599, 3600, DELAY - 1, DELAY, DELAY + 1, 86399, 86400, 90000, ESCROW - 1, ESCROW]


class OwnersEverywhere(RuleBasedStateMachine):
    session = None
    runs = 0
    steps = 0
    edges_hit: ClassVar[set[tuple[str, int]]] = set()  # ("timelock" | "exit", offset) landed on exactly

    @initialize()
    def setup(self):
        s = type(self).session
        type(self).runs += 1
        self.snapshot = s.chain.snapshot()
        record, _ = service.create_vault(s, TEMPLATE, name=f"everywhere-{type(self).runs}")
        self.vault = record
        self.guard = record.guard
        self.funded = 4 * DAILY
        s.send(to=record.safe, value=self.funded, what="fund")
        self.token = deploy(s, "AuthorizationToken")
        send_as(s, 0, self.token, sel("mint(address,uint256)") + encode(["address", "uint256"], [record.safe, 10**12]))
        self.owner_outflows: list[tuple[int, int]] = []  # (time, wei) of owner-signed ETH transfers
        self.scheduled: dict[bytes, tuple[str, bytes, str, int]] = {}  # salt -> (target, payload, what, readyAt)
        self.timelocked_out = 0  # ETH moved by executed timelock transfers (the policy lists unlisted_transfer)
        self.exit_pending = False
        self.exit_ready = 0  # readyAt of the pending exit: its initiation's block time + the escrow delay
        self.exit_out = 0
        self.salt = 0
        self.start = {a: s.chain.w3.eth.get_balance(a) for a in (*ALLOWED, STRANGER, CUSTODIAN)}

    def teardown(self):
        type(self).session.chain.revert(self.snapshot)

    # -- helpers ------------------------------------------------------------------------------------------
    @property
    def s(self):
        return type(self).session

    def _now(self) -> int:
        return self.s.chain.latest_timestamp()

    def _mined_at(self, tx_hash: str) -> int:
        w3 = self.s.chain.w3
        return int(w3.eth.get_block(w3.eth.get_transaction_receipt(tx_hash)["blockNumber"])["timestamp"])

    def _land_next_block_at(self, timestamp: int) -> bool:
        """The next block is mined at exactly ``timestamp``, if that is still ahead of the chain's clock."""
        if timestamp <= self._now():
            return False
        self.s.chain.set_next_timestamp(timestamp)
        return True

    def _exec(self, to, value=0, data=b""):
        return submit(self.s, self.vault, to=to, value=value, data=data, signers=SIGNERS)

    def _schedule(self, target, payload, what, delay=DELAY):
        self.salt += 1
        salt = self.salt.to_bytes(32, "big")
        outcome = self._exec(self.vault.timelock, data=schedule_payload(target, payload, delay, salt))
        if outcome.allowed and not outcome.inner_failed:
            self.scheduled[salt] = (target, payload, what, outcome.timestamp + delay)
        return outcome

    # -- owner-signed transfers ---------------------------------------------------------------------------
    @rule(
        to=st.sampled_from([*ALLOWED, STRANGER]),
        amount=st.sampled_from([1, PER_TX - 1, PER_TX, PER_TX + 1, DAILY // 3]),
    )
    def transfer(self, to, amount):
        before = self.s.chain.w3.eth.get_balance(self.vault.safe)
        outcome = self._exec(to, value=amount)
        moved = before - self.s.chain.w3.eth.get_balance(self.vault.safe)
        if outcome.allowed and not outcome.inner_failed:
            assert to in ALLOWED and moved == amount, outcome
            self.owner_outflows.append((outcome.timestamp, amount))
        else:
            assert moved == 0

    # -- signatures handed to a token that accepts ERC-1271 -------------------------------------------------
    @rule(proof=st.sampled_from(["ecdsa", "approved_hash"]), amount=st.sampled_from([1, 10**9]))
    def erc1271_transfer(self, proof, amount):
        nonce = keccak(text=f"{self.salt}-{amount}-{proof}")
        self.salt += 1
        digest = authorization_digest(self.s, self.token, self.vault.safe, STRANGER, amount, nonce)
        message = safe_message_hash(self.s, self.vault.safe, digest)
        owners = [anvil_address(i) for i in SIGNERS]
        if proof == "ecdsa":
            signature = owner_signatures(message, owners)
        else:
            for owner in owners:
                approve_hash(self.s, self.vault.safe, owner, message)
            signature = approved_hash_signatures(owners)
        sent = send_as(
            self.s,
            9,
            self.token,
            transfer_with_authorization(self.token, self.vault.safe, STRANGER, amount, nonce, signature),
        )
        assert sent.error == "AuthorizationTokenInvalidSignature", sent

    @rule()
    def approve_token_message(self):
        separator = bytes(self.s.contract("AuthorizationToken", self.token).functions.DOMAIN_SEPARATOR().call())
        data = sel("approveMessage(bytes32,bytes32)") + separator + b"\x05" * 32
        assert self._exec(self.guard, data=data).error == "CustodyGuardMessageDomainForbidden"

    # -- the timelock ---------------------------------------------------------------------------------------
    @rule()
    def grant_proposer_role(self):
        role = keccak(text="PROPOSER_ROLE")
        grant = sel("grantRole(bytes32,address)") + encode(["bytes32", "address"], [role, anvil_address(9)])
        assert self._schedule(self.vault.timelock, grant, "grant").error == "CustodyGuardTimelockKindForbidden"

    @rule(kind=st.sampled_from(["foreign", "broken", "successor", "remove_short"]))
    def swap_guard(self, kind):
        guard = self.guard
        if guard is None:
            return
        if kind == "foreign":
            other, _ = service.create_vault(self.s, TEMPLATE, name=f"foreign-{self.salt}-{type(self).runs}")
            self.salt += 1
            target = other.guard
        elif kind == "broken":
            target = deploy(self.s, "RevertingGuard")
        elif kind == "remove_short":
            target = "0x" + "00" * 20
        else:
            deployer = self.s.contract("GuardDeployer", self.s.infrastructure().guard_deployer)
            cfg = compile_policy(POLICY).as_tuple()
            assert send_as(
                self.s,
                0,
                deployer.address,
                bytes.fromhex(
                    deployer.encode_abi("deploySuccessor", [guard, cfg, POLICY.guard_deployment == "clone"])[2:]
                ),
            ).ok
            target = deployer.functions.deploySuccessor(guard, cfg, POLICY.guard_deployment == "clone").call()
        outcome = self._schedule(
            self.vault.safe, config_call(self.vault.safe, "setGuard(address)", ["address"], [target]), f"guard {kind}"
        )
        assert outcome.allowed == (kind == "successor"), (kind, outcome)

    @rule(to=st.sampled_from([STRANGER, *ALLOWED]), amount=st.sampled_from([ETH, DAILY + ETH]))
    def schedule_transfer(self, to, amount):
        outcome = self._schedule(self.vault.safe, module_call(self.vault.safe, to, amount, b""), "transfer")
        # the template lists unlisted_transfer only: a transfer to an allowlisted destination goes without delay
        assert outcome.allowed == (to not in ALLOWED), outcome

    @rule()
    def schedule_unpause(self):
        data = sel("setPaused(bool)") + encode(["bool"], [False])
        assert self._schedule(self.guard, data, "unpause").allowed

    @precondition(lambda self: getattr(self, "scheduled", None))
    @rule(data=st.data())
    def execute_ready(self, data):
        self._execute_scheduled(data.draw(st.sampled_from(sorted(self.scheduled))))

    @precondition(lambda self: getattr(self, "scheduled", None))
    @rule(data=st.data())
    def execute_across_the_ready_edge(self, data):
        """Execute a scheduled operation in a block mined at exactly its ``readyAt - 1`` (refused), then at
        ``readyAt``: each time the rule fires, both sides of the boundary are tried."""
        salt = data.draw(st.sampled_from(sorted(self.scheduled)))
        for offset in (-1, 0):
            if salt not in self.scheduled or not self._land_next_block_at(self.scheduled[salt][3] + offset):
                return
            type(self).edges_hit.add(("timelock", offset))
            self._execute_scheduled(salt)

    def _execute_scheduled(self, salt):
        target, payload, what, ready = self.scheduled[salt]
        before = self.s.chain.w3.eth.get_balance(self.vault.safe)
        sent = send_as(self.s, 9, self.vault.timelock, execute_payload(target, payload, salt))
        moved = before - self.s.chain.w3.eth.get_balance(self.vault.safe)
        # Invariant: ready exactly from readyAt on, by the model's clock
        if self._mined_at(sent.tx_hash) < ready:
            assert sent.error == "TimelockUnexpectedOperationState", (sent, ready)
        else:
            assert sent.error != "TimelockUnexpectedOperationState", (sent, ready)
        if sent.ok:
            del self.scheduled[salt]
            if what == "transfer":
                self.timelocked_out += moved
            elif what.startswith("guard"):
                self.guard = installed_guard(self.s, self.vault.safe)
        else:
            assert moved == 0
            # an unpause scheduled on a guard that was replaced since: the guard in office never lets the
            # timelock call another guard (kind 0)
            stale = sent.error == "CustodyGuardTimelockKindForbidden" and what == "unpause" and target != self.guard
            # a transfer waits for the delay, the end of a pause and of a freeze window; a guard swap for its turn
            assert stale or sent.error in (
                "TimelockUnexpectedOperationState", "CustodyGuardPaused", "CustodyGuardFrozen",
                "CustodyGuardSuccessorMismatch",
            ), sent  # fmt: skip
            if sent.error == "CustodyGuardSuccessorMismatch" or stale:
                del self.scheduled[salt]

    # -- pause and the exit -----------------------------------------------------------------------------
    @rule()
    def pause(self):
        outcome = self._exec(self.guard, data=sel("setPaused(bool)") + encode(["bool"], [True]))
        assert outcome.allowed

    @precondition(lambda self: hasattr(self, "vault") and not self.exit_pending)
    @rule()
    def initiate_exit(self):
        module = self.s.contract("ExitModule", self.vault.exit_module)
        deadline = self._now() + 3600
        digest = bytes(module.functions.requestDigest(CUSTODIAN, deadline).call())
        pairs = sorted(
            (anvil_address(i), sign_digest_with_key(anvil_private_key(i), digest).to_bytes()) for i in SIGNERS
        )
        pairs.sort(key=lambda p: int(p[0], 16))
        call = module.encode_abi("initiate", [CUSTODIAN, deadline, b"".join(b for _a, b in pairs)])
        sent = send_as(self.s, 9, self.vault.exit_module, bytes.fromhex(call[2:]))
        assert sent.ok
        self.exit_pending = True
        self.exit_ready = self._mined_at(sent.tx_hash) + ESCROW

    @precondition(lambda self: getattr(self, "exit_pending", False))
    @rule(action=st.sampled_from(["cancel", "finalize"]))
    def settle_exit(self, action):
        self._settle_exit(action)

    @precondition(lambda self: getattr(self, "exit_pending", False))
    @rule()
    def finalize_across_the_exit_edge(self):
        """Finalize the pending exit in blocks mined at exactly its ``readyAt - 60`` and ``readyAt - 1``
        (refused), then at ``readyAt``: each time the rule fires, both sides of the boundary are tried."""
        for offset in (-60, -1, 0):
            if not self.exit_pending or not self._land_next_block_at(self.exit_ready + offset):
                return
            type(self).edges_hit.add(("exit", offset))
            self._settle_exit("finalize")

    def _settle_exit(self, action):
        module = self.s.contract("ExitModule", self.vault.exit_module)
        before = self.s.chain.w3.eth.get_balance(self.vault.safe)
        sender = OWNERS[0] if action == "cancel" else 9
        sent = send_as(self.s, sender, self.vault.exit_module, bytes.fromhex(module.encode_abi(action, [])[2:]))
        if action == "finalize":
            # Invariant: the exit is final exactly from readyAt on, by the model's clock
            early = self._mined_at(sent.tx_hash) < self.exit_ready
            assert (sent.ok, sent.error) == ((False, "ExitModuleTooEarly") if early else (True, None)), sent
        if sent.ok:
            self.exit_pending = False
            self.exit_out += before - self.s.chain.w3.eth.get_balance(self.vault.safe)
        else:
            assert action == "finalize" and sent.error == "ExitModuleTooEarly", sent

    @rule(seconds=st.sampled_from(WAITS))
    def wait(self, seconds):
        self.s.chain.rpc("evm_increaseTime", [seconds])
        self.s.chain.mine()

    # -- invariants -----------------------------------------------------------------------------------------
    @invariant()
    def funds_left_only_within_policy(self):
        if not hasattr(self, "vault"):
            return
        type(self).steps += 1
        w3 = self.s.chain.w3
        gained = {a: w3.eth.get_balance(a) - self.start[a] for a in self.start}
        owner_out = sum(amount for _t, amount in self.owner_outflows)
        # the custodian received exactly what the exits swept; nothing leaves but through the three paths
        assert gained[CUSTODIAN] == self.exit_out
        assert sum(gained.values()) == owner_out + self.timelocked_out + self.exit_out
        assert w3.eth.get_balance(self.vault.safe) == self.funded - owner_out - self.timelocked_out - self.exit_out
        # no 24 h window of owner-signed transfers exceeds the daily limit
        for t, _amount in self.owner_outflows:
            assert sum(a for u, a in self.owner_outflows if t - 86400 < u <= t) <= DAILY
        # the token moved by no signature
        assert self.s.contract("AuthorizationToken", self.token).functions.balanceOf(STRANGER).call() == 0

    @invariant()
    def the_vault_can_always_recover(self):
        if not hasattr(self, "vault"):
            return
        safe = self.s.contract("SafeL2", self.vault.safe)
        assert safe.functions.isModuleEnabled(self.vault.timelock).call()
        assert self.s.contract("VaultTimelock", self.vault.timelock).functions.vault().call() == self.vault.safe
        guard = installed_guard(self.s, self.vault.safe)
        if guard is not None:
            registry = self.s.contract("GuardDeployer", self.s.infrastructure().guard_deployer)
            assert registry.functions.safeOf(guard).call() == self.vault.safe
            bindings = self.s.contract("CustodyGuard", guard).functions.bindings().call()
            assert bindings[0] == self.vault.safe and bindings[1] == self.vault.timelock
            assert bindings[7] & REQUIRED_KINDS == REQUIRED_KINDS


def test_owners_acting_everywhere_never_get_funds_past_the_policy(session):
    OwnersEverywhere.session = session
    runner = OwnersEverywhere.TestCase
    runner.settings = settings(
        max_examples=RUNS, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("CUSTODY_EXPLORE"),
    )  # fmt: skip
    runner().runTest()
    assert OwnersEverywhere.steps - OwnersEverywhere.runs >= RUNS * STEPS // 2
    landed = {("timelock", -1), ("timelock", 0), ("exit", -60), ("exit", 0)}
    assert landed <= OwnersEverywhere.edges_hit, f"never landed on {landed - OwnersEverywhere.edges_hit}"
