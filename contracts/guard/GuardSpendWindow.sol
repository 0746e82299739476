// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BUCKETS, MAX_ASSETS} from "../CustodyLimits.sol";
import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";
import {GuardPolicy} from "./GuardPolicy.sol";

/// @title GuardSpendWindow
/// @notice The rolling 24 h limit: per asset, one packed slot (running total, current hour and its
///         amount) and a ring of 24 hourly buckets for the finished hours still counting. A spend
///         counts against the daily limit for at least 24 h and at most 25 h (BUCKETS hours), so no
///         24 h window can ever see more than the limit leave the vault. Also holds the pause flag,
///         which every outgoing path reads.
abstract contract GuardSpendWindow is GuardPolicy {
    uint256 private constant SEEDED = 1 << 224;
    uint256 internal constant PAUSED = 1 << 225;
    uint256 private constant MARKER = 1 << 255; // keeps an unused spend slot non-zero (cheaper first write)
    /// @dev Ring buckets: the hours of the window before the current one. Hour h sits at h % RING, so the
    ///      hour that leaves the window when the next one starts (h - 24) is the bucket h overwrites.
    uint256 internal constant RING = BUCKETS - 1;
    /// @dev Storage slots of one asset's ring (two buckets per slot).
    uint256 private constant RING_SLOTS = RING / 2;
    /// @dev What `primeSpendWindow` writes into a bucket never written: amount 0 (so it can never count),
    ///      hour 1 (so the half, and its slot, are non-zero).
    uint256 private constant PRIMED_BUCKET = 1 << 96;
    uint256 private constant HALF = (1 << 128) - 1;

    /// @dev Per asset: total (96) | current hour amount (96) << 96 | current hour (32) << 192 | seeded | paused | marker.
    uint256[MAX_ASSETS] internal _state;
    /// @dev Per asset: RING hourly buckets, two per slot, each (amount 96 | hour 32 << 96).
    uint256[RING_SLOTS][MAX_ASSETS] private _ring;
    /// @dev Pause flag for the paths that are not a policy-asset transfer (those read the PAUSED bit).
    bool internal _paused;

    /// @dev Pre-writes the spend slots of `assetCount` assets (20k gas each at creation, so that each
    ///      asset's first spend rewrites a non-zero slot, 17k gas less).
    function _markAssets(uint256 assetCount) internal {
        for (uint256 i = 0; i < assetCount; i++) {
            _state[i] = MARKER;
        }
    }

    /// @dev Writes an empty bucket (amount 0, so it never counts; hour 1, so it is non-zero) into every
    ///      ring bucket of the first `assetCount` assets never written, and leaves every other bucket as
    ///      it is. It changes no limit, only who pays the EVM's first write of each ring slot (about
    ///      20,000 gas): the primer, instead of the first spend of an hour in that slot. Returns the
    ///      number of slots written.
    function _primeRing(uint256 assetCount) internal returns (uint256 slots) {
        for (uint256 i = 0; i < assetCount; i++) {
            for (uint256 s = 0; s < RING_SLOTS; s++) {
                uint256 slot = _ring[i][s];
                // Invariant: priming only fills buckets never written; a recorded spend stays as it is.
                uint256 primed = slot;
                if (slot & HALF == 0) primed |= PRIMED_BUCKET;
                if (slot >> 128 == 0) primed |= PRIMED_BUCKET << 128;
                if (primed != slot) {
                    _ring[i][s] = primed;
                    slots++;
                }
            }
        }
    }

    /// @inheritdoc ICustodyGuard
    function spendState(uint256 index)
        external
        view
        returns (
            uint256 total,
            uint256 currentAmount,
            uint256 currentHour,
            bool seeded,
            uint256[2][RING] memory buckets
        )
    {
        uint256 word = _state[index];
        total = word & MASK96;
        currentAmount = (word >> 96) & MASK96;
        currentHour = (word >> 192) & MASK32;
        seeded = word & SEEDED != 0;
        for (uint256 b = 0; b < RING; b++) {
            (buckets[b][0], buckets[b][1]) = _bucket(index, b);
        }
    }

    /// @inheritdoc ICustodyGuard
    function windowTotal(address token) external view returns (uint256) {
        (bool found, uint256 i) = _findAsset(token);
        if (!found) return 0;
        uint256 word = _state[i];
        if (word & SEEDED == 0) return 0;
        uint256 hour = (word >> 192) & MASK32;
        uint256 nowHour = _nowHour(hour);
        uint256 total = word & MASK96;
        if (nowHour == hour) return total;
        return _windowAt(i, total, (word >> 96) & MASK96, hour, nowHour);
    }

    function _setPaused(bool on) internal {
        _paused = on;
        for (uint256 i = 0; i < _assetCount(); i++) {
            _state[i] = on ? _state[i] | PAUSED : _state[i] & ~PAUSED;
        }
    }

    /// @dev An owner-signed spend of `amount` of asset `i`: within the per-transaction limit and the
    ///      rolling window, or revert.
    function _spend(uint256 i, address token, uint256 amount) internal {
        uint256 limits = _limit(i);
        uint256 perTx = limits & MASK96;
        uint256 daily = (limits >> 96) & MASK96;
        uint256 word = _state[i];
        // Invariant: a paused vault moves nothing on its owners' signatures alone.
        if (word & PAUSED != 0) revert CustodyGuardPaused();
        // Invariant: no single transfer exceeds the per-transaction limit.
        if (amount > perTx) revert CustodyGuardPerTxLimitExceeded(token, amount, perTx);
        (uint256 total, uint256 current, uint256 nowHour) = _load(i, token, daily, word);
        unchecked {
            // total, current <= daily < 2^96 and amount <= perTx < 2^96: no overflow below.
            // Invariant: no 24 h window ever sees more than the daily limit leave the vault.
            if (total + amount > daily) revert CustodyGuardDailyLimitExceeded(token, amount, total, daily);
            _state[i] = MARKER | SEEDED | (nowHour << 192) | ((current + amount) << 96) | (total + amount);
        }
    }

    /// @dev A spend the timelock executes after its public delay: exempt from the limits (that is the
    ///      point of scheduling it), but it uses up what is left of the rolling window, so ordinary
    ///      transfers after it still respect the daily limit. Returns the amount counted.
    function _spendScheduled(uint256 i, address token, uint256 amount) internal returns (uint256 counted) {
        uint256 daily = (_limit(i) >> 96) & MASK96;
        (uint256 total, uint256 current, uint256 nowHour) = _load(i, token, daily, _state[i]);
        unchecked {
            // total <= daily, so the room below cannot underflow and the sums stay below 2^96.
            uint256 room = daily - total;
            counted = amount < room ? amount : room;
            _state[i] = MARKER | SEEDED | (nowHour << 192) | ((current + counted) << 96) | (total + counted);
        }
    }

    /// @dev The asset's window at the current hour: (total still counting, current hour's amount, hour).
    function _load(uint256 i, address token, uint256 daily, uint256 word)
        private
        returns (uint256 total, uint256 current, uint256 nowHour)
    {
        if (word & SEEDED == 0) {
            nowHour = block.timestamp / 3600;
            (total, current) = _seed(token, daily);
            return (total, current, nowHour);
        }
        total = word & MASK96;
        current = (word >> 96) & MASK96;
        uint256 hour = (word >> 192) & MASK32;
        nowHour = _nowHour(hour);
        if (hour != nowHour) {
            total = _roll(i, total, current, hour, nowHour);
            current = 0;
        }
    }

    /// @dev The current hour, never earlier than the last hour recorded: if the chain's clock went
    ///      back (a restored node, a reorg to an earlier timestamp), spends keep counting in the latest
    ///      hour seen, which only makes them expire later (conservative) and never underflows.
    function _nowHour(uint256 lastHour) private view returns (uint256) {
        uint256 nowHour = block.timestamp / 3600;
        return nowHour < lastHour ? lastHour : nowHour;
    }

    /// @dev Drop the buckets that left the window, then move the finished hour into the ring: in that
    ///      order, as the finished hour's bucket is the one that held the hour leaving first (h - 24).
    function _roll(uint256 i, uint256 total, uint256 current, uint256 hour, uint256 nowHour)
        private
        returns (uint256 remaining)
    {
        if (nowHour - hour >= BUCKETS) return 0;
        remaining = _windowAt(i, total, current, hour, nowHour);
        if (current != 0) _writeBucket(i, hour, current);
    }

    /// @dev What is still in the window at `nowHour` (> `hour`, the last hour recorded with `total`
    ///      and its own amount `current`; the ring does not hold `hour` yet). `total` is always
    ///      `current` plus the ring buckets of the 24 hours before `hour`, so either side can be summed:
    ///      the buckets that left the window (subtracted) or those still in it (added to `current`);
    ///      the shorter side is read. A new hour reads one bucket (the one `hour` then overwrites), the
    ///      next day's first spend none.
    function _windowAt(uint256 i, uint256 total, uint256 current, uint256 hour, uint256 nowHour)
        private
        view
        returns (uint256)
    {
        uint256 gap = nowHour - hour;
        if (gap >= BUCKETS) return 0;
        // Invariant: a spend counts while its hour h satisfies h + 25 > nowHour (at least 24 h, at most 25 h).
        uint256 oldest = nowHour >= BUCKETS - 1 ? nowHour - (BUCKETS - 1) : 0; // first hour still in the window
        if (2 * gap <= BUCKETS) return total - _sumBuckets(i, hour >= BUCKETS - 1 ? hour - (BUCKETS - 1) : 0, oldest);
        return current + _sumBuckets(i, oldest, hour);
    }

    /// @dev Sum of the ring buckets recorded for the hours in [from, to) (at most RING of them, each
    ///      below 2^96: no overflow).
    function _sumBuckets(uint256 i, uint256 from, uint256 to) private view returns (uint256 amount) {
        uint256 first = _ringSlot(i, 0);
        unchecked {
            for (uint256 h = from; h < to; ++h) {
                uint256 b = h % RING;
                uint256 half;
                assembly ("memory-safe") {
                    half := and(shr(mul(and(b, 1), 128), sload(add(first, shr(1, b)))), HALF)
                }
                // Invariant: a bucket counts only for the hour it was written in.
                if (half >> 96 == h) amount += half & MASK96;
            }
        }
    }

    /// @dev Storage slot of asset `i`'s ring bucket `b` (two buckets per slot, RING_SLOTS per asset). Read
    ///      and written in assembly on the hot paths, without Solidity's bounds checks: `b` < RING, and every
    ///      caller has read `_state[i]` first, whose bounds check stops any index of MAX_ASSETS or more.
    function _ringSlot(uint256 i, uint256 b) private pure returns (uint256 slot) {
        uint256 perAsset = RING_SLOTS;
        assembly ("memory-safe") {
            slot := add(add(_ring.slot, mul(i, perAsset)), shr(1, b))
        }
    }

    /// @dev First spend of an asset under this guard: carry over the predecessor's window
    ///      (conservatively, as if all of it had left this hour). A predecessor that does not
    ///      answer counts as a fully used limit.
    function _seed(address token, uint256 daily) private returns (uint256 total, uint256 current) {
        if (_previousGuard() == address(0)) return (0, 0);
        bool answered = false;
        try ICustodyGuard(_previousGuard()).windowTotal(token) returns (uint256 carried) {
            total = carried > daily ? daily : carried;
            answered = true;
        } catch {
            total = daily;
        }
        emit CustodyGuardSpendImported(token, total, answered);
        return (total, total);
    }

    function _bucket(uint256 i, uint256 b) private view returns (uint256 amount, uint256 hour) {
        uint256 half = (_ring[i][b / 2] >> ((b % 2) * 128)) & HALF;
        return (half & MASK96, half >> 96);
    }

    function _writeBucket(uint256 i, uint256 hour, uint256 amount) private {
        uint256 b = hour % RING;
        uint256 slot = _ringSlot(i, b);
        assembly ("memory-safe") {
            let shift := mul(and(b, 1), 128)
            sstore(slot, or(and(sload(slot), not(shl(shift, HALF))), shl(shift, or(amount, shl(96, hour)))))
        }
    }
}
