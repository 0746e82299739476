// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICollateralToken
/// @notice A token for an allocated physical commodity: 1 token = 1 fine troy ounce (18 decimals).
///         The issuer (a micro-vault Safe holding `ISSUER_ROLE`) records on-chain which physical bars
///         back the token (allocation, by bar id hash and fine weight) and cites a provenance record on
///         every mint and burn. The contract is the public, append-only record of those claims; the
///         off-chain reconciler (`custody reconcile`) checks the claims against each other over time
///         and against the custodian's bar list.
/// @dev A bar id is `keccak256(abi.encodePacked(refinerCode, "/", serial))` (see {barId}; refiner codes
///      never contain "/", so the first "/" separates the two); a batch hash is
///      `keccak256(abi.encode(barIds, fineWeights))` (see {batchHash}), computed by the contract so a
///      citation is bound to the exact list of bars it names. Fine weights are in base units
///      (1 fine troy ounce = 1e18).
interface ICollateralToken {
    /// @notice Emitted once per bar recorded as backing the token, right after the batch total is updated.
    /// @param barId keccak256(abi.encodePacked(refinerCode, "/", serial)) of the physical bar.
    /// @param batch Hash of the allocation batch the bar belongs to (what mints cite).
    /// @param fineWeight Fine gold content of the bar, in base units (1 oz = 1e18).
    event BarAllocated(bytes32 indexed barId, bytes32 indexed batch, uint256 fineWeight);

    /// @notice Emitted once per bar released from backing the token.
    event BarDeallocated(bytes32 indexed barId, bytes32 indexed batch, uint256 fineWeight);

    /// @notice Emitted once per allocation call, after all of its {BarAllocated} events.
    event BatchAllocated(bytes32 indexed batch, uint256 barCount, uint256 totalFineWeight);

    /// @notice Emitted once per deallocation call, after all of its {BarDeallocated} events.
    event BatchDeallocated(bytes32 indexed batch, uint256 barCount, uint256 totalFineWeight);

    /// @notice Emitted right after `amount` tokens were created for `to`, citing provenance record `provenance`.
    event Minted(address indexed to, bytes32 indexed provenance, uint256 amount);

    /// @notice Emitted right after `amount` tokens of the issuer were destroyed, citing `provenance`.
    event Burned(address indexed from, bytes32 indexed provenance, uint256 amount);

    /// @notice `caller` does not hold `ISSUER_ROLE`.
    error CollateralNotIssuer(address caller);

    /// @notice A batch must name at least one bar and exactly one fine weight per bar.
    error CollateralInvalidBatch(uint256 barCount, uint256 weightCount);

    /// @notice The bar at `index` has a zero id or a zero fine weight: such a record identifies nothing.
    error CollateralInvalidBar(uint256 index, bytes32 barId, uint256 fineWeight);

    /// @notice A mint or burn must cite a provenance record (a non-zero batch hash).
    error CollateralMissingProvenance(uint256 amount);

    /// @notice A mint or burn of zero tokens records nothing.
    error CollateralZeroAmount(bytes32 provenance);

    /// @notice A deallocation would release more fine weight than is recorded as allocated.
    error CollateralDeallocationExceedsAllocated(uint256 fineWeight, uint256 allocated);

    /// @notice Records `barIds` (with their fine weights) as backing the token.
    /// @dev Emits one {BarAllocated} per bar, then {BatchAllocated}. Requirements: caller holds
    ///      `ISSUER_ROLE`; 1 <= barIds.length == fineWeights.length; no zero id or weight. Deliberately
    ///      NOT checked here (the reconciler reports them): a bar allocated twice, bars missing from the
    ///      custodian's list, weights that disagree with the list.
    /// @return batch The batch hash, {batchHash} of the arguments.
    function allocate(bytes32[] calldata barIds, uint256[] calldata fineWeights) external returns (bytes32 batch);

    /// @notice Records `barIds` as no longer backing the token (redemption, replacement, correction).
    /// @dev Emits one {BarDeallocated} per bar, then {BatchDeallocated}. Requirements as {allocate},
    ///      and the total released may not exceed {allocatedFineWeight}.
    function deallocate(bytes32[] calldata barIds, uint256[] calldata fineWeights) external returns (bytes32 batch);

    /// @notice Creates `amount` tokens for `to`, citing provenance record `provenance` (an allocation batch).
    /// @dev Emits {Minted} (and ERC-20 {Transfer} from zero). Requirements: caller holds `ISSUER_ROLE`,
    ///      amount > 0, provenance != 0. Whether `provenance` names an allocated batch that still covers
    ///      the amount is checked by the reconciler, not here (see the README for why).
    function mint(address to, uint256 amount, bytes32 provenance) external;

    /// @notice Destroys `amount` of the caller's (the issuer's) tokens, citing `provenance`.
    /// @dev Emits {Burned} (and ERC-20 {Transfer} to zero). Requirements as {mint}; the caller's balance
    ///      must cover `amount`. Holders redeem by transferring tokens to the issuer first.
    function burn(uint256 amount, bytes32 provenance) external;

    /// @notice Sum of fine weights currently recorded as allocated (allocations minus deallocations).
    function allocatedFineWeight() external view returns (uint256);

    /// @notice The bar id for a refiner code and serial: keccak256(abi.encodePacked(refinerCode, "/", serial)).
    function barId(string calldata refinerCode, string calldata serial) external pure returns (bytes32);

    /// @notice The batch hash {allocate} and {deallocate} compute: keccak256(abi.encode(barIds, fineWeights)).
    function batchHash(bytes32[] calldata barIds, uint256[] calldata fineWeights) external pure returns (bytes32);
}
