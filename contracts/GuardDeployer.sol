// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";
import {IGuardRegistry} from "./interfaces/IGuardRegistry.sol";

/// @title GuardDeployer
/// @notice Deploys every CustodyGuard and records which Safe each one was deployed for. A vault's
///         first guard is deployed during `Safe.setup` (VaultSetup calls `deploy` from the Safe's
///         context); a replacement guard is deployed by anyone with `deploySuccessor` and only takes
///         effect once the vault's owners install it through the timelock — where the guard in
///         office checks this registry, so only CustodyGuard code bound to the same vault is accepted.
/// @dev The guard's creation code is read from two code stores (contracts whose runtime code is a
///      STOP byte followed by the first / second part of CustodyGuard's creation code, which is
///      larger than one contract may be), so this deployer stays small whatever the guard's size.
///      The stores' addresses are fixed at construction; their code hashes are recorded in the
///      deployment registry and can be compared with the committed CustodyGuard artifact.
contract GuardDeployer is IGuardRegistry {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "2.0.0";

    /// @notice The code stores holding CustodyGuard's creation code, in two parts (each after a
    ///         leading STOP byte).
    address public immutable GUARD_CODE;
    address public immutable GUARD_CODE_TAIL;

    /// @inheritdoc IGuardRegistry
    mapping(address guard => address safe) public safeOf;

    /// @notice Emitted for every guard deployed.
    event GuardDeployed(address indexed safe, address indexed guard, bytes32 indexed policyHash, address previousGuard);

    /// @notice The code store is empty or the guard's constructor reverted.
    error GuardDeployerFailed(address safe);
    /// @notice `previousGuard` was not deployed by this deployer.
    error GuardDeployerUnknownGuard(address previousGuard);
    /// @notice `deployFor` on a Safe that already has a guard (replace it with `deploySuccessor`), or on
    ///         an address that is not a contract.
    error GuardDeployerGuardInstalled(address safe);

    /// @dev Safe v1.4.1 GuardManager storage slot: keccak256("guard_manager.guard.address").
    uint256 private constant GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;

    constructor(address guardCode, address guardCodeTail) {
        GUARD_CODE = guardCode;
        GUARD_CODE_TAIL = guardCodeTail;
    }

    /// @notice Deploys the first guard of the calling Safe (CREATE2, salted with the caller so that no
    ///         one else can occupy a vault's guard address).
    /// @dev Emits {GuardDeployed}.
    function deploy(
        address timelock,
        address multiSend,
        address exitModule,
        address fallbackHandler,
        ICustodyGuard.Config calldata policy
    ) external returns (address guard) {
        bytes memory args = abi.encode(msg.sender, timelock, multiSend, exitModule, fallbackHandler, address(0), policy);
        guard = _deploy(msg.sender, args, bytes32(uint256(uint160(msg.sender))), address(0));
    }

    /// @notice Deploys a guard for a Safe that has none installed (a vault created without one, or one
    ///         whose owners removed it after the longer public notice), so that it can be installed
    ///         through the timelock and later be replaced like any guard. Deploying the same guard twice
    ///         returns the existing one.
    /// @dev Emits {GuardDeployed} on first deployment. Requirements: `safe` has no guard installed.
    function deployFor(
        address safe,
        address timelock,
        address multiSend,
        address exitModule,
        address fallbackHandler,
        ICustodyGuard.Config calldata policy
    ) external returns (address guard) {
        // Invariant: a guard in office is only ever replaced by its own successor (deploySuccessor).
        if (safe.code.length == 0 || _installedGuard(safe) != address(0)) revert GuardDeployerGuardInstalled(safe);
        bytes memory args = abi.encode(safe, timelock, multiSend, exitModule, fallbackHandler, address(0), policy);
        bytes32 salt = keccak256(abi.encode(safe, keccak256(args)));
        guard = _predict(args, salt);
        if (guard.code.length != 0) return guard;
        guard = _deploy(safe, args, salt, address(0));
    }

    /// @notice Deploys a guard for `policy` that can replace `previousGuard`: bound to the same Safe,
    ///         timelock, MultiSend, exit module and fallback handler, and carrying its rolling windows
    ///         over. Anyone may deploy one; only the vault's owners can install it, through the timelock.
    ///         Deploying the same successor twice returns the existing guard.
    /// @dev Emits {GuardDeployed} on first deployment.
    function deploySuccessor(address previousGuard, ICustodyGuard.Config calldata policy)
        external
        returns (address guard)
    {
        (bytes memory args, bytes32 salt, address safe) = _successor(previousGuard, policy);
        guard = _predict(args, salt);
        if (guard.code.length != 0) return guard;
        guard = _deploy(safe, args, salt, previousGuard);
    }

    /// @notice Address `deploySuccessor(previousGuard, policy)` deploys (or returns).
    function predictSuccessor(address previousGuard, ICustodyGuard.Config calldata policy)
        external
        view
        returns (address)
    {
        (bytes memory args, bytes32 salt,) = _successor(previousGuard, policy);
        return _predict(args, salt);
    }

    function _successor(address previousGuard, ICustodyGuard.Config calldata policy)
        private
        view
        returns (bytes memory args, bytes32 salt, address safe)
    {
        safe = safeOf[previousGuard];
        if (safe == address(0)) revert GuardDeployerUnknownGuard(previousGuard);
        ICustodyGuard.Bindings memory b = ICustodyGuard(previousGuard).bindings();
        args = abi.encode(safe, b.timelock, b.multiSend, b.exitModule, b.fallbackHandler, previousGuard, policy);
        salt = keccak256(abi.encode(previousGuard, keccak256(args)));
    }

    function _installedGuard(address safe) private view returns (address) {
        (bool ok, bytes memory raw) = safe.staticcall(abi.encodeWithSignature("getStorageAt(uint256,uint256)", GUARD_SLOT, 1));
        if (!ok || raw.length < 96) revert GuardDeployerGuardInstalled(safe);
        return address(uint160(uint256(bytes32(abi.decode(raw, (bytes))))));
    }

    function _creationCode() private view returns (bytes memory) {
        return bytes.concat(_stored(GUARD_CODE), _stored(GUARD_CODE_TAIL));
    }

    function _stored(address store) private view returns (bytes memory data) {
        uint256 size = store.code.length;
        if (size < 2) revert GuardDeployerFailed(msg.sender);
        data = new bytes(size - 1);
        assembly ("memory-safe") {
            extcodecopy(store, add(data, 32), 1, sub(size, 1))
        }
    }

    function _predict(bytes memory args, bytes32 salt) private view returns (address) {
        bytes32 initHash = keccak256(bytes.concat(_creationCode(), args));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initHash)))));
    }

    function _deploy(address safe, bytes memory args, bytes32 salt, address previousGuard)
        private
        returns (address guard)
    {
        bytes memory init = bytes.concat(_creationCode(), args);
        assembly ("memory-safe") {
            guard := create2(0, add(init, 32), mload(init), salt)
        }
        if (guard == address(0)) revert GuardDeployerFailed(safe);
        // Invariant: the registry vouches only for guards this deployer created, for the Safe they bind.
        safeOf[guard] = safe;
        emit GuardDeployed(safe, guard, ICustodyGuard(guard).info().policyHash, previousGuard);
    }
}
