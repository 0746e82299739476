"""The policy model: what a validated template says (frozen dataclasses), and the vocabulary the parser
and the guard compiler share (risk classes and their floors, timelock operations, attestation steps).
:mod:`custody.policy.template` reads YAML into these."""

from __future__ import annotations

from dataclasses import dataclass, field

from eth_utils import keccak

from custody.policy.limits import MIN_TIMELOCK_DELAY
from custody.policy.risk_section import DEFAULT_SETTINGS, RiskSettings
from custody.types import Address

RISK_CLASSES = ("hot", "warm", "cold", "deep-cold")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Configuration changes that must always go through the vault's timelock.
MANDATORY_TIMELOCK_OPERATIONS = ("owners", "threshold", "modules", "guard", "fallback_handler", "policy")
# Value moves the policy allows only after the timelock's public delay. (There is no DELEGATECALL kind:
# code run in the vault's context through the timelock could rewrite its guard, modules or owners.)
OPTIONAL_TIMELOCK_OPERATIONS = ("unlisted_transfer", "over_limit_transfer")
TIMELOCK_OPERATIONS = MANDATORY_TIMELOCK_OPERATIONS + OPTIONAL_TIMELOCK_OPERATIONS


@dataclass(frozen=True)
class RiskFloor:
    """Minimums a template of a risk class must meet."""

    threshold: int
    timelock_delay: int
    allowlist_required: bool
    out_of_band_required: bool


RISK_FLOORS = {
    "hot": RiskFloor(
        threshold=1, timelock_delay=MIN_TIMELOCK_DELAY, allowlist_required=False, out_of_band_required=False
    ),
    "warm": RiskFloor(
        threshold=2, timelock_delay=MIN_TIMELOCK_DELAY, allowlist_required=False, out_of_band_required=False
    ),
    "cold": RiskFloor(threshold=2, timelock_delay=86400, allowlist_required=True, out_of_band_required=False),
    "deep-cold": RiskFloor(threshold=3, timelock_delay=3 * 86400, allowlist_required=True, out_of_band_required=True),
}

ETH = "ETH"


@dataclass(frozen=True)
class Labelled:
    address: Address
    label: str


@dataclass(frozen=True)
class AssetRule:
    """Limits and allowlist for one asset (native ETH or one ERC-20)."""

    symbol: str
    token: Address | None  # None for native ETH
    decimals: int
    per_tx_limit: int  # base units
    daily_limit: int  # base units, rolling 24 h
    allowlist: tuple[Labelled, ...]
    out_of_band_above: int | None  # base units; None = never
    controls: tuple[str, ...]
    line: int = 0

    @property
    def is_native(self) -> bool:
        return self.token is None

    @property
    def key(self) -> str:
        return ETH if self.token is None else self.token


@dataclass(frozen=True)
class FreezeWindow:
    """Weekly UTC window during which no transfer may execute."""

    day: int  # 0 = Monday … 6 = Sunday
    start_minute: int  # minutes after 00:00 UTC
    end_minute: int  # exclusive; up to 1440
    reason: str
    controls: tuple[str, ...]

    @property
    def week_start(self) -> int:
        """Start, in seconds since Monday 00:00 UTC."""
        return self.day * 86400 + self.start_minute * 60

    @property
    def week_end(self) -> int:
        return self.day * 86400 + self.end_minute * 60


@dataclass(frozen=True)
class AllowedHours:
    """Daily UTC hours outside which no transfer may execute."""

    start_minute: int
    end_minute: int
    controls: tuple[str, ...]


@dataclass(frozen=True)
class OutOfBand:
    risky_operations: bool
    controls: tuple[str, ...]
    exclude: tuple[str, ...] = ()  # signer addresses / confirmer names that may never confirm out of band


@dataclass(frozen=True)
class ExitRule:
    """Emergency exit to pre-approved fallback custodians (ExitModule)."""

    custodians: tuple[Labelled, ...]
    quorum: int
    council: tuple[Address, ...]  # empty = the Safe owners initiate
    escrow_delay: int
    owners_can_cancel: bool
    controls: tuple[str, ...]


ATTESTATION_STEPS = ("kyc", "approval", "oob_confirmation", "execution", "inventory_tag", "reconciliation", "drill")
AUTO_BADGE_STEPS = ("approval", "oob_confirmation", "execution")
BADGE_MODES = ("onchain", "batched")  # how an emitted step is attested: its own EAS attestation, or anchored in a batch
DEFAULT_ANCHOR_EVERY = 100  # batched badges waiting for an anchor before the flows anchor them by themselves
MAX_ANCHOR_EVERY = 10_000


@dataclass(frozen=True)
class Attester:
    address: Address
    label: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class AttestationRule:
    """Who may attest which custody step for this vault, and which steps emit badges automatically.

    ``batched`` are the emitted steps attested off chain (EAS off-chain attestations, signed as the step
    happens) and anchored together by one ``EAS.timestamp`` of their Merkle root once ``anchor_every`` of
    the vault's badges wait (or on ``custody attest anchor``); the other emitted steps are attested on chain."""

    attesters: tuple[Attester, ...]
    emit: tuple[str, ...]
    controls: tuple[str, ...]
    batched: tuple[str, ...] = ()
    anchor_every: int = DEFAULT_ANCHOR_EVERY

    def authorised(self, address: str, step: str) -> bool:
        return any(a.address == address and step in a.steps for a in self.attesters)

    def mode(self, step: str) -> str:
        """``batched`` or ``onchain``: how an emitted ``step`` is attested."""
        return "batched" if step in self.batched else "onchain"


@dataclass(frozen=True)
class ContractCall:
    """A contract function the vault may call directly (no limits apply; time rules do)."""

    target: Address
    signature: str
    selector: bytes
    label: str
    controls: tuple[str, ...]


@dataclass(frozen=True)
class MessageDomain:
    """An EIP-712 domain the vault may sign messages for (ERC-1271), on the vault's own chain.

    ``version`` is None for domains without a version field (e.g. Permit2)."""

    name: str
    version: str | None
    verifying_contract: Address
    label: str
    controls: tuple[str, ...]

    @property
    def name_hash(self) -> bytes:
        return keccak(text=self.name)

    @property
    def version_hash(self) -> bytes:
        return b"\x00" * 32 if self.version is None else keccak(text=self.version)


@dataclass(frozen=True)
class Policy:
    name: str
    risk_class: str
    description: str
    owners: tuple[Labelled, ...]
    threshold: int
    owners_controls: tuple[str, ...]
    timelock_delay: int
    timelock_operations: tuple[str, ...]
    timelock_controls: tuple[str, ...]
    assets: tuple[AssetRule, ...]
    freeze_windows: tuple[FreezeWindow, ...]
    allowed_hours: AllowedHours | None
    out_of_band: OutOfBand | None
    exit: ExitRule | None
    contract_calls: tuple[ContractCall, ...] = ()
    attestations: AttestationRule | None = None
    message_domains: tuple[MessageDomain, ...] = ()
    risk: RiskSettings = DEFAULT_SETTINGS  # the ``risk:`` section (custody.policy.risk_section)
    guard_deployment: str = "dedicated"  # the ``guard:`` section: "dedicated" or "clone"
    source_path: str = ""
    source_text: str = field(default="", repr=False)

    @property
    def owner_addresses(self) -> list[Address]:
        return [o.address for o in self.owners]

    @property
    def template_hash(self) -> bytes:
        """keccak256 of the template file's bytes (what the auditor compares with the registry)."""
        return keccak(self.source_text.encode("utf-8"))

    def asset(self, token: str | None) -> AssetRule | None:
        key = ETH if token is None else token
        return next((a for a in self.assets if a.key == key), None)
