// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CustodyGuard} from "./CustodyGuard.sol";
import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";

/// @title GuardDeployer
/// @notice Deploys a vault's first CustodyGuard on behalf of the vault's Safe during `Safe.setup`
///         (VaultSetup calls it from the Safe's context). Kept apart from VaultSetup so neither
///         contract exceeds the EIP-170 code size limit.
contract GuardDeployer {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @notice Emitted for every guard deployed.
    event GuardDeployed(address indexed safe, address indexed guard, bytes32 indexed policyHash);

    /// @notice Deploys a guard bound to the calling Safe (CREATE2, salted with the caller so that no
    ///         one else can occupy a vault's guard address).
    /// @dev Emits {GuardDeployed}.
    function deploy(address timelock, address multiSend, ICustodyGuard.Config calldata policy)
        external
        returns (address guard)
    {
        CustodyGuard deployed = new CustodyGuard{salt: bytes32(uint256(uint160(msg.sender)))}(
            msg.sender, timelock, multiSend, address(0), policy
        );
        guard = address(deployed);
        emit GuardDeployed(msg.sender, guard, deployed.POLICY_HASH());
    }
}
