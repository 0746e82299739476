// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ISafeGuard} from "../guard/GuardEntryPoints.sol";

/// @title NoopGuard
/// @notice A Safe guard that allows everything. Benchmarks only: it measures what merely having a
///         guard costs, so CustodyGuard's own overhead can be reported against it in the same run.
contract NoopGuard {
    function checkTransaction(
        address,
        uint256,
        bytes calldata,
        uint8,
        uint256,
        uint256,
        uint256,
        address,
        address payable,
        bytes calldata,
        address
    ) external pure {}

    function checkAfterExecution(bytes32, bool) external pure {}

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(ISafeGuard).interfaceId || interfaceId == type(IERC165).interfaceId;
    }
}
