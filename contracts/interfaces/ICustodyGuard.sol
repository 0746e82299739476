// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICustodyGuard
/// @notice A Safe v1.4.1 transaction guard that enforces one micro-vault's compiled policy on every
///         way funds or authority can leave the vault:
///         - every owner-signed `execTransaction`, whoever built it: per-asset destination
///           allowlists, per-transaction and rolling-24 h limits, weekly UTC freeze windows and
///           allowed hours, CALL-only execution (DELEGATECALL only into MultiSendCallOnly, inner
///           calls checked one by one), no gas refunds, no configuration self-call;
///         - every operation scheduled on the vault's timelock (classified by target and selector;
///           only the kinds the policy lists, a replacement guard only if it is a CustodyGuard bound
///           to the same vault, modules and fallback handler only the vault's own);
///         - every operation the timelock executes (VaultTimelock asks the installed guard first:
///           the current policy's kinds, pause, freeze windows and the rolling window apply);
///         - every message the vault signs (ERC-1271 through CustodyFallbackHandler answers only for
///           digests approved by a guarded Safe transaction, for EIP-712 domains the policy lists).
/// @dev The policy lives in immutables (it changes by deploying a successor guard through the
///      GuardDeployer and installing it through the timelock); the storage is one packed spend slot
///      per asset, a ring of 24 hourly buckets per asset, the pause flag and the approved message digests.
///      Rolling limit: a spend counts against the daily limit for at least 24 h and at most 25 h
///      after it happened, so no 24 h window can ever exceed the daily limit.
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

    /// @notice An EIP-712 domain the vault may sign messages for. The separator is computed on
    ///         chain with `block.chainid`: `EIP712Domain(string name,string version,uint256 chainId,
    ///         address verifyingContract)`, or without `version` when `versionHash` is zero.
    struct MessageDomain {
        address verifyingContract;
        bytes32 nameHash;
        bytes32 versionHash;
    }

    /// @notice The compiled policy.
    /// @param assets Up to 8 assets; any other token or contract call is rejected.
    /// @param destinations Up to 16 allowlisted destinations.
    /// @param unrestrictedMask Assets (bit i = asset i) that may go to any destination.
    /// @param freezeWindows Up to 8 weekly windows without transfers.
    /// @param allowedStart Start of the daily allowed hours, seconds after 00:00 UTC.
    /// @param allowedEnd End (exclusive) of the daily allowed hours; 0 = no restriction.
    /// @param timelockKinds Operation kinds (see `KIND_*`) that may be scheduled on the timelock;
    ///        every configuration kind (owners, threshold, modules, guard, fallback handler, policy)
    ///        is required, so a vault can always be reconfigured.
    /// @param templateHash keccak256 of the policy template file (provenance for auditors).
    /// @param calls Up to 8 allowlisted contract functions (e.g. an issuer's mint/allocate).
    /// @param messageDomains Up to 4 EIP-712 domains the vault may sign for (none of them a policy
    ///        asset, the vault or one of its components).
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
        MessageDomain[] messageDomains;
    }

    /// @notice What a guard is bound to. A successor must carry the same bindings (and name this
    ///         guard as its previous guard) to be installed.
    /// @param safe The Safe this guard protects.
    /// @param timelock The vault's timelock (the only path for configuration changes).
    /// @param multiSend The only DELEGATECALL target allowed (Safe MultiSendCallOnly).
    /// @param exitModule The vault's ExitModule, or zero.
    /// @param fallbackHandler The only fallback handler the vault may install (CustodyFallbackHandler).
    /// @param previousGuard The guard this one replaces (its rolling windows are carried over), or zero.
    /// @param deployer The GuardDeployer that deployed this guard (its registry vouches for successors).
    /// @param timelockKinds The operation kinds this guard lets the owners schedule.
    struct Bindings {
        address safe;
        address timelock;
        address multiSend;
        address exitModule;
        address fallbackHandler;
        address previousGuard;
        address deployer;
        uint16 timelockKinds;
    }

    /// @notice Emitted once, at deployment, with the hash of the enforced configuration.
    event CustodyGuardConfigured(
        address indexed safe, bytes32 indexed policyHash, bytes32 templateHash, address previousGuard
    );

    /// @notice Emitted when the vault's owners freeze all outgoing transfers and calls.
    event CustodyGuardPauseChanged(bool paused, address by);

    /// @notice Emitted when an asset's rolling window is seeded from the previous guard.
    event CustodyGuardSpendImported(address indexed token, uint256 amount, bool previousGuardAnswered);

    /// @notice Emitted when the vault approves an EIP-712 message (ERC-1271 answers for `digest`).
    event CustodyGuardMessageApproved(bytes32 indexed digest, bytes32 indexed domainSeparator, bytes32 structHash);

    /// @notice Emitted when the vault withdraws a message approval.
    event CustodyGuardMessageRevoked(bytes32 indexed digest);

    /// @notice Emitted when a ready timelock operation moves value out of the vault.
    event CustodyGuardScheduledSpend(address indexed token, uint256 amount, uint256 counted);

    /// @notice A clone guard's `primeSpendWindow` wrote `slots` ring slots never written before.
    event CustodyGuardSpendWindowPrimed(uint256 slots);

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
    /// @notice The policy does not allow scheduling (or executing) this kind of operation on the
    ///         timelock; kind 0 is an operation no policy can allow.
    error CustodyGuardTimelockKindForbidden(uint256 kind, address target, bytes4 selector);
    /// @notice The vault is paused: no owner-signed or timelocked transfer, call or message until
    ///         the timelock unpauses it.
    error CustodyGuardPaused();
    /// @notice A guard-only entry point called by someone else (`setPaused`, `approveMessage`,
    ///         `checkTimelockCall`).
    error CustodyGuardUnauthorized(address caller);
    /// @notice A configuration that cannot be enforced (too many entries, bad window, ...).
    error CustodyGuardInvalidConfig(string reason);
    /// @notice A replacement guard that this vault's GuardDeployer did not deploy for this Safe
    ///         (`registeredSafe` is the Safe it was deployed for, zero if none).
    error CustodyGuardSuccessorNotRegistered(address guard, address registeredSafe);
    /// @notice What a replacement guard can differ in (see {Bindings}).
    enum Binding {
        Safe,
        Timelock,
        MultiSend,
        ExitModule,
        FallbackHandler,
        Deployer,
        PreviousGuard,
        TimelockKinds
    }

    /// @notice A replacement guard whose binding `binding` differs from what this guard requires.
    error CustodyGuardSuccessorMismatch(address guard, Binding binding);
    /// @notice Removing the guard must be scheduled with a delay of at least `required`.
    error CustodyGuardZeroGuardDelay(uint256 delay, uint256 required);
    /// @notice Only the vault's own CustodyFallbackHandler (or none) may be installed.
    error CustodyGuardFallbackHandlerForbidden(address handler);
    /// @notice Modules: only the vault's own exit module may be (re-)enabled; the timelock may never
    ///         be disabled (it is the vault's only configuration path).
    error CustodyGuardModuleForbidden(address module);
    /// @notice A timelock delay outside the bounds every vault keeps.
    error CustodyGuardDelayOutOfRange(uint256 delay, uint256 min, uint256 max);
    /// @notice The vault may not sign messages for this EIP-712 domain.
    error CustodyGuardMessageDomainForbidden(bytes32 domainSeparator);

    /// @notice Everything about a guard in one call.
    /// @param version Semantic version of the guard contract.
    /// @param bindings What the guard is bound to.
    /// @param policyHash keccak256(abi.encode(config)) of the enforced configuration.
    /// @param templateHash keccak256 of the policy template file the configuration was compiled from.
    /// @param paused Whether owner-signed transfers, calls and messages are frozen.
    /// @param messageDomainSeparators The EIP-712 domain separators the vault may sign for.
    /// @param config The enforced configuration, as given at deployment.
    struct GuardInfo {
        string version;
        Bindings bindings;
        bytes32 policyHash;
        bytes32 templateHash;
        bool paused;
        bytes32[] messageDomainSeparators;
        Config config;
    }

    /// @notice Everything about this guard in one call: bindings, provenance, pause state and the
    ///         enforced configuration.
    function info() external view returns (GuardInfo memory);

    /// @notice What this guard is bound to (cheap; a predecessor checks its successor with it).
    function bindings() external view returns (Bindings memory);

    /// @notice `setPaused(true)` freezes every owner-signed transfer, contract call and message
    ///         approval, and every timelocked transfer; only the Safe itself (so a threshold of owners)
    ///         may, without delay. `setPaused(false)` lifts the freeze; only the vault's timelock may
    ///         (after its public delay).
    /// @dev Emits {CustodyGuardPauseChanged}.
    function setPaused(bool on) external;

    /// @notice Approves the EIP-712 message `keccak256("\x19\x01" ‖ domainSeparator ‖ structHash)`
    ///         for ERC-1271. Only the Safe (an owner-signed transaction this guard checked).
    /// @dev Emits {CustodyGuardMessageApproved}. Requirements: `domainSeparator` is one of the
    ///      policy's message domains; the vault is not paused; outside freeze windows and inside
    ///      allowed hours.
    function approveMessage(bytes32 domainSeparator, bytes32 structHash) external returns (bytes32 digest);

    /// @notice Withdraws the approval of `digest`. Only the Safe.
    /// @dev Emits {CustodyGuardMessageRevoked}.
    function revokeMessage(bytes32 digest) external;

    /// @notice Whether the vault approved `digest` (what CustodyFallbackHandler answers ERC-1271 with).
    function isMessageApproved(bytes32 digest) external view returns (bool);

    /// @notice Called by the vault's timelock before it executes each call of a ready operation:
    ///         the current policy must allow the operation's kind (and a replacement guard must
    ///         still fit), and a transfer or contract call out of the vault obeys the pause, the
    ///         freeze windows and the allowed hours, and uses up the rolling window.
    /// @dev Reverts to refuse. Only the vault's timelock.
    function checkTimelockCall(address target, uint256 value, bytes calldata data) external;

    /// @notice Rolling-window state of asset `index`, as stored: `spent`, everything ever counted, and
    ///         `before`, what was counted before the window's oldest hour (both modulo 2^96; the
    ///         window at `hour` holds `spent - before`), the last hour recorded (unix time / 3600), the
    ///         live-hours bitmap (bit j: the ring holds hour `hour - 1 - j`, still in the window),
    ///         whether it was seeded, and the ring of 24 hourly buckets (hour h at index h % 24) as
    ///         (spent at the hour's end, hour) pairs.
    function spendState(uint256 index)
        external
        view
        returns (
            uint256 spent,
            uint256 before,
            uint256 hour,
            uint256 live,
            bool seeded,
            uint256[2][24] memory buckets
        );

    /// @notice Amount of `token` that left within the current rolling window (for a successor guard).
    function windowTotal(address token) external view returns (uint256);
}
