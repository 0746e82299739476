"""What a reconciliation can find: kinds, severities, evidence — plain frozen values for reports and JSON."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Severity(str, enum.Enum):
    CRITICAL = "critical"  # tokens may be unbacked, or the record overstates backing
    WARNING = "warning"  # records disagree without overstating backing


class FindingKind(str, enum.Enum):
    """Every kind of discrepancy the reconciler reports (docs/reconciliation.md: "Finding kinds and exit codes")."""

    BACKING_SHORTFALL = "backing_shortfall"  # supply > fine weight of listed bars allocated on-chain
    SUPPLY_EXCEEDS_ALLOCATION = "supply_exceeds_allocation"  # supply > on-chain allocated fine weight
    ALLOCATED_NOT_IN_LIST = "allocated_not_in_list"  # allocated on-chain, absent from the bar list
    LISTED_NOT_ALLOCATED = "listed_not_allocated"  # on the bar list, never (or no longer) allocated
    DUPLICATE_ALLOCATION = "duplicate_allocation"  # the same bar allocated again while still allocated
    WEIGHT_MISMATCH = "weight_mismatch"  # on-chain fine weight differs from the list's
    DEALLOCATED_NOT_ALLOCATED = "deallocated_not_allocated"  # released a bar that was not allocated
    MINT_WITHOUT_PROVENANCE = "mint_without_provenance"  # mint cites no allocation batch (at that block)
    MINT_EXCEEDS_PROVENANCE = "mint_exceeds_provenance"  # mints citing a batch exceed its fine weight
    LIST_CHANGE_UNMATCHED = "list_change_unmatched"  # list weight change != net mint/burn in the period
    BAR_ALTERED = "bar_altered"  # a bar's assay data changed between two lists


SEVERITY = {
    FindingKind.BACKING_SHORTFALL: Severity.CRITICAL,
    FindingKind.SUPPLY_EXCEEDS_ALLOCATION: Severity.CRITICAL,
    FindingKind.ALLOCATED_NOT_IN_LIST: Severity.CRITICAL,
    FindingKind.LISTED_NOT_ALLOCATED: Severity.WARNING,
    FindingKind.DUPLICATE_ALLOCATION: Severity.CRITICAL,
    FindingKind.WEIGHT_MISMATCH: Severity.CRITICAL,
    FindingKind.DEALLOCATED_NOT_ALLOCATED: Severity.WARNING,
    FindingKind.MINT_WITHOUT_PROVENANCE: Severity.CRITICAL,
    FindingKind.MINT_EXCEEDS_PROVENANCE: Severity.CRITICAL,
    FindingKind.LIST_CHANGE_UNMATCHED: Severity.CRITICAL,  # WARNING when the list grew more than supply
    FindingKind.BAR_ALTERED: Severity.WARNING,
}


@dataclass(frozen=True)
class EventRef:
    """An on-chain event cited as evidence."""

    event: str  # e.g. "BarAllocated", "Minted"
    block: int
    log_index: int
    tx_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"event": self.event, "block": self.block, "log_index": self.log_index, "tx_hash": self.tx_hash}


@dataclass(frozen=True)
class Finding:
    """One discrepancy: what, how bad, and the evidence (bar, events, amounts as integer strings)."""

    kind: FindingKind
    severity: Severity
    message: str
    bar_id: str | None = None  # 0x… when the finding is about one bar
    bar: dict[str, Any] | None = None  # the bar as listed (current list; previous for removed bars)
    events: tuple[EventRef, ...] = ()
    amounts: dict[str, str] = field(default_factory=dict)  # base units (1 fine oz = 10**18)

    def with_tx_hashes(self, hashes: dict[tuple[int, int], str]) -> Finding:
        if not self.events:
            return self
        events = tuple(
            EventRef(e.event, e.block, e.log_index, hashes.get((e.block, e.log_index), e.tx_hash)) for e in self.events
        )
        return Finding(self.kind, self.severity, self.message, self.bar_id, self.bar, events, self.amounts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "severity": self.severity.value,
            "message": self.message,
            "bar_id": self.bar_id,
            "bar": self.bar,
            "events": [e.as_dict() for e in self.events],
            "amounts": dict(self.amounts),
        }

    @property
    def block(self) -> int | None:
        return self.events[0].block if self.events else None

    @property
    def tx_hash(self) -> str | None:
        return self.events[0].tx_hash if self.events else None
