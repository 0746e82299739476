// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title VaultTimelock
/// @notice The only path for configuration changes of one micro-vault (owners, threshold, modules,
///         guard, policy parameters). The vault's Safe is its proposer and canceller; once the delay
///         has elapsed anyone may execute a scheduled operation. The timelock is enabled as a module
///         on its Safe, so a ready operation can reconfigure the Safe through
///         `execTransactionFromModule` without a second round of owner signatures.
/// @dev Plain OpenZeppelin `TimelockController`; the constructor is unchanged so auditors can
///      compare behaviour with the audited upstream contract. The timelock administers itself
///      (OpenZeppelin grants DEFAULT_ADMIN_ROLE to `address(this)`); the factory renounces its
///      temporary admin role in the creation transaction.
contract VaultTimelock is TimelockController {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
