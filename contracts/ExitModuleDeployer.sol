// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {ExitModule} from "./ExitModule.sol";
import {IExitModule} from "./interfaces/IExitModule.sol";

/// @title ExitModuleDeployer
/// @notice Deploys a vault's ExitModule on behalf of the vault's Safe during `Safe.setup`
///         (VaultSetup calls it from the Safe's context): an EIP-1167 clone of one shared
///         implementation, with (safe, timelock) as immutable clone arguments, initialised at once.
contract ExitModuleDeployer {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @notice The shared ExitModule implementation.
    address public immutable IMPLEMENTATION;

    constructor(address implementation) {
        IMPLEMENTATION = implementation;
    }

    /// @notice Emitted for every module deployed.
    event ExitModuleDeployed(address indexed safe, address indexed module);

    /// @notice Deploys an ExitModule bound to the calling Safe (CREATE2, salted with the caller).
    /// @dev Emits {ExitModuleDeployed}.
    function deploy(address timelock, IExitModule.ExitConfig calldata cfg) external returns (address module) {
        module = Clones.cloneDeterministicWithImmutableArgs(
            IMPLEMENTATION, abi.encode(msg.sender, timelock), bytes32(uint256(uint160(msg.sender)))
        );
        ExitModule(module).initialize(cfg);
        emit ExitModuleDeployed(msg.sender, module);
    }
}
