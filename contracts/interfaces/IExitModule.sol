// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IExitModule
/// @notice Emergency exit of one micro-vault to a pre-approved fallback custodian. A quorum of
///         initiators (a designated council, or the Safe's owners) signs an exit request; after an
///         escrow delay during which the Safe, its timelock or (if allowed) any owner can cancel,
///         anyone can finalize: the vault's ETH and listed ERC-20 balances move to the chosen
///         custodian — and nowhere else.
/// @dev A Safe module: it works without the Safe's signature threshold and without passing the
///      vault's guard, which is exactly what an emergency needs (lost keys, broken guard). It is not a
///      back door because (1) destinations are a fixed list changed only through the vault's
///      timelock, (2) every exit waits the escrow delay in public and can be cancelled, and (3) the
///      quorum, delay and list are part of the vault's template, visible on-chain.
interface IExitModule {
    /// @notice Lifecycle of the current exit request.
    enum ExitState {
        None,
        Pending
    }

    /// @notice The module's configuration (from the vault's template).
    /// @param custodians Pre-approved fallback custodians; exits go only to one of them.
    /// @param initiators Council members allowed to sign exit requests; empty = the Safe's owners.
    /// @param quorum Distinct initiator signatures an exit request needs.
    /// @param escrowDelay Seconds between initiation and the earliest finalization.
    /// @param ownersCanCancel Whether any Safe owner (not only the Safe / its timelock) can cancel.
    /// @param tokens ERC-20 tokens swept on finalization (ETH always is).
    struct ExitConfig {
        address[] custodians;
        address[] initiators;
        uint256 quorum;
        uint256 escrowDelay;
        bool ownersCanCancel;
        address[] tokens;
    }

    /// @notice Emitted when a quorum initiates an exit.
    event ExitInitiated(uint256 indexed nonce, address indexed custodian, address[] initiators, uint256 readyAt);
    /// @notice Emitted when a pending exit is cancelled.
    event ExitCancelled(uint256 indexed nonce, address indexed by);
    /// @notice Emitted once per asset moved (or that failed to move) by a finalization.
    event ExitAssetMoved(uint256 indexed nonce, address indexed token, address indexed custodian, uint256 amount, bool success);
    /// @notice Emitted when an exit completes.
    event ExitFinalized(uint256 indexed nonce, address indexed custodian, address by);
    /// @notice Emitted when the timelock changes the configuration.
    event ExitConfigChanged(bytes32 configHash);

    /// @notice A request for a custodian that is not pre-approved.
    error ExitModuleCustodianNotApproved(address custodian);
    /// @notice Fewer valid, distinct initiator signatures than the quorum.
    error ExitModuleQuorumNotMet(uint256 valid, uint256 quorum);
    /// @notice A signature from someone who may not initiate, or out of ascending order (duplicates).
    error ExitModuleInvalidSigner(address signer);
    /// @notice Malformed signature bytes (length, v, high-s).
    error ExitModuleMalformedSignature(uint256 index);
    /// @notice The request's deadline passed.
    error ExitModuleRequestExpired(uint256 deadline, uint256 now_);
    /// @notice An exit is already pending.
    error ExitModuleExitPending(address custodian, uint256 readyAt);
    /// @notice No exit is pending (nothing to cancel or finalize; also a second finalize).
    error ExitModuleNoPendingExit();
    /// @notice Finalization before the escrow delay ended.
    error ExitModuleTooEarly(uint256 now_, uint256 readyAt);
    /// @notice The caller may not cancel.
    error ExitModuleNotAuthorized(address caller);
    /// @notice A nested call into the module during a finalization.
    error ExitModuleReentrancy();
    /// @notice A configuration that cannot work (no custodian, quorum 0 or above the initiators, ...).
    error ExitModuleInvalidConfig(string reason);

    /// @notice The vault's Safe.
    function SAFE() external view returns (address);

    /// @notice The vault's timelock (the only one who can change the configuration).
    function TIMELOCK() external view returns (address);

    /// @notice Initiates an exit to `custodian` with the initiators' EIP-712 signatures over
    ///         `ExitRequest(address vault,address custodian,uint256 nonce,uint256 deadline)`,
    ///         concatenated 65-byte (r, s, v) in ascending signer order. Anyone may submit.
    /// @dev Emits {ExitInitiated}. Requirements: no pending exit, custodian approved, deadline not
    ///      passed, at least `quorum` valid distinct initiators.
    function initiate(address custodian, uint256 deadline, bytes calldata signatures) external;

    /// @notice Cancels the pending exit. Callable by the Safe, its timelock, or — if the
    ///         configuration allows — any Safe owner.
    /// @dev Emits {ExitCancelled}.
    function cancel() external;

    /// @notice Completes the pending exit once the escrow delay has passed; callable by anyone.
    /// @dev Emits {ExitAssetMoved} per asset and {ExitFinalized}.
    function finalize() external;

    /// @notice Replaces the configuration. Only through the vault's timelock.
    /// @dev Emits {ExitConfigChanged}. Requirements: caller is the timelock; no exit pending; at least
    ///      one custodian, none of them zero, the vault, its timelock, this module, another enabled
    ///      module or the vault's guard; 1 <= quorum (<= council size when there is a council);
    ///      MIN_ESCROW_DELAY <= escrowDelay <= MAX_ESCROW_DELAY.
    function configure(ExitConfig calldata cfg) external;

    /// @notice The EIP-712 digest initiators sign for an exit to `custodian`.
    function requestDigest(address custodian, uint256 deadline) external view returns (bytes32);
}
