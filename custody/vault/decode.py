"""Decode what a Safe transaction does, for people about to sign it (clear signing)."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from custody.chain.connection import Chain
from custody.contracts.deploy import contract
from custody.types import Operation, format_amount

ERC20_CALLS = {
    function_signature_to_4byte_selector("transfer(address,uint256)"): (
        "transfer",
        ["address", "uint256"],
        ["to", "amount"],
    ),
    function_signature_to_4byte_selector("approve(address,uint256)"): (
        "approve",
        ["address", "uint256"],
        ["spender", "amount"],
    ),
    function_signature_to_4byte_selector("transferFrom(address,address,uint256)"): (
        "transferFrom",
        ["address", "address", "uint256"],
        ["from", "to", "amount"],
    ),
}


@dataclass(frozen=True)
class TokenInfo:
    address: str
    symbol: str
    decimals: int


@dataclass(frozen=True)
class DecodedCall:
    kind: str  # "eth_transfer" | "erc20" | "contract_call" | "empty"
    summary: str
    function: str | None = None
    args: dict = field(default_factory=dict)
    token: TokenInfo | None = None
    amount: int | None = None  # base units moved (ETH or token)
    recipient: str | None = None
    risks: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "summary": self.summary,
            "function": self.function,
            "args": {k: str(v) for k, v in self.args.items()},
            "token": None if self.token is None else vars(self.token),
            "amount": None if self.amount is None else str(self.amount),
            "recipient": self.recipient,
            "risks": list(self.risks),
        }


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


def decode_safe_call(chain: Chain, to: str, value: int, data: bytes, operation: Operation) -> DecodedCall:
    risks: list[str] = []
    if operation == Operation.DELEGATECALL:
        risks.append("DELEGATECALL: the target's code runs with the vault's own storage and funds")
    if not data:
        return DecodedCall(
            kind="eth_transfer",
            summary=f"send {format_amount(value, 18)} ETH to {to}",
            amount=value,
            recipient=to,
            risks=tuple(risks),
        )
    selector = data[:4]
    if selector in ERC20_CALLS:
        name, types, names = ERC20_CALLS[selector]
        try:
            values = decode(types, data[4:])
        except Exception:
            values = None
        info = token_info(chain, to)
        if values is not None and info is not None:
            args = dict(zip(names, values))
            amount = int(args["amount"])
            human = f"{format_amount(amount, info.decimals)} {info.symbol}"
            if name == "transfer":
                summary = f"transfer {human} to {to_checksum_address(args['to'])}"
                recipient = to_checksum_address(args["to"])
            elif name == "approve":
                summary = f"approve {to_checksum_address(args['spender'])} to spend {human}"
                recipient = to_checksum_address(args["spender"])
                risks.append("token approval: the spender can move the approved amount later, without signatures")
            else:
                summary = (
                    f"transferFrom {to_checksum_address(args['from'])} to {to_checksum_address(args['to'])}: {human}"
                )
                recipient = to_checksum_address(args["to"])
            if value:
                risks.append(f"also sends {format_amount(value, 18)} ETH with the token call")
            return DecodedCall(
                kind="erc20", summary=summary, function=name, args=args, token=info, amount=amount,
                recipient=recipient, risks=tuple(risks),
            )  # fmt: skip
    summary = f"call {to} with selector 0x{selector.hex()} ({len(data)} bytes of data)"
    if value:
        summary += f" and {format_amount(value, 18)} ETH"
    risks.append("unrecognised contract call: verify the calldata independently")
    return DecodedCall(kind="contract_call", summary=summary, function="0x" + selector.hex(), risks=tuple(risks))
