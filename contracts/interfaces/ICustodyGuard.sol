// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICustodyGuard
/// @notice A Safe v1.4.1 transaction guard that enforces one micro-vault's compiled policy on every
///         `execTransaction`, whoever built the transaction: per-asset destination allowlists,
///         per-transaction and rolling-24 h limits, weekly UTC freeze windows and allowed hours,
///         CALL-only execution (DELEGATECALL only into MultiSendCallOnly, inner calls checked one
///         by one), no gas refunds, and no configuration self-call: configuration changes reach the
///         Safe only through the vault's timelock (a Safe module, so this guard never sees them —
///         which is also why a broken guard can always be replaced through the timelock).
/// @dev The policy lives in immutables (it changes by deploying a new guard and installing it
///      through the timelock); the only storage is one packed spend slot per asset plus 25
///      hourly buckets. Rolling limit: a spend counts against the daily limit for at least 24 h
///      and at most 25 h after it happened, so no 24 h window can ever exceed the daily limit.
interface ICustodyGuard {
    /// @notice One asset's limits. `token == address(0)` is native ETH.
    struct Asset {
        address token;
        uint96 perTxLimit;
        uint96 dailyLimit;
    }

    /// @notice One allowlisted destination and the assets (bit i = asset i) it may receive.
    struct Destination {
        address account;
        uint8 assetMask;
    }

    /// @notice One allowlisted contract function the vault may call (value 0, no limits apply).
    struct Call {
        address target;
        bytes4 selector;
    }

    /// @notice A weekly freeze window in seconds since Monday 00:00 UTC, `[start, end)`.
    struct Window {
        uint32 start;
        uint32 end;
    }

    /// @notice The compiled policy.
    /// @param assets Up to 8 assets; any other token or contract call is rejected.
    /// @param destinations Up to 16 allowlisted destinations.
    /// @param unrestrictedMask Assets (bit i = asset i) that may go to any destination.
    /// @param freezeWindows Up to 8 weekly windows without transfers.
    /// @param allowedStart Start of the daily allowed hours, seconds after 00:00 UTC.
    /// @param allowedEnd End (exclusive) of the daily allowed hours; 0 = no restriction.
    /// @param timelockKinds Operation kinds (see `KIND_*`) that may be scheduled on the timelock.
    /// @param templateHash keccak256 of the policy template file (provenance for auditors).
    /// @param calls Up to 8 allowlisted contract functions (e.g. an issuer's mint/allocate).
    struct Config {
        Asset[] assets;
        Destination[] destinations;
        uint8 unrestrictedMask;
        Window[] freezeWindows;
        uint32 allowedStart;
        uint32 allowedEnd;
        uint16 timelockKinds;
        bytes32 templateHash;
        Call[] calls;
    }

    /// @notice Emitted once, at deployment, with the hash of the enforced configuration.
    event CustodyGuardConfigured(
        address indexed safe, bytes32 indexed policyHash, bytes32 templateHash, address previousGuard
    );

    /// @notice Emitted when the vault's owners freeze all outgoing transfers and calls.
    event CustodyGuardPauseChanged(bool paused, address by);

    /// @notice Emitted when an asset's rolling window is seeded from the previous guard.
    event CustodyGuardSpendImported(address indexed token, uint256 amount, bool previousGuardAnswered);

    /// @notice `checkTransaction` was called by someone other than the guarded Safe.
    error CustodyGuardNotSafe(address caller);
    /// @notice DELEGATECALL to anything but the configured MultiSendCallOnly.
    error CustodyGuardDelegateCallForbidden(address target);
    /// @notice A Safe transaction calling the Safe itself (owners, threshold, modules, guard, ...).
    error CustodyGuardSelfCallForbidden(bytes4 selector);
    /// @notice Gas refunds pay out of the vault and would bypass every limit.
    error CustodyGuardRefundForbidden(uint256 gasPrice, address gasToken, address refundReceiver);
    /// @notice A call that is neither a transfer of a policy asset, an allowlisted contract call, nor a
    ///         timelock operation.
    error CustodyGuardCallForbidden(address target, bytes4 selector, uint256 value);
    /// @notice A function of a policy token other than `transfer`/`approve`, or malformed calldata.
    error CustodyGuardTokenCallForbidden(address token, bytes4 selector);
    /// @notice The destination is not on the allowlist for this asset.
    error CustodyGuardDestinationNotAllowed(address token, address destination);
    /// @notice The amount exceeds the per-transaction limit.
    error CustodyGuardPerTxLimitExceeded(address token, uint256 amount, uint256 limit);
    /// @notice The amount would push the rolling 24 h total over the daily limit.
    error CustodyGuardDailyLimitExceeded(address token, uint256 amount, uint256 spentInWindow, uint256 limit);
    /// @notice Transfers are frozen: `weekSecond` falls in freeze window `index`.
    error CustodyGuardFrozen(uint256 index, uint256 weekSecond);
    /// @notice Transfers are only allowed between `start` and `end` seconds after 00:00 UTC.
    error CustodyGuardOutsideAllowedHours(uint256 daySecond, uint256 start, uint256 end);
    /// @notice The policy does not allow scheduling this kind of operation on the timelock.
    error CustodyGuardTimelockKindForbidden(uint256 kind, address target, bytes4 selector);
    /// @notice The vault is paused: no owner-signed transfer or call until the timelock unpauses it.
    error CustodyGuardPaused();
    /// @notice `pause` by someone other than the Safe, or `unpause` by someone other than the timelock.
    error CustodyGuardUnauthorized(address caller);
    /// @notice A configuration that cannot be enforced (too many entries, bad window, ...).
    error CustodyGuardInvalidConfig(string reason);

    /// @notice What this guard is bound to, and its provenance.
    /// @param version Semantic version of the guard contract.
    /// @param safe The Safe this guard protects.
    /// @param timelock The vault's timelock (the only path for configuration changes).
    /// @param multiSend The only DELEGATECALL target allowed (Safe MultiSendCallOnly).
    /// @param exitModule The vault's ExitModule (the Safe may always call its `cancel`), or zero.
    /// @param previousGuard The guard this one replaces (its rolling windows are carried over), or zero.
    /// @param policyHash keccak256(abi.encode(config)) of the enforced configuration.
    /// @param templateHash keccak256 of the policy template file the configuration was compiled from.
    /// @param paused Whether owner-signed transfers and calls are frozen.
    /// @param config The enforced configuration, as given at deployment.
    struct GuardInfo {
        string version;
        address safe;
        address timelock;
        address multiSend;
        address exitModule;
        address previousGuard;
        bytes32 policyHash;
        bytes32 templateHash;
        bool paused;
        Config config;
    }

    /// @notice Everything about this guard in one call: bindings, provenance, pause state and the
    ///         enforced configuration. (Few external functions keep the Safe's calls into the guard
    ///         cheap: the selector dispatch is on every transaction's path.)
    function info() external view returns (GuardInfo memory);

    /// @notice `setPaused(true)` freezes every owner-signed transfer and contract call; only the
    ///         Safe itself (so a threshold of owners) may, without delay. `setPaused(false)` lifts the
    ///         freeze; only the vault's timelock may (after its public delay).
    /// @dev Emits {CustodyGuardPauseChanged}.
    function setPaused(bool on) external;

    /// @notice Rolling-window state of asset `index`: running total, the current hour's amount,
    ///         the current hour (unix time / 3600), whether it was seeded, and the 25 hourly
    ///         buckets as (amount, hour) pairs.
    function spendState(uint256 index)
        external
        view
        returns (uint256 total, uint256 currentAmount, uint256 currentHour, bool seeded, uint256[2][25] memory buckets);

    /// @notice Amount of `token` that left within the current rolling window (for a successor guard).
    function windowTotal(address token) external view returns (uint256);
}
