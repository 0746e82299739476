// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MAX_ASSETS, MAX_CALLS, MAX_DESTINATIONS, MAX_MESSAGE_DOMAINS, MAX_WINDOWS} from "../CustodyLimits.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";

/// @title GuardPolicy
/// @notice The guard's bindings and its compiled policy tables, packed into immutables so that
///         checking them costs no storage reads, with the lookups every check uses.
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

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant DOMAIN_TYPEHASH_NO_VERSION =
        keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");

    // What the guard is bound to (read them all with `bindings()`).
    address internal immutable SAFE;
    address internal immutable TIMELOCK;
    address internal immutable MULTISEND;
    address internal immutable EXIT_MODULE;
    address internal immutable FALLBACK_HANDLER;
    address internal immutable PREVIOUS_GUARD;
    address internal immutable GUARD_DEPLOYER;
    bytes32 internal immutable POLICY_HASH;
    bytes32 internal immutable TEMPLATE_HASH;

    // The policy.
    uint256 internal immutable ASSET_COUNT;
    uint256 internal immutable DEST_COUNT;
    uint256 internal immutable WINDOW_COUNT;
    uint256 internal immutable CALL_COUNT;
    uint256 internal immutable DOMAIN_COUNT;
    uint256 internal immutable UNRESTRICTED_MASK;
    uint256 internal immutable ALLOWED_START;
    uint256 internal immutable ALLOWED_END;
    uint256 internal immutable TIMELOCK_KINDS;
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
        S0 = _domainSeparator(cfg, 0);
        S1 = _domainSeparator(cfg, 1);
        S2 = _domainSeparator(cfg, 2);
        S3 = _domainSeparator(cfg, 3);
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

    function _validate(
        address safe,
        address timelock,
        address exitModule,
        address fallbackHandler,
        Config memory cfg
    ) private view {
        // Invariant: the policy fits the enforcement tables exactly; nothing is silently dropped.
        if (cfg.assets.length > MAX_ASSETS) revert CustodyGuardInvalidConfig("more than 8 assets");
        if (cfg.destinations.length > MAX_DESTINATIONS) {
            revert CustodyGuardInvalidConfig("more than 16 destinations");
        }
        if (cfg.freezeWindows.length > MAX_WINDOWS) {
            revert CustodyGuardInvalidConfig("more than 8 freeze windows");
        }
        if (cfg.calls.length > MAX_CALLS) revert CustodyGuardInvalidConfig("more than 8 contract calls");
        if (cfg.messageDomains.length > MAX_MESSAGE_DOMAINS) {
            revert CustodyGuardInvalidConfig("more than 4 message domains");
        }
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
            SAFE, TIMELOCK, MULTISEND, EXIT_MODULE, FALLBACK_HANDLER, PREVIOUS_GUARD, GUARD_DEPLOYER,
            uint16(TIMELOCK_KINDS)
        );
    }

    /// @dev The configuration the guard was deployed with, rebuilt from the immutables.
    function _config() internal view returns (Config memory cfg) {
        cfg.assets = new Asset[](ASSET_COUNT);
        for (uint256 i = 0; i < ASSET_COUNT; i++) {
            uint256 limits = _limit(i);
            cfg.assets[i] =
                Asset(address(uint160(_asset(i))), uint96(limits & MASK96), uint96((limits >> 96) & MASK96));
        }
        cfg.destinations = new Destination[](DEST_COUNT);
        for (uint256 j = 0; j < DEST_COUNT; j++) {
            uint256 word = _dest(j);
            cfg.destinations[j] = Destination(address(uint160(word)), uint8(word >> 160));
        }
        cfg.unrestrictedMask = uint8(UNRESTRICTED_MASK);
        cfg.freezeWindows = new Window[](WINDOW_COUNT);
        for (uint256 k = 0; k < WINDOW_COUNT; k++) {
            (uint256 start, uint256 end) = _window(k);
            cfg.freezeWindows[k] = Window(uint32(start), uint32(end));
        }
        cfg.allowedStart = uint32(ALLOWED_START);
        cfg.allowedEnd = uint32(ALLOWED_END);
        cfg.timelockKinds = uint16(TIMELOCK_KINDS);
        cfg.templateHash = TEMPLATE_HASH;
        cfg.calls = new Call[](CALL_COUNT);
        for (uint256 c = 0; c < CALL_COUNT; c++) {
            uint256 word = _call(c);
            cfg.calls[c] = Call(address(uint160(word)), bytes4(uint32(word >> 160)));
        }
        cfg.messageDomains = new MessageDomain[](DOMAIN_COUNT);
        for (uint256 m = 0; m < DOMAIN_COUNT; m++) {
            (address verifier, bytes32 nameHash, bytes32 versionHash) = _domain(m);
            cfg.messageDomains[m] = MessageDomain(verifier, nameHash, versionHash);
        }
    }

    /// @dev The policy's EIP-712 domain separators, in template order.
    function _domainSeparators() internal view returns (bytes32[] memory separators) {
        separators = new bytes32[](DOMAIN_COUNT);
        for (uint256 m = 0; m < DOMAIN_COUNT; m++) {
            separators[m] = _separator(m);
        }
    }

    // -- lookups ----------------------------------------------------------------------------------

    /// @dev Unrolled over the immutable table: the hot path of every check.
    function _findAsset(address token) internal view returns (bool, uint256) {
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
    function _destinationAllows(address destination, uint256 index) internal view returns (bool) {
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

    function _checkDestination(uint256 index, address token, address destination) internal view {
        if (UNRESTRICTED_MASK & (1 << index) != 0) return;
        // Invariant: restricted assets only reach allowlisted destinations.
        if (!_destinationAllows(destination, index)) revert CustodyGuardDestinationNotAllowed(token, destination);
    }

    function _callAllowed(address target, bytes4 selector) internal view returns (bool) {
        uint256 key = uint256(uint160(target)) | (uint256(uint32(selector)) << 160);
        uint256 n = CALL_COUNT;
        unchecked {
            for (uint256 c = 0; c < n; c++) {
                if (_call(c) == key) return true;
            }
        }
        return false;
    }

    function _messageDomainAllowed(bytes32 separator) internal view returns (bool) {
        uint256 n = DOMAIN_COUNT;
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
        return listed && (UNRESTRICTED_MASK & (1 << i) != 0 || _destinationAllows(destination, i));
    }

    function _checkTime() internal view {
        uint256 windows = WINDOW_COUNT;
        if (windows != 0) {
            unchecked {
                uint256 weekSecond = (block.timestamp + MONDAY_OFFSET) % 604800;
                for (uint256 k = 0; k < windows; k++) {
                    uint256 pair = (k < 4 ? W0 : W1) >> ((k & 3) * 64);
                    // Invariant: nothing moves during a freeze window.
                    if (weekSecond >= pair & MASK32 && weekSecond < (pair >> 32) & MASK32) {
                        revert CustodyGuardFrozen(k, weekSecond);
                    }
                }
            }
        }
        if (ALLOWED_END != 0) {
            uint256 daySecond = block.timestamp % 86400;
            // Invariant: nothing moves outside the allowed hours.
            if (daySecond < ALLOWED_START || daySecond >= ALLOWED_END) {
                revert CustodyGuardOutsideAllowedHours(daySecond, ALLOWED_START, ALLOWED_END);
            }
        }
    }

    // -- immutable tables -------------------------------------------------------------------------

    function _asset(uint256 i) internal view returns (uint256) {
        if (i < 4) return i == 0 ? A0 : i == 1 ? A1 : i == 2 ? A2 : A3;
        return i == 4 ? A4 : i == 5 ? A5 : i == 6 ? A6 : A7;
    }

    function _limit(uint256 i) internal view returns (uint256) {
        if (i < 4) return i == 0 ? L0 : i == 1 ? L1 : i == 2 ? L2 : L3;
        return i == 4 ? L4 : i == 5 ? L5 : i == 6 ? L6 : L7;
    }

    function _dest(uint256 j) private view returns (uint256) {
        if (j < 8) {
            if (j < 4) return j == 0 ? D0 : j == 1 ? D1 : j == 2 ? D2 : D3;
            return j == 4 ? D4 : j == 5 ? D5 : j == 6 ? D6 : D7;
        }
        if (j < 12) return j == 8 ? D8 : j == 9 ? D9 : j == 10 ? D10 : D11;
        return j == 12 ? D12 : j == 13 ? D13 : j == 14 ? D14 : D15;
    }

    function _call(uint256 c) private view returns (uint256) {
        if (c < 4) return c == 0 ? C0 : c == 1 ? C1 : c == 2 ? C2 : C3;
        return c == 4 ? C4 : c == 5 ? C5 : c == 6 ? C6 : C7;
    }

    function _window(uint256 k) private view returns (uint256 start, uint256 end) {
        uint256 word = (k < 4 ? W0 : W1) >> ((k % 4) * 64);
        return (word & MASK32, (word >> 32) & MASK32);
    }

    function _separator(uint256 m) private view returns (bytes32) {
        return m == 0 ? S0 : m == 1 ? S1 : m == 2 ? S2 : S3;
    }

    function _domain(uint256 m) private view returns (address verifier, bytes32 nameHash, bytes32 versionHash) {
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

    function _domainSeparator(Config memory cfg, uint256 m) private view returns (bytes32) {
        if (m >= cfg.messageDomains.length) return bytes32(0);
        MessageDomain memory d = cfg.messageDomains[m];
        if (d.versionHash == bytes32(0)) {
            return keccak256(abi.encode(DOMAIN_TYPEHASH_NO_VERSION, d.nameHash, block.chainid, d.verifyingContract));
        }
        return keccak256(abi.encode(DOMAIN_TYPEHASH, d.nameHash, d.versionHash, block.chainid, d.verifyingContract));
    }

    function _domainField(Config memory cfg, uint256 m, uint256 field) private pure returns (bytes32) {
        if (m >= cfg.messageDomains.length) return bytes32(0);
        return field == 0 ? cfg.messageDomains[m].nameHash : cfg.messageDomains[m].versionHash;
    }

    function _domainContract(Config memory cfg, uint256 m) private pure returns (uint256) {
        if (m >= cfg.messageDomains.length) return 0;
        return uint256(uint160(cfg.messageDomains[m].verifyingContract));
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
