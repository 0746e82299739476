// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";
import {checkGuardCapacity, messageDomainSeparator} from "./GuardConfigChecks.sol";

/// @title GuardArgs
/// @notice The layout of a clone guard's immutable arguments (the bytes after the 45-byte EIP-1167
///         code, OpenZeppelin `Clones.cloneDeterministicWithImmutableArgs`): the bindings and the
///         compiled policy, tightly packed, so that creating a clone deposits as few bytes as possible.
///         Written by the GuardDeployer ({encode}), read by {GuardPolicyArgs}, and decoded off chain by
///         `custody.policy.guard_args` (tests/test_guard_clones.py checks the two agree).
/// @dev Byte offsets from the start of the arguments:
///      0 safe (20) | 20 timelock | 40 multiSend | 60 exitModule | 80 fallbackHandler | 100 previousGuard
///      | 120 guardDeployer | 140 templateHash (32) | 172 header (16): assetCount, destinationCount,
///      windowCount, callCount, domainCount, unrestrictedMask (1 byte each), allowedStart, allowedEnd
///      (4 each), timelockKinds (2) | 188 tables, in order: assets (token 20, perTx 12, daily 12),
///      destinations (account 20, assetMask 1), freeze windows (start 4, end 4), calls (target 20,
///      selector 4), message domains (separator 32, nameHash 32, versionHash 32, verifyingContract 20).
library GuardArgs {
    uint256 internal constant SAFE = 0;
    uint256 internal constant TIMELOCK = 20;
    uint256 internal constant MULTISEND = 40;
    uint256 internal constant EXIT_MODULE = 60;
    uint256 internal constant FALLBACK_HANDLER = 80;
    uint256 internal constant PREVIOUS_GUARD = 100;
    uint256 internal constant GUARD_DEPLOYER = 120;
    uint256 internal constant TEMPLATE_HASH = 140;
    uint256 internal constant HEADER = 172;
    uint256 internal constant TABLES = 188;
    uint256 internal constant ASSET_SIZE = 44;
    uint256 internal constant DESTINATION_SIZE = 21;
    uint256 internal constant WINDOW_SIZE = 8;
    uint256 internal constant CALL_SIZE = 24;
    uint256 internal constant DOMAIN_SIZE = 116;

    /// @notice The arguments of a clone guard for `cfg` with bindings `b` (message domains carry their
    ///         EIP-712 separator on this chain).
    function encode(ICustodyGuard.Bindings memory b, ICustodyGuard.Config calldata cfg)
        internal
        view
        returns (bytes memory args)
    {
        // the counts are one byte each: a policy over capacity must fail here, not wrap around
        checkGuardCapacity(cfg);
        args = abi.encodePacked(
            b.safe, b.timelock, b.multiSend, b.exitModule, b.fallbackHandler, b.previousGuard, b.deployer
        );
        args = abi.encodePacked(
            args,
            cfg.templateHash,
            uint8(cfg.assets.length),
            uint8(cfg.destinations.length),
            uint8(cfg.freezeWindows.length),
            uint8(cfg.calls.length),
            uint8(cfg.messageDomains.length),
            cfg.unrestrictedMask,
            cfg.allowedStart,
            cfg.allowedEnd,
            cfg.timelockKinds
        );
        for (uint256 i = 0; i < cfg.assets.length; i++) {
            args = abi.encodePacked(args, cfg.assets[i].token, cfg.assets[i].perTxLimit, cfg.assets[i].dailyLimit);
        }
        for (uint256 j = 0; j < cfg.destinations.length; j++) {
            args = abi.encodePacked(args, cfg.destinations[j].account, cfg.destinations[j].assetMask);
        }
        for (uint256 k = 0; k < cfg.freezeWindows.length; k++) {
            args = abi.encodePacked(args, cfg.freezeWindows[k].start, cfg.freezeWindows[k].end);
        }
        for (uint256 c = 0; c < cfg.calls.length; c++) {
            args = abi.encodePacked(args, cfg.calls[c].target, cfg.calls[c].selector);
        }
        for (uint256 m = 0; m < cfg.messageDomains.length; m++) {
            ICustodyGuard.MessageDomain calldata d = cfg.messageDomains[m];
            args = abi.encodePacked(args, messageDomainSeparator(d), d.nameHash, d.versionHash, d.verifyingContract);
        }
    }
}
