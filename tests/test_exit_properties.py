"""ExitModule state machine (hypothesis RuleBasedStateMachine, >= 1,000 steps against the deployed module,
driven directly — the service layer is exercised in test_exit_module.py).

Invariants: funds only ever leave to a pre-approved custodian; never before the escrow delay, and
always from exactly ``readyAt`` on (a rule aims ``finalize`` at ``readyAt − 61 … readyAt + 1``, where an
off-by-one or a grace period would show); a cancelled exit cannot be finalized; the configuration only
changes through the timelock.
"""

from __future__ import annotations

import itertools
import os
from typing import ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from custody.chain.logs import rpc_batch
from custody.contracts.deploy import read_many
from custody.signers.ecdsa import sign_digest_with_key
from custody.signers.local import anvil_address, anvil_private_key
from tests.resilience_helpers import COUNCIL, CUSTODIAN, ETH, OWNERS, SECOND_CUSTODIAN, resilient_vault

RUNS, STEPS = 16, 80
ESCROW = 2 * 3600  # tests/fixtures/policies/resilient.yaml: exit.escrow_delay
EDGE_OFFSETS = (-61, -60, -59, -2, -1, 0, 1)  # finalize at readyAt + offset
PEOPLE = sorted(set(COUNCIL) | set(OWNERS) | {8})  # council, owners, a stranger
APPROVED = {CUSTODIAN, SECOND_CUSTODIAN}


class ExitMachine(RuleBasedStateMachine):
    session = None
    runs = 0
    steps = 0
    last_time = 0
    edges_hit: ClassVar[set[int]] = set()  # the offsets at which finalize was mined at exactly readyAt + offset

    @initialize()
    def setup(self):
        s = type(self).session
        self.snapshot = s.chain.snapshot()
        type(self).runs += 1
        self.vault = resilient_vault(s, name=f"exit-sm-{type(self).runs}", eth=30 * ETH)
        self.module = s.contract("ExitModule", self.vault.exit_module)
        (self.config,) = read_many(s.chain, [self.module.functions.config()])
        self.t = max(s.chain.latest_timestamp(), type(self).last_time) + 10
        self.pending: tuple[str, int] | None = None  # (custodian, ready_at)
        self.watch = [CUSTODIAN, SECOND_CUSTODIAN, anvil_address(8), *[anvil_address(i) for i in COUNCIL]]
        self.balances = {a: s.chain.w3.eth.get_balance(a) for a in self.watch}
        self.vault_balance = s.chain.w3.eth.get_balance(self.vault.safe)

    def teardown(self):
        type(self).last_time = max(type(self).last_time, self.t)
        type(self).session.chain.revert(self.snapshot)

    def _tx(self, sender: int, data: bytes, value: int = 0, to: str | None = None) -> bool:
        s = type(self).session
        self.t = max(self.t + 1, s.chain.latest_timestamp() + 1)
        s.chain.set_next_timestamp(self.t)
        w3 = s.chain.w3
        tx_hash = w3.eth.send_transaction(
            {
                "from": anvil_address(sender),
                "to": to or self.vault.exit_module,
                "data": data,
                "value": value,
                "gas": 900_000,
            }
        )
        return w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.005)["status"] == 1

    @rule(custodian=st.sampled_from([CUSTODIAN, SECOND_CUSTODIAN, anvil_address(8)]),
          signers=st.lists(st.sampled_from(PEOPLE), min_size=0, max_size=3), shuffle=st.booleans())  # fmt: skip
    def initiate(self, custodian, signers, shuffle):
        deadline = self.t + 3600
        digest = bytes(self.module.functions.requestDigest(custodian, deadline).call())
        pairs = [(anvil_address(i), sign_digest_with_key(anvil_private_key(i), digest).to_bytes()) for i in signers]
        pairs.sort(key=lambda p: int(p[0], 16), reverse=shuffle)
        data = bytes.fromhex(
            self.module.encode_abi("initiate", [custodian, deadline, b"".join(b for _a, b in pairs)])[2:]
        )
        council = {anvil_address(i) for i in COUNCIL}
        addresses = [a for a, _b in pairs]
        ordered = all(int(x, 16) < int(y, 16) for x, y in itertools.pairwise(addresses))
        valid = ordered and all(a in council for a in addresses) and len(addresses) >= 2
        expected = self.pending is None and custodian in APPROVED and valid
        ok = self._tx(0, data)
        assert ok == expected, (custodian, signers, shuffle, self.pending)
        if ok:
            self.pending = (custodian, self.t + ESCROW)

    @rule(custodian=st.sampled_from(sorted(APPROVED)))
    def initiate_with_quorum(self, custodian):
        """A well-formed initiation (two council members, in address order): pending exits happen often."""
        self.initiate(custodian, list(COUNCIL[:2]), False)

    @rule(who=st.sampled_from(PEOPLE))
    def cancel(self, who):
        ok = self._tx(who, bytes.fromhex(self.module.encode_abi("cancel", [])[2:]))
        # Invariant: only an owner (policy: owners_can_cancel), the Safe or the timelock cancels.
        assert ok == (self.pending is not None and who in OWNERS)
        if ok:
            self.pending = None

    @rule(who=st.sampled_from(PEOPLE))
    def finalize(self, who):
        self._finalize(who)

    @precondition(lambda self: getattr(self, "pending", None) is not None)
    @rule(who=st.sampled_from(PEOPLE), offset=st.sampled_from(EDGE_OFFSETS))
    def finalize_at_the_escrow_edge(self, who, offset):
        """``finalize`` in a block mined at exactly ``readyAt + offset`` (when that is still ahead)."""
        target = self.pending[1] + offset
        self.t = max(self.t, target - 1)  # _tx mines at self.t + 1
        if self.t + 1 == target:
            type(self).edges_hit.add(offset)
        self._finalize(who)

    def _finalize(self, who):
        before = type(self).session.chain.w3.eth.get_balance(self.vault.safe)
        ok = self._tx(who, bytes.fromhex(self.module.encode_abi("finalize", [])[2:]))
        # Invariant: nothing moves before the delay; a cancelled (or never initiated) exit cannot finalize.
        assert ok == (self.pending is not None and self.t >= self.pending[1]), (self.t, self.pending)
        if ok:
            custodian = self.pending[0]
            self.balances[custodian] += before
            self.pending = None

    @rule(seconds=st.sampled_from([1, 60, 3599, 3600, 7199, 7200, 7201, 10000]))
    def wait(self, seconds):
        self.t += seconds

    @rule(amount=st.integers(min_value=1, max_value=5 * ETH))
    def deposit(self, amount):
        assert self._tx(1, b"", value=amount, to=self.vault.safe)

    @rule(who=st.sampled_from(PEOPLE))
    def reconfigure_without_timelock(self, who):
        data = bytes.fromhex(self.module.encode_abi("configure", [([anvil_address(8)], [], 1, 0, True, [])])[2:])
        assert not self._tx(who, data)

    @invariant()
    def funds_only_to_approved_custodians_and_config_fixed(self):
        if not hasattr(self, "module"):
            return
        type(self).steps += 1
        s = type(self).session
        # two JSON-RPC batches (this runs after every step): the watched balances, the module's reads
        balances = rpc_batch(s.chain, [("eth_getBalance", [address, "latest"]) for address in self.watch])
        for address, raw in zip(self.watch, balances):
            assert int(raw, 16) <= self.balances[address]  # nobody else gained
            if address in APPROVED:
                assert int(raw, 16) == self.balances[address]
        config, state = read_many(s.chain, [self.module.functions.config(), self.module.functions.state()])
        assert config == self.config
        assert (state == 1) == (self.pending is not None)


def test_exit_module_state_machine(session):
    ExitMachine.session = session
    runner = ExitMachine.TestCase
    runner.settings = settings(
        max_examples=RUNS, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=list(HealthCheck), derandomize=not os.environ.get("CUSTODY_EXPLORE"),
    )  # fmt: skip
    runner().runTest()
    assert ExitMachine.steps - ExitMachine.runs >= 1000
    assert any(offset < 0 for offset in ExitMachine.edges_hit), "finalize never landed just before readyAt"
