// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ILedgerAnchor
/// @notice Public, append-only record of an operator's audit-ledger tree heads. A tree head is the
///         (size, root, time) of the operator's RFC 9162 Merkle log, signed off-chain by the
///         operator's ledger key (Ed25519, or secp256k1 via EIP-191). Publishing it fixes the ledger's
///         history in time: any later ledger must be consistent (RFC 9162 consistency proof) with every
///         head anchored before it.
/// @dev The contract does not verify the off-chain signature (Ed25519 is not cheap on-chain); it only
///      records it, bound to `msg.sender` (the operator) and the block. Auditors check the signature and
///      the consistency proofs off-chain (`custody audit verify`).
interface ILedgerAnchor {
    /// @notice Emitted right after `operator` anchored the head of its ledger at `size` entries.
    /// @param operator The account that published the head (indexed: auditors filter by operator).
    /// @param size Number of entries in the ledger at this head (indexed: find the head for a size).
    /// @param root RFC 9162 Merkle tree hash of the first `size` entries.
    /// @param time Unix time (seconds) at which the head was signed.
    /// @param signature The ledger key's signature over the canonical head (64-byte Ed25519 or 65-byte ECDSA).
    event LedgerAnchored(address indexed operator, uint256 indexed size, bytes32 root, uint64 time, bytes signature);

    /// @notice A head must cover at least one entry and carry a root.
    error LedgerAnchorEmptyHead(uint256 size, bytes32 root);

    /// @notice Heads of one operator only grow: `size` must exceed the operator's last anchored size.
    error LedgerAnchorNotGrowing(address operator, uint256 size, uint256 latestSize);

    /// @notice A signature must be present (64 or 65 bytes).
    error LedgerAnchorBadSignature(uint256 length);

    /// @notice Publish a signed tree head.
    /// @dev Emits {LedgerAnchored}. Requirements: `size` > 0 and `root` != 0; `size` greater than the
    ///      caller's previous anchored size; a 64- or 65-byte signature.
    function anchor(uint256 size, bytes32 root, uint64 time, bytes calldata signature) external;

    /// @notice The largest ledger size `operator` has anchored (0 if none).
    function latestSize(address operator) external view returns (uint256);
}
