"""Numeric bounds the custody contracts enforce on chain, mirrored for templates and pre-flight.

The Solidity definitions are in ``contracts/CustodyLimits.sol``; ``tests/test_limits.py`` reads that file
and fails when a value here differs, so the two can never drift apart.
"""

from __future__ import annotations

HOUR = 3600
DAY = 86400

MIN_TIMELOCK_DELAY = HOUR
MAX_TIMELOCK_DELAY = 30 * DAY
ZERO_GUARD_DELAY_FACTOR = 2
MIN_ESCROW_DELAY = HOUR
MAX_ESCROW_DELAY = 365 * DAY

MAX_ASSETS = 8
MAX_DESTINATIONS = 16
MAX_WINDOWS = 8
MAX_CALLS = 8
MAX_MESSAGE_DOMAINS = 4
BUCKETS = 25
