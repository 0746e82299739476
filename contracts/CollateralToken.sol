// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ICollateralToken} from "./interfaces/ICollateralToken.sol";

/// @title CollateralToken
/// @notice ERC-20 for an allocated physical commodity (1 token = 1 fine troy ounce, 18 decimals) whose
///         issuer records bar allocations and cites provenance on every mint and burn.
/// @dev What is enforced here is authority (only `ISSUER_ROLE`, held by the issuer micro-vault's Safe,
///      mints, burns and allocates) and the integrity of each record (well-formed, unambiguous,
///      the allocation counter equal to the sum of records). Relations between records over time and
///      with the physical world (supply vs allocation, provenance coverage, duplicate bars, the
///      custodian's list) are the reconciler's job: the chain cannot see a vault, and a compromised
///      issuer could satisfy any such on-chain check with fictitious records in the same transaction.
///      `DEFAULT_ADMIN_ROLE` (granting/revoking the issuer) belongs to `admin`, e.g. the vault's timelock.
contract CollateralToken is ERC20, AccessControl, ICollateralToken {
    /// @notice Semantic version of this contract.
    string public constant VERSION = "1.0.0";

    /// @notice Role allowed to allocate, deallocate, mint and burn.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");

    /// @inheritdoc ICollateralToken
    uint256 public allocatedFineWeight;

    /// @param name_ Token name.
    /// @param symbol_ Token symbol.
    /// @param admin Holder of `DEFAULT_ADMIN_ROLE` (manages the issuer role).
    /// @param issuer Holder of `ISSUER_ROLE` (the issuer micro-vault's Safe).
    constructor(string memory name_, string memory symbol_, address admin, address issuer) ERC20(name_, symbol_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ISSUER_ROLE, issuer);
    }

    modifier onlyIssuer() {
        // Invariant: supply and allocation records change only by the issuer's (multisig) decision.
        if (!hasRole(ISSUER_ROLE, msg.sender)) revert CollateralNotIssuer(msg.sender);
        _;
    }

    /// @inheritdoc ICollateralToken
    function allocate(bytes32[] calldata barIds, uint256[] calldata fineWeights)
        external
        onlyIssuer
        returns (bytes32 batch)
    {
        uint256 total;
        (batch, total) = _checkedBatch(barIds, fineWeights);
        allocatedFineWeight += total;
        for (uint256 i = 0; i < barIds.length; i++) {
            emit BarAllocated(barIds[i], batch, fineWeights[i]);
        }
        emit BatchAllocated(batch, barIds.length, total);
    }

    /// @inheritdoc ICollateralToken
    function deallocate(bytes32[] calldata barIds, uint256[] calldata fineWeights)
        external
        onlyIssuer
        returns (bytes32 batch)
    {
        uint256 total;
        (batch, total) = _checkedBatch(barIds, fineWeights);
        // Invariant: the allocation counter is the sum of allocation records minus deallocation records.
        if (total > allocatedFineWeight) revert CollateralDeallocationExceedsAllocated(total, allocatedFineWeight);
        allocatedFineWeight -= total;
        for (uint256 i = 0; i < barIds.length; i++) {
            emit BarDeallocated(barIds[i], batch, fineWeights[i]);
        }
        emit BatchDeallocated(batch, barIds.length, total);
    }

    /// @inheritdoc ICollateralToken
    function mint(address to, uint256 amount, bytes32 provenance) external onlyIssuer {
        _checkCitation(amount, provenance);
        _mint(to, amount);
        emit Minted(to, provenance, amount);
    }

    /// @inheritdoc ICollateralToken
    function burn(uint256 amount, bytes32 provenance) external onlyIssuer {
        _checkCitation(amount, provenance);
        _burn(msg.sender, amount);
        emit Burned(msg.sender, provenance, amount);
    }

    /// @inheritdoc ICollateralToken
    function barId(string calldata refinerCode, string calldata serial) external pure returns (bytes32) {
        return keccak256(abi.encodePacked(refinerCode, "/", serial));
    }

    /// @inheritdoc ICollateralToken
    function batchHash(bytes32[] calldata barIds, uint256[] calldata fineWeights) public pure returns (bytes32) {
        return keccak256(abi.encode(barIds, fineWeights));
    }

    function _checkedBatch(bytes32[] calldata barIds, uint256[] calldata fineWeights)
        private
        pure
        returns (bytes32 batch, uint256 total)
    {
        // Invariant: every record names at least one bar and pairs each bar with exactly one weight.
        if (barIds.length == 0 || barIds.length != fineWeights.length) {
            revert CollateralInvalidBatch(barIds.length, fineWeights.length);
        }
        for (uint256 i = 0; i < barIds.length; i++) {
            // Invariant: each bar record identifies a bar and carries metal (auditable, unambiguous).
            if (barIds[i] == bytes32(0) || fineWeights[i] == 0) {
                revert CollateralInvalidBar(i, barIds[i], fineWeights[i]);
            }
            total += fineWeights[i];
        }
        batch = batchHash(barIds, fineWeights);
    }

    function _checkCitation(uint256 amount, bytes32 provenance) private pure {
        // Invariant: every supply change records something (a zero-amount event would be noise).
        if (amount == 0) revert CollateralZeroAmount(provenance);
        // Invariant: every supply change cites the provenance record it claims to cover.
        if (provenance == bytes32(0)) revert CollateralMissingProvenance(amount);
    }
}
