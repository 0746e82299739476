// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";

/// @title GuardDeployer
/// @notice Deploys a vault's first CustodyGuard on behalf of the vault's Safe during `Safe.setup`
///         (VaultSetup calls it from the Safe's context).
/// @dev The guard's creation code is read from a code store (a contract whose runtime code is a
///      STOP byte followed by CustodyGuard's creation code), so this deployer stays small whatever
///      the guard's size. The store's address is fixed at construction; its code hash is recorded
///      in the deployment registry and can be compared with the committed CustodyGuard artifact.
contract GuardDeployer {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @notice The code store holding CustodyGuard's creation code (after a leading STOP byte).
    address public immutable GUARD_CODE;

    /// @notice Emitted for every guard deployed.
    event GuardDeployed(address indexed safe, address indexed guard, bytes32 indexed policyHash);

    /// @notice The code store is empty or the guard's constructor reverted.
    error GuardDeployerFailed(address safe);

    constructor(address guardCode) {
        GUARD_CODE = guardCode;
    }

    /// @notice Deploys a guard bound to the calling Safe (CREATE2, salted with the caller so that no
    ///         one else can occupy a vault's guard address).
    /// @dev Emits {GuardDeployed}.
    function deploy(address timelock, address multiSend, address exitModule, ICustodyGuard.Config calldata policy)
        external
        returns (address guard)
    {
        address store = GUARD_CODE;
        uint256 size = store.code.length;
        if (size < 2) revert GuardDeployerFailed(msg.sender);
        bytes memory creation = new bytes(size - 1);
        assembly ("memory-safe") {
            extcodecopy(store, add(creation, 32), 1, sub(size, 1))
        }
        bytes memory init =
            bytes.concat(creation, abi.encode(msg.sender, timelock, multiSend, exitModule, address(0), policy));
        bytes32 salt = bytes32(uint256(uint160(msg.sender)));
        assembly ("memory-safe") {
            guard := create2(0, add(init, 32), mload(init), salt)
        }
        if (guard == address(0)) revert GuardDeployerFailed(msg.sender);
        emit GuardDeployed(msg.sender, guard, ICustodyGuard(guard).info().policyHash);
    }
}
