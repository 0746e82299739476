// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ExitModuleDeployer} from "./ExitModuleDeployer.sol";
import {GuardDeployer} from "./GuardDeployer.sol";
import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";
import {IExitModule} from "./interfaces/IExitModule.sol";
import {ISafe} from "./interfaces/ISafe.sol";

/// @notice What VaultSetup asks the factory named in a vault's initializer.
interface IVaultCreation {
    /// @notice The timelock of the vault the factory is creating right now (zero otherwise).
    function timelockInCreation() external view returns (address);
}

/// @title VaultSetup
/// @notice Delegate-called by a Safe from `setup()` to wire its custody components in the same
///         transaction that creates it: enables the vault's modules (its timelock first) and deploys
///         and installs its CustodyGuard.
/// @dev Runs in the Safe's storage context, so `address(this)` is the new Safe: the guard is
///      deployed through the GuardDeployer with the Safe as caller (so the Safe's address is baked
///      into the guard's immutables). Every change goes through the Safe's own `authorized`
///      functions, so the Safe's invariants (module list, guard ERC-165 check) still apply.
contract VaultSetup {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "2.0.0";

    /// @dev The deployed VaultSetup itself; used to detect direct (non-delegate) calls.
    address private immutable SELF;
    /// @notice Deploys each vault's first guard.
    GuardDeployer public immutable GUARD_DEPLOYER;
    /// @notice Deploys each vault's exit module.
    ExitModuleDeployer public immutable EXIT_DEPLOYER;

    /// @notice Raised when `configure` is called directly instead of through a delegatecall.
    error VaultSetupOnlyDelegateCall();
    /// @notice Raised when a Safe is set up with a vault initializer outside the factory's
    ///         `createVault` (someone replaying the initializer on the proxy factory to take the
    ///         vault's address first).
    error VaultSetupNotByFactory(address factory, address timelock);

    constructor(GuardDeployer guardDeployer, ExitModuleDeployer exitDeployer) {
        SELF = address(this);
        GUARD_DEPLOYER = guardDeployer;
        EXIT_DEPLOYER = exitDeployer;
    }

    /// @notice Enables `modules` on the calling Safe; if `withExit`, deploys and enables its
    ///         ExitModule; if `withGuard`, deploys and installs a CustodyGuard for `policy` bound to
    ///         this Safe, to `modules[0]` (the timelock), to the exit module and to `fallbackHandler`
    ///         (a clone of the shared CustodyGuardClone implementation if `guardAsClone`).
    /// @dev Requirements: reached via DELEGATECALL from `Safe.setup`, while `factory` is creating the
    ///      vault whose timelock is `modules[0]` (so the Safe's address cannot be taken by replaying
    ///      its initializer on the proxy factory); `modules` non-empty.
    function configure(
        address factory,
        address[] calldata modules,
        bool withGuard,
        bool guardAsClone,
        address multiSend,
        address fallbackHandler,
        ICustodyGuard.Config calldata policy,
        bool withExit,
        IExitModule.ExitConfig calldata exitConfig
    ) external {
        // Invariant: this code only ever mutates the storage of the Safe that delegate-calls it.
        if (address(this) == SELF) revert VaultSetupOnlyDelegateCall();
        // Invariant: a vault's address can only ever hold the vault its factory creates.
        if (modules.length == 0 || IVaultCreation(factory).timelockInCreation() != modules[0]) {
            revert VaultSetupNotByFactory(factory, modules.length == 0 ? address(0) : modules[0]);
        }
        for (uint256 i = 0; i < modules.length; i++) {
            ISafe(address(this)).enableModule(modules[i]);
        }
        address exitModule = address(0);
        if (withExit) {
            exitModule = EXIT_DEPLOYER.deploy(modules[0], exitConfig);
            ISafe(address(this)).enableModule(exitModule);
        }
        if (withGuard) {
            address guard = GUARD_DEPLOYER.deploy(modules[0], multiSend, exitModule, fallbackHandler, policy, guardAsClone);
            ISafe(address(this)).setGuard(guard);
        }
    }
}
