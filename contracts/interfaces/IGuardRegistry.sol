// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IGuardRegistry
/// @notice The record a GuardDeployer keeps of every CustodyGuard it deployed: a guard about to be
///         replaced asks it whether its successor runs CustodyGuard's code and is bound to the same Safe.
interface IGuardRegistry {
    /// @notice The Safe `guard` was deployed for, or zero if this deployer did not deploy it.
    function safeOf(address guard) external view returns (address);
}
