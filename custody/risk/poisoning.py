"""Address poisoning: destinations that look like a known counterparty but are not it, and the
zero-value / dust / counterfeit-token transfers poisoners send first so the lookalike shows up in history.

Known counterparties are the policy's allowlists, the template's address book and the vault's past
destinations. A lookalike shares the first ``prefix`` and last ``suffix`` hex characters of a known
address (default 4+4; 3+3 and 6+6 are reported too), or is within a small edit distance of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custody.risk.calls import ETH, transfers
from custody.risk.inputs import RiskInputs
from custody.risk.verdict import Reason, Severity

LAYER = "poisoning"
REPORTED_LEVELS = ((3, 3), (4, 4), (6, 6))


def _hex(address: str) -> str:
    return address.lower().removeprefix("0x")


def common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def common_suffix(a: str, b: str) -> int:
    return common_prefix(a[::-1], b[::-1])


def bounded_edit_distance(a: str, b: str, bound: int) -> int:
    """Levenshtein distance of ``a`` and ``b`` if it is at most ``bound``, else ``bound + 1`` (banded DP)."""
    if abs(len(a) - len(b)) > bound:
        return bound + 1
    big = bound + 1
    previous = {j: j for j in range(0, min(len(b), bound) + 1)}
    for i in range(1, len(a) + 1):
        current = {}
        low, high = max(0, i - bound), min(len(b), i + bound)
        if low == 0:
            current[0] = i
        for j in range(max(1, low), high + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous.get(j, big) + 1, current.get(j - 1, big) + 1, previous.get(j - 1, big) + cost)
        if min(current.values(), default=big) > bound:
            return big
        previous = current
    return min(previous.get(len(b), big), big)


@dataclass(frozen=True)
class Lookalike:
    address: str
    resembles: str
    label: str
    prefix: int
    suffix: int
    edit_distance: int | None  # None when above the bound

    def levels(self) -> list[str]:
        return [f"{p}+{s}" for p, s in REPORTED_LEVELS if self.prefix >= p and self.suffix >= s]

    def as_facts(self) -> dict[str, Any]:
        return {
            "destination": self.address,
            "resembles": self.resembles,
            "label": self.label,
            "prefix": self.prefix,
            "suffix": self.suffix,
            "levels": ",".join(self.levels()),
            "edit_distance": -1 if self.edit_distance is None else self.edit_distance,
        }


def lookalikes(
    address: str, known: dict[str, str], *, prefix: int, suffix: int, max_edit: int, weak: tuple[int, int] = (3, 3)
) -> tuple[list[Lookalike], list[Lookalike]]:
    """(strong, weak) lookalikes of ``address`` among ``known`` (address -> label), excluding itself."""
    target = _hex(address)
    strong, weaker = [], []
    for other, label in known.items():
        candidate = _hex(other)
        if candidate == target:
            continue
        p, s = common_prefix(target, candidate), common_suffix(target, candidate)
        distance = bounded_edit_distance(target, candidate, max_edit) if max_edit else max_edit + 1
        hit = Lookalike(address, other, label, p, s, distance if distance <= max_edit else None)
        if (p >= prefix and s >= suffix) or hit.edit_distance is not None:
            strong.append(hit)
        elif p >= weak[0] and s >= weak[1]:
            weaker.append(hit)
    return strong, weaker


def counterparties(inputs: RiskInputs) -> dict[str, str]:
    book = dict(inputs.known)
    for destination in inputs.past_destinations:
        book.setdefault(destination, "past destination")
    return book


def check(inputs: RiskInputs) -> list[Reason]:
    settings = inputs.settings
    book = counterparties(inputs)
    known_lower = {a.lower() for a in book}
    found: list[Reason] = []
    precursor_senders = _precursors(inputs, book, known_lower)
    for transfer in transfers(inputs.decoded):
        destination = transfer.destination
        if destination.lower() in known_lower:
            continue
        strong, weak = lookalikes(
            destination,
            book,
            prefix=settings.lookalike_prefix,
            suffix=settings.lookalike_suffix,
            max_edit=settings.max_edit_distance,
        )
        for hit in strong:
            found.append(
                Reason(
                    "lookalike_destination",
                    LAYER,
                    Severity.DENY,
                    f"{destination} looks like {hit.label or 'known'} {hit.resembles} but is not it",
                    hit.as_facts(),
                )
            )
        for hit in weak:
            found.append(
                Reason(
                    "weak_lookalike",
                    LAYER,
                    Severity.INFO,
                    f"{destination} shares {hit.prefix}+{hit.suffix} characters with {hit.resembles}",
                    hit.as_facts(),
                )
            )
        if destination.lower() in precursor_senders:
            kind = precursor_senders[destination.lower()]
            found.append(
                Reason(
                    "destination_sent_precursor",
                    LAYER,
                    Severity.DENY,
                    f"{destination} sent this vault a {kind} transfer before (poisoning pattern)",
                    {"destination": destination, "precursor": kind},
                )
            )
    for sender, kind in precursor_senders.items():
        if sender not in {t.destination.lower() for t in transfers(inputs.decoded)}:
            found.append(
                Reason(
                    "poisoning_precursor",
                    LAYER,
                    Severity.INFO,
                    f"a lookalike {sender} sent this vault a {kind} transfer",
                    {"sender": sender, "precursor": kind},
                )
            )
    return found


def _precursors(inputs: RiskInputs, book: dict[str, str], known_lower: set[str]) -> dict[str, str]:
    """Senders of zero-value, dust or counterfeit-token inbound transfers that look like a counterparty."""
    settings = inputs.settings
    listed_assets = {ETH, *(a.lower() for a in inputs.balances if a != ETH)}
    found: dict[str, str] = {}
    for inbound in inputs.inbound:
        sender = inbound.sender.lower()
        if sender in known_lower:
            continue
        if inbound.amount == 0:
            kind = "zero-value"
        elif inbound.asset != ETH and inbound.asset.lower() not in listed_assets:
            kind = "counterfeit-token"
        elif inbound.asset == ETH and inbound.amount <= settings.dust_wei:
            kind = "dust"
        else:
            continue
        strong, _weak = lookalikes(
            inbound.sender,
            book,
            prefix=settings.lookalike_prefix,
            suffix=settings.lookalike_suffix,
            max_edit=settings.max_edit_distance,
        )
        if strong:
            found[sender] = kind
    return found
