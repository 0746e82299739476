// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";
import {IExitModule} from "../interfaces/IExitModule.sol";
import {IMultiSendCallOnly} from "../interfaces/ISafe.sol";
import {GuardTimelockRules} from "./GuardTimelockRules.sol";

/// @title GuardCallRules
/// @notice What an owner-signed Safe transaction may do: transfers of policy assets within the
///         allowlists, limits and time windows; allowlisted contract functions; the vault's own
///         pause, exit cancellation and message approvals; timelock operations of the listed kinds.
///         Nothing else — above all no call to the Safe itself.
abstract contract GuardCallRules is GuardTimelockRules {
    bytes4 private constant MULTISEND_SELECTOR = IMultiSendCallOnly.multiSend.selector;

    /// @dev One CALL out of the vault (a single transaction, or one call of a MultiSend batch).
    function _checkCall(address to, uint256 value, bytes calldata data) internal {
        // Invariant: owners cannot reconfigure the Safe directly; only the timelock (a module) can.
        if (to == _safe()) revert CustodyGuardSelfCallForbidden(_selector(data));
        if (to == _timelock()) {
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

    /// @dev Everything but plain transfers: the vault's own pause, exit cancellation and message
    ///      approvals, allowlisted contract functions, and the precise reason for refusing anything else.
    function _checkOtherCall(address to, uint256 value, bytes calldata data, bool listed) private view {
        bytes4 selector = _selector(data);
        if (to == address(this) && value == 0) {
            // the owners may always freeze the vault (setPaused(true)) and withdraw a message approval
            if (selector == ICustodyGuard.setPaused.selector && data.length == 36) {
                if (uint256(bytes32(data[4:36])) == 1) return;
            }
            if (selector == ICustodyGuard.revokeMessage.selector && data.length == 36) return;
            if (selector == ICustodyGuard.approveMessage.selector && data.length == 68) {
                _checkMessage(bytes32(data[4:36]));
                return;
            }
        }
        // the owners may always stop an emergency exit
        if (to == _exitModule() && to != address(0) && value == 0 && data.length == 4) {
            if (selector == IExitModule.cancel.selector) return;
        }
        if (_callCount() != 0 && value == 0 && data.length >= 4 && _callAllowed(to, selector)) {
            if (_paused) revert CustodyGuardPaused();
            _checkTime();
            return;
        }
        // Invariant: the vault only calls policy tokens, allowlisted functions, its own components and its timelock.
        if (!listed || to == address(0) || value != 0) revert CustodyGuardCallForbidden(to, selector, value);
        revert CustodyGuardTokenCallForbidden(to, selector);
    }

    /// @dev A message approval: only for the policy's EIP-712 domains, and only while the vault could
    ///      move funds (a signed order or permit is a transfer waiting to happen).
    function _checkMessage(bytes32 domainSeparator) internal view {
        // Invariant: the vault signs messages only for the domains its policy lists.
        if (!_messageDomainAllowed(domainSeparator)) revert CustodyGuardMessageDomainForbidden(domainSeparator);
        if (_paused) revert CustodyGuardPaused();
        _checkTime();
    }

    /// @dev A DELEGATECALL into MultiSendCallOnly: every inner call is checked like a single call.
    function _checkMultiSend(bytes calldata data) internal {
        if (_selector(data) != MULTISEND_SELECTOR || data.length < 68) {
            revert CustodyGuardCallForbidden(_multiSend(), _selector(data), 0);
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
}
