// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC1155Receiver} from "@openzeppelin/contracts/token/ERC1155/IERC1155Receiver.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {ICustodyGuard} from "./interfaces/ICustodyGuard.sol";
import {ISafe} from "./interfaces/ISafe.sol";

/// @title CustodyFallbackHandler
/// @notice The fallback handler of every micro-vault. It answers ERC-1271 `isValidSignature` only for
///         message digests the vault's CustodyGuard approved through a guarded Safe transaction, for
///         an EIP-712 domain the policy lists — never for owner signatures or `approveHash` alone
///         (Safe's CompatibilityFallbackHandler accepts those, which lets any token or protocol that
///         takes contract signatures move the vault's funds past its guard). It also accepts ERC-721
///         and ERC-1155 safe transfers, as Safe's default handler does.
/// @dev Stateless and shared by every vault. The Safe forwards unknown calls here with itself as
///      `msg.sender` (and the original caller appended to the calldata), so `msg.sender` is the vault
///      being asked about. Nothing here changes state: whoever calls the Safe's fallback learns
///      nothing they could not read, and moves nothing.
contract CustodyFallbackHandler {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @dev ERC-1271 magic value: the selector of `isValidSignature(bytes32,bytes)`.
    bytes4 private constant ERC1271_MAGIC = IERC1271.isValidSignature.selector;
    /// @dev ERC-1271 answer for a signature the vault does not accept (any value but the magic one).
    bytes4 private constant ERC1271_INVALID = 0xffffffff;
    /// @dev Safe v1.4.1 GuardManager storage slot: keccak256("guard_manager.guard.address").
    uint256 private constant GUARD_SLOT = 0x4a204f620c8c5ccdca3fd54d003badd85ba500436a431f0cbda4f558c93c34c8;

    /// @notice ERC-1271: the magic value when the calling vault's guard approved `digest`; the
    ///         signature bytes are ignored (the approval lives on chain).
    function isValidSignature(bytes32 digest, bytes calldata) external view returns (bytes4) {
        address guard = _guardOf(msg.sender);
        if (guard == address(0)) return ERC1271_INVALID;
        (bool ok, bytes memory answer) =
            guard.staticcall(abi.encodeCall(ICustodyGuard.isMessageApproved, (digest)));
        if (!ok || answer.length != 32) return ERC1271_INVALID;
        return abi.decode(answer, (uint256)) == 1 ? ERC1271_MAGIC : ERC1271_INVALID;
    }

    /// @notice ERC-721 safe transfers are accepted.
    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC721Received.selector;
    }

    /// @notice ERC-1155 safe transfers are accepted.
    function onERC1155Received(address, address, uint256, uint256, bytes calldata) external pure returns (bytes4) {
        return this.onERC1155Received.selector;
    }

    /// @notice ERC-1155 batch safe transfers are accepted.
    function onERC1155BatchReceived(address, address, uint256[] calldata, uint256[] calldata, bytes calldata)
        external
        pure
        returns (bytes4)
    {
        return this.onERC1155BatchReceived.selector;
    }

    /// @notice ERC-165: ERC-165, ERC-721 receiver, ERC-1155 receiver and ERC-1271.
    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId == type(IERC165).interfaceId || interfaceId == type(IERC721Receiver).interfaceId
            || interfaceId == type(IERC1155Receiver).interfaceId || interfaceId == type(IERC1271).interfaceId;
    }

    /// @dev The guard installed on `safe` (zero when there is none or `safe` is not a Safe).
    function _guardOf(address safe) private view returns (address) {
        if (safe.code.length == 0) return address(0);
        (bool ok, bytes memory raw) = safe.staticcall(abi.encodeCall(ISafe.getStorageAt, (GUARD_SLOT, 1)));
        if (!ok || raw.length < 96) return address(0);
        bytes memory slot = abi.decode(raw, (bytes));
        if (slot.length != 32) return address(0);
        return address(uint160(uint256(bytes32(slot))));
    }
}
