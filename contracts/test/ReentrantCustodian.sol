// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

interface IFinalize {
    function finalize() external;
}

/// @title ReentrantCustodian
/// @notice A custodian whose `receive` re-enters the exit module's `finalize`. Tests only: it shows
///         that a custodian cannot make a finalization move funds twice.
contract ReentrantCustodian {
    address public module;
    uint256 public reentryAttempts;

    function setModule(address m) external {
        module = m;
    }

    receive() external payable {
        reentryAttempts += 1;
        IFinalize(module).finalize();
    }
}
