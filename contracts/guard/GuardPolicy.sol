// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";
import {checkGuardCapacity} from "./GuardConfigChecks.sol";

/// @title GuardPolicy
/// @notice The guard's bindings and compiled policy tables, as the rules read them, with the checks
///         every rule uses. Where the tables live is up to the concrete guard: in immutables
///         ({GuardPolicyImmutables}: a dedicated deployment per vault, the cheapest checks) or in the
///         code of an EIP-1167 clone ({GuardPolicyArgs}: a clone of one shared implementation, the
///         cheapest creation).
abstract contract GuardPolicy is ICustodyGuard {
    // Operation kinds that may be scheduled on the vault's timelock (bit flags).
    uint256 internal constant KIND_OWNERS = 1 << 0;
    uint256 internal constant KIND_THRESHOLD = 1 << 1;
    uint256 internal constant KIND_MODULES = 1 << 2;
    uint256 internal constant KIND_GUARD = 1 << 3;
    uint256 internal constant KIND_FALLBACK_HANDLER = 1 << 4;
    uint256 internal constant KIND_POLICY = 1 << 5;
    uint256 internal constant KIND_UNLISTED_TRANSFER = 1 << 6;
    uint256 internal constant KIND_OVER_LIMIT_TRANSFER = 1 << 7;
    /// @dev Every configuration kind: a vault must always be able to change its configuration.
    uint256 internal constant REQUIRED_KINDS =
        KIND_OWNERS | KIND_THRESHOLD | KIND_MODULES | KIND_GUARD | KIND_FALLBACK_HANDLER | KIND_POLICY;
    uint256 internal constant KNOWN_KINDS = REQUIRED_KINDS | KIND_UNLISTED_TRANSFER | KIND_OVER_LIMIT_TRANSFER;
    uint256 internal constant TRANSFER_KINDS = KIND_UNLISTED_TRANSFER | KIND_OVER_LIMIT_TRANSFER;

    bytes4 internal constant TRANSFER = IERC20.transfer.selector;
    bytes4 internal constant APPROVE = IERC20.approve.selector;

    uint256 internal constant MASK32 = (1 << 32) - 1;
    uint256 internal constant MASK96 = (1 << 96) - 1;
    uint256 internal constant MASK160 = (1 << 160) - 1;
    /// @dev (unix time + offset) % 1 week = seconds since Monday 00:00 UTC.
    uint256 internal constant MONDAY_OFFSET = 259200;

    // -- bindings and tables (each concrete guard says where they live) ---------------------------

    function _safe() internal view virtual returns (address);
    function _timelock() internal view virtual returns (address);
    function _multiSend() internal view virtual returns (address);
    function _exitModule() internal view virtual returns (address);
    function _fallbackHandler() internal view virtual returns (address);
    function _previousGuard() internal view virtual returns (address);
    /// @dev The GuardDeployer whose registry vouches for this guard's successors.
    function _guardDeployer() internal view virtual returns (address);
    /// @dev keccak256(abi.encode(config)) of the enforced configuration.
    function _policyHash() internal view virtual returns (bytes32);
    function _templateHash() internal view virtual returns (bytes32);
    function _assetCount() internal view virtual returns (uint256);
    function _destinationCount() internal view virtual returns (uint256);
    function _windowCount() internal view virtual returns (uint256);
    function _callCount() internal view virtual returns (uint256);
    function _domainCount() internal view virtual returns (uint256);
    function _unrestrictedMask() internal view virtual returns (uint256);
    function _allowedStart() internal view virtual returns (uint256);
    function _allowedEnd() internal view virtual returns (uint256);
    function _timelockKinds() internal view virtual returns (uint256);
    /// @dev Asset `i`'s token (as a word).
    function _asset(uint256 i) internal view virtual returns (uint256);
    /// @dev Asset `i`'s limits: perTx (96) | daily (96) << 96.
    function _limit(uint256 i) internal view virtual returns (uint256);
    /// @dev Destination `j`: account (160) | assetMask (8) << 160.
    function _dest(uint256 j) internal view virtual returns (uint256);
    /// @dev Contract call `c`: target (160) | selector (32) << 160.
    function _call(uint256 c) internal view virtual returns (uint256);
    /// @dev Freeze window `k`: seconds since Monday 00:00 UTC, [start, end).
    function _window(uint256 k) internal view virtual returns (uint256 start, uint256 end);
    /// @dev Message domain `m`'s EIP-712 separator (for this chain).
    function _separator(uint256 m) internal view virtual returns (bytes32);
    function _domain(uint256 m) internal view virtual returns (address verifier, bytes32 nameHash, bytes32 versionHash);

    // -- validation -------------------------------------------------------------------------------


    function _validate(
        address safe,
        address timelock,
        address exitModule,
        address fallbackHandler,
        Config memory cfg
    ) internal view {
        checkGuardCapacity(cfg);
        // Invariant: the vault can always reconfigure itself through its timelock, and no kind
        // outside the known set can be smuggled in (there is no DELEGATECALL kind: code run in the
        // vault's context through the timelock could rewrite its guard, modules or owners unchecked).
        if (cfg.timelockKinds & REQUIRED_KINDS != REQUIRED_KINDS) {
            revert CustodyGuardInvalidConfig("timelock kinds must include every configuration change");
        }
        if (cfg.timelockKinds & ~KNOWN_KINDS != 0) revert CustodyGuardInvalidConfig("unknown timelock kind");
        for (uint256 i = 0; i < cfg.calls.length; i++) {
            address target = cfg.calls[i].target;
            // Invariant: an allowlisted call can never be a limit-free path to the vault's own assets or config.
            if (_isComponent(target, safe, timelock, exitModule, fallbackHandler)) {
                revert CustodyGuardInvalidConfig("contract call to the vault, one of its components or zero");
            }
            if (_isPolicyAsset(cfg, target)) revert CustodyGuardInvalidConfig("contract call to a policy asset");
        }
        for (uint256 i = 0; i < cfg.messageDomains.length; i++) {
            address verifier = cfg.messageDomains[i].verifyingContract;
            // Invariant: a signed message can never move a policy asset (permit, transferWithAuthorization)
            // nor speak for the vault's own components.
            if (_isComponent(verifier, safe, timelock, exitModule, fallbackHandler)) {
                revert CustodyGuardInvalidConfig("message domain of the vault, one of its components or zero");
            }
            if (_isPolicyAsset(cfg, verifier)) revert CustodyGuardInvalidConfig("message domain of a policy asset");
        }
        if (cfg.allowedEnd > 86400 || (cfg.allowedEnd != 0 && cfg.allowedStart >= cfg.allowedEnd)) {
            revert CustodyGuardInvalidConfig("bad allowed hours");
        }
        for (uint256 i = 0; i < cfg.freezeWindows.length; i++) {
            if (cfg.freezeWindows[i].start >= cfg.freezeWindows[i].end || cfg.freezeWindows[i].end > 604800) {
                revert CustodyGuardInvalidConfig("bad freeze window");
            }
        }
        for (uint256 i = 0; i < cfg.assets.length; i++) {
            if (cfg.assets[i].perTxLimit > cfg.assets[i].dailyLimit) {
                revert CustodyGuardInvalidConfig("per-transaction limit above daily limit");
            }
            for (uint256 j = 0; j < i; j++) {
                if (cfg.assets[j].token == cfg.assets[i].token) revert CustodyGuardInvalidConfig("duplicate asset");
            }
        }
    }

    function _isComponent(address target, address safe, address timelock, address exitModule, address handler)
        private
        view
        returns (bool)
    {
        return target == address(0) || target == safe || target == timelock || target == exitModule
            || target == handler || target == address(this);
    }

    function _isPolicyAsset(Config memory cfg, address target) private pure returns (bool) {
        for (uint256 a = 0; a < cfg.assets.length; a++) {
            if (cfg.assets[a].token == target) return true;
        }
        return false;
    }

    // -- views of the tables ----------------------------------------------------------------------

    /// @inheritdoc ICustodyGuard
    function bindings() public view returns (Bindings memory) {
        return Bindings(
            _safe(), _timelock(), _multiSend(), _exitModule(), _fallbackHandler(), _previousGuard(), _guardDeployer(),
            uint16(_timelockKinds())
        );
    }

    /// @dev The configuration the guard was deployed with, rebuilt from its tables.
    function _config() internal view returns (Config memory cfg) {
        cfg.assets = new Asset[](_assetCount());
        for (uint256 i = 0; i < cfg.assets.length; i++) {
            uint256 limits = _limit(i);
            cfg.assets[i] =
                Asset(address(uint160(_asset(i))), uint96(limits & MASK96), uint96((limits >> 96) & MASK96));
        }
        cfg.destinations = new Destination[](_destinationCount());
        for (uint256 j = 0; j < cfg.destinations.length; j++) {
            uint256 word = _dest(j);
            cfg.destinations[j] = Destination(address(uint160(word)), uint8(word >> 160));
        }
        cfg.unrestrictedMask = uint8(_unrestrictedMask());
        cfg.freezeWindows = new Window[](_windowCount());
        for (uint256 k = 0; k < cfg.freezeWindows.length; k++) {
            (uint256 start, uint256 end) = _window(k);
            cfg.freezeWindows[k] = Window(uint32(start), uint32(end));
        }
        cfg.allowedStart = uint32(_allowedStart());
        cfg.allowedEnd = uint32(_allowedEnd());
        cfg.timelockKinds = uint16(_timelockKinds());
        cfg.templateHash = _templateHash();
        cfg.calls = new Call[](_callCount());
        for (uint256 c = 0; c < cfg.calls.length; c++) {
            uint256 word = _call(c);
            cfg.calls[c] = Call(address(uint160(word)), bytes4(uint32(word >> 160)));
        }
        cfg.messageDomains = new MessageDomain[](_domainCount());
        for (uint256 m = 0; m < cfg.messageDomains.length; m++) {
            (address verifier, bytes32 nameHash, bytes32 versionHash) = _domain(m);
            cfg.messageDomains[m] = MessageDomain(verifier, nameHash, versionHash);
        }
    }

    /// @dev The policy's EIP-712 domain separators, in template order.
    function _domainSeparators() internal view returns (bytes32[] memory separators) {
        separators = new bytes32[](_domainCount());
        for (uint256 m = 0; m < separators.length; m++) {
            separators[m] = _separator(m);
        }
    }

    // -- lookups ----------------------------------------------------------------------------------

    /// @dev Whether `token` is a policy asset, and its index.
    function _findAsset(address token) internal view virtual returns (bool, uint256);
    /// @dev Whether `destination` is allowlisted for asset `index`.
    function _destinationAllows(address destination, uint256 index) internal view virtual returns (bool);

    function _checkDestination(uint256 index, address token, address destination) internal view {
        if (_unrestrictedMask() & (1 << index) != 0) return;
        // Invariant: restricted assets only reach allowlisted destinations.
        if (!_destinationAllows(destination, index)) revert CustodyGuardDestinationNotAllowed(token, destination);
    }

    function _callAllowed(address target, bytes4 selector) internal view returns (bool) {
        uint256 key = uint256(uint160(target)) | (uint256(uint32(selector)) << 160);
        uint256 n = _callCount();
        unchecked {
            for (uint256 c = 0; c < n; c++) {
                if (_call(c) == key) return true;
            }
        }
        return false;
    }

    function _messageDomainAllowed(bytes32 separator) internal view returns (bool) {
        uint256 n = _domainCount();
        unchecked {
            for (uint256 m = 0; m < n; m++) {
                if (_separator(m) == separator) return true;
            }
        }
        return false;
    }

    /// @dev Whether a call out of the vault is within the allowlists: a contract function the policy
    ///      lists, or a transfer/approve of a policy asset to a destination it may reach.
    function _isListedTransfer(address to, uint256 value, bytes memory data) internal view returns (bool) {
        address token = address(0); // native ETH unless the call is a token transfer/approve
        address destination;
        if (value == 0 && data.length >= 4 && _callAllowed(to, _memSelector(data))) return true;
        if (data.length == 0) {
            destination = to;
        } else {
            bytes4 selector = _memSelector(data);
            if (value != 0 || data.length != 68 || (selector != TRANSFER && selector != APPROVE)) return false;
            token = to;
            if (token == address(0)) return false;
            uint256 raw = _memWord(data, 0);
            if (raw >> 160 != 0) return false;
            destination = address(uint160(raw));
        }
        (bool listed, uint256 i) = _findAsset(token);
        return listed && (_unrestrictedMask() & (1 << i) != 0 || _destinationAllows(destination, i));
    }

    /// @dev Reverts inside a freeze window or outside the allowed hours (each concrete guard walks its
    ///      own window table with {_checkWindow} and ends with {_checkAllowedHours}).
    function _checkTime() internal view virtual;

    /// @dev Seconds since Monday 00:00 UTC.
    function _weekSecond() internal view returns (uint256) {
        unchecked {
            return (block.timestamp + MONDAY_OFFSET) % 604800;
        }
    }

    function _checkWindow(uint256 k, uint256 weekSecond, uint256 start, uint256 end) internal pure {
        // Invariant: nothing moves during a freeze window.
        if (weekSecond >= start && weekSecond < end) revert CustodyGuardFrozen(k, weekSecond);
    }

    function _checkAllowedHours(uint256 allowedStart, uint256 allowedEnd) internal view {
        if (allowedEnd == 0) return;
        uint256 daySecond = block.timestamp % 86400;
        // Invariant: nothing moves outside the allowed hours.
        if (daySecond < allowedStart || daySecond >= allowedEnd) {
            revert CustodyGuardOutsideAllowedHours(daySecond, allowedStart, allowedEnd);
        }
    }

    // -- calldata helpers -------------------------------------------------------------------------

    function _selector(bytes calldata data) internal pure returns (bytes4 selector) {
        if (data.length < 4) return bytes4(0);
        assembly ("memory-safe") {
            selector := and(calldataload(data.offset), shl(224, 0xffffffff))
        }
    }

    function _memSelector(bytes memory data) internal pure returns (bytes4 selector) {
        if (data.length < 4) return bytes4(0);
        assembly ("memory-safe") {
            selector := and(mload(add(data, 32)), shl(224, 0xffffffff))
        }
    }

    /// @dev The `index`-th 32-byte argument word after the selector; callers check the length first
    ///      (a short `data` reads as zero).
    function _memWord(bytes memory data, uint256 index) internal pure returns (uint256 word) {
        uint256 end = 4 + 32 * (index + 1);
        if (data.length < end) return 0;
        assembly ("memory-safe") {
            word := mload(add(add(data, 36), mul(index, 32)))
        }
    }
}
