"""Walk a decoded Safe transaction: every call with where it sits, and every value it moves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from custody.vault.decode import DecodedCall

ETH = "ETH"


@dataclass(frozen=True)
class Located:
    call: DecodedCall
    path: tuple[str, ...]  # kinds of the enclosing calls, outermost first ("multisend", "timelock")

    @property
    def in_multisend(self) -> bool:
        return "multisend" in self.path

    @property
    def in_timelock(self) -> bool:
        return "timelock" in self.path


def walk(call: DecodedCall, path: tuple[str, ...] = ()) -> Iterator[Located]:
    yield Located(call, path)
    for inner in call.calls:
        yield from walk(inner, (*path, call.kind))


@dataclass(frozen=True)
class Transfer:
    asset: str  # "ETH" or the token address
    amount: int
    destination: str
    nested: bool


def transfers(decoded: DecodedCall) -> list[Transfer]:
    """Value the transaction moves out now (MultiSend batches included; scheduled timelock calls are not)."""
    found = []
    for located in walk(decoded):
        if located.in_timelock:
            continue
        call = located.call
        if call.kind == "eth_transfer" and call.recipient:
            found.append(Transfer(ETH, int(call.amount or 0), call.recipient, bool(located.path)))
        elif call.kind == "erc20" and call.function in ("transfer", "transferFrom") and call.recipient and call.token:
            found.append(Transfer(call.token.address, int(call.amount or 0), call.recipient, bool(located.path)))
    return found
