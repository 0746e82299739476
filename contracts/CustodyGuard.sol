// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";
import {ISafe} from "./interfaces/ISafe.sol";

/// @notice Safe v1.4.1 `Guard` interface (interface id 0xe6d7a83a).
interface ISafeGuard is IERC165 {
    function checkTransaction(
        address to,
        uint256 value,
        bytes calldata data,
        ISafe.Operation operation,
        uint256 safeTxGas,
        uint256 baseGas,
        uint256 gasPrice,
        address gasToken,
        address payable refundReceiver,
        bytes calldata signatures,
        address msgSender
    ) external;

    function checkAfterExecution(bytes32 txHash, bool success) external;
}

/// @title CustodyGuard
/// @notice Enforces one micro-vault's compiled policy on every Safe transaction. See {ICustodyGuard}.
contract CustodyGuard is ICustodyGuard, ISafeGuard {
    /// @dev Semantic version of this contract (reported by `info()`).
    string private constant VERSION = "1.0.0";

    // Operation kinds that may be scheduled on the vault's timelock (bit flags).
    uint256 internal constant KIND_OWNERS = 1 << 0;
    uint256 internal constant KIND_THRESHOLD = 1 << 1;
    uint256 internal constant KIND_MODULES = 1 << 2;
    uint256 internal constant KIND_GUARD = 1 << 3;
    uint256 internal constant KIND_FALLBACK_HANDLER = 1 << 4;
    uint256 internal constant KIND_POLICY = 1 << 5;
    uint256 internal constant KIND_UNLISTED_TRANSFER = 1 << 6;
    uint256 internal constant KIND_OVER_LIMIT_TRANSFER = 1 << 7;
    uint256 internal constant KIND_DELEGATECALL = 1 << 8;

    uint256 internal constant MAX_ASSETS = 8;
    uint256 internal constant MAX_DESTINATIONS = 16;
    uint256 internal constant MAX_WINDOWS = 8;
    uint256 internal constant MAX_CALLS = 8;
    uint256 internal constant BUCKETS = 25;

    bytes4 private constant TRANSFER = 0xa9059cbb; // transfer(address,uint256)
    bytes4 private constant APPROVE = 0x095ea7b3; // approve(address,uint256)
    bytes4 private constant MULTISEND_SELECTOR = 0x8d80ff0a; // multiSend(bytes)
    bytes4 private constant SCHEDULE = 0x01d5062a; // schedule(address,uint256,bytes,bytes32,bytes32,uint256)
    bytes4 private constant SCHEDULE_BATCH = 0x8f2a0bb0; // scheduleBatch(address[],uint256[],bytes[],bytes32,bytes32,uint256)
    bytes4 private constant CANCEL = 0xc4d252f5; // cancel(bytes32)
    bytes4 private constant EXECUTE = 0x134008d3; // execute(address,uint256,bytes,bytes32,bytes32)
    bytes4 private constant EXECUTE_BATCH = 0xe38335e5; // executeBatch(address[],uint256[],bytes[],bytes32,bytes32)
    bytes4 private constant EXEC_FROM_MODULE = 0x468721a7; // execTransactionFromModule(address,uint256,bytes,uint8)
    bytes4 private constant PAUSE = 0x16c38b3c; // setPaused(bool)
    bytes4 private constant EXIT_CANCEL = 0xea8a1af0; // cancel()

    uint256 private constant MASK96 = (1 << 96) - 1;
    uint256 private constant MASK32 = (1 << 32) - 1;
    uint256 private constant MASK160 = (1 << 160) - 1;
    uint256 private constant SEEDED = 1 << 224;
    uint256 private constant PAUSED = 1 << 225;
    uint256 private constant MARKER = 1 << 255; // keeps an unused spend slot non-zero (cheaper first write)
    uint256 private constant MONDAY_OFFSET = 259200; // (unix time + offset) % 1 week = seconds since Monday 00:00 UTC

    // What the guard is bound to (read them all with `info()`).
    address private immutable SAFE;
    address private immutable TIMELOCK;
    address private immutable MULTISEND;
    address private immutable EXIT_MODULE;
    address private immutable PREVIOUS_GUARD;
    bytes32 private immutable POLICY_HASH;
    bytes32 private immutable TEMPLATE_HASH;

    // The policy, packed into immutables so that checking it costs no storage reads.
    uint256 private immutable ASSET_COUNT;
    uint256 private immutable DEST_COUNT;
    uint256 private immutable WINDOW_COUNT;
    uint256 private immutable UNRESTRICTED_MASK;
    uint256 private immutable ALLOWED_START;
    uint256 private immutable ALLOWED_END;
    uint256 private immutable TIMELOCK_KINDS;
    uint256 private immutable A0; // asset words: token (160) | perTx (96 high bits in L*)
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
    uint256 private immutable CALL_COUNT;
    uint256 private immutable C0; // call words: target (160) | selector (32) << 160
    uint256 private immutable C1;
    uint256 private immutable C2;
    uint256 private immutable C3;
    uint256 private immutable C4;
    uint256 private immutable C5;
    uint256 private immutable C6;
    uint256 private immutable C7;

    /// @dev Per asset: total (96) | current hour amount (96) << 96 | current hour (32) << 192 | seeded | marker.
    uint256[MAX_ASSETS] private _state;
    /// @dev Per asset: 25 hourly buckets, two per slot, each (amount 96 | hour 32 << 96).
    uint256[13][MAX_ASSETS] private _ring;
    /// @dev Pause flag for the contract-call path (transfers read the PAUSED bit of their spend slot).
    bool private _paused;

    constructor(
        address safe,
        address timelock,
        address multiSend,
        address exitModule,
        address previousGuard,
        Config memory cfg
    ) {
        // Invariant: the policy fits the enforcement tables exactly; nothing is silently dropped.
        if (cfg.assets.length > MAX_ASSETS) revert CustodyGuardInvalidConfig("more than 8 assets");
        if (cfg.destinations.length > MAX_DESTINATIONS) revert CustodyGuardInvalidConfig("more than 16 destinations");
        if (cfg.freezeWindows.length > MAX_WINDOWS) revert CustodyGuardInvalidConfig("more than 8 freeze windows");
        if (cfg.calls.length > MAX_CALLS) revert CustodyGuardInvalidConfig("more than 8 contract calls");
        for (uint256 i = 0; i < cfg.calls.length; i++) {
            address target = cfg.calls[i].target;
            // Invariant: an allowlisted call can never be a limit-free path to the vault's own assets or config.
            if (target == safe || target == timelock || target == address(0)) {
                revert CustodyGuardInvalidConfig("contract call to the vault, its timelock or zero");
            }
            for (uint256 a = 0; a < cfg.assets.length; a++) {
                if (cfg.assets[a].token == target) revert CustodyGuardInvalidConfig("contract call to a policy asset");
            }
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
            _state[i] = MARKER;
        }
        SAFE = safe;
        TIMELOCK = timelock;
        MULTISEND = multiSend;
        EXIT_MODULE = exitModule;
        PREVIOUS_GUARD = previousGuard;
        TEMPLATE_HASH = cfg.templateHash;
        POLICY_HASH = keccak256(abi.encode(cfg));
        ASSET_COUNT = cfg.assets.length;
        DEST_COUNT = cfg.destinations.length;
        WINDOW_COUNT = cfg.freezeWindows.length;
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
        CALL_COUNT = cfg.calls.length;
        C0 = _callWord(cfg, 0);
        C1 = _callWord(cfg, 1);
        C2 = _callWord(cfg, 2);
        C3 = _callWord(cfg, 3);
        C4 = _callWord(cfg, 4);
        C5 = _callWord(cfg, 5);
        C6 = _callWord(cfg, 6);
        C7 = _callWord(cfg, 7);
        emit CustodyGuardConfigured(safe, POLICY_HASH, cfg.templateHash, previousGuard);
    }

    // -- Guard ----------------------------------------------------------------------------------

    /// @notice Called by the Safe before executing any owner-signed transaction; reverts to veto it.
    function checkTransaction(
        address to,
        uint256 value,
        bytes calldata data,
        ISafe.Operation operation,
        uint256,
        uint256,
        uint256 gasPrice,
        address gasToken,
        address payable refundReceiver,
        bytes calldata,
        address
    ) external override {
        // Invariant: only the guarded Safe can consume its limits.
        if (msg.sender != SAFE) revert CustodyGuardNotSafe(msg.sender);
        // Invariant: no value leaves the vault as a gas refund (it would bypass every limit).
        if (gasPrice != 0) revert CustodyGuardRefundForbidden(gasPrice, gasToken, refundReceiver);
        if (operation == ISafe.Operation.DelegateCall) {
            // Invariant: only MultiSendCallOnly may run in the vault's context, and only to batch calls.
            if (to != MULTISEND) revert CustodyGuardDelegateCallForbidden(to);
            _checkMultiSend(data);
        } else {
            _checkCall(to, value, data);
        }
    }

    /// @inheritdoc ICustodyGuard
    function setPaused(bool on) external {
        // Invariant: only the vault's own owners (a Safe transaction) can freeze it, and a freeze is
        // only lifted after the timelock's public delay.
        if (msg.sender != (on ? SAFE : TIMELOCK)) revert CustodyGuardUnauthorized(msg.sender);
        _paused = on;
        for (uint256 i = 0; i < ASSET_COUNT; i++) {
            _state[i] = on ? _state[i] | PAUSED : _state[i] & ~PAUSED;
        }
        emit CustodyGuardPauseChanged(on, msg.sender);
    }

    /// @notice Nothing to check after execution: every decision is taken before it.
    function checkAfterExecution(bytes32, bool) external pure override {}

    /// @notice ERC-165: the Safe requires the Guard interface id before it installs a guard.
    function supportsInterface(bytes4 interfaceId) external pure override returns (bool) {
        return interfaceId == type(ISafeGuard).interfaceId || interfaceId == type(IERC165).interfaceId;
    }

    // -- views ----------------------------------------------------------------------------------

    /// @inheritdoc ICustodyGuard
    function info() external view returns (GuardInfo memory) {
        return GuardInfo(
            VERSION, SAFE, TIMELOCK, MULTISEND, EXIT_MODULE, PREVIOUS_GUARD, POLICY_HASH, TEMPLATE_HASH, _paused, _config()
        );
    }

    function _config() private view returns (Config memory cfg) {
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
    }

    /// @inheritdoc ICustodyGuard
    function spendState(uint256 index)
        external
        view
        returns (uint256 total, uint256 currentAmount, uint256 currentHour, bool seeded, uint256[2][25] memory buckets)
    {
        uint256 word = _state[index];
        total = word & MASK96;
        currentAmount = (word >> 96) & MASK96;
        currentHour = (word >> 192) & MASK32;
        seeded = word & SEEDED != 0;
        for (uint256 b = 0; b < BUCKETS; b++) {
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
        uint256 nowHour = block.timestamp / 3600;
        uint256 total = word & MASK96;
        if (nowHour == hour) return total;
        if (nowHour - hour >= BUCKETS) return 0;
        // the current hour's amount stays in the window; only ring buckets can have expired
        for (uint256 h = hour - 24; h + BUCKETS <= nowHour; h++) {
            (uint256 amount, uint256 tag) = _bucket(i, h % BUCKETS);
            if (tag == h) total -= amount;
        }
        return total;
    }

    // -- checks ---------------------------------------------------------------------------------

    function _checkCall(address to, uint256 value, bytes calldata data) private {
        // Invariant: owners cannot reconfigure the Safe directly; only the timelock (a module) can.
        if (to == SAFE) revert CustodyGuardSelfCallForbidden(_selector(data));
        if (to == TIMELOCK) {
            _checkTimelockCall(value, data);
            return;
        }
        if (data.length == 0) {
            (bool hasEth, uint256 i) = _findAsset(address(0));
            if (!hasEth) revert CustodyGuardCallForbidden(to, bytes4(0), value);
            _checkTime();
            _checkDestination(i, address(0), to);
            _spend(i, address(0), value);
            return;
        }
        // Hot path: transfer/approve of a policy token, with nothing else to decide.
        (bool listed, uint256 index) = _findAsset(to);
        if (listed && to != address(0) && value == 0 && data.length == 68) {
            bytes4 selector;
            uint256 rawDestination;
            uint256 amount;
            assembly ("memory-safe") {
                selector := and(calldataload(data.offset), shl(224, 0xffffffff))
                rawDestination := calldataload(add(data.offset, 4))
                amount := calldataload(add(data.offset, 36))
            }
            if ((selector == TRANSFER || selector == APPROVE) && rawDestination >> 160 == 0) {
                _checkTime();
                _checkDestination(index, to, address(uint160(rawDestination)));
                _spend(index, to, amount);
                return;
            }
        }
        _checkOtherCall(to, value, data, listed);
    }

    /// @dev Everything but plain transfers: the owners' pause and exit cancellation, allowlisted
    ///      contract functions, and the precise reason for refusing anything else.
    function _checkOtherCall(address to, uint256 value, bytes calldata data, bool listed) private {
        bytes4 selector = _selector(data);
        // the owners may always freeze the vault (setPaused(true)) and stop an emergency exit (cancel())
        if (to == address(this) && value == 0 && data.length == 36 && selector == PAUSE) {
            if (uint256(bytes32(data[4:36])) == 1) return;
        }
        if (to == EXIT_MODULE && to != address(0) && value == 0 && data.length == 4 && selector == EXIT_CANCEL) {
            return;
        }
        if (CALL_COUNT != 0 && value == 0 && data.length >= 4 && _callAllowed(to, selector)) {
            if (_paused) revert CustodyGuardPaused();
            _checkTime();
            return;
        }
        // Invariant: the vault only calls policy tokens, allowlisted functions and its timelock.
        if (!listed || to == address(0) || value != 0) revert CustodyGuardCallForbidden(to, selector, value);
        revert CustodyGuardTokenCallForbidden(to, selector);
    }

    function _checkMultiSend(bytes calldata data) private {
        if (_selector(data) != MULTISEND_SELECTOR || data.length < 68) {
            revert CustodyGuardCallForbidden(MULTISEND, _selector(data), 0);
        }
        uint256 offset = uint256(bytes32(data[4:36]));
        uint256 length = uint256(bytes32(data[4 + offset:36 + offset]));
        bytes calldata txs = data[36 + offset:36 + offset + length];
        uint256 pos = 0;
        while (pos < txs.length) {
            address target = address(bytes20(txs[pos + 1:pos + 21]));
            // Invariant: a batch cannot smuggle a DELEGATECALL (MultiSendCallOnly refuses it too).
            if (uint8(txs[pos]) != 0) revert CustodyGuardDelegateCallForbidden(target);
            uint256 value = uint256(bytes32(txs[pos + 21:pos + 53]));
            uint256 size = uint256(bytes32(txs[pos + 53:pos + 85]));
            // Invariant: every call inside a batch passes the same checks as a single call.
            _checkCall(target, value, txs[pos + 85:pos + 85 + size]);
            pos += 85 + size;
        }
    }

    function _checkTimelockCall(uint256 value, bytes calldata data) private view {
        bytes4 selector = _selector(data);
        if (value != 0) revert CustodyGuardCallForbidden(TIMELOCK, selector, value);
        if (selector == CANCEL || selector == EXECUTE || selector == EXECUTE_BATCH) return;
        if (selector == SCHEDULE) {
            (address target, uint256 val, bytes memory payload,,,) =
                abi.decode(data[4:], (address, uint256, bytes, bytes32, bytes32, uint256));
            _checkScheduled(target, val, payload);
            return;
        }
        if (selector == SCHEDULE_BATCH) {
            (address[] memory targets, uint256[] memory values, bytes[] memory payloads,,,) =
                abi.decode(data[4:], (address[], uint256[], bytes[], bytes32, bytes32, uint256));
            for (uint256 i = 0; i < targets.length; i++) {
                _checkScheduled(targets[i], values[i], payloads[i]);
            }
            return;
        }
        revert CustodyGuardCallForbidden(TIMELOCK, selector, value);
    }

    function _checkScheduled(address target, uint256 value, bytes memory payload) private view {
        uint256 kind = _classify(target, value, payload);
        // Invariant: only the operation kinds the policy names can ever be scheduled.
        if (kind & TIMELOCK_KINDS == 0) revert CustodyGuardTimelockKindForbidden(kind, target, _memSelector(payload));
    }

    /// @dev Kind of a scheduled timelock operation; 0 = unknown (never allowed).
    function _classify(address target, uint256 value, bytes memory payload) private view returns (uint256) {
        bytes4 selector = _memSelector(payload);
        if (target == SAFE) {
            if (selector != EXEC_FROM_MODULE || value != 0) return 0;
            (address to, uint256 innerValue, bytes memory inner, uint8 operation) =
                abi.decode(_tail(payload), (address, uint256, bytes, uint8));
            if (to == SAFE) return _configKind(_memSelector(inner));
            if (operation != 0) return KIND_DELEGATECALL;
            return _isListedTransfer(to, innerValue, inner) ? KIND_OVER_LIMIT_TRANSFER : KIND_UNLISTED_TRANSFER;
        }
        if (value == 0 && (target == address(this) || target == TIMELOCK || (target == EXIT_MODULE && target != address(0)))) {
            return KIND_POLICY;
        }
        return 0;
    }

    function _configKind(bytes4 selector) private pure returns (uint256) {
        if (selector == 0x0d582f13 || selector == 0xf8dc5dd9 || selector == 0xe318b52b) return KIND_OWNERS;
        if (selector == 0x694e80c3) return KIND_THRESHOLD;
        if (selector == 0x610b5925 || selector == 0xe009cfde) return KIND_MODULES;
        if (selector == 0xe19a9dd9) return KIND_GUARD;
        if (selector == 0xf08a0323) return KIND_FALLBACK_HANDLER;
        return 0;
    }

    function _isListedTransfer(address to, uint256 value, bytes memory data) private view returns (bool) {
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
            destination = abi.decode(_tail(data), (address));
        }
        (bool listed, uint256 i) = _findAsset(token);
        return listed && (UNRESTRICTED_MASK & (1 << i) != 0 || _destinationAllows(destination, i));
    }

    function _checkTime() private view {
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

    function _checkDestination(uint256 index, address token, address destination) private view {
        if (UNRESTRICTED_MASK & (1 << index) != 0) return;
        // Invariant: restricted assets only reach allowlisted destinations.
        if (!_destinationAllows(destination, index)) revert CustodyGuardDestinationNotAllowed(token, destination);
    }

    /// @dev Unrolled over the immutable table; returns the destination's asset mask bit for `index`.
    function _destinationAllows(address destination, uint256 index) private view returns (bool) {
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

    // -- rolling 24 h limit ---------------------------------------------------------------------

    function _spend(uint256 i, address token, uint256 amount) private {
        uint256 limits = _limit(i);
        uint256 perTx = limits & MASK96;
        uint256 daily = (limits >> 96) & MASK96;
        uint256 word = _state[i];
        // Invariant: a paused vault moves nothing on its owners' signatures alone.
        if (word & PAUSED != 0) revert CustodyGuardPaused();
        // Invariant: no single transfer exceeds the per-transaction limit.
        if (amount > perTx) revert CustodyGuardPerTxLimitExceeded(token, amount, perTx);
        uint256 nowHour = block.timestamp / 3600;
        uint256 total;
        uint256 current;
        if (word & SEEDED == 0) {
            (total, current) = _seed(token, daily);
        } else {
            total = word & MASK96;
            current = (word >> 96) & MASK96;
            uint256 hour = (word >> 192) & MASK32;
            if (hour != nowHour) {
                total = _roll(i, total, current, hour, nowHour);
                current = 0;
            }
        }
        unchecked {
            // total, current <= daily < 2^96 and amount <= perTx < 2^96: no overflow below.
            // Invariant: no 24 h window ever sees more than the daily limit leave the vault.
            if (total + amount > daily) revert CustodyGuardDailyLimitExceeded(token, amount, total, daily);
            _state[i] = MARKER | SEEDED | (nowHour << 192) | ((current + amount) << 96) | (total + amount);
        }
    }

    /// @dev Move the finished hour into the ring and drop the buckets that left the window.
    function _roll(uint256 i, uint256 total, uint256 current, uint256 hour, uint256 nowHour)
        private
        returns (uint256)
    {
        if (nowHour - hour >= BUCKETS) return 0;
        if (current != 0) _writeBucket(i, hour, current);
        for (uint256 h = hour - 24; h + BUCKETS <= nowHour; h++) {
            (uint256 amount, uint256 tag) = _bucket(i, h % BUCKETS);
            if (tag == h) total -= amount;
        }
        return total;
    }

    /// @dev First spend of an asset under this guard: carry over the predecessor's window
    ///      (conservatively, as if all of it had left this hour). A predecessor that does not
    ///      answer counts as a fully used limit.
    function _seed(address token, uint256 daily) private returns (uint256 total, uint256 current) {
        if (PREVIOUS_GUARD == address(0)) return (0, 0);
        bool answered = false;
        try ICustodyGuard(PREVIOUS_GUARD).windowTotal(token) returns (uint256 carried) {
            total = carried > daily ? daily : carried;
            answered = true;
        } catch {
            total = daily;
        }
        emit CustodyGuardSpendImported(token, total, answered);
        return (total, total);
    }

    function _bucket(uint256 i, uint256 b) private view returns (uint256 amount, uint256 hour) {
        uint256 half = (_ring[i][b / 2] >> ((b % 2) * 128)) & ((1 << 128) - 1);
        return (half & MASK96, half >> 96);
    }

    function _writeBucket(uint256 i, uint256 hour, uint256 amount) private {
        uint256 b = hour % BUCKETS;
        uint256 shift = (b % 2) * 128;
        uint256 slot = _ring[i][b / 2];
        slot = (slot & ~(((1 << 128) - 1) << shift)) | ((amount | (hour << 96)) << shift);
        _ring[i][b / 2] = slot;
    }

    // -- immutable tables -----------------------------------------------------------------------

    /// @dev Unrolled over the immutable table: the hot path of every check.
    function _findAsset(address token) private view returns (bool, uint256) {
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

    function _asset(uint256 i) private view returns (uint256) {
        if (i < 4) return i == 0 ? A0 : i == 1 ? A1 : i == 2 ? A2 : A3;
        return i == 4 ? A4 : i == 5 ? A5 : i == 6 ? A6 : A7;
    }

    function _limit(uint256 i) private view returns (uint256) {
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

    function _callAllowed(address target, bytes4 selector) private view returns (bool) {
        uint256 key = uint256(uint160(target)) | (uint256(uint32(selector)) << 160);
        uint256 n = CALL_COUNT;
        unchecked {
            for (uint256 c = 0; c < n; c++) {
                if (_call(c) == key) return true;
            }
        }
        return false;
    }

    function _call(uint256 c) private view returns (uint256) {
        if (c < 4) return c == 0 ? C0 : c == 1 ? C1 : c == 2 ? C2 : C3;
        return c == 4 ? C4 : c == 5 ? C5 : c == 6 ? C6 : C7;
    }

    function _callWord(Config memory cfg, uint256 c) private pure returns (uint256) {
        if (c >= cfg.calls.length) return 0;
        return uint256(uint160(cfg.calls[c].target)) | (uint256(uint32(cfg.calls[c].selector)) << 160);
    }

    function _window(uint256 k) private view returns (uint256 start, uint256 end) {
        uint256 word = (k < 4 ? W0 : W1) >> ((k % 4) * 64);
        return (word & MASK32, (word >> 32) & MASK32);
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

    // -- calldata helpers -----------------------------------------------------------------------

    function _selector(bytes calldata data) private pure returns (bytes4 selector) {
        if (data.length < 4) return bytes4(0);
        assembly ("memory-safe") {
            selector := and(calldataload(data.offset), shl(224, 0xffffffff))
        }
    }

    function _memSelector(bytes memory data) private pure returns (bytes4 selector) {
        if (data.length < 4) return bytes4(0);
        assembly ("memory-safe") {
            selector := and(mload(add(data, 32)), shl(224, 0xffffffff))
        }
    }

    /// @dev `data` without its 4-byte selector (a copy, for abi.decode).
    function _tail(bytes memory data) private pure returns (bytes memory tail) {
        tail = new bytes(data.length - 4);
        for (uint256 i = 0; i < tail.length; i++) {
            tail[i] = data[i + 4];
        }
    }
}
