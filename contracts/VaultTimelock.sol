// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";
import {MAX_TIMELOCK_DELAY, MIN_TIMELOCK_DELAY} from "./CustodyLimits.sol";
import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";
import {ISafe} from "./interfaces/ISafe.sol";

/// @title VaultTimelock
/// @notice The only path for configuration changes of one micro-vault (owners, threshold, modules,
///         guard, policy parameters) and for the transfers its policy allows only after public notice.
///         The vault's Safe is its only proposer and canceller; once the delay has elapsed anyone may
///         execute a scheduled operation. The timelock is enabled as a module on its Safe, so a ready
///         operation can reconfigure the Safe through `execTransactionFromModule` without a second
///         round of owner signatures.
/// @dev OpenZeppelin `TimelockController` with four changes, each closing a route around the policy:
///      - roles are fixed when the factory binds the timelock to its Safe (they are computed from
///        it, see `hasRole`): no `grantRole`, `revokeRole` or `renounceRole` ever again (a granted
///        proposer would schedule without the Safe, so without the guard);
///      - the delay stays within [MIN_TIMELOCK_DELAY, MAX_TIMELOCK_DELAY] at creation and on every
///        `updateDelay` (zero would make the timelock instant, a huge one would lock the vault);
///      - before each call of a ready operation, the guard installed on the Safe is asked
///        (`checkTimelockCall`): the current policy's kinds, the pause, the freeze windows and the
///        rolling window apply to what the timelock executes, not only to what was scheduled;
///      - the factory that created it binds it to its Safe once (the Safe's address depends on the
///        timelock's, so it cannot be a constructor argument).
///      Each vault's timelock is an EIP-1167 clone of one implementation that the factory deploys in
///      its own constructor (a clone costs a fraction of a full deployment, issue 15): the clone's
///      storage is its own, and the implementation itself can never be bound, so it never holds a role.
contract VaultTimelock is TimelockController {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "2.0.0";

    /// @dev Safe v1.4.1 GuardManager storage slot: keccak256("guard_manager.guard.address").
    uint256 private constant GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;

    /// @notice The factory that created this timelock (the only account that may bind it, once).
    address public immutable DEPLOYER;
    /// @dev The shared implementation behind every clone (never bound, so never usable).
    address private immutable IMPLEMENTATION;

    /// @notice The Safe this timelock configures (zero until the factory binds it).
    address public vault;

    /// @dev Packed with `vault` into one slot (a delay is at most MAX_TIMELOCK_DELAY < 2^96).
    uint96 private _delay;

    /// @notice Roles are fixed at creation.
    error VaultTimelockRolesFixed();
    /// @notice The delay is outside the bounds every vault keeps.
    error VaultTimelockDelayOutOfRange(uint256 delay, uint256 min, uint256 max);
    /// @notice `bind` by someone other than the deployer, or a second time.
    error VaultTimelockAlreadyBound(address caller);

    /// @dev Deployed once, by the factory, as the implementation of every vault's timelock clone.
    constructor() TimelockController(MIN_TIMELOCK_DELAY, new address[](0), new address[](0), address(0)) {
        DEPLOYER = msg.sender;
        IMPLEMENTATION = address(this);
    }

    /// @notice Binds the timelock to its Safe with its delay: the Safe becomes the only proposer and
    ///         canceller, execution of ready operations is open to anyone, and nobody administers roles.
    /// @dev Emits {MinDelayChange} and {RoleGranted} for each fixed role. Requirements: called once, by the deployer, on a clone (never on the
    ///      implementation), with a non-zero Safe; MIN_TIMELOCK_DELAY <= minDelay <= MAX_TIMELOCK_DELAY.
    function bind(address safe, uint256 minDelay) external {
        // Invariant: the bindings are set exactly once, by the factory, in the creation transaction,
        // and the shared implementation is never bound (so it never holds a role).
        if (msg.sender != DEPLOYER || address(this) == IMPLEMENTATION || vault != address(0) || safe == address(0)) {
            revert VaultTimelockAlreadyBound(msg.sender);
        }
        _checkDelay(minDelay);
        vault = safe;
        _delay = uint96(minDelay);
        emit MinDelayChange(0, minDelay);
        // The roles follow from `vault` (see hasRole): nothing more to store. The events tell indexers
        // what AccessControl's own grants would have told them.
        emit RoleGranted(PROPOSER_ROLE, safe, msg.sender);
        emit RoleGranted(CANCELLER_ROLE, safe, msg.sender);
        emit RoleGranted(EXECUTOR_ROLE, address(0), msg.sender);
    }

    /// @notice The fixed roles of a bound timelock: its Safe is the only proposer and canceller, anyone
    ///         may execute a ready operation (the open role, `address(0)`), and nobody holds any other
    ///         role, the admin role included. An unbound timelock (the implementation) has no role at all.
    /// @dev Computed from `vault` instead of AccessControl's role storage: the roles can never change
    ///      after `bind`, so storing them would only cost three storage writes per vault (issue 15).
    function hasRole(bytes32 role, address account) public view override returns (bool) {
        address safe = vault;
        if (safe == address(0)) return false;
        if (role == PROPOSER_ROLE || role == CANCELLER_ROLE) return account == safe;
        // Invariant: execution stays open; a ready operation was approved by the owners when scheduled.
        if (role == EXECUTOR_ROLE) return account == address(0);
        return false;
    }

    /// @notice Disabled: roles are fixed at creation.
    function grantRole(bytes32, address) public pure override {
        revert VaultTimelockRolesFixed();
    }

    /// @notice Disabled: roles are fixed at creation.
    function revokeRole(bytes32, address) public pure override {
        revert VaultTimelockRolesFixed();
    }

    /// @notice Disabled: roles are fixed at creation.
    function renounceRole(bytes32, address) public pure override {
        revert VaultTimelockRolesFixed();
    }

    /// @inheritdoc TimelockController
    function getMinDelay() public view override returns (uint256) {
        return _delay;
    }

    /// @notice Changes the minimum delay for future operations, within the vault bounds.
    /// @dev Emits {MinDelayChange}. Requirements: called by the timelock itself (a ready operation);
    ///      MIN_TIMELOCK_DELAY <= newDelay <= MAX_TIMELOCK_DELAY.
    function updateDelay(uint256 newDelay) external override {
        if (msg.sender != address(this)) revert TimelockUnauthorizedCaller(msg.sender);
        _checkDelay(newDelay);
        emit MinDelayChange(_delay, newDelay);
        _delay = uint96(newDelay);
    }

    /// @dev Each call of a ready operation is first put to the guard installed on the vault.
    function _execute(address target, uint256 value, bytes calldata data) internal override {
        address guard = _installedGuard();
        // Invariant: what the timelock executes obeys the policy in force now.
        if (guard != address(0)) ICustodyGuard(guard).checkTimelockCall(target, value, data);
        super._execute(target, value, data);
    }

    function _installedGuard() private view returns (address) {
        address safe = vault;
        if (safe == address(0)) return address(0);
        return address(uint160(uint256(bytes32(ISafe(safe).getStorageAt(GUARD_SLOT, 1)))));
    }

    function _checkDelay(uint256 delay) private pure {
        // Invariant: the configuration path is never instant and never locked away.
        if (delay < MIN_TIMELOCK_DELAY || delay > MAX_TIMELOCK_DELAY) {
            revert VaultTimelockDelayOutOfRange(
                delay, MIN_TIMELOCK_DELAY, MAX_TIMELOCK_DELAY
            );
        }
    }
}
