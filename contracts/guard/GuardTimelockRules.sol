// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {MAX_TIMELOCK_DELAY, MIN_TIMELOCK_DELAY, ZERO_GUARD_DELAY_FACTOR} from "../CustodyLimits.sol";
import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";
import {IExitModule} from "../interfaces/IExitModule.sol";
import {IGuardRegistry} from "../interfaces/IGuardRegistry.sol";
import {ISafe} from "../interfaces/ISafe.sol";
import {GuardSpendWindow} from "./GuardSpendWindow.sol";

/// @title GuardTimelockRules
/// @notice What may pass through the vault's timelock. Every operation is classified by its target
///         and selector into one kind (0 = nothing any policy allows), and only the kinds the policy
///         lists pass. The same classification runs twice: when the Safe schedules the operation
///         (an owner-signed transaction this guard checks) and when the timelock executes it
///         (VaultTimelock asks the installed guard), so an operation scheduled under an older policy
///         still obeys the current one.
abstract contract GuardTimelockRules is GuardSpendWindow {
    /// @dev Passed as the scheduling delay when an operation is checked at execution (its delay was
    ///      checked when it was scheduled).
    uint256 internal constant AT_EXECUTION = type(uint256).max;

    /// @dev An owner-signed call from the Safe to its timelock.
    function _checkTimelockCall(uint256 value, bytes calldata data) internal view {
        bytes4 selector = _selector(data);
        if (value != 0) revert CustodyGuardCallForbidden(_timelock(), selector, value);
        if (
            selector == TimelockController.cancel.selector || selector == TimelockController.execute.selector
                || selector == TimelockController.executeBatch.selector
        ) return;
        if (selector == TimelockController.schedule.selector) {
            (address target, uint256 val, bytes memory payload,,, uint256 delay) =
                abi.decode(data[4:], (address, uint256, bytes, bytes32, bytes32, uint256));
            _requireKind(_classify(target, val, payload, delay), target, payload);
            return;
        }
        if (selector == TimelockController.scheduleBatch.selector) {
            (address[] memory targets, uint256[] memory values, bytes[] memory payloads,,, uint256 delay) =
                abi.decode(data[4:], (address[], uint256[], bytes[], bytes32, bytes32, uint256));
            // Invariant: a batch's arrays line up (the timelock refuses a mismatch as well).
            if (targets.length != values.length || targets.length != payloads.length) {
                revert CustodyGuardCallForbidden(_timelock(), selector, value);
            }
            for (uint256 i = 0; i < targets.length; i++) {
                _requireKind(_classify(targets[i], values[i], payloads[i], delay), targets[i], payloads[i]);
            }
            return;
        }
        // Invariant: roles, delay and every other timelock function stay out of the owners' direct reach.
        revert CustodyGuardCallForbidden(_timelock(), selector, value);
    }

    function _requireKind(uint256 kind, address target, bytes memory payload) internal view {
        // Invariant: only the operation kinds the policy names can ever pass the timelock.
        if (kind & _timelockKinds() == 0) revert CustodyGuardTimelockKindForbidden(kind, target, _memSelector(payload));
    }

    /// @dev Kind of one timelock call (0 = unknown, never allowed); reverts with the precise reason
    ///      when a configuration change has the right kind but an unacceptable argument.
    function _classify(address target, uint256 value, bytes memory payload, uint256 delay)
        internal
        view
        returns (uint256)
    {
        bytes4 selector = _memSelector(payload);
        if (target == _safe()) {
            // Invariant: the timelock reaches the Safe only as its module, with a plain CALL (a
            // DELEGATECALL would run foreign code with the vault's storage: guard, modules, owners).
            if (selector != ISafe.execTransactionFromModule.selector || value != 0 || payload.length < 4 + 128) {
                return 0;
            }
            (address to, uint256 innerValue, bytes memory inner, uint8 operation) =
                abi.decode(_tail(payload), (address, uint256, bytes, uint8));
            if (operation != 0) return 0;
            if (to == _safe()) return _configKind(inner, delay);
            // Invariant: the vault's own components are reached directly by the timelock, never
            // through the Safe (a nested schedule would escape this classification).
            if (to == _timelock() || to == address(this) || to == _exitModule() || to == _fallbackHandler()) return 0;
            if (_isListedTransfer(to, innerValue, inner)) return KIND_OVER_LIMIT_TRANSFER;
            // Invariant: past the allowlists, the timelock only ever moves value (ETH, or a token's
            // transfer/approve); an arbitrary call in the vault's name is not a kind any policy allows.
            return _isTransfer(innerValue, inner) ? KIND_UNLISTED_TRANSFER : 0;
        }
        if (value != 0) return 0;
        if (target == address(this)) {
            return selector == ICustodyGuard.setPaused.selector && payload.length == 36 ? KIND_POLICY : 0;
        }
        if (target == _timelock()) {
            if (selector != TimelockController.updateDelay.selector || payload.length != 36) return 0;
            uint256 newDelay = _memWord(payload, 0);
            // Invariant: the vault's configuration path can neither be made instant nor locked away.
            if (newDelay < MIN_TIMELOCK_DELAY || newDelay > MAX_TIMELOCK_DELAY) {
                revert CustodyGuardDelayOutOfRange(
                    newDelay, MIN_TIMELOCK_DELAY, MAX_TIMELOCK_DELAY
                );
            }
            return KIND_POLICY;
        }
        if (target == _exitModule() && target != address(0)) {
            // The exit module checks its own configuration (custodians, quorum, escrow delay).
            if (selector == IExitModule.configure.selector || selector == IExitModule.cancel.selector) {
                return KIND_POLICY;
            }
        }
        return 0;
    }

    /// @dev Kind of a configuration call the timelock makes on the Safe, with its argument checked.
    function _configKind(bytes memory inner, uint256 delay) private view returns (uint256) {
        bytes4 selector = _memSelector(inner);
        uint256 length = inner.length;
        if (selector == ISafe.addOwnerWithThreshold.selector) return length == 68 ? KIND_OWNERS : 0;
        if (selector == ISafe.removeOwner.selector || selector == ISafe.swapOwner.selector) {
            return length == 100 ? KIND_OWNERS : 0;
        }
        if (selector == ISafe.changeThreshold.selector) return length == 36 ? KIND_THRESHOLD : 0;
        // Invariant: an address argument with dirty upper bits is refused (the Safe would silently
        // clean it into a different address than the one checked here).
        if (!_cleanAddresses(inner)) return 0;
        if (selector == ISafe.enableModule.selector) {
            if (length != 36) return 0;
            address module = _address(inner, 0);
            // Invariant: no foreign module (it would move funds without this guard) ever joins the vault.
            if (module != _exitModule() || module == address(0)) revert CustodyGuardModuleForbidden(module);
            return KIND_MODULES;
        }
        if (selector == ISafe.disableModule.selector) {
            if (length != 68) return 0;
            address module = _address(inner, 1);
            // Invariant: the timelock, the vault's only configuration path, is never removed.
            if (module == _timelock()) revert CustodyGuardModuleForbidden(module);
            return KIND_MODULES;
        }
        if (selector == ISafe.setGuard.selector) {
            if (length != 36) return 0;
            _checkSuccessor(_address(inner, 0), delay);
            return KIND_GUARD;
        }
        if (selector == ISafe.setFallbackHandler.selector) {
            if (length != 36) return 0;
            address handler = _address(inner, 0);
            // Invariant: no fallback handler that could answer ERC-1271 for the vault on its own terms.
            if (handler != _fallbackHandler() && handler != address(0)) revert CustodyGuardFallbackHandlerForbidden(handler);
            return KIND_FALLBACK_HANDLER;
        }
        return 0;
    }

    /// @dev A replacement guard must keep the vault recoverable and its limits continuous: deployed by
    ///      this guard's GuardDeployer for this Safe (so it runs CustodyGuard's code), bound to the same
    ///      timelock, MultiSend, exit module and fallback handler, carrying this guard's rolling windows
    ///      over, and letting the owners schedule every configuration change. Removing the guard needs a
    ///      longer public notice.
    function _checkSuccessor(address guard, uint256 delay) private view {
        if (guard == address(0)) {
            if (delay == AT_EXECUTION) return;
            uint256 required = ZERO_GUARD_DELAY_FACTOR * TimelockController(payable(_timelock())).getMinDelay();
            if (delay < required) revert CustodyGuardZeroGuardDelay(delay, required);
            return;
        }
        address registered = _guardDeployer().code.length == 0 ? address(0) : IGuardRegistry(_guardDeployer()).safeOf(guard);
        if (registered != _safe() || guard.code.length == 0) revert CustodyGuardSuccessorNotRegistered(guard, registered);
        Bindings memory next = ICustodyGuard(guard).bindings();
        if (next.safe != _safe()) revert CustodyGuardSuccessorMismatch(guard, Binding.Safe);
        if (next.timelock != _timelock()) revert CustodyGuardSuccessorMismatch(guard, Binding.Timelock);
        if (next.multiSend != _multiSend()) revert CustodyGuardSuccessorMismatch(guard, Binding.MultiSend);
        if (next.exitModule != _exitModule()) revert CustodyGuardSuccessorMismatch(guard, Binding.ExitModule);
        if (next.fallbackHandler != _fallbackHandler()) revert CustodyGuardSuccessorMismatch(guard, Binding.FallbackHandler);
        if (next.deployer != _guardDeployer()) revert CustodyGuardSuccessorMismatch(guard, Binding.Deployer);
        // Invariant: swapping guards never resets the rolling window.
        if (next.previousGuard != address(this)) revert CustodyGuardSuccessorMismatch(guard, Binding.PreviousGuard);
        if (next.timelockKinds & REQUIRED_KINDS != REQUIRED_KINDS) {
            revert CustodyGuardSuccessorMismatch(guard, Binding.TimelockKinds);
        }
    }

    /// @dev A ready operation's call that moves value out of the vault (a transfer or contract call the
    ///      timelock makes through the Safe): only while the vault is not paused, outside freeze windows
    ///      and inside allowed hours, and it uses up the rolling window.
    function _checkScheduledTransfer(bytes calldata payload) internal {
        // Invariant: a paused vault moves nothing through its timelock either.
        if (_paused) revert CustodyGuardPaused();
        _checkTime();
        (address to, uint256 value, bytes memory inner,) = abi.decode(payload[4:], (address, uint256, bytes, uint8));
        address token = address(0);
        uint256 amount = value;
        if (inner.length != 0) {
            bytes4 selector = _memSelector(inner);
            if (value != 0 || inner.length != 68 || (selector != TRANSFER && selector != APPROVE)) return;
            token = to;
            amount = _memWord(inner, 1);
        }
        (bool listed, uint256 i) = _findAsset(token);
        if (!listed || amount == 0) return;
        emit CustodyGuardScheduledSpend(token, amount, _spendScheduled(i, token, amount));
    }

    /// @dev A plain value transfer: ETH without calldata, or exactly `transfer`/`approve(address,uint256)`
    ///      of some token, without ETH, to a clean address.
    function _isTransfer(uint256 value, bytes memory data) private pure returns (bool) {
        if (data.length == 0) return true;
        bytes4 selector = _memSelector(data);
        return value == 0 && data.length == 68 && (selector == TRANSFER || selector == APPROVE)
            && _memWord(data, 0) >> 160 == 0;
    }

    function _address(bytes memory data, uint256 index) private pure returns (address) {
        return address(uint160(_memWord(data, index)));
    }

    /// @dev Whether the address arguments of a module-management, guard or fallback-handler call
    ///      are clean 160-bit words.
    function _cleanAddresses(bytes memory inner) private pure returns (bool) {
        bytes4 selector = _memSelector(inner);
        uint256 count = selector == ISafe.disableModule.selector ? 2 : 1;
        if (
            selector != ISafe.enableModule.selector && selector != ISafe.disableModule.selector
                && selector != ISafe.setGuard.selector && selector != ISafe.setFallbackHandler.selector
        ) return true;
        if (inner.length < 4 + 32 * count) return false;
        for (uint256 k = 0; k < count; k++) {
            if (_memWord(inner, k) >> 160 != 0) return false;
        }
        return true;
    }

    /// @dev `data` without its 4-byte selector (a copy, for abi.decode).
    function _tail(bytes memory data) private pure returns (bytes memory tail) {
        tail = new bytes(data.length - 4);
        for (uint256 i = 0; i < tail.length; i++) {
            tail[i] = data[i + 4];
        }
    }
}
