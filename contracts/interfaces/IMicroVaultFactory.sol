// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICustodyGuard} from "./ICustodyGuard.sol";
import {IExitModule} from "./IExitModule.sol";

/// @title IMicroVaultFactory
/// @notice Creates a complete micro-vault atomically: a Safe proxy and its VaultTimelock (enabled
///         as a Safe module), wired in one transaction so that no half-configured vault can exist.
interface IMicroVaultFactory {
    /// @notice What a vault is made of.
    /// @param owners Safe owners (distinct, non-zero).
    /// @param threshold Signatures required by the Safe (1 <= threshold <= owners.length).
    /// @param timelockDelay Minimum delay, in seconds, of the vault's configuration timelock.
    /// @param policyHash Hash of the policy template the vault was created from (for auditors).
    /// @param salt Caller-chosen salt; together with the caller it fixes every address.
    /// @param withGuard Install a CustodyGuard enforcing `guard` (false only for comparisons/tests).
    /// @param guardAsClone Deploy the guard as a clone of the shared CustodyGuardClone (cheap creation,
    ///        dearer checks) instead of a dedicated CustodyGuard.
    /// @param guard The compiled on-chain policy.
    /// @param withExit Deploy and enable an ExitModule configured with `exit`.
    /// @param exit Pre-approved fallback custodians, quorum, escrow delay (the template's `exit:`).
    struct VaultParams {
        address[] owners;
        uint256 threshold;
        uint256 timelockDelay;
        bytes32 policyHash;
        bytes32 salt;
        bool withGuard;
        bool guardAsClone;
        ICustodyGuard.Config guard;
        bool withExit;
        IExitModule.ExitConfig exit;
    }

    /// @notice Emitted once per vault, right after all of its components are wired.
    event VaultCreated(
        address indexed safe,
        address indexed timelock,
        address indexed creator,
        address guard,
        bytes32 policyHash,
        bytes32 salt
    );

    /// @notice The owner list is empty or the threshold is outside 1..owners.
    error FactoryInvalidThreshold(uint256 threshold, uint256 ownerCount);

    /// @notice Creates a micro-vault.
    /// @dev Emits {VaultCreated}. Requirements: 1 <= threshold <= owners.length. The Safe is
    ///      proposer and canceller of the timelock, execution of ready operations is open, and the
    ///      factory holds no role afterwards.
    /// @return safe The vault's Safe proxy.
    /// @return timelock The vault's VaultTimelock.
    function createVault(VaultParams calldata params) external returns (address safe, address timelock);

    /// @notice Addresses `createVault` would produce for `params` when called by `creator`.
    function predictVault(VaultParams calldata params, address creator)
        external
        view
        returns (address safe, address timelock);
}
