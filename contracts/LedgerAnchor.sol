// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ILedgerAnchor} from "./interfaces/ILedgerAnchor.sol";

/// @title LedgerAnchor
/// @notice Minimal on-chain anchor for custody audit-ledger tree heads (one shared instance per chain,
///         deployed deterministically with the custody infrastructure).
contract LedgerAnchor is ILedgerAnchor {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @inheritdoc ILedgerAnchor
    mapping(address => uint256) public latestSize;

    /// @inheritdoc ILedgerAnchor
    function anchor(uint256 size, bytes32 root, uint64 time, bytes calldata signature) external {
        // Invariant: an anchored head names a non-empty tree.
        if (size == 0 || root == bytes32(0)) revert LedgerAnchorEmptyHead(size, root);
        // Invariant: an operator's anchored history only grows (a rewound or forked log cannot re-anchor).
        uint256 latest = latestSize[msg.sender];
        if (size <= latest) revert LedgerAnchorNotGrowing(msg.sender, size, latest);
        // Invariant: every anchor carries the ledger key's signature so it can be checked off-chain.
        if (signature.length != 64 && signature.length != 65) revert LedgerAnchorBadSignature(signature.length);
        latestSize[msg.sender] = size;
        emit LedgerAnchored(msg.sender, size, root, time, signature);
    }
}
