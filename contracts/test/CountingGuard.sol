// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ISafeGuard} from "../guard/GuardEntryPoints.sol";

/// @title CountingGuard
/// @notice A Safe guard that allows everything but keeps one word of state per vault transaction: it adds
///         the transaction's value to a running total. Benchmarks only: it measures the least any guard
///         pays that remembers what was spent (one storage read and one write on every transaction), so
///         CustodyGuard's rolling-window overhead can be reported against that floor in the same run.
contract CountingGuard {
    /// @notice Sum of the values of every transaction checked so far.
    uint256 public spent;

    function checkTransaction(
        address,
        uint256 value,
        bytes calldata,
        uint8,
        uint256,
        uint256,
        uint256,
        address,
        address payable,
        bytes calldata,
        address
    ) external {
        spent += value + 1;
    }

    function checkAfterExecution(bytes32, bool) external pure {}

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(ISafeGuard).interfaceId || interfaceId == type(IERC165).interfaceId;
    }
}
