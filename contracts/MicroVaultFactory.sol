// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {ISafe, ISafeProxyFactory} from "./interfaces/ISafe.sol";
import {IMicroVaultFactory} from "./interfaces/IMicroVaultFactory.sol";
import {IVaultCreation, VaultSetup} from "./VaultSetup.sol";
import {VaultTimelock} from "./VaultTimelock.sol";

/// @title MicroVaultFactory
/// @notice Deploys micro-vaults: Safe proxy + VaultTimelock, wired atomically. Each vault's timelock is
///         an EIP-1167 clone of the VaultTimelock implementation this factory deploys at construction.
contract MicroVaultFactory is IMicroVaultFactory, IVaultCreation {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "2.0.0";

    /// @notice Safe v1.4.1 proxy factory used for every vault.
    ISafeProxyFactory public immutable SAFE_PROXY_FACTORY;
    /// @notice Safe v1.4.1 singleton (mastercopy) behind every vault proxy.
    address public immutable SAFE_SINGLETON;
    /// @notice Fallback handler installed on every vault (CustodyFallbackHandler).
    address public immutable FALLBACK_HANDLER;
    /// @notice Delegate-called setup helper.
    address public immutable VAULT_SETUP;
    /// @notice The only DELEGATECALL target a vault's guard allows (Safe MultiSendCallOnly).
    address public immutable MULTISEND;
    /// @notice The VaultTimelock implementation behind every vault's timelock clone (never bound).
    address public immutable TIMELOCK_IMPLEMENTATION;

    /// @dev Safe v1.4.1 GuardManager storage slot: keccak256("guard_manager.guard.address").
    uint256 private constant GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;
    /// @dev Transient slot: the timelock of the vault being created (VaultSetup checks it).
    bytes32 private constant CREATING_SLOT = keccak256("custody.factory.timelock-in-creation");

    constructor(
        address safeProxyFactory,
        address safeSingleton,
        address fallbackHandler,
        address vaultSetup,
        address multiSend
    ) {
        SAFE_PROXY_FACTORY = ISafeProxyFactory(safeProxyFactory);
        SAFE_SINGLETON = safeSingleton;
        FALLBACK_HANDLER = fallbackHandler;
        VAULT_SETUP = vaultSetup;
        MULTISEND = multiSend;
        TIMELOCK_IMPLEMENTATION = address(new VaultTimelock());
    }

    /// @inheritdoc IMicroVaultFactory
    function createVault(VaultParams calldata params) external returns (address safe, address timelock) {
        // Invariant: a vault can always reach its threshold with its own owners.
        if (params.threshold == 0 || params.threshold > params.owners.length) {
            revert FactoryInvalidThreshold(params.threshold, params.owners.length);
        }
        bytes32 salt = _salt(params, msg.sender);
        VaultTimelock lock = VaultTimelock(payable(Clones.cloneDeterministic(TIMELOCK_IMPLEMENTATION, salt)));
        timelock = address(lock);
        _setTimelockInCreation(timelock);
        safe = SAFE_PROXY_FACTORY.createProxyWithNonce(SAFE_SINGLETON, _initializer(params, timelock), uint256(salt));
        _setTimelockInCreation(address(0));

        // Invariant: only the vault's Safe may schedule or cancel; roles are fixed from here on, and
        // the factory keeps no power over the vault once it exists. `bind` enforces the delay floor
        // and ceiling.
        lock.bind(safe, params.timelockDelay);

        address guard = address(uint160(uint256(bytes32(ISafe(safe).getStorageAt(GUARD_SLOT, 1)))));
        emit VaultCreated(safe, timelock, msg.sender, guard, params.policyHash, params.salt);
    }

    /// @inheritdoc IVaultCreation
    function timelockInCreation() external view returns (address timelock) {
        bytes32 slot = CREATING_SLOT;
        assembly ("memory-safe") {
            timelock := tload(slot)
        }
    }

    function _setTimelockInCreation(address timelock) private {
        bytes32 slot = CREATING_SLOT;
        assembly ("memory-safe") {
            tstore(slot, timelock)
        }
    }

    /// @inheritdoc IMicroVaultFactory
    function predictVault(VaultParams calldata params, address creator)
        external
        view
        returns (address safe, address timelock)
    {
        bytes32 salt = _salt(params, creator);
        timelock = Clones.predictDeterministicAddress(TIMELOCK_IMPLEMENTATION, salt);
        bytes memory proxyCode = SAFE_PROXY_FACTORY.proxyCreationCode();
        bytes32 proxySalt = keccak256(abi.encodePacked(keccak256(_initializer(params, timelock)), uint256(salt)));
        safe = Create2.computeAddress(
            proxySalt,
            keccak256(abi.encodePacked(proxyCode, uint256(uint160(SAFE_SINGLETON)))),
            address(SAFE_PROXY_FACTORY)
        );
    }

    function _salt(VaultParams calldata params, address creator) private pure returns (bytes32) {
        return keccak256(abi.encode(creator, params.salt));
    }

    function _initializer(VaultParams calldata params, address timelock) private view returns (bytes memory) {
        address[] memory modules = new address[](1);
        modules[0] = timelock;
        return abi.encodeCall(
            ISafe.setup,
            (
                params.owners,
                params.threshold,
                VAULT_SETUP,
                abi.encodeCall(
                    VaultSetup.configure,
                    (
                        address(this),
                        modules,
                        params.withGuard,
                        params.guardAsClone,
                        MULTISEND,
                        FALLBACK_HANDLER,
                        params.guard,
                        params.withExit,
                        params.exit
                    )
                ),
                FALLBACK_HANDLER,
                address(0),
                0,
                payable(address(0))
            )
        );
    }
}
