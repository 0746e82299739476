"""Funding a vault on a local chain (``custody vault fund``): ETH or an ERC-20 sent from a funder account
(``anvil:0`` by default), so a newcomer needs neither ``cast`` nor a raw key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from custody.chain.transactions import send_transaction
from custody.contracts.errors import decode_revert
from custody.exceptions import InputError, VaultError
from custody.session import Session
from custody.types import format_amount, parse_address, parse_amount
from custody.vault.decode import token_info
from custody.vault.service import get_vault

_TRANSFER = function_signature_to_4byte_selector("transfer(address,uint256)")


@dataclass(frozen=True)
class Funding:
    vault: str
    safe: str
    symbol: str
    amount: int
    decimals: int
    funder: str
    tx_hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "vault": self.vault,
            "safe": self.safe,
            "symbol": self.symbol,
            "amount": format_amount(self.amount, self.decimals),
            "base_units": str(self.amount),
            "funder": self.funder,
            "tx_hash": self.tx_hash,
        }


def fund_vault(session: Session, vault_ref: str, amount: str, *, token: str | None, funder_uri: str) -> Funding:
    """Send ``amount`` ETH (or of ``token``) from ``funder_uri`` to the vault's Safe; local Anvil chains only."""
    if not session.chain.is_anvil:
        raise VaultError(
            f"`vault fund` works on local Anvil chains only; chain {session.chain_id} is not one",
            hint="send funds to the vault's Safe address from your own wallet",
        )
    record = get_vault(session, vault_ref)
    funder = session.signer(funder_uri)
    to: str
    if token is None:
        units = parse_amount(amount, 18, symbol="ETH")
        symbol, decimals, to, value, data = "ETH", 18, record.safe, units, b""
        balance = session.chain.call(session.chain.w3.eth.get_balance, funder.address)
    else:
        info = token_info(session.chain, parse_address(token, what="token"))
        if info is None:
            raise InputError(f"token {token} is not an ERC-20 contract on chain {session.chain_id}")
        units = parse_amount(amount, info.decimals, symbol=info.symbol)
        symbol, decimals, to, value = info.symbol, info.decimals, info.address, 0
        data = _TRANSFER + encode(["address", "uint256"], [record.safe, units])
        balance = session.chain.call(
            session.contract("TestERC20", info.address).functions.balanceOf(funder.address).call
        )
    if balance < units:
        raise VaultError(
            f"{funder_uri} ({funder.address}) holds {format_amount(balance, decimals)} {symbol}, less than the "
            f"{format_amount(units, decimals)} {symbol} to send; nothing was sent"
        )
    receipt = send_transaction(
        session.chain,
        funder,
        to=to,
        value=value,
        data=data,
        what=f"funding {record.name} with {amount} {symbol}",
        decoder=decode_revert,
    )
    return Funding(record.name, record.safe, symbol, units, decimals, funder.address, receipt.tx_hash)
