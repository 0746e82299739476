"""Decode what a Safe transaction does, for people about to sign it (clear signing).

Recognised: ETH transfers; ERC-20 ``transfer`` / ``approve`` / ``transferFrom`` (symbol + human amount);
Safe configuration calls (owners, threshold, modules, guard, fallback handler); MultiSend batches,
decoded call by call; TimelockController ``schedule`` / ``execute`` / ``cancel`` (and batches), with the
scheduled call decoded. Every risky element carries a *risk kind* — the word a signer must repeat with
``--i-understand KIND`` before ``tx sign`` proceeds (see :data:`RISK_KINDS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from custody.chain.connection import Chain
from custody.contracts.deploy import contract
from custody.types import Operation, format_amount

RISK_KINDS = {
    "delegatecall": "DELEGATECALL: the target's code runs with the vault's own storage and funds",
    "owners": "changes the vault's owners",
    "threshold": "changes how many owner signatures the vault needs",
    "modules": "enables or disables a module (a module can move funds without owner signatures)",
    "guard": "replaces the transaction guard that enforces the vault's policy",
    "fallback_handler": "replaces the fallback handler (code that answers calls to the vault)",
    "timelock": "changes the timelock that delays configuration changes",
    "approval": "token approval: the spender can move the approved amount later, without signatures",
    "gas_refund": "pays a gas refund out of the vault (non-zero gasPrice) to a refund receiver",
    "message": "signs an EIP-712 message for the vault (ERC-1271): whoever holds it can present it as the vault's signature",
}
"""Risk kinds that ``tx sign`` refuses unless acknowledged with ``--i-understand KIND``."""

# Canonical Safe v1.4.1 MultiSend deployments: DELEGATECALL into these is the standard batching pattern.
MULTISEND_ADDRESSES = {
    "0x9641d764fc13c8B624c04430C7356C1C7C8102e2",  # MultiSendCallOnly v1.4.1
    "0x38869bf66a61cF6bDB996A6aE40D5853Fd43B526",  # MultiSend v1.4.1
}


def _sel(signature: str) -> bytes:
    return function_signature_to_4byte_selector(signature)


# selector -> (function name, argument types, argument names, risk kinds)
KNOWN_CALLS: dict[bytes, tuple[str, list[str], list[str], tuple[str, ...]]] = {
    _sel("transfer(address,uint256)"): ("transfer", ["address", "uint256"], ["to", "amount"], ()),
    _sel("approve(address,uint256)"): ("approve", ["address", "uint256"], ["spender", "amount"], ("approval",)),
    _sel("increaseAllowance(address,uint256)"): (
        "increaseAllowance",
        ["address", "uint256"],
        ["spender", "amount"],
        ("approval",),
    ),
    _sel("transferFrom(address,address,uint256)"): (
        "transferFrom",
        ["address", "address", "uint256"],
        ["from", "to", "amount"],
        (),
    ),
    _sel("addOwnerWithThreshold(address,uint256)"): (
        "addOwnerWithThreshold",
        ["address", "uint256"],
        ["owner", "threshold"],
        ("owners", "threshold"),
    ),
    _sel("removeOwner(address,address,uint256)"): (
        "removeOwner",
        ["address", "address", "uint256"],
        ["prevOwner", "owner", "threshold"],
        ("owners", "threshold"),
    ),
    _sel("swapOwner(address,address,address)"): (
        "swapOwner",
        ["address", "address", "address"],
        ["prevOwner", "oldOwner", "newOwner"],
        ("owners",),
    ),
    _sel("changeThreshold(uint256)"): ("changeThreshold", ["uint256"], ["threshold"], ("threshold",)),
    _sel("enableModule(address)"): ("enableModule", ["address"], ["module"], ("modules",)),
    _sel("disableModule(address,address)"): (
        "disableModule",
        ["address", "address"],
        ["prevModule", "module"],
        ("modules",),
    ),
    _sel("setGuard(address)"): ("setGuard", ["address"], ["guard"], ("guard",)),
    _sel("setFallbackHandler(address)"): ("setFallbackHandler", ["address"], ["handler"], ("fallback_handler",)),
    _sel("updateDelay(uint256)"): ("updateDelay", ["uint256"], ["newDelay"], ("timelock",)),
    _sel("cancel(bytes32)"): ("cancel", ["bytes32"], ["id"], ()),
    _sel("approveMessage(bytes32,bytes32)"): (
        "approveMessage",
        ["bytes32", "bytes32"],
        ["domainSeparator", "structHash"],
        ("message",),
    ),
    _sel("revokeMessage(bytes32)"): ("revokeMessage", ["bytes32"], ["digest"], ()),
    _sel("setPaused(bool)"): ("setPaused", ["bool"], ["paused"], ()),
}
ERC20_FUNCTIONS = {"transfer", "approve", "increaseAllowance", "transferFrom"}

MULTISEND = _sel("multiSend(bytes)")
SCHEDULE = _sel("schedule(address,uint256,bytes,bytes32,bytes32,uint256)")
EXECUTE = _sel("execute(address,uint256,bytes,bytes32,bytes32)")
SCHEDULE_BATCH = _sel("scheduleBatch(address[],uint256[],bytes[],bytes32,bytes32,uint256)")
EXECUTE_BATCH = _sel("executeBatch(address[],uint256[],bytes[],bytes32,bytes32)")


@dataclass(frozen=True)
class TokenInfo:
    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class DecodedCall:
    kind: str  # "eth_transfer" | "erc20" | "safe_config" | "multisend" | "timelock" | "contract_call"
    summary: str
    function: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    token: TokenInfo | None = None
    amount: int | None = None  # base units moved (ETH or token)
    recipient: str | None = None
    risks: tuple[str, ...] = ()  # human sentences, shown to signers
    risk_kinds: tuple[str, ...] = ()  # machine words (RISK_KINDS), including those of inner calls
    calls: tuple[DecodedCall, ...] = ()  # inner calls of a MultiSend batch or a timelock operation
    to: str | None = None
    operation: str = "CALL"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "function": self.function,
            "args": {k: _text(v) for k, v in self.args.items()},
            "token": None if self.token is None else vars(self.token),
            "amount": None if self.amount is None else str(self.amount),
            "recipient": self.recipient,
            "risks": list(self.risks),
            "risk_kinds": list(self.risk_kinds),
            "calls": [c.as_dict() for c in self.calls],
            "to": self.to,
            "operation": self.operation,
        }


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return str(value)


def token_info(chain: Chain, address: str) -> TokenInfo | None:
    """ERC-20 symbol and decimals, or None when ``address`` is not an ERC-20."""
    if not len(chain.call(chain.w3.eth.get_code, address)):
        return None
    token = contract(chain, "TestERC20", address)
    try:
        symbol = chain.call(token.functions.symbol().call)
        decimals = chain.call(token.functions.decimals().call)
    except (ContractLogicError, BadFunctionCallOutput, OverflowError, ValueError):
        return None
    return TokenInfo(to_checksum_address(address), str(symbol), int(decimals))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _finish(call: DecodedCall, extra_kinds: list[str], extra_risks: list[str]) -> DecodedCall:
    kinds = _unique([*extra_kinds, *call.risk_kinds, *(k for c in call.calls for k in c.risk_kinds)])
    risks = _unique([*extra_risks, *call.risks, *(r for c in call.calls for r in c.risks)])
    return DecodedCall(**{**call.__dict__, "risk_kinds": kinds, "risks": risks})


def decode_safe_call(
    chain: Chain | None,
    to: str,
    value: int,
    data: bytes,
    operation: Operation,
    *,
    safe: str | None = None,
    depth: int = 0,
) -> DecodedCall:
    """Decode one call made by the vault (``safe``: the vault itself, to recognise self-calls).

    ``chain`` may be None (air-gapped signing): token symbols are then not looked up.
    """
    to = to_checksum_address(to)
    kinds: list[str] = []
    risks: list[str] = []
    if operation == Operation.DELEGATECALL and not (to in MULTISEND_ADDRESSES and data[:4] == MULTISEND):
        kinds.append("delegatecall")
        risks.append(RISK_KINDS["delegatecall"])
    call = _decode(chain, to, value, data, operation, safe, depth)
    return _finish(DecodedCall(**{**call.__dict__, "to": to, "operation": Operation(operation).name}), kinds, risks)


def _decode(
    chain: Chain | None, to: str, value: int, data: bytes, operation: Operation, safe: str | None, depth: int
) -> DecodedCall:
    if not data:
        return DecodedCall(
            kind="eth_transfer", summary=f"send {format_amount(value, 18)} ETH to {to}", amount=value, recipient=to
        )
    selector = data[:4]
    if selector == MULTISEND and depth < 3:
        batch = _multisend(chain, data, safe, depth)
        if batch is not None:
            return batch
    if selector in (SCHEDULE, EXECUTE, SCHEDULE_BATCH, EXECUTE_BATCH) and depth < 3:
        operation_call = _timelock(chain, to, data, safe, depth)
        if operation_call is not None:
            return operation_call
    known = KNOWN_CALLS.get(selector)
    if known is not None:
        name, types, names, kinds = known
        try:
            args = dict(zip(names, decode(types, data[4:])))
        except Exception:
            args = None
        if args is not None:
            if name in ERC20_FUNCTIONS:
                erc20 = _erc20(chain, to, value, name, args, kinds)
                if erc20 is not None:
                    return erc20
            else:
                return _config(to, value, name, args, kinds, safe)
    summary = f"call {to} with selector 0x{selector.hex()} ({len(data)} bytes of data)"
    if value:
        summary += f" and {format_amount(value, 18)} ETH"
    return DecodedCall(
        kind="contract_call",
        summary=summary,
        function="0x" + selector.hex(),
        risks=("unrecognised contract call: verify the calldata independently",),
    )


def _erc20(
    chain: Chain | None, to: str, value: int, name: str, args: dict[str, Any], kinds: tuple[str, ...]
) -> DecodedCall | None:
    info = token_info(chain, to) if chain is not None else None
    amount = int(args["amount"])
    if info is None:
        if not kinds:
            return None
        # An approval stays flagged even when the token cannot be read (offline, or not an ERC-20).
        spender = to_checksum_address(args["spender"])
        return DecodedCall(
            kind="erc20",
            summary=f"{name} {spender} for {amount} base units of token {to} (token not verified)",
            function=name,
            args=args,
            amount=amount,
            recipient=spender,
            risks=tuple(RISK_KINDS[k] for k in kinds),
            risk_kinds=kinds,
        )
    human = f"{format_amount(amount, info.decimals)} {info.symbol}"
    risks = [RISK_KINDS[k] for k in kinds]
    if name == "transfer":
        recipient = to_checksum_address(args["to"])
        summary = f"transfer {human} to {recipient}"
    elif name in ("approve", "increaseAllowance"):
        recipient = to_checksum_address(args["spender"])
        verb = "approve" if name == "approve" else "raise the allowance of"
        summary = f"{verb} {recipient} to spend {human}" if name == "approve" else f"{verb} {recipient} by {human}"
    else:
        recipient = to_checksum_address(args["to"])
        summary = f"transferFrom {to_checksum_address(args['from'])} to {recipient}: {human}"
    if value:
        risks.append(f"also sends {format_amount(value, 18)} ETH with the token call")
    return DecodedCall(
        kind="erc20",
        summary=summary,
        function=name,
        args=args,
        token=info,
        amount=amount,
        recipient=recipient,
        risks=tuple(risks),
        risk_kinds=kinds,
    )


def _config(
    to: str, value: int, name: str, args: dict[str, Any], kinds: tuple[str, ...], safe: str | None
) -> DecodedCall:
    shown = ", ".join(f"{k}={_text(v)}" for k, v in args.items())
    where = "the vault" if safe is not None and to == to_checksum_address(safe) else to
    summary = f"{name}({shown}) on {where}"
    if value:
        summary += f" with {format_amount(value, 18)} ETH"
    return DecodedCall(
        kind="safe_config" if name != "updateDelay" and name != "cancel" else "timelock",
        summary=summary,
        function=name,
        args=args,
        risks=tuple(RISK_KINDS[k] for k in kinds),
        risk_kinds=kinds,
    )


def _multisend(chain: Chain | None, data: bytes, safe: str | None, depth: int) -> DecodedCall | None:
    try:
        (packed,) = decode(["bytes"], data[4:])
    except Exception:
        return None
    calls: list[DecodedCall] = []
    i = 0
    while i < len(packed):
        if i + 85 > len(packed):
            return None
        op, target = packed[i], to_checksum_address(packed[i + 1 : i + 21])
        value = int.from_bytes(packed[i + 21 : i + 53], "big")
        size = int.from_bytes(packed[i + 53 : i + 85], "big")
        inner = packed[i + 85 : i + 85 + size]
        if len(inner) != size or op not in (0, 1):
            return None
        calls.append(decode_safe_call(chain, target, value, inner, Operation(op), safe=safe, depth=depth + 1))
        i += 85 + size
    summary = f"MultiSend batch of {len(calls)} call(s): " + "; ".join(c.summary for c in calls)
    return DecodedCall(kind="multisend", summary=summary, function="multiSend", calls=tuple(calls))


def _timelock(chain: Chain | None, to: str, data: bytes, safe: str | None, depth: int) -> DecodedCall | None:
    selector = data[:4]
    try:
        if selector in (SCHEDULE, EXECUTE):
            types = ["address", "uint256", "bytes", "bytes32", "bytes32"] + (
                ["uint256"] if selector == SCHEDULE else []
            )
            values = decode(types, data[4:])
            targets, amounts, payloads = [values[0]], [values[1]], [values[2]]
            delay = values[5] if selector == SCHEDULE else None
        else:
            types = ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32"] + (
                ["uint256"] if selector == SCHEDULE_BATCH else []
            )
            values = decode(types, data[4:])
            targets, amounts, payloads = list(values[0]), list(values[1]), list(values[2])
            delay = values[5] if selector == SCHEDULE_BATCH else None
    except Exception:
        return None
    if not (len(targets) == len(amounts) == len(payloads)):
        return None
    calls = tuple(
        decode_safe_call(chain, t, int(v), bytes(p), Operation.CALL, safe=safe, depth=depth + 1)
        for t, v, p in zip(targets, amounts, payloads)
    )
    name = {SCHEDULE: "schedule", EXECUTE: "execute", SCHEDULE_BATCH: "scheduleBatch", EXECUTE_BATCH: "executeBatch"}[
        selector
    ]
    verb = f"schedule on timelock {to} (delay {delay}s)" if delay is not None else f"execute on timelock {to}"
    summary = f"{verb}: " + "; ".join(c.summary for c in calls)
    args = {"predecessor": values[3], "salt": values[4]}
    if delay is not None:
        args["delay"] = delay
    return DecodedCall(kind="timelock", summary=summary, function=name, args=args, calls=calls)
