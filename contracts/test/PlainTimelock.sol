// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title PlainTimelock
/// @notice Tests only: OpenZeppelin's TimelockController unchanged (self-administered, any delay),
///         the control against which VaultTimelock's fixed roles and delay bounds are shown.
contract PlainTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
