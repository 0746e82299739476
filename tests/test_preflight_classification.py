"""How the pre-flight classifies listed contract calls and scheduled timelock payloads — each verdict
predicted in Python and then executed against the deployed CustodyGuard (tests.test_guard_rules.check):
the two must agree, and both must give the expected error with the expected arguments."""

import pytest
from eth_abi import encode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import to_checksum_address

from custody.contracts.infra import DEMO_TOKEN_ADDRESS
from custody.exceptions import PolicyViolation
from custody.policy.calldata import decode_module_call
from custody.policy.compiled import KIND_BITS
from custody.policy.onchain import guard_model, installed_guard
from custody.policy.preflight import Verdict
from custody.types import ZERO_ADDRESS, Operation
from custody.vault import proposals, service
from tests.conftest import FIXTURES
from tests.guard_harness import erc20, module_call, monday_of_next_week, multisend, predict, schedule, submit
from tests.test_guard_rules import BROKER, ETH, MAKER, MULTISEND_CALL_ONLY, STRANGER, USD, check

# a contract_calls target: ping(uint256) only
LISTED = to_checksum_address("0x000000000000000000000000000000000000cafe")
PING = sel("ping(uint256)") + encode(["uint256"], [7])
SENTINEL = "0x0000000000000000000000000000000000000001"
CONTRACT_CALLS = f"""contract_calls:
  - address: "{LISTED}"
    functions: ["ping(uint256)"]
    controls: [TEST-7]
"""


def _dirty(address: str) -> bytes:
    """An address argument word with a bit set above its 160 bits (what abi.decode would truncate)."""
    return (1 << 160 | int(address, 16)).to_bytes(32, "big")


def _scheduled_self_call(vault, inner: bytes, salt: int) -> bytes:
    """A timelock schedule of the Safe calling itself (a configuration change) with ``inner``."""
    return schedule(vault.safe, 0, module_call(vault.safe, vault.safe, 0, inner), 2 * 3600, salt=bytes([salt]) * 32)


@pytest.fixture
def monday(session):
    return monday_of_next_week(session)


@pytest.fixture
def vault(session):
    """A vault of rules.yaml (nothing is transferred here, so it needs no funds)."""
    return service.create_vault(session, FIXTURES / "policies" / "rules.yaml")[0]


@pytest.fixture
def calls_vault(session, tmp_path):
    policy = tmp_path / "rules-with-calls.yaml"
    policy.write_text((FIXTURES / "policies" / "rules.yaml").read_text() + CONTRACT_CALLS)
    record, _ = service.create_vault(session, policy, name="rules-with-calls")
    session.send(to=record.safe, value=10 * ETH, what="fund")
    return record


def test_a_listed_contract_call_passes_only_without_eth_and_only_for_its_listed_function(session, calls_vault, monday):
    t = monday + 8 * 3600
    check(session, calls_vault, t, "ok", to=LISTED, data=PING)
    # the same listed function with 1 wei attached is no longer a listed call: LISTED is no policy asset
    v = check(session, calls_vault, t + 1, "CustodyGuardCallForbidden", to=LISTED, value=1, data=PING)
    assert v.args == (LISTED, PING[:4], 1) and v.rule == "assets"
    v = check(session, calls_vault, t + 2, "CustodyGuardCallForbidden", to=LISTED, data=sel("pong()"))
    assert v.args == (LISTED, sel("pong()"), 0)
    # a selector cut to 3 bytes is not the listed selector
    v = check(session, calls_vault, t + 3, "CustodyGuardCallForbidden", to=LISTED, data=PING[:3])
    assert v.args[0] == LISTED and v.args[2] == 0


@pytest.mark.parametrize(
    "inner",
    [
        sel("setGuard(address)") + _dirty(STRANGER),
        sel("setFallbackHandler(address)") + b"\x00" * 31,  # the address argument cut short
        sel("enableModule(address)") + _dirty(STRANGER),
        sel("disableModule(address,address)") + encode(["address"], [SENTINEL]) + _dirty(STRANGER),
    ],
    ids=["setGuard_dirty_address", "setFallbackHandler_truncated", "enableModule_dirty_address",
         "disableModule_dirty_second_address"],
)  # fmt: skip
def test_a_scheduled_configuration_change_with_a_malformed_address_is_of_no_kind(session, vault, monday, inner):
    """Every configuration kind is allowed by rules.yaml's timelock, yet a malformed argument makes the call
    of kind 0 (unknown, never allowed) — not a change the owners could schedule."""
    v = check(
        session, vault, monday + 10 * 3600, "CustodyGuardTimelockKindForbidden", to=vault.timelock,
        data=_scheduled_self_call(vault, inner, salt=5),
    )  # fmt: skip
    assert v.args == (0, vault.safe, sel("execTransactionFromModule(address,uint256,bytes,uint8)"))


def test_a_scheduled_token_transfer_over_the_limit_is_listed_only_for_a_destination_of_that_token(
    session, vault, monday
):
    t = monday + 10 * 3600
    lock = vault.timelock
    # BROKER is allowlisted for dUSD: an over-limit dUSD transfer to it may be scheduled (over_limit_transfer)
    listed = module_call(vault.safe, DEMO_TOKEN_ADDRESS, 0, erc20("transfer", BROKER, 5000 * USD))
    check(session, vault, t, "ok", to=lock, data=schedule(vault.safe, 0, listed, 3600, salt=b"\x06" * 32))
    # MAKER is allowlisted for ETH only: the same dUSD transfer to it is an unlisted transfer, not in the policy
    unlisted = module_call(vault.safe, DEMO_TOKEN_ADDRESS, 0, erc20("transfer", MAKER, 5000 * USD))
    v = check(
        session, vault, t + 1, "CustodyGuardTimelockKindForbidden", to=lock,
        data=schedule(vault.safe, 0, unlisted, 3600, salt=b"\x07" * 32),
    )  # fmt: skip
    assert v.args[0] == KIND_BITS["unlisted_transfer"]


@pytest.mark.parametrize("extra", [b"", b"\x00"], ids=["36_bytes", "37_bytes"])
def test_a_scheduled_unpause_is_a_policy_change_only_as_exactly_one_bool_argument(session, vault, monday, extra):
    guard = installed_guard(session, vault.safe)
    unpause = sel("setPaused(bool)") + encode(["bool"], [False]) + extra
    expect = "ok" if not extra else "CustodyGuardTimelockKindForbidden"
    v = check(session, vault, monday + 10 * 3600, expect, to=vault.timelock, data=schedule(guard, 0, unpause, 3600))
    assert v.args == (() if not extra else (0, guard, unpause[:4]))


def test_an_asset_never_spent_has_an_empty_window_in_the_model_as_on_chain(session, vault):
    now = session.chain.latest_timestamp()
    model = guard_model(session, vault.safe, timestamp=now)
    guard = session.contract("CustodyGuard", installed_guard(session, vault.safe))
    assert len(model.states) == len(model.config.assets) == 2
    for asset, state in zip(model.config.assets, model.states):
        assert not state.seeded
        for hour in (now // 3600, now // 3600 + 30):
            assert state.window_total(hour) == guard.functions.windowTotal(asset.token).call() == 0


def test_the_owners_may_pause_the_guard_directly_but_unpause_it_only_through_the_timelock(session, vault, monday):
    guard = installed_guard(session, vault.safe)
    t = monday + 10 * 3600
    unpause = sel("setPaused(bool)") + encode(["bool"], [False])
    v = check(session, vault, t, "CustodyGuardCallForbidden", to=guard, data=unpause)
    assert v.args == (guard, unpause[:4], 0)
    check(session, vault, t + 1, "ok", to=guard, data=sel("setPaused(bool)") + encode(["bool"], [True]))


@pytest.mark.parametrize("extra", [b"", b"\x00"], ids=["36_bytes", "37_bytes"])
def test_revoking_a_message_approval_is_a_direct_guard_call_of_exactly_one_word(session, vault, monday, extra):
    guard = installed_guard(session, vault.safe)
    revoke = sel("revokeMessage(bytes32)") + b"\x42" * 32 + extra
    expect = "ok" if not extra else "CustodyGuardCallForbidden"
    check(session, vault, monday + 10 * 3600, expect, to=guard, data=revoke)


def test_a_cancel_call_to_the_zero_address_is_no_exit_cancel_on_a_vault_without_an_exit_module(session, vault, monday):
    v = check(session, vault, monday + 10 * 3600, "CustodyGuardCallForbidden", to=ZERO_ADDRESS, data=sel("cancel()"))
    assert v.args == (ZERO_ADDRESS, sel("cancel()"), 0)


def test_a_batch_of_allowed_transfers_is_allowed_whatever_the_padding_of_its_packed_calls(session, calls_vault, monday):
    batch = multisend((0, BROKER, 1, b""), (0, MAKER, 2, b""), (0, LISTED, 0, PING))  # 85 + 85 + 121 bytes
    check(session, calls_vault, monday + 8 * 3600, "ok", to=MULTISEND_CALL_ONLY, data=batch,
          operation=Operation.DELEGATECALL)  # fmt: skip


def test_a_bare_selector_to_the_timelock_is_named_in_the_refusal(session, vault, monday):
    bare = sel("getMinDelay()")  # exactly 4 bytes: the selector is all there is
    v = check(session, vault, monday + 10 * 3600, "CustodyGuardCallForbidden", to=vault.timelock, data=bare)
    assert v.args == (vault.timelock, bare, 0)


def test_the_timelock_delay_may_be_scheduled_up_to_exactly_30_days(session, vault, monday):
    for salt, (delay, expect) in enumerate(((30 * 86400, "ok"), (30 * 86400 + 1, "CustodyGuardDelayOutOfRange"))):
        payload = sel("updateDelay(uint256)") + encode(["uint256"], [delay])
        check(session, vault, monday + 10 * 3600 + salt, expect, to=vault.timelock,
              data=schedule(vault.timelock, 0, payload, 3600, salt=bytes([salt + 9]) * 32))  # fmt: skip


def test_a_scheduled_enable_module_of_a_foreign_module_is_refused_as_such_and_a_padded_one_is_of_no_kind(
    session, vault, monday
):
    enable = sel("enableModule(address)") + encode(["address"], [STRANGER])
    t = monday + 10 * 3600
    v = check(session, vault, t, "CustodyGuardModuleForbidden", to=vault.timelock,
              data=_scheduled_self_call(vault, enable, salt=11))  # fmt: skip
    assert v.args == (STRANGER,)
    v = check(session, vault, t + 1, "CustodyGuardTimelockKindForbidden", to=vault.timelock,
              data=_scheduled_self_call(vault, enable + b"\x00", salt=12))  # fmt: skip
    assert v.args[0] == 0


EXEC_FROM_MODULE = sel("execTransactionFromModule(address,uint256,bytes,uint8)")
OWNER_CHANGES = {  # each at its exact ABI length
    "addOwnerWithThreshold": sel("addOwnerWithThreshold(address,uint256)") + encode(["address", "uint256"], [STRANGER, 1]),
    "removeOwner": sel("removeOwner(address,address,uint256)") + encode(["address", "address", "uint256"],
                                                                        [SENTINEL, STRANGER, 1]),
    "swapOwner": sel("swapOwner(address,address,address)") + encode(["address", "address", "address"],
                                                                    [SENTINEL, MAKER, STRANGER]),
    "changeThreshold": sel("changeThreshold(uint256)") + encode(["uint256"], [1]),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(OWNER_CHANGES))
def test_a_scheduled_owner_or_threshold_change_is_of_its_kind_only_at_its_exact_length(session, vault, monday, name):
    inner = OWNER_CHANGES[name]
    t = monday + 10 * 3600
    check(session, vault, t, "ok", to=vault.timelock, data=_scheduled_self_call(vault, inner, salt=13))
    v = check(session, vault, t + 1, "CustodyGuardTimelockKindForbidden", to=vault.timelock,
              data=_scheduled_self_call(vault, inner + b"\x00", salt=14))  # fmt: skip
    assert v.args == (0, vault.safe, EXEC_FROM_MODULE)


def test_a_scheduled_disable_module_is_a_module_change_unless_it_would_disable_the_timelock(session, vault, monday):
    t = monday + 10 * 3600
    disable = sel("disableModule(address,address)")
    # whatever the previous module's address (MAKER's first byte is not zero; both words are checked whole)
    for salt, previous in ((15, SENTINEL), (29, MAKER)):
        other = disable + encode(["address", "address"], [previous, STRANGER])
        check(
            session, vault, t - 30 + salt, "ok", to=vault.timelock, data=_scheduled_self_call(vault, other, salt=salt)
        )
    timelock = disable + encode(["address", "address"], [SENTINEL, vault.timelock])
    v = check(session, vault, t + 1, "CustodyGuardModuleForbidden", to=vault.timelock,
              data=_scheduled_self_call(vault, timelock, salt=16))  # fmt: skip
    assert v.args == (vault.timelock,)


def test_a_scheduled_fallback_handler_change_may_name_only_the_vaults_handler_or_none(session, vault, monday):
    t = monday + 10 * 3600
    handler = guard_model(session, vault.safe, timestamp=t).fallback_handler
    assert handler != ZERO_ADDRESS
    set_handler = sel("setFallbackHandler(address)")
    for salt, address in enumerate((handler, ZERO_ADDRESS), start=17):
        check(session, vault, t + salt, "ok", to=vault.timelock,
              data=_scheduled_self_call(vault, set_handler + encode(["address"], [address]), salt=salt))  # fmt: skip
    v = check(session, vault, t + 20, "CustodyGuardFallbackHandlerForbidden", to=vault.timelock,
              data=_scheduled_self_call(vault, set_handler + encode(["address"], [STRANGER]), salt=20))  # fmt: skip
    assert v.args == (STRANGER,)
    padded = set_handler + encode(["address"], [handler]) + b"\x00"
    v = check(session, vault, t + 21, "CustodyGuardTimelockKindForbidden", to=vault.timelock,
              data=_scheduled_self_call(vault, padded, salt=21))  # fmt: skip
    assert v.args == (0, vault.safe, EXEC_FROM_MODULE)


def test_a_scheduled_call_of_the_guard_or_the_timelock_carrying_eth_is_of_no_kind(session, vault, monday):
    guard = installed_guard(session, vault.safe)
    t = monday + 10 * 3600
    unpause = sel("setPaused(bool)") + encode(["bool"], [False])
    delay = sel("updateDelay(uint256)") + encode(["uint256"], [2 * 3600])
    for salt, (target, payload) in zip((22, 24), ((guard, unpause), (vault.timelock, delay))):
        check(session, vault, t + salt, "ok", to=vault.timelock,
              data=schedule(target, 0, payload, 3600, salt=bytes([salt]) * 32))  # fmt: skip
        v = check(session, vault, t + salt + 1, "CustodyGuardTimelockKindForbidden", to=vault.timelock,
                  data=schedule(target, 1, payload, 3600, salt=bytes([salt + 1]) * 32))  # fmt: skip
        assert v.args == (0, target, payload[:4])


def test_a_scheduled_listed_contract_call_is_an_over_limit_transfer_only_without_eth(session, calls_vault, monday):
    t = monday + 10 * 3600
    listed = module_call(calls_vault.safe, LISTED, 0, PING)
    check(session, calls_vault, t, "ok", to=calls_vault.timelock,
          data=schedule(calls_vault.safe, 0, listed, 3600, salt=b"\x26" * 32))  # fmt: skip
    bare = module_call(calls_vault.safe, LISTED, 0, PING[:4])  # the selector alone names the listed function
    check(session, calls_vault, t + 1, "ok", to=calls_vault.timelock,
          data=schedule(calls_vault.safe, 0, bare, 3600, salt=b"\x2a" * 32))  # fmt: skip
    with_eth = module_call(calls_vault.safe, LISTED, 1, PING)
    v = check(session, calls_vault, t + 2, "CustodyGuardTimelockKindForbidden", to=calls_vault.timelock,
              data=schedule(calls_vault.safe, 0, with_eth, 3600, salt=b"\x27" * 32))  # fmt: skip
    assert v.args == (0, calls_vault.safe, EXEC_FROM_MODULE)


@pytest.mark.parametrize("extra", [b"", b"\x00"], ids=["68_bytes", "69_bytes"])
def test_a_message_approval_is_checked_for_its_domain_only_as_exactly_two_words(session, vault, monday, extra):
    """rules.yaml lists no message domain: a well-formed approveMessage is refused for its domain, a padded
    one is no message approval at all."""
    guard = installed_guard(session, vault.safe)
    domain = b"\x5a" * 32
    approve = sel("approveMessage(bytes32,bytes32)") + domain + b"\x42" * 32 + extra
    if extra:
        v = check(session, vault, monday + 10 * 3600, "CustodyGuardCallForbidden", to=guard, data=approve)
        assert v.args == (guard, approve[:4], 0)
    else:
        v = check(session, vault, monday + 10 * 3600, "CustodyGuardMessageDomainForbidden", to=guard, data=approve)
        assert v.args == (domain,) and v.rule == "messages.domains"


def test_a_multisend_call_shorter_than_its_selector_is_refused_with_a_zero_selector(session, vault, monday):
    v = check(session, vault, monday + 10 * 3600, "CustodyGuardCallForbidden", to=MULTISEND_CALL_ONLY,
              data=sel("multiSend(bytes)")[:2], operation=Operation.DELEGATECALL)  # fmt: skip
    assert v.args == (MULTISEND_CALL_ONLY, b"\x00" * 4, 0)  # as the guard's _selector reads it: no selector


def test_a_verdict_as_json_gives_byte_arguments_as_hex():
    verdict = Verdict(False, "CustodyGuardCallForbidden", (LISTED, b"\xca\xfe\x00\x01", 0), "assets", "refused")
    assert verdict.as_dict()["args"] == [LISTED, "0xcafe0001", 0]


def test_a_scheduled_payload_shorter_than_a_selector_is_refused_with_a_zero_selector(session, vault, monday):
    """As the guard's _memSelector reads it: the bytes there are, padded, are no selector."""
    v = check(session, vault, monday + 10 * 3600, "CustodyGuardTimelockKindForbidden", to=vault.timelock,
              data=schedule(STRANGER, 0, b"\xab\xcd", 3600, salt=b"\x28" * 32))  # fmt: skip
    assert v.args == (0, STRANGER, b"\x00" * 4)


def test_a_scheduled_module_call_of_only_its_four_head_words_is_decoded_as_the_guard_decodes_it(session, vault, monday):
    """The shortest execTransactionFromModule the guard decodes: to, value, the offset of the bytes argument
    and operation, 4 + 128 bytes, the offset pointing at the value word (0: an empty call) — here a zero ETH
    transfer to an allowlisted destination, an over_limit_transfer. eth_abi refuses an offset into the head;
    Solidity's abi.decode, and so the pre-flight, accept it. One byte less is no module call at all."""
    head = EXEC_FROM_MODULE + encode(["address", "uint256", "uint256", "uint8"], [BROKER, 0, 32, 0])
    assert len(head) == 4 + 128
    t = monday + 10 * 3600
    check(session, vault, t, "ok", to=vault.timelock, data=schedule(vault.safe, 0, head, 3600, salt=b"\x32" * 32))
    v = check(session, vault, t + 1, "CustodyGuardTimelockKindForbidden", to=vault.timelock,
              data=schedule(vault.safe, 0, head[:-1], 3600, salt=b"\x33" * 32))  # fmt: skip
    assert v.args == (0, vault.safe, EXEC_FROM_MODULE)


def test_module_call_arguments_decode_as_eth_abi_encodes_them_and_are_refused_where_abi_decode_reverts():
    body = encode(["address", "uint256", "bytes", "uint8"], [BROKER, 5, PING, 0])
    assert decode_module_call(body) == (BROKER, 5, PING, 0)
    highest = encode(["address", "uint256", "bytes", "uint8"], [BROKER, 5, PING, 0xFF])
    assert decode_module_call(highest) == (BROKER, 5, PING, 0xFF)  # the largest uint8 decodes
    words = [body[k : k + 32] for k in range(0, 128, 32)]
    for broken, cause in (
        (b"".join(words[:2]) + (0).to_bytes(32, "big") + words[3][:31], "four head words needed"),
        (_dirty(BROKER) + body[32:], "bits set above its 160"),
        (b"".join(words[:3]) + (256).to_bytes(32, "big") + body[128:], "does not fit a uint8"),
        (words[0] + words[1] + (len(body) - 31).to_bytes(32, "big") + body[96:], "is outside"),
        (body[:-32], "runs past"),  # PING's 36 bytes fill two words: one word short
    ):
        with pytest.raises(DecodingError, match=cause):
            decode_module_call(broken)


def _batch(offset: int, length: int, packed: bytes) -> bytes:
    """multiSend(bytes) calldata with its offset and length words set by hand (the packed calls padded)."""
    padded = packed + b"\x00" * (-len(packed) % 32)
    return sel("multiSend(bytes)") + offset.to_bytes(32, "big") + length.to_bytes(32, "big") + padded


ONE_WEI_TO_BROKER = bytes([0]) + bytes.fromhex(BROKER[2:]) + (1).to_bytes(32, "big") + (0).to_bytes(32, "big")
PANIC_OVERFLOW = "raw:0x4e487b71" + (0x11).to_bytes(32, "big").hex()
MALFORMED_BATCHES = {  # name: (calldata, what the chain answers, what the pre-flight names)
    "offset_outside_the_calldata": (_batch(0x1000, 0, b""), "raw:0x", "the batch's length word"),
    "offset_overflowing": (_batch(2**256 - 1, 0, b""), PANIC_OVERFLOW, "the batch's length word"),
    "offset_with_only_its_top_byte_wrong": (  # read one byte short, it is 0x20: a well-formed batch
        _batch(2**248 + 0x20, len(ONE_WEI_TO_BROKER), ONE_WEI_TO_BROKER),
        "raw:0x",
        "the batch's length word",
    ),
    "length_past_the_end": (_batch(0x20, 200, ONE_WEI_TO_BROKER), "raw:0x", "a batch of 200 bytes"),
    "call_header_cut_short": (_batch(0x20, 50, ONE_WEI_TO_BROKER[:50]), "raw:0x", "the value of the call at 0"),
    "call_data_past_the_batch": (
        _batch(0x20, 90, ONE_WEI_TO_BROKER[:53] + (10).to_bytes(32, "big") + b"\x01" * 5),
        "raw:0x",
        "the 10 bytes of the call at 0",
    ),
}


@pytest.mark.parametrize("name", sorted(MALFORMED_BATCHES))
def test_a_batch_whose_words_point_outside_the_calldata_is_refused_as_the_guard_refuses_it(
    session, vault, monday, name
):
    """Solidity's calldata slices revert where Python's slices quietly come out short: a batch whose offset,
    length or call sizes run past the calldata would otherwise read as empty (or as fewer calls) and be
    predicted allowed. The chain refuses each without a custom error; the pre-flight names the word."""
    data, on_chain, named = MALFORMED_BATCHES[name]
    t = monday + 10 * 3600 + sorted(MALFORMED_BATCHES).index(name)
    verdict = predict(session, vault, to=MULTISEND_CALL_ONLY, data=data, operation=Operation.DELEGATECALL, timestamp=t)
    outcome = submit(session, vault, to=MULTISEND_CALL_ONLY, data=data, operation=Operation.DELEGATECALL, timestamp=t)
    assert (outcome.allowed, outcome.error) == (False, on_chain), outcome
    assert (verdict.allowed, verdict.error, verdict.rule) == (False, None, "operation.call_only"), verdict
    assert verdict.message.startswith(f"malformed multiSend batch: {named} lies outside"), verdict.message
    # proposing it is refused naming the rule alone: the guard reverts without a custom error to name
    with pytest.raises(PolicyViolation, match=r"the guard reverts \(rule operation\.call_only\); nothing was recorded"):
        proposals.propose(session, vault.id, to=MULTISEND_CALL_ONLY, data=data, operation=Operation.DELEGATECALL)


def test_the_well_formed_twin_of_the_malformed_batches_is_allowed(session, vault, monday):
    """The control for the malformed batches above: the same call, with its words right, passes both."""
    check(session, vault, monday + 11 * 3600, "ok", to=MULTISEND_CALL_ONLY, data=_batch(0x20, 85, ONE_WEI_TO_BROKER),
          operation=Operation.DELEGATECALL)  # fmt: skip
