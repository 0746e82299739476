// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ISafe} from "./interfaces/ISafe.sol";

/// @title VaultSetup
/// @notice Delegate-called by a Safe from `setup()` to wire its custody components in the same
///         transaction that creates it: enables the vault's modules (its timelock, later its exit
///         module) and installs its transaction guard.
/// @dev Runs in the Safe's storage context. It calls the Safe's own `authorized` functions on
///      `address(this)`, so the Safe's invariants (module list, guard ERC-165 check) still apply.
contract VaultSetup {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @dev The deployed VaultSetup itself; used to detect direct (non-delegate) calls.
    address private immutable SELF;

    /// @notice Raised when `configure` is called directly instead of through a delegatecall.
    error VaultSetupOnlyDelegateCall();

    constructor() {
        SELF = address(this);
    }

    /// @notice Enables `modules` on the calling Safe and installs `guard` (if non-zero).
    /// @dev Requirements: must be reached via DELEGATECALL from `Safe.setup`.
    function configure(address[] calldata modules, address guard) external {
        // Invariant: this code only ever mutates the storage of the Safe that delegate-calls it.
        if (address(this) == SELF) revert VaultSetupOnlyDelegateCall();
        for (uint256 i = 0; i < modules.length; i++) {
            ISafe(address(this)).enableModule(modules[i]);
        }
        if (guard != address(0)) {
            ISafe(address(this)).setGuard(guard);
        }
    }
}
