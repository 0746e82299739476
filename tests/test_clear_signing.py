"""Clear signing: Safe configuration calls, MultiSend batches and timelock operations are decoded call by call;
risky payloads are flagged and `tx sign` refuses them unless each risk kind is acknowledged."""

from __future__ import annotations

import json

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector as sel
from eth_utils import to_checksum_address

from custody.safe.safe_tx import SafeTx
from custody.types import Operation
from custody.vault import proposals, service
from custody.vault.clear import risk_kinds
from custody.vault.decode import decode_safe_call
from tests.conftest import POLICIES

MULTISEND = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
PRIME_BROKER = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f"
OTHER = "0x00000000000000000000000000000000000000A1"
SENTINEL = "0x0000000000000000000000000000000000000001"


def call(signature: str, types: list[str], args: list) -> bytes:
    return sel(signature) + encode(types, args)


def multisend(*calls: tuple[int, str, int, bytes]) -> bytes:
    packed = b"".join(
        bytes([op]) + bytes.fromhex(to[2:]) + value.to_bytes(32, "big") + len(data).to_bytes(32, "big") + data
        for op, to, value, data in calls
    )
    return call("multiSend(bytes)", ["bytes"], [packed])


@pytest.fixture
def cold(session):
    record, _ = service.create_vault(session, POLICIES / "cold.yaml")
    return record


@pytest.mark.parametrize(
    "data,function,kinds",
    [
        (call("addOwnerWithThreshold(address,uint256)", ["address", "uint256"], [OTHER, 2]), "addOwnerWithThreshold", ["owners", "threshold"]),
        (call("removeOwner(address,address,uint256)", ["address", "address", "uint256"], [SENTINEL, OTHER, 1]), "removeOwner", ["owners", "threshold"]),
        (call("swapOwner(address,address,address)", ["address"] * 3, [SENTINEL, OTHER, PRIME_BROKER]), "swapOwner", ["owners"]),
        (call("changeThreshold(uint256)", ["uint256"], [1]), "changeThreshold", ["threshold"]),
        (call("enableModule(address)", ["address"], [OTHER]), "enableModule", ["modules"]),
        (call("disableModule(address,address)", ["address", "address"], [SENTINEL, OTHER]), "disableModule", ["modules"]),
        (call("setGuard(address)", ["address"], [OTHER]), "setGuard", ["guard"]),
        (call("setFallbackHandler(address)", ["address"], [OTHER]), "setFallbackHandler", ["fallback_handler"]),
        (call("approve(address,uint256)", ["address", "uint256"], [OTHER, 10**30]), "approve", ["approval"]),
    ],
)  # fmt: skip
def test_safe_configuration_calls_are_decoded_and_flagged(chain, data, function, kinds):
    safe = "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762"
    decoded = decode_safe_call(chain, safe, 0, data, Operation.CALL, safe=safe)
    assert decoded.function == function
    assert list(decoded.risk_kinds) == kinds
    if function != "approve":
        assert (
            decoded.kind == "safe_config"
            and decoded.summary.startswith(f"{function}(")
            and "on the vault" in decoded.summary
        )


def test_multisend_batch_decoded_call_by_call(chain, demo_token):
    data = multisend(
        (0, PRIME_BROKER, 10**18, b""),
        (0, demo_token, 0, call("transfer(address,uint256)", ["address", "uint256"], [PRIME_BROKER, 2_500 * 10**6])),
        (0, demo_token, 0, call("approve(address,uint256)", ["address", "uint256"], [OTHER, 5 * 10**6])),
    )
    decoded = decode_safe_call(chain, MULTISEND, 0, data, Operation.DELEGATECALL)
    assert decoded.kind == "multisend" and len(decoded.calls) == 3
    assert [c.summary for c in decoded.calls] == [
        f"send 1 ETH to {PRIME_BROKER}",
        f"transfer 2500 dUSD to {PRIME_BROKER}",
        f"approve {OTHER} to spend 5 dUSD",
    ]
    assert decoded.risk_kinds == ("approval",)  # DELEGATECALL into the canonical MultiSendCallOnly is the batch pattern
    elsewhere = decode_safe_call(chain, OTHER, 0, data, Operation.DELEGATECALL)
    assert elsewhere.risk_kinds[0] == "delegatecall" and "DELEGATECALL" in elsewhere.risks[0]
    nested = multisend((1, OTHER, 0, b"\x12\x34\x56\x78"))
    assert "delegatecall" in decode_safe_call(chain, MULTISEND, 0, nested, Operation.DELEGATECALL).risk_kinds


def test_timelock_operations_show_the_scheduled_call(chain):
    safe, timelock = "0x29fcB43b46531BcA003ddC8FCB67FFE91900C762", to_checksum_address("0x" + "00" * 19 + "b2")
    inner = call("changeThreshold(uint256)", ["uint256"], [1])
    args = [safe, 0, inner, b"\x00" * 32, b"\x01" * 32]
    scheduled = decode_safe_call(
        chain, timelock, 0,
        call("schedule(address,uint256,bytes,bytes32,bytes32,uint256)", ["address", "uint256", "bytes", "bytes32", "bytes32", "uint256"], [*args, 86400]),
        Operation.CALL, safe=safe,
    )  # fmt: skip
    assert scheduled.kind == "timelock" and scheduled.function == "schedule"
    assert scheduled.summary.startswith(
        f"schedule on timelock {timelock} (delay 86400s): changeThreshold(threshold=1) on the vault"
    )
    assert scheduled.risk_kinds == ("threshold",)
    executed = decode_safe_call(
        chain, timelock, 0,
        call("execute(address,uint256,bytes,bytes32,bytes32)", ["address", "uint256", "bytes", "bytes32", "bytes32"], args),
        Operation.CALL, safe=safe,
    )  # fmt: skip
    assert executed.function == "execute" and executed.calls[0].function == "changeThreshold"
    cancel = decode_safe_call(chain, timelock, 0, call("cancel(bytes32)", ["bytes32"], [b"\x02" * 32]), Operation.CALL)
    assert cancel.function == "cancel" and cancel.risk_kinds == ()


def test_gas_refund_is_a_risk(chain):
    tx = SafeTx(safe="0x29fcB43b46531BcA003ddC8FCB67FFE91900C762", chain_id=31337, to=PRIME_BROKER, value=1,
                data=b"", operation=Operation.CALL, nonce=0, gas_price=1, refund_receiver=OTHER)  # fmt: skip
    decoded = decode_safe_call(chain, tx.to, tx.value, tx.data, tx.operation)
    assert risk_kinds(tx, decoded) == ["gas_refund"]
    assert (
        risk_kinds(SafeTx(**{**{k: v for k, v in tx.__dict__.items() if k != "_hash_cache"}, "gas_price": 0}), decoded)
        == []
    )


def test_tx_sign_refuses_risky_payloads_until_each_kind_is_acknowledged(session, cold, run_cli):
    data = call("addOwnerWithThreshold(address,uint256)", ["address", "uint256"], [OTHER, 3])
    proposal = proposals.propose(session, cold.id, to=cold.safe, data=data, description="add an owner", force=True)
    shown = run_cli("tx", "show", str(proposal.id))
    assert (
        "addOwnerWithThreshold(owner=0x00000000000000000000000000000000000000A1, threshold=3) on the vault"
        in shown.stdout
    )
    assert "--i-understand owners --i-understand threshold" in shown.stdout
    refused = run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:1")
    assert refused.exit_code == 1
    assert (
        "error: proposal 1 is risky (owners, threshold); review it and re-run with --i-understand owners --i-understand threshold"
        in refused.stderr
    )
    partial = run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:1", "--i-understand", "owners", "--json")
    assert json.loads(partial.stdout)["details"]["risks"] == ["threshold"]
    unknown = run_cli("tx", "sign", str(proposal.id), "--signer", "anvil:1", "--i-understand", "everything")
    assert "--i-understand everything is not a risk kind" in unknown.stderr
    assert proposals.get_proposal(session, proposal.id).signatures == ()
    # acknowledged, it reaches the risk engine: a direct owner change (not via the timelock) is a DENY,
    # printed before the signer is asked, and nothing is signed
    acknowledged = run_cli(
        "tx", "sign", str(proposal.id), "--signer", "anvil:1", "--i-understand", "owners", "--i-understand", "threshold"
    )
    assert acknowledged.exit_code == 1
    assert (
        "risk verdict    DENY" in acknowledged.stderr and "config_change: addOwnerWithThreshold" in acknowledged.stderr
    )
    assert "error: the risk engine denies this proposal 1 (sign)" in acknowledged.stderr
    assert proposals.get_proposal(session, proposal.id).signatures == ()


def test_delegatecall_is_loud_in_tx_show(session, cold, run_cli):
    proposal = proposals.propose(
        session, cold.id, to=OTHER, data=b"\xde\xad\xbe\xef", operation=Operation.DELEGATECALL, force=True
    )
    shown = run_cli("tx", "show", str(proposal.id))
    assert "operation       DELEGATECALL" in shown.stdout
    assert "risk            DELEGATECALL: the target's code runs with the vault's own storage and funds" in shown.stdout
    as_json = json.loads(run_cli("tx", "show", str(proposal.id), "--json").stdout)
    assert as_json["risk_kinds"] == ["delegatecall"] and as_json["decoded"]["operation"] == "DELEGATECALL"
