// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// The numeric bounds every custody contract enforces, defined once. The Python toolkit mirrors them
// in `custody/policy/limits.py`; a test compares the two files.

/// @dev Shortest timelock delay a vault may have (creation and every `updateDelay`).
uint256 constant MIN_TIMELOCK_DELAY = 1 hours;
/// @dev Longest timelock delay: a longer one would lock the vault's only configuration path.
uint256 constant MAX_TIMELOCK_DELAY = 30 days;
/// @dev Removing the guard (setGuard(0)) must be scheduled with at least this multiple of the
///      timelock's current delay.
uint256 constant ZERO_GUARD_DELAY_FACTOR = 2;
/// @dev Shortest escrow delay of an emergency exit.
uint256 constant MIN_ESCROW_DELAY = 1 hours;
/// @dev Longest escrow delay of an emergency exit.
uint256 constant MAX_ESCROW_DELAY = 365 days;

/// @dev Capacity of a guard's policy tables.
uint256 constant MAX_ASSETS = 8;
uint256 constant MAX_DESTINATIONS = 16;
uint256 constant MAX_WINDOWS = 8;
uint256 constant MAX_CALLS = 8;
uint256 constant MAX_MESSAGE_DOMAINS = 4;
/// @dev Hourly buckets of the rolling 24 h window (24 full hours plus the current one).
uint256 constant BUCKETS = 25;
