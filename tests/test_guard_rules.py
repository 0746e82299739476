"""CustodyGuard, rule by rule, at every boundary — and the Python pre-flight agrees each time."""

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel

from benchmarks.scenarios import _mint
from custody.contracts.infra import DEMO_TOKEN_ADDRESS
from custody.policy.onchain import installed_guard
from custody.signers.local import anvil_address
from custody.types import ZERO_ADDRESS, Operation
from custody.vault import service
from tests.conftest import FIXTURES
from tests.guard_harness import erc20, module_call, monday_of_next_week, multisend, predict, schedule, submit

ETH = 10**18
USD = 10**6
BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"  # ETH + dUSD
MAKER = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720"  # ETH only
STRANGER = "0x000000000000000000000000000000000000bEEF"
MULTISEND_CALL_ONLY = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
MULTISEND_FULL = "0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526"


@pytest.fixture
def vault(session):
    record, _ = service.create_vault(session, FIXTURES / "policies" / "rules.yaml")
    session.send(to=record.safe, value=100 * ETH, what="fund")
    _mint(session, DEMO_TOKEN_ADDRESS, record.safe, 100_000 * USD)
    _mint(session, DEMO_TOKEN_ADDRESS, BROKER, 1)
    return record


@pytest.fixture
def monday(session):
    return monday_of_next_week(session)


class Clock:
    """Strictly increasing timestamps for consecutive blocks."""

    def __init__(self, start):
        self.t = start

    def at(self, t):
        assert t > self.t - 1, "time only moves forward"
        self.t = t
        return t

    def tick(self, seconds=1):
        self.t += seconds
        return self.t


def check(session, vault, ts, expect, **tx):
    """Predict in Python, then execute on chain at ``ts``: both must give ``expect``."""
    verdict = predict(session, vault, timestamp=ts, **tx)
    outcome = submit(session, vault, timestamp=ts, **tx)
    assert outcome.timestamp == ts
    assert (verdict.allowed, verdict.error) == (outcome.allowed, outcome.error), (verdict, outcome)
    assert tuple(verdict.args) == outcome.args, (verdict.args, outcome.args)
    expected_error = None if expect == "ok" else expect
    assert outcome.error == expected_error, outcome
    return verdict


def test_per_transaction_limit_boundaries(session, vault, monday):
    t = monday + 8 * 3600
    check(session, vault, t, "ok", to=BROKER, value=5 * ETH - 1)
    check(session, vault, t + 1, "ok", to=BROKER, value=5 * ETH)
    v = check(session, vault, t + 2, "CustodyGuardPerTxLimitExceeded", to=BROKER, value=5 * ETH + 1)
    assert v.args == (ZERO_ADDRESS, 5 * ETH + 1, 5 * ETH) and v.rule == "asset.ETH.per_tx_limit"
    check(session, vault, t + 3, "ok", to=DEMO_TOKEN_ADDRESS, data=erc20("transfer", BROKER, 1000 * USD))
    check(
        session,
        vault,
        t + 4,
        "CustodyGuardPerTxLimitExceeded",
        to=DEMO_TOKEN_ADDRESS,
        data=erc20("transfer", BROKER, 1000 * USD + 1),
    )


def test_rolling_daily_limit_boundaries(session, vault, monday):
    t = monday + 8 * 3600 + 120  # 08:02 Monday
    hour = t // 3600
    check(session, vault, t, "ok", to=BROKER, value=5 * ETH)
    check(session, vault, t + 1, "ok", to=MAKER, value=5 * ETH)
    check(session, vault, t + 2, "ok", to=BROKER, value=2 * ETH - 1)
    check(session, vault, t + 3, "ok", to=BROKER, value=1)  # exactly at the daily limit
    v = check(session, vault, t + 4, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    assert v.args == (ZERO_ADDRESS, 1, 12 * ETH, 12 * ETH)
    assert v.message.endswith("(12 ETH already sent, 0 ETH remaining)"), v.message
    # still counted 24 h later, and until the end of the 25th hour
    check(session, vault, t + 24 * 3600, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    check(session, vault, (hour + 25) * 3600 - 1, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    check(session, vault, (hour + 25) * 3600, "ok", to=BROKER, value=5 * ETH)


def test_rolling_window_expires_hour_by_hour(session, vault, monday):
    t = monday + 7 * 3600  # 07:00 Monday
    check(session, vault, t, "ok", to=BROKER, value=5 * ETH)  # hour h
    check(session, vault, t + 3600, "ok", to=BROKER, value=5 * ETH)  # hour h+1
    check(session, vault, t + 2 * 3600, "ok", to=BROKER, value=2 * ETH)  # hour h+2: window full
    check(session, vault, t + 25 * 3600 - 1, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    check(session, vault, t + 25 * 3600, "ok", to=BROKER, value=5 * ETH)  # hour h expired: 5 ETH free again
    check(session, vault, t + 25 * 3600 + 1, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    check(session, vault, t + 26 * 3600, "ok", to=BROKER, value=5 * ETH)  # hour h+1 expired


def test_the_oldest_hour_counts_after_a_short_and_a_long_gap(session, vault, monday):
    """Whether the window's last spend is a few hours or most of a day old when its oldest hour leaves, that
    hour (nowHour - 24) counts until it leaves, and then exactly its amount is free again."""
    # short gap: 5 ETH at 06:xx, 7 ETH at 19:xx and 20:xx, then 10 h later
    a = monday + 6 * 3600 + 60
    check(session, vault, a, "ok", to=BROKER, value=5 * ETH)
    check(session, vault, a + 13 * 3600, "ok", to=BROKER, value=5 * ETH)
    check(session, vault, a + 14 * 3600, "ok", to=BROKER, value=2 * ETH)  # window full
    v = check(session, vault, a + 24 * 3600, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    assert v.args == (ZERO_ADDRESS, 1, 12 * ETH, 12 * ETH)  # hour a is still in the window
    check(session, vault, a + 25 * 3600, "ok", to=BROKER, value=5 * ETH)  # hour a left: exactly its 5 ETH free
    check(session, vault, a + 25 * 3600 + 1, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    # long gap: 12 ETH over 06:xx-08:xx on Thursday, then 22 h later
    b = monday + 3 * 86400 + 6 * 3600 + 60
    check(session, vault, b, "ok", to=BROKER, value=5 * ETH)
    check(session, vault, b + 3600, "ok", to=BROKER, value=5 * ETH)
    check(session, vault, b + 2 * 3600, "ok", to=BROKER, value=2 * ETH)
    v = check(session, vault, b + 24 * 3600, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)
    assert v.args == (ZERO_ADDRESS, 1, 12 * ETH, 12 * ETH)  # hour b is still in the window
    check(session, vault, b + 25 * 3600, "ok", to=BROKER, value=5 * ETH)
    check(session, vault, b + 25 * 3600 + 1, "CustodyGuardDailyLimitExceeded", to=BROKER, value=1)


def test_an_hour_that_left_the_window_is_not_subtracted_again_when_its_ring_slot_was_not_reused(session, vault, monday):
    """Hour x's 1 ETH goes to its ring slot at the next spend and leaves the window at hour x+25, where a
    zero-value transfer moves the guard's hour on and records nothing, so that slot (hour x+25's) still
    holds hour x's tag: one hour later only hour x+1 (empty) may leave the window — x is not subtracted twice."""
    x = monday + 86400 + 6 * 3600  # Tuesday 06:00
    check(session, vault, x, "ok", to=BROKER, value=1 * ETH)
    for k, amount in ((2, 5), (3, 5), (4, 1)):  # hour x goes to its slot; 12 ETH in the window
        check(session, vault, x + k * 3600, "ok", to=BROKER, value=amount * ETH)
    check(session, vault, x + 25 * 3600, "ok", to=BROKER, value=0)  # hour x has left: 11 ETH
    v = check(session, vault, x + 26 * 3600, "CustodyGuardDailyLimitExceeded", to=BROKER, value=5 * ETH)
    assert v.args == (ZERO_ADDRESS, 5 * ETH, 11 * ETH, 12 * ETH)


def test_allowlist_per_asset(session, vault, monday):
    t = monday + 9 * 3600
    v = check(session, vault, t, "CustodyGuardDestinationNotAllowed", to=STRANGER, value=1)
    assert v.args == (ZERO_ADDRESS, STRANGER) and v.rule == "asset.ETH.allowlist"
    check(session, vault, t + 1, "ok", to=MAKER, value=1)  # MAKER may receive ETH ...
    check(
        session,
        vault,
        t + 2,
        "CustodyGuardDestinationNotAllowed",
        to=DEMO_TOKEN_ADDRESS,
        data=erc20("transfer", MAKER, 1),
    )  # ... not dUSD
    check(
        session,
        vault,
        t + 3,
        "CustodyGuardDestinationNotAllowed",
        to=DEMO_TOKEN_ADDRESS,
        data=erc20("approve", STRANGER, 1),
    )


def test_freeze_window_boundaries(session, vault, monday):
    wednesday_10 = monday + 2 * 86400 + 10 * 3600
    check(session, vault, wednesday_10 - 1, "ok", to=BROKER, value=1)
    v = check(session, vault, wednesday_10, "CustodyGuardFrozen", to=BROKER, value=1)
    assert v.args == (0, 2 * 86400 + 10 * 3600) and v.rule == "freeze_windows[0]"
    check(session, vault, wednesday_10 + 2 * 3600 - 1, "CustodyGuardFrozen", to=BROKER, value=1)
    check(session, vault, wednesday_10 + 2 * 3600, "ok", to=BROKER, value=1)


def test_allowed_hours_boundaries(session, vault, monday):
    day = monday + 86400  # Tuesday
    check(session, vault, day + 6 * 3600 - 1, "CustodyGuardOutsideAllowedHours", to=BROKER, value=1)
    check(session, vault, day + 6 * 3600, "ok", to=BROKER, value=1)
    check(session, vault, day + 22 * 3600 - 1, "ok", to=BROKER, value=1)
    v = check(session, vault, day + 22 * 3600, "CustodyGuardOutsideAllowedHours", to=BROKER, value=1)
    assert v.args == (22 * 3600, 6 * 3600, 22 * 3600)


def test_token_calls_are_decoded_and_checked(session, vault, monday):
    t = monday + 10 * 3600
    check(
        session,
        vault,
        t,
        "CustodyGuardTokenCallForbidden",
        to=DEMO_TOKEN_ADDRESS,
        data=erc20("transferFrom", vault.safe, BROKER, 1),
    )
    check(session, vault, t + 1, "ok", to=DEMO_TOKEN_ADDRESS, data=erc20("approve", BROKER, 1000 * USD))
    check(session, vault, t + 2, "ok", to=DEMO_TOKEN_ADDRESS, data=erc20("transfer", BROKER, 1000 * USD))
    # approvals count against the daily limit like transfers: 2000 of 2500 used
    check(
        session,
        vault,
        t + 3,
        "CustodyGuardDailyLimitExceeded",
        to=DEMO_TOKEN_ADDRESS,
        data=erc20("transfer", BROKER, 501 * USD),
    )
    check(
        session,
        vault,
        t + 4,
        "CustodyGuardCallForbidden",
        to=DEMO_TOKEN_ADDRESS,
        value=1,
        data=erc20("transfer", BROKER, 1),
    )
    check(
        session,
        vault,
        t + 5,
        "CustodyGuardTokenCallForbidden",
        to=DEMO_TOKEN_ADDRESS,
        data=erc20("transfer", BROKER, 1) + b"\x00",
    )


def test_only_policy_assets_can_be_called(session, vault, monday):
    t = monday + 10 * 3600
    check(session, vault, t, "CustodyGuardCallForbidden", to=BROKER, value=1, data=b"\x12\x34\x56\x78")
    check(
        session,
        vault,
        t + 1,
        "CustodyGuardCallForbidden",
        to=session.infrastructure().vault_factory,
        data=sel("VERSION()"),
    )


def test_delegatecall_only_into_multisend_call_only(session, vault, monday):
    t = monday + 10 * 3600
    v = check(session, vault, t, "CustodyGuardDelegateCallForbidden", to=STRANGER, operation=Operation.DELEGATECALL)
    assert v.rule == "operation.call_only"
    batch = multisend((0, BROKER, ETH, b""))
    check(
        session,
        vault,
        t + 1,
        "CustodyGuardDelegateCallForbidden",
        to=MULTISEND_FULL,
        data=batch,
        operation=Operation.DELEGATECALL,
    )


def test_multisend_checks_every_inner_call(session, vault, monday):
    t = monday + 10 * 3600
    good = multisend((0, BROKER, 3 * ETH, b""), (0, DEMO_TOKEN_ADDRESS, 0, erc20("transfer", BROKER, 10 * USD)))
    check(session, vault, t, "ok", to=MULTISEND_CALL_ONLY, data=good, operation=Operation.DELEGATECALL)
    over = multisend((0, BROKER, 3 * ETH, b""), (0, MAKER, 3 * ETH, b""), (0, BROKER, 4 * ETH, b""))  # 3 + 10 > 12
    check(
        session,
        vault,
        t + 1,
        "CustodyGuardDailyLimitExceeded",
        to=MULTISEND_CALL_ONLY,
        data=over,
        operation=Operation.DELEGATECALL,
    )
    hidden = multisend((0, BROKER, 1, b""), (0, STRANGER, 1, b""))
    check(
        session,
        vault,
        t + 2,
        "CustodyGuardDestinationNotAllowed",
        to=MULTISEND_CALL_ONLY,
        data=hidden,
        operation=Operation.DELEGATECALL,
    )
    smuggled = multisend((1, STRANGER, 0, b""))
    check(
        session,
        vault,
        t + 3,
        "CustodyGuardDelegateCallForbidden",
        to=MULTISEND_CALL_ONLY,
        data=smuggled,
        operation=Operation.DELEGATECALL,
    )


SELF_CALLS = {
    "addOwnerWithThreshold": sel("addOwnerWithThreshold(address,uint256)")
    + encode(["address", "uint256"], [STRANGER, 1]),
    "changeThreshold": sel("changeThreshold(uint256)") + encode(["uint256"], [2]),
    "enableModule": sel("enableModule(address)") + encode(["address"], [STRANGER]),
    "setGuard": sel("setGuard(address)") + encode(["address"], [ZERO_ADDRESS]),
    "setFallbackHandler": sel("setFallbackHandler(address)") + encode(["address"], [STRANGER]),
    "execTransaction": sel("execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)")
    + encode(
        ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"],
        [STRANGER, ETH, b"", 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, b""],
    ),
}


@pytest.mark.parametrize("name", sorted(SELF_CALLS))
def test_configuration_self_calls_are_rejected(session, vault, monday, name):
    t = monday + 10 * 3600
    v = check(session, vault, t, "CustodyGuardSelfCallForbidden", to=vault.safe, data=SELF_CALLS[name])
    assert v.args == (SELF_CALLS[name][:4],)
    # ... also when smuggled inside a batch
    batch = multisend((0, vault.safe, 0, SELF_CALLS[name]))
    check(
        session,
        vault,
        t + 1,
        "CustodyGuardSelfCallForbidden",
        to=MULTISEND_CALL_ONLY,
        data=batch,
        operation=Operation.DELEGATECALL,
    )


def test_gas_refunds_are_rejected(session, vault, monday):
    t = monday + 10 * 3600
    v = check(
        session, vault, t, "CustodyGuardRefundForbidden", to=BROKER, value=1, gas_price=1, refund_receiver=STRANGER
    )
    assert v.args == (1, ZERO_ADDRESS, STRANGER)


def test_timelock_scheduling_is_limited_to_the_policy_kinds(session, vault, monday):
    t = monday + 10 * 3600
    lock = vault.timelock
    over_limit = module_call(vault.safe, BROKER, 50 * ETH, b"")  # allowlisted, over limit: kind allowed
    check(session, vault, t, "ok", to=lock, data=schedule(vault.safe, 0, over_limit, 3600))
    unlisted = module_call(vault.safe, STRANGER, ETH, b"")  # not in this policy's timelock kinds
    v = check(
        session,
        vault,
        t + 1,
        "CustodyGuardTimelockKindForbidden",
        to=lock,
        data=schedule(vault.safe, 0, unlisted, 3600),
    )
    assert v.args[0] == 1 << 6
    set_guard = module_call(vault.safe, vault.safe, 0, SELF_CALLS["setGuard"])  # setGuard(0): remove the policy
    v = check(
        session, vault, t + 2, "CustodyGuardZeroGuardDelay", to=lock,
        data=schedule(vault.safe, 0, set_guard, 2 * 3600 - 1, salt=b"\x02" * 32),
    )  # fmt: skip
    assert v.args == (2 * 3600 - 1, 2 * 3600)  # twice the timelock's delay, to the second
    check(session, vault, t + 2, "ok", to=lock, data=schedule(vault.safe, 0, set_guard, 2 * 3600, salt=b"\x02" * 32))
    check(session, vault, t + 3, "CustodyGuardTimelockKindForbidden", to=lock, data=schedule(STRANGER, 0, b"", 3600))
    delegate = module_call(vault.safe, STRANGER, 0, b"", operation=1)
    check(
        session,
        vault,
        t + 4,
        "CustodyGuardTimelockKindForbidden",
        to=lock,
        data=schedule(vault.safe, 0, delegate, 3600, salt=b"\x03" * 32),
    )
    update_delay = sel("updateDelay(uint256)") + encode(["uint256"], [0])
    check(session, vault, t + 5, "CustodyGuardCallForbidden", to=lock, data=update_delay)
    # the delay itself changes only through the timelock, and only within [1 h, 30 d]
    for delay, expect in (
        (3599, "CustodyGuardDelayOutOfRange"),
        (3600, "ok"),
        (30 * 86400 + 1, "CustodyGuardDelayOutOfRange"),
    ):
        payload = sel("updateDelay(uint256)") + encode(["uint256"], [delay])
        check(
            session,
            vault,
            t + 6,
            expect,
            to=lock,
            data=schedule(lock, 0, payload, 3600, salt=delay.to_bytes(32, "big")),
        )


def test_guard_only_answers_its_own_safe(session, vault):
    guard = session.contract("CustodyGuard", installed_guard(session, vault.safe))
    from custody.exceptions import ChainError

    with pytest.raises(ChainError, match="CustodyGuardNotSafe"):
        from custody.contracts.deploy import read_many

        read_many(
            session.chain,
            [
                guard.functions.checkTransaction(
                    BROKER, 1, b"", 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, b"", ZERO_ADDRESS
                )
            ],
        )


def test_fully_signed_raw_web3_transaction_is_still_rejected_on_chain(session, vault, monday):
    """Bypass every line of our Python: all owners sign, raw web3 sends it; the chain refuses."""
    from eth_account import Account

    from custody.safe.safe_tx import SafeTx
    from custody.signers.local import anvil_private_key

    safe = session.chain.w3.eth.contract(address=vault.safe, abi=session.contract("SafeL2", vault.safe).abi)
    nonce = safe.functions.nonce().call()
    tx = SafeTx(
        safe=vault.safe,
        chain_id=session.chain_id,
        to=STRANGER,
        value=50 * ETH,
        data=b"",
        operation=Operation.CALL,
        nonce=nonce,
    )
    signed = sorted(
        ((anvil_address(i), Account._sign_hash(tx.safe_tx_hash, anvil_private_key(i))) for i in (1, 2)),
        key=lambda pair: int(pair[0], 16),
    )
    signatures = b"".join(s.r.to_bytes(32, "big") + s.s.to_bytes(32, "big") + bytes([s.v]) for _a, s in signed)
    w3 = session.chain.w3
    session.chain.set_next_timestamp(monday + 10 * 3600)
    tx_hash = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": vault.safe, "gas": 1_000_000,
         "data": safe.encode_abi("execTransaction", [STRANGER, 50 * ETH, b"", 0, 0, 0, 0, ZERO_ADDRESS, ZERO_ADDRESS, signatures])}
    )  # fmt: skip
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    assert w3.eth.get_balance(STRANGER) == 0 and safe.functions.nonce().call() == nonce
