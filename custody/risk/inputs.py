"""Everything one decision looks at, gathered before the layers run (pure data: eval and benchmarks
build it without a chain; :mod:`custody.risk.gate` builds it from a session)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from custody.policy.risk_section import RiskSettings
from custody.safe.safe_tx import SafeTx
from custody.vault.decode import DecodedCall


@dataclass(frozen=True)
class Movement:
    """One executed outbound transfer of the vault (its history), or the one being decided."""

    time: dt.datetime
    asset: str  # "ETH" or the token address
    amount: int  # base units
    destination: str
    signers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Inbound:
    """An inbound transfer the indexer observed (deposits; zero-value and dust ones are poisoning precursors)."""

    time: dt.datetime
    sender: str
    asset: str
    amount: int


@dataclass(frozen=True)
class RiskInputs:
    stage: str  # propose | sign | execute
    safe_tx: SafeTx
    decoded: DecodedCall
    now: dt.datetime
    settings: RiskSettings
    owners: tuple[str, ...]
    proposer: str = ""
    signer: str | None = None  # the owner about to sign (sign stage)
    signer_backend: str | None = None  # keystore | pkcs11 | ledger | trezor | offline | anvil
    supplied_hash: bytes | None = None  # a safeTxHash someone handed us (stored proposal, exchange file, chain)
    onchain_hash: bytes | None = None  # the Safe's getTransactionHash
    known: dict[str, str] = field(default_factory=dict)  # address -> label: allowlist + address book
    history: tuple[Movement, ...] = ()
    inbound: tuple[Inbound, ...] = ()
    has_code: dict[str, bool] = field(default_factory=dict)  # checksummed address -> deployed code
    queued_nonces: tuple[int, ...] = ()  # nonces of the vault's other open proposals
    onchain_nonce: int = 0
    balances: dict[str, int] = field(default_factory=dict)  # asset -> base units
    oracle_hits: frozenset[str] = frozenset()  # lowercased addresses the on-chain oracle flags

    @property
    def past_destinations(self) -> set[str]:
        return {m.destination for m in self.history}
