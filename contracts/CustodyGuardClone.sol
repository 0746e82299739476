// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {GuardEntryPoints} from "./guard/GuardEntryPoints.sol";
import {GuardPolicyArgs} from "./guard/GuardPolicyArgs.sol";

/// @title CustodyGuardClone
/// @notice The same guard as {CustodyGuard} (the same rules, errors and views), deployed as an EIP-1167
///         clone of this one shared implementation: each vault's bindings and compiled policy are its
///         clone's immutable arguments ({GuardArgs}), its limits and approvals its clone's own storage.
///         Creation costs a small fraction of a dedicated guard; every check costs a DELEGATECALL and a
///         few code reads more (benchmarks/snapshots/vault-cost.json and guard.json).
/// @dev Only the GuardDeployer creates registered clones, and it calls `initialize` in the same
///      transaction. The implementation is inert: `initialize` refuses it, and its "bindings" are bytes
///      of its own code, so no caller check on it can pass.
contract CustodyGuardClone is GuardEntryPoints, GuardPolicyArgs {
    /// @notice `initialize` on the implementation itself (only its clones are guards).
    error CustodyGuardNotAClone();

    /// @notice Checks the clone's policy exactly as {CustodyGuard}'s constructor checks its own, and
    ///         announces it. Stateless, so it can change nothing: a policy that fails any check makes
    ///         the deployment revert.
    /// @dev Emits {CustodyGuardConfigured}; returns the policy hash. Requirements: called on a clone, by
    ///      the GuardDeployer its arguments name.
    function initialize() external returns (bytes32 policyHash) {
        // Invariant: the shared implementation is never a guard.
        if (!_isClone()) revert CustodyGuardNotAClone();
        if (msg.sender != _guardDeployer()) revert CustodyGuardUnauthorized(msg.sender);
        Config memory cfg = _config();
        _validate(_safe(), _timelock(), _exitModule(), _fallbackHandler(), cfg);
        policyHash = keccak256(abi.encode(cfg));
        emit CustodyGuardConfigured(_safe(), policyHash, cfg.templateHash, _previousGuard());
    }

    /// @notice Writes an empty bucket (amount 0, hour 1) into every ring bucket of the policy's assets
    ///         never written, and leaves every written bucket as it is. It changes no limit, only who
    ///         pays the EVM's first write of each ring slot (about 20,000 gas each, 12 per asset): the
    ///         caller, once, instead of the first spend of an hour in that slot (as Uniswap v3 lets
    ///         anyone pre-write its oracle slots). A clone is not primed at creation, which keeps
    ///         creation cheap; a dedicated guard is. Anyone may call it; a second call writes nothing.
    /// @dev Emits {CustodyGuardSpendWindowPrimed}; returns the number of slots written.
    function primeSpendWindow() external returns (uint256 slots) {
        // Invariant: the shared implementation is never a guard (its "asset count" is a byte of code).
        if (!_isClone()) revert CustodyGuardNotAClone();
        slots = _primeRing(_assetCount());
        emit CustodyGuardSpendWindowPrimed(slots);
    }
}
