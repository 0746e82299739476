// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {BUCKETS, MAX_ASSETS} from "../CustodyLimits.sol";
import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";
import {GuardPolicy} from "./GuardPolicy.sol";

/// @title GuardSpendWindow
/// @notice The rolling 24 h limit: per asset, one packed slot and a ring of 24 hourly buckets for the
///         finished hours still counting. A spend counts against the daily limit for at least 24 h and
///         at most 25 h (BUCKETS hours), so no 24 h window can ever see more than the limit leave the
///         vault. Also holds the pause flag, which every outgoing path reads.
///
///         The window is kept as running sums (modulo 2^96): `spent`, everything ever counted, and
///         `before`, what was counted before the window's oldest hour; the window holds `spent - before`.
///         A finished hour's bucket records `spent` as of its end, and a bitmap in the slot says which
///         buckets hold an hour still in the window. When hours leave the window, `before` becomes the
///         bucket of the latest of them that had a spend (found in the bitmap, so one bucket is read
///         whatever the gap), or stays as it is if none had. A new hour therefore writes one bucket and
///         reads at most one, after a gap of one hour as after twenty.
abstract contract GuardSpendWindow is GuardPolicy {
    uint256 private constant SEEDED = 1 << 224;
    uint256 internal constant PAUSED = 1 << 225;
    /// @dev Bit offset of the live-hours bitmap: bit j set when the ring holds hour `hour - 1 - j`.
    uint256 private constant LIVE = 226;
    uint256 private constant MARKER = 1 << 255; // keeps an unused spend slot non-zero (cheaper first write)
    /// @dev Ring buckets: the hours of the window before the current one. Hour h sits at h % RING, so the
    ///      hour that leaves the window when the next one starts (h - 24) is the bucket h overwrites.
    uint256 internal constant RING = BUCKETS - 1;
    uint256 private constant LIVE_MASK = (1 << RING) - 1;
    /// @dev Storage slots of one asset's ring (two buckets per slot).
    uint256 private constant RING_SLOTS = RING / 2;
    /// @dev What `primeSpendWindow` writes into a bucket never written: running sum 0, hour 1 (so the
    ///      half, and its slot, are non-zero; no live hour is ever hour 1).
    uint256 private constant PRIMED_BUCKET = 1 << 96;
    uint256 private constant HALF = (1 << 128) - 1;
    /// @dev De Bruijn table of the lowest set bit of a 32-bit word (byte k: the bit whose isolated value
    ///      times 0x077CB531 has k in its top five bits).
    uint256 private constant DE_BRUIJN = 0x00011c021d0e18031e16140f191104081f1b0d17151310071a0c12060b050a09;

    /// @dev Per asset: spent (96) | before (96) << 96 | hour (32) << 192 | seeded | paused | live (24) << LIVE | marker.
    uint256[MAX_ASSETS] internal _state;
    /// @dev Per asset: RING hourly buckets, two per slot, each (spent at the hour's end (96) | hour (32) << 96).
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

    /// @dev Writes an empty bucket (running sum 0, hour 1: it is never live) into every ring bucket of the
    ///      first `assetCount` assets never written, and leaves every other bucket as it is. It changes no
    ///      limit, only who pays the EVM's first write of each ring slot (about 20,000 gas): the primer,
    ///      instead of the first spend of an hour in that slot. Returns the number of slots written.
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
            uint256 spent,
            uint256 before,
            uint256 hour,
            uint256 live,
            bool seeded,
            uint256[2][RING] memory buckets
        )
    {
        uint256 word = _state[index];
        spent = word & MASK96;
        before = (word >> 96) & MASK96;
        hour = (word >> 192) & MASK32;
        live = (word >> LIVE) & LIVE_MASK;
        seeded = word & SEEDED != 0;
        for (uint256 b = 0; b < RING; b++) {
            uint256 half = (_ring[index][b / 2] >> ((b % 2) * 128)) & HALF;
            (buckets[b][0], buckets[b][1]) = (half & MASK96, half >> 96);
        }
    }

    /// @inheritdoc ICustodyGuard
    function windowTotal(address token) external view returns (uint256) {
        (bool found, uint256 i) = _findAsset(token);
        if (!found) return 0;
        uint256 word = _state[i];
        if (word & SEEDED == 0) return 0;
        uint256 hour = (word >> 192) & MASK32;
        uint256 gap = _nowHour(hour) - hour;
        if (gap >= BUCKETS) return 0;
        uint256 before = (word >> 96) & MASK96;
        if (gap != 0) before = _beforeWindow(i, before, (word >> LIVE) & LIVE_MASK, hour, gap);
        unchecked {
            return ((word & MASK96) - before) & MASK96;
        }
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
        word = _load(i, token, daily, word);
        unchecked {
            // the window holds at most daily < 2^96 and amount <= perTx < 2^96: no overflow below.
            uint256 total = _windowHolds(word);
            // Invariant: no 24 h window ever sees more than the daily limit leave the vault.
            if (total + amount > daily) revert CustodyGuardDailyLimitExceeded(token, amount, total, daily);
            _state[i] = _counted(word, amount);
        }
    }

    /// @dev A spend the timelock executes after its public delay: exempt from the limits (that is the
    ///      point of scheduling it), but it uses up what is left of the rolling window, so ordinary
    ///      transfers after it still respect the daily limit. Returns the amount counted.
    function _spendScheduled(uint256 i, address token, uint256 amount) internal returns (uint256 counted) {
        uint256 daily = (_limit(i) >> 96) & MASK96;
        uint256 word = _load(i, token, daily, _state[i]);
        unchecked {
            // the window never holds more than daily, so the room below cannot underflow.
            uint256 room = daily - _windowHolds(word);
            counted = amount < room ? amount : room;
            _state[i] = _counted(word, counted);
        }
    }

    /// @dev What the window of the packed state `word` holds: spent - before, modulo 2^96.
    function _windowHolds(uint256 word) private pure returns (uint256) {
        unchecked {
            return (word - (word >> 96)) & MASK96;
        }
    }

    /// @dev `word` with `amount` more spent (modulo 2^96; the other fields as they are).
    function _counted(uint256 word, uint256 amount) private pure returns (uint256) {
        unchecked {
            return (word & ~MASK96) | ((word + amount) & MASK96);
        }
    }

    /// @dev The asset's packed state moved to the current hour (seeded on its first spend).
    function _load(uint256 i, address token, uint256 daily, uint256 word) private returns (uint256) {
        if (word & SEEDED == 0) {
            return (word & PAUSED) | MARKER | SEEDED | ((block.timestamp / 3600) << 192) | _seed(token, daily);
        }
        uint256 hour = (word >> 192) & MASK32;
        uint256 nowHour = _nowHour(hour);
        if (hour == nowHour) return word;
        return _roll(i, word, hour, nowHour);
    }

    /// @dev The current hour, never earlier than the last hour recorded: if the chain's clock went
    ///      back (a restored node, a reorg to an earlier timestamp), spends keep counting in the latest
    ///      hour seen, which only makes them expire later (conservative) and never underflows.
    function _nowHour(uint256 lastHour) private view returns (uint256) {
        uint256 nowHour = block.timestamp / 3600;
        return nowHour < lastHour ? lastHour : nowHour;
    }

    /// @dev Move the packed state `word` from `hour` (the last one recorded) to `nowHour`: find what left
    ///      the window, then write the finished hour into the ring. In that order, as the finished hour's
    ///      bucket is the one that held the hour leaving first (h - 24).
    function _roll(uint256 i, uint256 word, uint256 hour, uint256 nowHour) private returns (uint256) {
        uint256 gap = nowHour - hour;
        uint256 spent = word & MASK96;
        uint256 flags = word & (MARKER | SEEDED | PAUSED);
        // Invariant: a spend counts while its hour h satisfies h + 25 > nowHour (at least 24 h, at most 25 h).
        if (gap >= BUCKETS) return flags | (nowHour << 192) | (spent << 96) | spent;
        uint256 live = (word >> LIVE) & LIVE_MASK;
        uint256 before = _beforeWindow(i, (word >> 96) & MASK96, live, hour, gap);
        _writeBucket(i, hour, spent);
        // the finished hour is now `gap` hours back (bit gap - 1); the hours already live move back with it
        live = ((live << gap) | (1 << (gap - 1))) & LIVE_MASK;
        return flags | (live << LIVE) | (nowHour << 192) | (before << 96) | spent;
    }

    /// @dev What was counted before the window at `hour + gap` starts (0 < gap < BUCKETS): the running sum
    ///      of the latest live hour that has left it (bit j >= RING - gap: hour `hour - 1 - j` is at least
    ///      BUCKETS hours old), or `before` if none has.
    function _beforeWindow(uint256 i, uint256 before, uint256 live, uint256 hour, uint256 gap)
        private
        view
        returns (uint256)
    {
        uint256 skip = RING - gap;
        uint256 left = live >> skip;
        if (left == 0) return before;
        return _bucketSum(i, hour - 1 - skip - _lowestBit(left));
    }

    /// @dev Index of the lowest set bit of `x` (0 < x < 2^32).
    function _lowestBit(uint256 x) private pure returns (uint256 index) {
        assembly ("memory-safe") {
            index := byte(shr(27, and(mul(and(x, sub(0, x)), 0x077CB531), 0xFFFFFFFF)), DE_BRUIJN)
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

    /// @dev The running sum recorded at the end of hour `h` (a live hour: its bucket holds it).
    function _bucketSum(uint256 i, uint256 h) private view returns (uint256 sum) {
        uint256 b = h % RING;
        uint256 slot = _ringSlot(i, b);
        assembly ("memory-safe") {
            sum := and(shr(mul(and(b, 1), 128), sload(slot)), MASK96)
        }
    }

    /// @dev First spend of an asset under this guard: carry over the predecessor's window
    ///      (conservatively, as if all of it had left this hour). A predecessor that does not
    ///      answer counts as a fully used limit.
    function _seed(address token, uint256 daily) private returns (uint256 total) {
        if (_previousGuard() == address(0)) return 0;
        bool answered = false;
        try ICustodyGuard(_previousGuard()).windowTotal(token) returns (uint256 carried) {
            total = carried > daily ? daily : carried;
            answered = true;
        } catch {
            total = daily;
        }
        emit CustodyGuardSpendImported(token, total, answered);
    }

    function _writeBucket(uint256 i, uint256 hour, uint256 spent) private {
        uint256 b = hour % RING;
        uint256 slot = _ringSlot(i, b);
        assembly ("memory-safe") {
            let shift := mul(and(b, 1), 128)
            sstore(slot, or(and(sload(slot), not(shl(shift, HALF))), shl(shift, or(spent, shl(96, hour)))))
        }
    }
}
