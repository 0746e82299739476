// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MAX_ASSETS} from "../CustodyLimits.sol";
import {GuardArgs} from "./GuardArgs.sol";
import {GuardPolicy} from "./GuardPolicy.sol";

/// @title GuardPolicyArgs
/// @notice The policy tables of a clone guard: an EIP-1167 clone of one shared implementation, whose
///         bindings and policy are the clone's immutable arguments (layout: {GuardArgs}), read from its
///         own code. The cheapest guard to create; each read costs a code copy (about 110 gas) and each
///         call a DELEGATECALL into the implementation.
/// @dev The implementation itself has no arguments: read on it, the "bindings" are bytes of its own
///      code, addresses nobody controls, so no call to it passes a caller check; `initialize` refuses it
///      outright.
abstract contract GuardPolicyArgs is GuardPolicy {
    /// @dev Size of the EIP-1167 code in front of the arguments.
    uint256 private constant CLONE_CODE = 0x2d;
    /// @dev The first ten bytes of every EIP-1167 clone's code (then the implementation's address).
    uint256 private constant CLONE_PREFIX = 0x363d3d373d3d3d363d73;

    /// @dev Whether this code runs in an EIP-1167 clone (not in the implementation itself).
    function _isClone() internal view returns (bool) {
        return _code(0) >> 176 == CLONE_PREFIX;
    }

    /// @dev 32 bytes of the arguments from byte `offset` (zero past their end).
    function _arg(uint256 offset) private view returns (uint256) {
        return _code(CLONE_CODE + offset);
    }

    function _code(uint256 offset) private view returns (uint256 word) {
        assembly ("memory-safe") {
            extcodecopy(address(), 0, offset, 32)
            word := mload(0)
        }
    }

    function _argAddress(uint256 offset) private view returns (address) {
        return address(uint160(_arg(offset) >> 96));
    }

    // -- bindings --------------------------------------------------------------------------------

    function _safe() internal view override returns (address) {
        return _argAddress(GuardArgs.SAFE);
    }

    function _timelock() internal view override returns (address) {
        return _argAddress(GuardArgs.TIMELOCK);
    }

    function _multiSend() internal view override returns (address) {
        return _argAddress(GuardArgs.MULTISEND);
    }

    function _exitModule() internal view override returns (address) {
        return _argAddress(GuardArgs.EXIT_MODULE);
    }

    function _fallbackHandler() internal view override returns (address) {
        return _argAddress(GuardArgs.FALLBACK_HANDLER);
    }

    function _previousGuard() internal view override returns (address) {
        return _argAddress(GuardArgs.PREVIOUS_GUARD);
    }

    function _guardDeployer() internal view override returns (address) {
        return _argAddress(GuardArgs.GUARD_DEPLOYER);
    }

    /// @dev Not stored: computed from the tables (only views and `initialize` need it).
    function _policyHash() internal view override returns (bytes32) {
        return keccak256(abi.encode(_config()));
    }

    function _templateHash() internal view override returns (bytes32) {
        return bytes32(_arg(GuardArgs.TEMPLATE_HASH));
    }

    // -- header ----------------------------------------------------------------------------------

    function _header(uint256 shift, uint256 mask) private view returns (uint256) {
        return (_arg(GuardArgs.HEADER) >> shift) & mask;
    }

    function _assetCount() internal view override returns (uint256) {
        return _header(248, 0xff);
    }

    function _destinationCount() internal view override returns (uint256) {
        return _header(240, 0xff);
    }

    function _windowCount() internal view override returns (uint256) {
        return _header(232, 0xff);
    }

    function _callCount() internal view override returns (uint256) {
        return _header(224, 0xff);
    }

    function _domainCount() internal view override returns (uint256) {
        return _header(216, 0xff);
    }

    function _unrestrictedMask() internal view override returns (uint256) {
        return _header(208, 0xff);
    }

    function _allowedStart() internal view override returns (uint256) {
        return _header(176, MASK32);
    }

    function _allowedEnd() internal view override returns (uint256) {
        return _header(144, MASK32);
    }

    function _timelockKinds() internal view override returns (uint256) {
        return _header(128, 0xffff);
    }

    // -- tables ----------------------------------------------------------------------------------

    function _destinationTable() private view returns (uint256) {
        return GuardArgs.TABLES + GuardArgs.ASSET_SIZE * _assetCount();
    }

    function _windowTable() private view returns (uint256) {
        uint256 header = _arg(GuardArgs.HEADER); // one read for both counts
        return GuardArgs.TABLES + GuardArgs.ASSET_SIZE * (header >> 248)
            + GuardArgs.DESTINATION_SIZE * ((header >> 240) & 0xff);
    }

    function _callTable() private view returns (uint256) {
        return _windowTable() + GuardArgs.WINDOW_SIZE * _windowCount();
    }

    function _domainTable() private view returns (uint256) {
        return _callTable() + GuardArgs.CALL_SIZE * _callCount();
    }

    function _asset(uint256 i) internal view override returns (uint256) {
        return _arg(GuardArgs.TABLES + GuardArgs.ASSET_SIZE * i) >> 96;
    }

    function _limit(uint256 i) internal view override returns (uint256) {
        uint256 word = _arg(GuardArgs.TABLES + GuardArgs.ASSET_SIZE * i + 20);
        return (word >> 160) | (((word >> 64) & MASK96) << 96);
    }

    function _dest(uint256 j) internal view override returns (uint256) {
        uint256 word = _arg(_destinationTable() + GuardArgs.DESTINATION_SIZE * j);
        return (word >> 96) | (((word >> 88) & 0xff) << 160);
    }

    function _window(uint256 k) internal view override returns (uint256 start, uint256 end) {
        uint256 word = _arg(_windowTable() + GuardArgs.WINDOW_SIZE * k);
        return (word >> 224, (word >> 192) & MASK32);
    }

    function _call(uint256 c) internal view override returns (uint256) {
        uint256 word = _arg(_callTable() + GuardArgs.CALL_SIZE * c);
        return (word >> 96) | (((word >> 64) & MASK32) << 160);
    }

    function _separator(uint256 m) internal view override returns (bytes32) {
        return bytes32(_arg(_domainTable() + GuardArgs.DOMAIN_SIZE * m));
    }

    function _domain(uint256 m) internal view override returns (address verifier, bytes32 nameHash, bytes32 versionHash) {
        uint256 base = _domainTable() + GuardArgs.DOMAIN_SIZE * m;
        return (address(uint160(_arg(base + 96) >> 96)), bytes32(_arg(base + 32)), bytes32(_arg(base + 64)));
    }

    // -- lookups ----------------------------------------------------------------------------------

    /// @dev Whether `token` is a policy asset, and its index.
    function _findAsset(address token) internal view override returns (bool, uint256) {
        uint256 key = uint256(uint160(token));
        uint256 n = _assetCount();
        // A clone's count was checked against MAX_ASSETS when it was initialised; on the implementation the
        // "count" is a byte of its own code. Capped, no index found here can leave the per-asset storage
        // (the implementation's is empty, so its windows read as unused whatever its code holds).
        if (n > MAX_ASSETS) n = MAX_ASSETS;
        for (uint256 i = 0; i < n; i++) {
            if (_asset(i) == key) return (true, i);
        }
        return (false, 0);
    }

    /// @dev Whether `destination` is allowlisted for asset `index`.
    function _destinationAllows(address destination, uint256 index) internal view override returns (bool) {
        uint256 key = uint256(uint160(destination));
        uint256 n = _destinationCount();
        for (uint256 j = 0; j < n; j++) {
            uint256 word = _dest(j);
            if (word & MASK160 == key) return (word >> (160 + index)) & 1 == 1;
        }
        return false;
    }

    function _checkTime() internal view override {
        uint256 windows = _windowCount();
        if (windows != 0) {
            uint256 weekSecond = _weekSecond();
            uint256 table = _windowTable();
            for (uint256 k = 0; k < windows; k++) {
                uint256 word = _arg(table + GuardArgs.WINDOW_SIZE * k);
                _checkWindow(k, weekSecond, word >> 224, (word >> 192) & MASK32);
            }
        }
        uint256 header = _arg(GuardArgs.HEADER);
        _checkAllowedHours((header >> 176) & MASK32, (header >> 144) & MASK32);
    }
}
