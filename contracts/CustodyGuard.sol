// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {GuardEntryPoints} from "./guard/GuardEntryPoints.sol";
import {GuardPolicyImmutables} from "./guard/GuardPolicyImmutables.sol";

/// @title CustodyGuard
/// @notice Enforces one micro-vault's compiled policy on every Safe transaction, every timelock
///         operation and every message approval. See {ICustodyGuard}.
/// @dev The dedicated guard: one full deployment per vault, its policy in immutables
///      ({GuardPolicyImmutables}), so the cheapest checks and the most expensive creation; a template
///      that expects few transactions uses {CustodyGuardClone} instead (`guard.deployment: clone`).
///      Composed of small bases: {GuardPolicy} (bindings and policy tables), {GuardSpendWindow}
///      (rolling 24 h limit, pause flag), {GuardTimelockRules} (what may pass the timelock),
///      {GuardCallRules} (what an owner-signed transaction may do) and {GuardEntryPoints}.
contract CustodyGuard is GuardEntryPoints, GuardPolicyImmutables {
    constructor(
        address safe,
        address timelock,
        address multiSend,
        address exitModule,
        address fallbackHandler,
        address previousGuard,
        Config memory cfg
    ) GuardPolicyImmutables(safe, timelock, multiSend, exitModule, fallbackHandler, previousGuard, cfg) {
        // A dedicated guard pays every first storage write at creation: its spend slots and its ring
        // (about 22,100 gas per ring slot, 12 per asset), so that no transfer pays one.
        _markAssets(cfg.assets.length);
        _primeRing(cfg.assets.length);
        emit CustodyGuardConfigured(safe, _policyHash(), cfg.templateHash, previousGuard);
    }
}
