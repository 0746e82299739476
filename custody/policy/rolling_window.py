"""The guard's rolling 24 h window per asset, as the pre-flight models it: the amounts of the hours still
counting, derived from what CustodyGuard stores (running sums and a ring of hourly buckets)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from custody.policy import limits

BUCKETS = limits.BUCKETS  # hours a spend can count in: the current one and the 24 before it
RING = BUCKETS - 1  # ring buckets of the guard's spend window (hour h at h % RING)
SUM_MODULUS = 2**96  # the guard keeps its running sums modulo 2^96


@dataclass(frozen=True)
class SpendState:
    """One asset's rolling window: what still counts (``total``), the last hour recorded and its own amount
    (``current``), and each ring bucket's hour with that hour's amount (0 for an hour no longer in the
    window). The guard stores running sums instead (:meth:`from_stored`); this is the same window by hour."""

    total: int = 0
    current: int = 0
    hour: int = 0
    seeded: bool = False
    buckets: tuple[tuple[int, int], ...] = ((0, 0),) * RING  # (amount, hour) per ring slot

    @classmethod
    def from_stored(
        cls, spent: int, before: int, hour: int, seeded: bool, ring: Sequence[tuple[int, int]]
    ) -> SpendState:
        """The state from what the guard stores (``spendState``): running sums modulo 2^96 and a ring of
        (running sum at the hour's end, hour). A bucket is live when it holds one of the RING hours before
        ``hour`` (read from the hours' tags, not from the guard's live-hours bitmap, so the model checks
        it); a live hour's amount is its running sum less the latest live one before it, or ``before``."""
        previous = before
        buckets = [(0, tag) for _, tag in ring]
        for h in range(max(hour - RING, 0), hour):
            running, tag = ring[h % RING]
            if tag == h:
                buckets[h % RING] = ((running - previous) % SUM_MODULUS, h)
                previous = running
        return cls((spent - before) % SUM_MODULUS, (spent - previous) % SUM_MODULUS, hour, seeded, tuple(buckets))

    def window_total(self, now_hour: int) -> int:
        """``windowTotal`` of the guard: what still counts at ``now_hour``."""
        if not self.seeded:
            return 0
        now_hour = max(now_hour, self.hour)
        if now_hour == self.hour:
            return self.total
        if now_hour - self.hour >= BUCKETS:
            return 0
        total = self.total
        h = max(self.hour - 24, 0)
        while h + BUCKETS <= now_hour:
            amount, tag = self.buckets[h % RING]
            if tag == h:
                total -= amount
            h += 1
        return total
