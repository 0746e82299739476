// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ISafe
/// @notice The subset of the Safe v1.4.1 interface that the custody contracts call.
interface ISafe {
    enum Operation {
        Call,
        DelegateCall
    }

    function setup(
        address[] calldata owners,
        uint256 threshold,
        address to,
        bytes calldata data,
        address fallbackHandler,
        address paymentToken,
        uint256 payment,
        address payable paymentReceiver
    ) external;

    function enableModule(address module) external;

    function disableModule(address prevModule, address module) external;

    function setGuard(address guard) external;

    function setFallbackHandler(address handler) external;

    function addOwnerWithThreshold(address owner, uint256 threshold) external;

    function removeOwner(address prevOwner, address owner, uint256 threshold) external;

    function swapOwner(address prevOwner, address oldOwner, address newOwner) external;

    function changeThreshold(uint256 threshold) external;

    function execTransactionFromModule(address to, uint256 value, bytes memory data, Operation operation)
        external
        returns (bool success);

    function execTransactionFromModuleReturnData(address to, uint256 value, bytes memory data, Operation operation)
        external
        returns (bool success, bytes memory returnData);

    function isOwner(address owner) external view returns (bool);

    function getOwners() external view returns (address[] memory);

    function getThreshold() external view returns (uint256);

    function isModuleEnabled(address module) external view returns (bool);

    function getStorageAt(uint256 offset, uint256 length) external view returns (bytes memory);
}

/// @title ISafeProxyFactory
/// @notice The subset of the Safe v1.4.1 proxy factory used to create vault Safes.
interface ISafeProxyFactory {
    function createProxyWithNonce(address singleton, bytes memory initializer, uint256 saltNonce)
        external
        returns (address proxy);

    function proxyCreationCode() external pure returns (bytes memory);
}

/// @title IMultiSendCallOnly
/// @notice Safe v1.4.1 MultiSendCallOnly: the only contract a vault may delegate-call, to batch calls.
interface IMultiSendCallOnly {
    function multiSend(bytes memory transactions) external payable;
}
