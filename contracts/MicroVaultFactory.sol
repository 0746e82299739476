// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Create2} from "@openzeppelin/contracts/utils/Create2.sol";
import {ISafe, ISafeProxyFactory} from "./interfaces/ISafe.sol";
import {IMicroVaultFactory} from "./interfaces/IMicroVaultFactory.sol";
import {VaultSetup} from "./VaultSetup.sol";
import {VaultTimelock} from "./VaultTimelock.sol";

/// @title MicroVaultFactory
/// @notice Deploys micro-vaults: Safe proxy + VaultTimelock, wired atomically.
contract MicroVaultFactory is IMicroVaultFactory {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @notice Safe v1.4.1 proxy factory used for every vault.
    ISafeProxyFactory public immutable SAFE_PROXY_FACTORY;
    /// @notice Safe v1.4.1 singleton (mastercopy) behind every vault proxy.
    address public immutable SAFE_SINGLETON;
    /// @notice Fallback handler installed on every vault.
    address public immutable FALLBACK_HANDLER;
    /// @notice Delegate-called setup helper.
    address public immutable VAULT_SETUP;
    /// @notice The only DELEGATECALL target a vault's guard allows (Safe MultiSendCallOnly).
    address public immutable MULTISEND;

    /// @dev Safe v1.4.1 GuardManager storage slot: keccak256("guard_manager.guard.address").
    uint256 private constant GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;

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
    }

    /// @inheritdoc IMicroVaultFactory
    function createVault(VaultParams calldata params) external returns (address safe, address timelock) {
        // Invariant: a vault can always reach its threshold with its own owners.
        if (params.threshold == 0 || params.threshold > params.owners.length) {
            revert FactoryInvalidThreshold(params.threshold, params.owners.length);
        }
        bytes32 salt = _salt(params, msg.sender);
        VaultTimelock lock = new VaultTimelock{salt: salt}(
            params.timelockDelay, new address[](0), new address[](0), address(this)
        );
        timelock = address(lock);
        safe = SAFE_PROXY_FACTORY.createProxyWithNonce(SAFE_SINGLETON, _initializer(params, timelock), uint256(salt));

        // Invariant: only the vault's Safe may schedule or cancel configuration changes.
        lock.grantRole(lock.PROPOSER_ROLE(), safe);
        lock.grantRole(lock.CANCELLER_ROLE(), safe);
        // A ready operation was already approved by the Safe's owners when it was scheduled.
        lock.grantRole(lock.EXECUTOR_ROLE(), address(0));
        // Invariant: the factory keeps no power over the vault once it exists.
        lock.renounceRole(lock.DEFAULT_ADMIN_ROLE(), address(this));

        address guard = address(uint160(uint256(bytes32(ISafe(safe).getStorageAt(GUARD_SLOT, 1)))));
        emit VaultCreated(safe, timelock, msg.sender, guard, params.policyHash, params.salt);
    }

    /// @inheritdoc IMicroVaultFactory
    function predictVault(VaultParams calldata params, address creator)
        external
        view
        returns (address safe, address timelock)
    {
        bytes32 salt = _salt(params, creator);
        timelock = Create2.computeAddress(
            salt,
            keccak256(
                abi.encodePacked(
                    type(VaultTimelock).creationCode,
                    abi.encode(params.timelockDelay, new address[](0), new address[](0), address(this))
                )
            )
        );
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
                    (modules, params.withGuard, MULTISEND, params.guard, params.withExit, params.exit)
                ),
                FALLBACK_HANDLER,
                address(0),
                0,
                payable(address(0))
            )
        );
    }
}
