// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {CustodyGuardClone} from "./CustodyGuardClone.sol";
import {GuardArgs} from "./guard/GuardArgs.sol";
import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";
import {IGuardRegistry} from "./interfaces/IGuardRegistry.sol";

/// @title GuardDeployer
/// @notice Deploys every CustodyGuard and records which Safe each one was deployed for. A vault's
///         first guard is deployed during `Safe.setup` (VaultSetup calls `deploy` from the Safe's
///         context); a replacement guard is deployed by anyone with `deploySuccessor` and only takes
///         effect once the vault's owners install it through the timelock — where the guard in
///         office checks this registry, so only CustodyGuard code bound to the same vault is accepted.
///         Each guard is either dedicated (a full CustodyGuard deployment, its policy in immutables) or
///         a clone (an EIP-1167 clone of the shared CustodyGuardClone implementation, its bindings and
///         policy packed into the clone's immutable arguments, see GuardArgs, and checked by the clone's
///         `initialize` in the same transaction): the template chooses (`asClone`).
/// @dev The dedicated guard's creation code is read from two code stores (contracts whose runtime code is a
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
    /// @notice The CustodyGuardClone implementation every clone guard delegates to.
    address public immutable GUARD_IMPLEMENTATION;

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

    constructor(address guardCode, address guardCodeTail, address guardImplementation) {
        GUARD_CODE = guardCode;
        GUARD_CODE_TAIL = guardCodeTail;
        GUARD_IMPLEMENTATION = guardImplementation;
    }

    /// @notice Deploys the first guard of the calling Safe (CREATE2, salted with the caller so that no
    ///         one else can occupy a vault's guard address), dedicated or as a clone.
    /// @dev Emits {GuardDeployed}.
    function deploy(
        address timelock,
        address multiSend,
        address exitModule,
        address fallbackHandler,
        ICustodyGuard.Config calldata policy,
        bool asClone
    ) external returns (address guard) {
        ICustodyGuard.Bindings memory b = _bindings(msg.sender, timelock, multiSend, exitModule, fallbackHandler, address(0));
        guard = _deploy(b, policy, asClone, bytes32(uint256(uint160(msg.sender))));
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
        ICustodyGuard.Config calldata policy,
        bool asClone
    ) external returns (address guard) {
        // Invariant: a guard in office is only ever replaced by its own successor (deploySuccessor).
        if (safe.code.length == 0 || _installedGuard(safe) != address(0)) revert GuardDeployerGuardInstalled(safe);
        ICustodyGuard.Bindings memory b = _bindings(safe, timelock, multiSend, exitModule, fallbackHandler, address(0));
        bytes32 salt = keccak256(abi.encode(safe, keccak256(abi.encode(b, policy, asClone))));
        guard = _predict(b, policy, asClone, salt);
        if (guard.code.length != 0) return guard;
        guard = _deploy(b, policy, asClone, salt);
    }

    /// @notice Deploys a guard for `policy` that can replace `previousGuard`: bound to the same Safe,
    ///         timelock, MultiSend, exit module and fallback handler, and carrying its rolling windows
    ///         over. Anyone may deploy one; only the vault's owners can install it, through the timelock.
    ///         Deploying the same successor twice returns the existing guard. A successor may be
    ///         dedicated or a clone whatever its predecessor was.
    /// @dev Emits {GuardDeployed} on first deployment.
    function deploySuccessor(address previousGuard, ICustodyGuard.Config calldata policy, bool asClone)
        external
        returns (address guard)
    {
        (ICustodyGuard.Bindings memory b, bytes32 salt) = _successor(previousGuard, policy, asClone);
        guard = _predict(b, policy, asClone, salt);
        if (guard.code.length != 0) return guard;
        guard = _deploy(b, policy, asClone, salt);
    }

    /// @notice Address `deploySuccessor(previousGuard, policy, asClone)` deploys (or returns).
    function predictSuccessor(address previousGuard, ICustodyGuard.Config calldata policy, bool asClone)
        external
        view
        returns (address)
    {
        (ICustodyGuard.Bindings memory b, bytes32 salt) = _successor(previousGuard, policy, asClone);
        return _predict(b, policy, asClone, salt);
    }

    function _successor(address previousGuard, ICustodyGuard.Config calldata policy, bool asClone)
        private
        view
        returns (ICustodyGuard.Bindings memory b, bytes32 salt)
    {
        address safe = safeOf[previousGuard];
        if (safe == address(0)) revert GuardDeployerUnknownGuard(previousGuard);
        ICustodyGuard.Bindings memory previous = ICustodyGuard(previousGuard).bindings();
        b = _bindings(
            safe, previous.timelock, previous.multiSend, previous.exitModule, previous.fallbackHandler, previousGuard
        );
        salt = keccak256(abi.encode(previousGuard, keccak256(abi.encode(b, policy, asClone))));
    }

    /// @dev What a new guard is bound to (this deployer vouches for it); `timelockKinds` comes from the policy.
    function _bindings(
        address safe,
        address timelock,
        address multiSend,
        address exitModule,
        address fallbackHandler,
        address previousGuard
    ) private view returns (ICustodyGuard.Bindings memory) {
        return ICustodyGuard.Bindings(safe, timelock, multiSend, exitModule, fallbackHandler, previousGuard, address(this), 0);
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

    /// @dev A dedicated guard's constructor arguments (the deployer is the guard's `msg.sender`).
    function _constructorArgs(ICustodyGuard.Bindings memory b, ICustodyGuard.Config calldata policy)
        private
        pure
        returns (bytes memory)
    {
        return abi.encode(b.safe, b.timelock, b.multiSend, b.exitModule, b.fallbackHandler, b.previousGuard, policy);
    }

    function _predict(ICustodyGuard.Bindings memory b, ICustodyGuard.Config calldata policy, bool asClone, bytes32 salt)
        private
        view
        returns (address)
    {
        if (asClone) {
            return Clones.predictDeterministicAddressWithImmutableArgs(GUARD_IMPLEMENTATION, GuardArgs.encode(b, policy), salt);
        }
        bytes32 initHash = keccak256(bytes.concat(_creationCode(), _constructorArgs(b, policy)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initHash)))));
    }

    function _deploy(ICustodyGuard.Bindings memory b, ICustodyGuard.Config calldata policy, bool asClone, bytes32 salt)
        private
        returns (address guard)
    {
        bytes32 policyHash;
        if (asClone) {
            guard = Clones.cloneDeterministicWithImmutableArgs(GUARD_IMPLEMENTATION, GuardArgs.encode(b, policy), salt);
            // checks the policy as a dedicated guard's constructor would (reverts the deployment if not)
            policyHash = CustodyGuardClone(guard).initialize();
        } else {
            bytes memory init = bytes.concat(_creationCode(), _constructorArgs(b, policy));
            assembly ("memory-safe") {
                guard := create2(0, add(init, 32), mload(init), salt)
            }
            if (guard == address(0)) revert GuardDeployerFailed(b.safe);
            policyHash = ICustodyGuard(guard).info().policyHash;
        }
        // Invariant: the registry vouches only for guards this deployer created, for the Safe they bind.
        safeOf[guard] = b.safe;
        emit GuardDeployed(b.safe, guard, policyHash, b.previousGuard);
    }
}
