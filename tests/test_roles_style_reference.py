"""The Zodiac-Roles-style reference guard the benchmarks compare CustodyGuard with (RolesStyleGuard,
benchmarks/scenarios.py): a reference that checked nothing would make the comparison meaningless, so each
of its rules refuses here with its own decoded error. It also shows what its refill allowance does not
give: spending the allowance just before a refill and again just after moves twice the daily limit within
minutes; the vault's rolling window refuses the same sequence."""

from __future__ import annotations

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import keccak

from benchmarks.scenarios import install_reference_guard, roles_style_guard_args
from custody.vault import service
from tests.conftest import POLICIES
from tests.guard_harness import monday_of_next_week, submit

ETH = 10**18
MINUTE, HOUR = 60, 3600
DUSD = "0x6416d50c3136F549278cd5Dbb34b728069975495"  # hot.yaml's ERC-20
EXCHANGE = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # hot.yaml: may receive ETH and dUSD
MARKET_MAKER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # hot.yaml: may receive ETH only
OUTSIDER = "0x000000000000000000000000000000000000dEaD"


def _transfer(token_call: str, recipient: str, amount: int) -> bytes:
    return sel(token_call) + encode(["address", "uint256"], [recipient, amount])


def test_the_roles_style_reference_enforces_its_rules_and_its_refill_allowance_lets_twice_the_limit_out(session):
    reference, _ = service.create_vault(session, POLICIES / "hot.yaml", name="roles-style", with_guard=False)
    vault, _ = service.create_vault(session, POLICIES / "hot.yaml", name="rolling-window")
    for record in (reference, vault):
        session.send(to=record.safe, value=100 * ETH, what="fund")
    deployed = monday_of_next_week(session) + 10 * HOUR  # Monday 10:00: the allowance's refill clock starts
    session.chain.set_next_timestamp(deployed)
    install_reference_guard(
        session, reference.name, "RolesStyleGuard", roles_style_guard_args(reference.safe, POLICIES / "hot.yaml")
    )

    # each rule refuses with its own error
    refusals = {
        "unlisted ETH destination": (dict(to=OUTSIDER, value=ETH), ("RolesStyleTargetNotAllowed", (OUTSIDER,))),
        "dUSD to an ETH-only destination": (
            dict(to=DUSD, data=_transfer("transfer(address,uint256)", MARKET_MAKER, 1)),
            ("RolesStyleParameterNotAllowed", (DUSD, MARKET_MAKER)),
        ),
        "an unscoped function": (
            dict(to=DUSD, data=_transfer("approve(address,uint256)", EXCHANGE, 1)),
            ("RolesStyleFunctionNotAllowed", (DUSD, sel("approve(address,uint256)"))),
        ),
    }
    for what, (call, expected) in refusals.items():
        outcome = submit(session, reference, **call)
        assert (outcome.error, outcome.args) == expected, what

    # the allowance (hot.yaml's 20 ETH a day) is spent four transfers of 5 ETH before its refill ...
    before_refill = deployed + 24 * HOUR - 10 * MINUTE
    for minute in range(4):
        for second, record in enumerate((reference, vault)):
            at = before_refill + minute * MINUTE + second
            sent = submit(session, record, to=EXCHANGE, value=5 * ETH, timestamp=at)
            assert sent.allowed, sent
    exhausted = submit(session, reference, to=EXCHANGE, value=ETH, timestamp=before_refill + 5 * MINUTE)
    assert (exhausted.error, exhausted.args) == ("RolesStyleAllowanceExceeded", (keccak(text="ether"), ETH, 0))
    # ... and the refill, minutes later, lets the same 20 ETH leave again: 40 ETH within 15 minutes
    after_refill = deployed + 24 * HOUR + MINUTE
    for minute in range(4):
        sent = submit(session, reference, to=EXCHANGE, value=5 * ETH, timestamp=after_refill + minute * MINUTE)
        assert sent.allowed, sent
    # the vault's rolling 24 h window still counts the 20 ETH that left 11 minutes ago
    refused = submit(session, vault, to=EXCHANGE, value=5 * ETH, timestamp=after_refill + 5 * MINUTE)
    assert (refused.error, refused.args) == (
        "CustodyGuardDailyLimitExceeded", ("0x0000000000000000000000000000000000000000", 5 * ETH, 20 * ETH, 20 * ETH),
    )  # fmt: skip
