// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ISafeGuard} from "../guard/GuardEntryPoints.sol";

/// @title RevertingGuard
/// @notice A guard that refuses every transaction. Tests and drills only: it stands for a broken or
///         misconfigured guard, to show that a vault's exit path keeps working without its guard.
contract RevertingGuard {
    error RevertingGuardRefusesEverything();

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
    ) external pure {
        revert RevertingGuardRefusesEverything();
    }

    function checkAfterExecution(bytes32, bool) external pure {}

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(ISafeGuard).interfaceId || interfaceId == type(IERC165).interfaceId;
    }
}
