// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {GuardPolicy} from "./GuardPolicy.sol";
import {messageDomainSeparator} from "./GuardConfigChecks.sol";

/// @title GuardPolicyImmutables
/// @notice The policy tables of a dedicated guard (one full deployment per vault): packed into
///         immutables, so that checking them costs no storage or code reads, with the lookups
///         unrolled over them. The most expensive guard to create and the cheapest to run.
abstract contract GuardPolicyImmutables is GuardPolicy {
    // What the guard is bound to (read them all with `bindings()`).
    address private immutable SAFE;
    address private immutable TIMELOCK;
    address private immutable MULTISEND;
    address private immutable EXIT_MODULE;
    address private immutable FALLBACK_HANDLER;
    address private immutable PREVIOUS_GUARD;
    address private immutable GUARD_DEPLOYER;
    bytes32 private immutable POLICY_HASH;
    bytes32 private immutable TEMPLATE_HASH;

    // The policy.
    uint256 private immutable ASSET_COUNT;
    uint256 private immutable DEST_COUNT;
    uint256 private immutable WINDOW_COUNT;
    uint256 private immutable CALL_COUNT;
    uint256 private immutable DOMAIN_COUNT;
    uint256 private immutable UNRESTRICTED_MASK;
    uint256 private immutable ALLOWED_START;
    uint256 private immutable ALLOWED_END;
    uint256 private immutable TIMELOCK_KINDS;
    uint256 private immutable A0; // asset words: token (160)
    uint256 private immutable A1;
    uint256 private immutable A2;
    uint256 private immutable A3;
    uint256 private immutable A4;
    uint256 private immutable A5;
    uint256 private immutable A6;
    uint256 private immutable A7;
    uint256 private immutable L0; // limit words: perTx (96) | daily (96) << 96
    uint256 private immutable L1;
    uint256 private immutable L2;
    uint256 private immutable L3;
    uint256 private immutable L4;
    uint256 private immutable L5;
    uint256 private immutable L6;
    uint256 private immutable L7;
    uint256 private immutable D0; // destination words: account (160) | assetMask (8) << 160
    uint256 private immutable D1;
    uint256 private immutable D2;
    uint256 private immutable D3;
    uint256 private immutable D4;
    uint256 private immutable D5;
    uint256 private immutable D6;
    uint256 private immutable D7;
    uint256 private immutable D8;
    uint256 private immutable D9;
    uint256 private immutable D10;
    uint256 private immutable D11;
    uint256 private immutable D12;
    uint256 private immutable D13;
    uint256 private immutable D14;
    uint256 private immutable D15;
    uint256 private immutable W0; // four windows per word: (start 32 | end 32) per 64 bits
    uint256 private immutable W1;
    uint256 private immutable C0; // call words: target (160) | selector (32) << 160
    uint256 private immutable C1;
    uint256 private immutable C2;
    uint256 private immutable C3;
    uint256 private immutable C4;
    uint256 private immutable C5;
    uint256 private immutable C6;
    uint256 private immutable C7;
    bytes32 private immutable S0; // message domain separators
    bytes32 private immutable S1;
    bytes32 private immutable S2;
    bytes32 private immutable S3;
    bytes32 private immutable N0; // message domain name hashes
    bytes32 private immutable N1;
    bytes32 private immutable N2;
    bytes32 private immutable N3;
    bytes32 private immutable V0; // message domain version hashes (zero: no version field)
    bytes32 private immutable V1;
    bytes32 private immutable V2;
    bytes32 private immutable V3;
    uint256 private immutable M0; // message domain verifying contracts
    uint256 private immutable M1;
    uint256 private immutable M2;
    uint256 private immutable M3;

    constructor(
        address safe,
        address timelock,
        address multiSend,
        address exitModule,
        address fallbackHandler,
        address previousGuard,
        Config memory cfg
    ) {
        _validate(safe, timelock, exitModule, fallbackHandler, cfg);
        SAFE = safe;
        TIMELOCK = timelock;
        MULTISEND = multiSend;
        EXIT_MODULE = exitModule;
        FALLBACK_HANDLER = fallbackHandler;
        PREVIOUS_GUARD = previousGuard;
        // The deployer's registry is what lets a predecessor tell a real CustodyGuard from a lookalike.
        GUARD_DEPLOYER = msg.sender;
        TEMPLATE_HASH = cfg.templateHash;
        POLICY_HASH = keccak256(abi.encode(cfg));
        ASSET_COUNT = cfg.assets.length;
        DEST_COUNT = cfg.destinations.length;
        WINDOW_COUNT = cfg.freezeWindows.length;
        CALL_COUNT = cfg.calls.length;
        DOMAIN_COUNT = cfg.messageDomains.length;
        UNRESTRICTED_MASK = cfg.unrestrictedMask;
        ALLOWED_START = cfg.allowedStart;
        ALLOWED_END = cfg.allowedEnd;
        TIMELOCK_KINDS = cfg.timelockKinds;
        A0 = _assetWord(cfg, 0);
        A1 = _assetWord(cfg, 1);
        A2 = _assetWord(cfg, 2);
        A3 = _assetWord(cfg, 3);
        A4 = _assetWord(cfg, 4);
        A5 = _assetWord(cfg, 5);
        A6 = _assetWord(cfg, 6);
        A7 = _assetWord(cfg, 7);
        L0 = _limitWord(cfg, 0);
        L1 = _limitWord(cfg, 1);
        L2 = _limitWord(cfg, 2);
        L3 = _limitWord(cfg, 3);
        L4 = _limitWord(cfg, 4);
        L5 = _limitWord(cfg, 5);
        L6 = _limitWord(cfg, 6);
        L7 = _limitWord(cfg, 7);
        D0 = _destWord(cfg, 0);
        D1 = _destWord(cfg, 1);
        D2 = _destWord(cfg, 2);
        D3 = _destWord(cfg, 3);
        D4 = _destWord(cfg, 4);
        D5 = _destWord(cfg, 5);
        D6 = _destWord(cfg, 6);
        D7 = _destWord(cfg, 7);
        D8 = _destWord(cfg, 8);
        D9 = _destWord(cfg, 9);
        D10 = _destWord(cfg, 10);
        D11 = _destWord(cfg, 11);
        D12 = _destWord(cfg, 12);
        D13 = _destWord(cfg, 13);
        D14 = _destWord(cfg, 14);
        D15 = _destWord(cfg, 15);
        W0 = _windowWord(cfg, 0);
        W1 = _windowWord(cfg, 4);
        C0 = _callWord(cfg, 0);
        C1 = _callWord(cfg, 1);
        C2 = _callWord(cfg, 2);
        C3 = _callWord(cfg, 3);
        C4 = _callWord(cfg, 4);
        C5 = _callWord(cfg, 5);
        C6 = _callWord(cfg, 6);
        C7 = _callWord(cfg, 7);
        S0 = _separatorWord(cfg, 0);
        S1 = _separatorWord(cfg, 1);
        S2 = _separatorWord(cfg, 2);
        S3 = _separatorWord(cfg, 3);
        N0 = _domainField(cfg, 0, 0);
        N1 = _domainField(cfg, 1, 0);
        N2 = _domainField(cfg, 2, 0);
        N3 = _domainField(cfg, 3, 0);
        V0 = _domainField(cfg, 0, 1);
        V1 = _domainField(cfg, 1, 1);
        V2 = _domainField(cfg, 2, 1);
        V3 = _domainField(cfg, 3, 1);
        M0 = _domainContract(cfg, 0);
        M1 = _domainContract(cfg, 1);
        M2 = _domainContract(cfg, 2);
        M3 = _domainContract(cfg, 3);
    }

    // -- bindings --------------------------------------------------------------------------------

    function _safe() internal view override returns (address) {
        return SAFE;
    }

    function _timelock() internal view override returns (address) {
        return TIMELOCK;
    }

    function _multiSend() internal view override returns (address) {
        return MULTISEND;
    }

    function _exitModule() internal view override returns (address) {
        return EXIT_MODULE;
    }

    function _fallbackHandler() internal view override returns (address) {
        return FALLBACK_HANDLER;
    }

    function _previousGuard() internal view override returns (address) {
        return PREVIOUS_GUARD;
    }

    function _guardDeployer() internal view override returns (address) {
        return GUARD_DEPLOYER;
    }

    function _policyHash() internal view override returns (bytes32) {
        return POLICY_HASH;
    }

    function _templateHash() internal view override returns (bytes32) {
        return TEMPLATE_HASH;
    }

    function _assetCount() internal view override returns (uint256) {
        return ASSET_COUNT;
    }

    function _destinationCount() internal view override returns (uint256) {
        return DEST_COUNT;
    }

    function _windowCount() internal view override returns (uint256) {
        return WINDOW_COUNT;
    }

    function _callCount() internal view override returns (uint256) {
        return CALL_COUNT;
    }

    function _domainCount() internal view override returns (uint256) {
        return DOMAIN_COUNT;
    }

    function _unrestrictedMask() internal view override returns (uint256) {
        return UNRESTRICTED_MASK;
    }

    function _allowedStart() internal view override returns (uint256) {
        return ALLOWED_START;
    }

    function _allowedEnd() internal view override returns (uint256) {
        return ALLOWED_END;
    }

    function _timelockKinds() internal view override returns (uint256) {
        return TIMELOCK_KINDS;
    }

    // -- lookups unrolled over the immutables -------------------------------------------------------

    /// @dev Unrolled over the immutable table: the hot path of every check.
    function _findAsset(address token) internal view override returns (bool, uint256) {
        uint256 key = uint256(uint160(token));
        uint256 n = ASSET_COUNT;
        if (n == 0) return (false, 0);
        if (A0 == key) return (true, 0);
        if (n == 1) return (false, 0);
        if (A1 == key) return (true, 1);
        if (n == 2) return (false, 0);
        if (A2 == key) return (true, 2);
        if (n == 3) return (false, 0);
        if (A3 == key) return (true, 3);
        if (n == 4) return (false, 0);
        if (A4 == key) return (true, 4);
        if (n == 5) return (false, 0);
        if (A5 == key) return (true, 5);
        if (n == 6) return (false, 0);
        if (A6 == key) return (true, 6);
        if (n == 7) return (false, 0);
        if (A7 == key) return (true, 7);
        return (false, 0);
    }

    /// @dev Unrolled over the immutable table; returns the destination's asset mask bit for `index`.
    function _destinationAllows(address destination, uint256 index) internal view override returns (bool) {
        uint256 key = uint256(uint160(destination));
        uint256 n = DEST_COUNT;
        uint256 word;
        unchecked {
            if (n == 0) return false;
            if (D0 & MASK160 == key) word = D0;
            else if (n > 1 && D1 & MASK160 == key) word = D1;
            else if (n > 2 && D2 & MASK160 == key) word = D2;
            else if (n > 3 && D3 & MASK160 == key) word = D3;
            else {
                for (uint256 j = 4; j < n; j++) {
                    uint256 w = _dest(j);
                    if (w & MASK160 == key) return (w >> (160 + index)) & 1 == 1;
                }
                return false;
            }
            return (word >> (160 + index)) & 1 == 1;
        }
    }

    function _checkTime() internal view override {
        uint256 windows = WINDOW_COUNT;
        if (windows != 0) {
            uint256 weekSecond = _weekSecond();
            unchecked {
                for (uint256 k = 0; k < windows; k++) {
                    uint256 pair = (k < 4 ? W0 : W1) >> ((k & 3) * 64);
                    _checkWindow(k, weekSecond, pair & MASK32, (pair >> 32) & MASK32);
                }
            }
        }
        if (ALLOWED_END != 0) _checkAllowedHours(ALLOWED_START, ALLOWED_END);
    }

    // -- immutable tables -------------------------------------------------------------------------

    function _asset(uint256 i) internal view override returns (uint256) {
        if (i < 4) return i == 0 ? A0 : i == 1 ? A1 : i == 2 ? A2 : A3;
        return i == 4 ? A4 : i == 5 ? A5 : i == 6 ? A6 : A7;
    }

    function _limit(uint256 i) internal view override returns (uint256) {
        if (i < 4) return i == 0 ? L0 : i == 1 ? L1 : i == 2 ? L2 : L3;
        return i == 4 ? L4 : i == 5 ? L5 : i == 6 ? L6 : L7;
    }

    function _dest(uint256 j) internal view override returns (uint256) {
        if (j < 8) {
            if (j < 4) return j == 0 ? D0 : j == 1 ? D1 : j == 2 ? D2 : D3;
            return j == 4 ? D4 : j == 5 ? D5 : j == 6 ? D6 : D7;
        }
        if (j < 12) return j == 8 ? D8 : j == 9 ? D9 : j == 10 ? D10 : D11;
        return j == 12 ? D12 : j == 13 ? D13 : j == 14 ? D14 : D15;
    }

    function _call(uint256 c) internal view override returns (uint256) {
        if (c < 4) return c == 0 ? C0 : c == 1 ? C1 : c == 2 ? C2 : C3;
        return c == 4 ? C4 : c == 5 ? C5 : c == 6 ? C6 : C7;
    }

    function _window(uint256 k) internal view override returns (uint256 start, uint256 end) {
        unchecked {
            uint256 word = (k < 4 ? W0 : W1) >> ((k & 3) * 64); // k < MAX_WINDOWS = 8
            return (word & MASK32, (word >> 32) & MASK32);
        }
    }

    function _separator(uint256 m) internal view override returns (bytes32) {
        return m == 0 ? S0 : m == 1 ? S1 : m == 2 ? S2 : S3;
    }

    function _domain(uint256 m) internal view override returns (address verifier, bytes32 nameHash, bytes32 versionHash) {
        if (m == 0) return (address(uint160(M0)), N0, V0);
        if (m == 1) return (address(uint160(M1)), N1, V1);
        if (m == 2) return (address(uint160(M2)), N2, V2);
        return (address(uint160(M3)), N3, V3);
    }

    function _assetWord(Config memory cfg, uint256 i) private pure returns (uint256) {
        return i < cfg.assets.length ? uint256(uint160(cfg.assets[i].token)) : 0;
    }

    function _limitWord(Config memory cfg, uint256 i) private pure returns (uint256) {
        if (i >= cfg.assets.length) return 0;
        return uint256(cfg.assets[i].perTxLimit) | (uint256(cfg.assets[i].dailyLimit) << 96);
    }

    function _destWord(Config memory cfg, uint256 j) private pure returns (uint256) {
        if (j >= cfg.destinations.length) return 0;
        return uint256(uint160(cfg.destinations[j].account)) | (uint256(cfg.destinations[j].assetMask) << 160);
    }

    function _windowWord(Config memory cfg, uint256 first) private pure returns (uint256 word) {
        for (uint256 k = first; k < first + 4 && k < cfg.freezeWindows.length; k++) {
            uint256 pair = uint256(cfg.freezeWindows[k].start) | (uint256(cfg.freezeWindows[k].end) << 32);
            word |= pair << ((k - first) * 64);
        }
    }

    function _callWord(Config memory cfg, uint256 c) private pure returns (uint256) {
        if (c >= cfg.calls.length) return 0;
        return uint256(uint160(cfg.calls[c].target)) | (uint256(uint32(cfg.calls[c].selector)) << 160);
    }

    function _separatorWord(Config memory cfg, uint256 m) private view returns (bytes32) {
        return m < cfg.messageDomains.length ? messageDomainSeparator(cfg.messageDomains[m]) : bytes32(0);
    }

    function _domainField(Config memory cfg, uint256 m, uint256 field) private pure returns (bytes32) {
        if (m >= cfg.messageDomains.length) return bytes32(0);
        return field == 0 ? cfg.messageDomains[m].nameHash : cfg.messageDomains[m].versionHash;
    }

    function _domainContract(Config memory cfg, uint256 m) private pure returns (uint256) {
        if (m >= cfg.messageDomains.length) return 0;
        return uint256(uint160(cfg.messageDomains[m].verifyingContract));
    }
}
