"""What drill actions work with: the drill's session, its vaults and proposals by alias, its signers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from custody.drills.faultproxy import FaultProxy
from custody.drills.model import Value
from custody.exceptions import DeviceNotFound, DrillError, InputError
from custody.session import Session
from custody.signers.base import Signer
from custody.types import ZERO_ADDRESS, Address, parse_address
from custody.vault.decode import token_info
from custody.vault.service import VaultRecord, get_vault


@dataclass(frozen=True)
class Asset:
    symbol: str
    token: Address | None  # None: native ETH
    decimals: int


@dataclass
class DrillContext:
    """Mutable state of one drill run (aliases grow as steps define vaults, proposals and keys)."""

    session: Session
    workdir: Path  # scratch folder for derived templates (rotations, threshold changes)
    playbook_dir: Path | None = None  # relative template paths in steps resolve against it
    proxy: FaultProxy | None = None
    overrides: Mapping[str, Signer] = field(default_factory=dict)  # signers the caller opened (HSM in the pilot)
    vaults: dict[str, int] = field(default_factory=dict)  # alias -> vault id
    proposals: dict[str, int] = field(default_factory=dict)  # alias -> proposal id
    keys: dict[str, Signer] = field(default_factory=dict)  # generate_key: key:NAME
    lost: set[str] = field(default_factory=set)  # addresses whose keys the drill declared lost
    run_tag: str = ""
    _opened: dict[str, Signer] = field(default_factory=dict, repr=False)

    # -- vaults ----------------------------------------------------------------------------------
    def vault(self, alias: Value) -> VaultRecord:
        if not isinstance(alias, str) or alias not in self.vaults:
            raise DrillError(f"the drill has no vault {alias!r} (vaults: {', '.join(self.vaults) or 'none'})")
        return get_vault(self.session, self.vaults[alias])

    def proposal_id(self, alias: Value) -> int:
        if not isinstance(alias, str) or alias not in self.proposals:
            raise DrillError(f"the drill has no proposal {alias!r} (proposals: {', '.join(self.proposals) or 'none'})")
        return self.proposals[alias]

    # -- signers ---------------------------------------------------------------------------------
    def signer(self, uri: str) -> Signer:
        """The signer behind ``uri`` (``key:NAME`` for drill-generated keys); lost keys refuse."""
        if uri.startswith("key:"):
            signer = self.keys.get(uri[4:])
            if signer is None:
                raise DrillError(f"no key {uri[4:]!r} was generated in this drill")
        elif uri in self.overrides:
            signer = self.overrides[uri]
        else:
            signer = self._opened.get(uri) or self.session.signer(uri)
            self._opened[uri] = signer
        if signer.address in self.lost:
            raise DeviceNotFound(f"the key of {uri} ({signer.address}) was declared lost in this drill")
        return signer

    def signer_address(self, uri: str) -> Address:
        """The address of ``uri`` even when its key is declared lost (who it was, for the record)."""
        if uri.startswith("key:"):
            if uri[4:] not in self.keys:
                raise DrillError(f"no key {uri[4:]!r} was generated in this drill")
            return self.keys[uri[4:]].address
        if uri in self.overrides:
            return self.overrides[uri].address
        signer = self._opened.get(uri) or self.session.signer(uri)
        self._opened[uri] = signer
        return signer.address

    # -- values ----------------------------------------------------------------------------------
    def address(self, value: Value) -> Address:
        """A vault alias (its Safe), a signer URI (its address) or a 0x address."""
        if not isinstance(value, str):
            raise InputError(f"expected one address, got a list {list(value)}")
        if value in self.vaults:
            return self.vault(value).safe
        if ":" in value and not value.lower().startswith("0x"):
            return self.signer_address(value)
        return parse_address(value, what="address")

    def asset(self, value: Value, vault: VaultRecord | None = None) -> Asset:
        """ETH, a symbol from a drill vault's policy, or an ERC-20 token address."""

        text = str(value).strip()
        if text.upper() == "ETH":
            return Asset("ETH", None, 18)
        records = [vault] if vault is not None else []
        records += [get_vault(self.session, i) for i in self.vaults.values()]
        for record in records:
            for rule in record.policy().assets:
                if rule.token is not None and (rule.symbol == text or rule.token.lower() == text.lower()):
                    return Asset(rule.symbol, rule.token, rule.decimals)
        if text.lower().startswith("0x"):
            token = parse_address(text, what="token")
            info = token_info(self.session.chain, token)
            if info is not None:
                return Asset(info.symbol, token, info.decimals)
        raise InputError(f"unknown asset {text!r}: use ETH, a symbol of a drill vault's policy or a token address")

    def balance(self, who: Address, asset: Asset) -> int:
        chain = self.session.chain
        if asset.token is None:
            return int(chain.call(chain.w3.eth.get_balance, who))
        token = self.session.contract("TestERC20", asset.token)
        return int(chain.call(token.functions.balanceOf(who).call))

    def flag(self, args: Mapping[str, Any], name: str, default: bool = False) -> bool:
        value = args.get(name)
        return default if value is None else str(value).lower() in ("true", "yes", "on")


def is_zero(address: str | None) -> bool:
    return address is None or address == ZERO_ADDRESS
