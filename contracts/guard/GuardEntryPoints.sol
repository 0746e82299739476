// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";
import {ISafe} from "../interfaces/ISafe.sol";
import {GuardCallRules} from "./GuardCallRules.sol";

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

/// @title GuardEntryPoints
/// @notice The guard's entry points: the Safe guard hooks, the timelock hook, the pause and the
///         message approvals (ERC-1271 through CustodyFallbackHandler), and the views. Where the policy
///         tables live is left to the concrete guard ({CustodyGuard}, {CustodyGuardClone}).
abstract contract GuardEntryPoints is GuardCallRules, ISafeGuard {
    /// @dev Semantic version of the guard contracts (reported by `info()`).
    string private constant VERSION = "2.0.0";

    /// @dev Digests of the EIP-712 messages the vault approved (ERC-1271 answers for these only).
    mapping(bytes32 digest => bool) private _approvedMessages;

    // -- Safe guard -------------------------------------------------------------------------------

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
        if (msg.sender != _safe()) revert CustodyGuardNotSafe(msg.sender);
        // Invariant: no value leaves the vault as a gas refund (it would bypass every limit).
        if (gasPrice != 0) revert CustodyGuardRefundForbidden(gasPrice, gasToken, refundReceiver);
        if (operation == ISafe.Operation.DelegateCall) {
            // Invariant: only MultiSendCallOnly may run in the vault's context, and only to batch calls.
            if (to != _multiSend()) revert CustodyGuardDelegateCallForbidden(to);
            _checkMultiSend(data);
        } else {
            _checkCall(to, value, data);
        }
    }

    /// @notice Nothing to check after execution: every decision is taken before it.
    function checkAfterExecution(bytes32, bool) external pure override {}

    /// @notice ERC-165: the Safe requires the Guard interface id before it installs a guard.
    function supportsInterface(bytes4 interfaceId) external pure override returns (bool) {
        return interfaceId == type(ISafeGuard).interfaceId || interfaceId == type(IERC165).interfaceId;
    }

    // -- timelock ---------------------------------------------------------------------------------

    /// @inheritdoc ICustodyGuard
    function checkTimelockCall(address target, uint256 value, bytes calldata data) external {
        // Invariant: only the vault's timelock executes operations, and it asks before each call.
        if (msg.sender != _timelock()) revert CustodyGuardUnauthorized(msg.sender);
        uint256 kind = _classify(target, value, data, AT_EXECUTION);
        _requireKind(kind, target, data);
        if (kind & TRANSFER_KINDS != 0) _checkScheduledTransfer(data);
    }

    /// @inheritdoc ICustodyGuard
    function setPaused(bool on) external {
        // Invariant: only the vault's own owners (a Safe transaction) can freeze it, and a freeze is
        // only lifted after the timelock's public delay.
        if (msg.sender != (on ? _safe() : _timelock())) revert CustodyGuardUnauthorized(msg.sender);
        _setPaused(on);
        emit CustodyGuardPauseChanged(on, msg.sender);
    }

    // -- messages (ERC-1271 through CustodyFallbackHandler) ---------------------------------------

    /// @inheritdoc ICustodyGuard
    function approveMessage(bytes32 domainSeparator, bytes32 structHash) external returns (bytes32 digest) {
        // Invariant: only an owner-signed Safe transaction (checked by this guard) approves a message.
        if (msg.sender != _safe()) revert CustodyGuardUnauthorized(msg.sender);
        // The same check as in checkTransaction, at the point of recording: no path records an
        // approval the policy would not allow.
        _checkMessage(domainSeparator);
        digest = keccak256(abi.encodePacked(hex"1901", domainSeparator, structHash));
        _approvedMessages[digest] = true;
        emit CustodyGuardMessageApproved(digest, domainSeparator, structHash);
    }

    /// @inheritdoc ICustodyGuard
    function revokeMessage(bytes32 digest) external {
        if (msg.sender != _safe()) revert CustodyGuardUnauthorized(msg.sender);
        _approvedMessages[digest] = false;
        emit CustodyGuardMessageRevoked(digest);
    }

    /// @inheritdoc ICustodyGuard
    function isMessageApproved(bytes32 digest) external view returns (bool) {
        return _approvedMessages[digest];
    }

    // -- views ------------------------------------------------------------------------------------

    /// @inheritdoc ICustodyGuard
    function info() external view returns (GuardInfo memory) {
        return GuardInfo(VERSION, bindings(), _policyHash(), _templateHash(), _paused, _domainSeparators(), _config());
    }
}
