// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MAX_ASSETS, MAX_CALLS, MAX_DESTINATIONS, MAX_MESSAGE_DOMAINS, MAX_WINDOWS} from "../CustodyLimits.sol";
import {ICustodyGuard} from "../interfaces/ICustodyGuard.sol";

// What every guard and the GuardDeployer derive from a policy the same way.

bytes32 constant DOMAIN_TYPEHASH =
    keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
bytes32 constant DOMAIN_TYPEHASH_NO_VERSION = keccak256("EIP712Domain(string name,uint256 chainId,address verifyingContract)");

/// @dev EIP-712 domain separator of a policy message domain on this chain (no version field when its
///      version hash is zero).
function messageDomainSeparator(ICustodyGuard.MessageDomain memory d) view returns (bytes32) {
    if (d.versionHash == bytes32(0)) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH_NO_VERSION, d.nameHash, block.chainid, d.verifyingContract));
    }
    return keccak256(abi.encode(DOMAIN_TYPEHASH, d.nameHash, d.versionHash, block.chainid, d.verifyingContract));
}

/// @dev Invariant: a policy fits a guard's tables exactly; nothing is silently dropped (checked by
///      every guard before it enforces a policy, and by the GuardDeployer before it packs one into a
///      clone's arguments, whose counts are one byte each).
function checkGuardCapacity(ICustodyGuard.Config memory cfg) pure {
    if (cfg.assets.length > MAX_ASSETS) revert ICustodyGuard.CustodyGuardInvalidConfig("more than 8 assets");
    if (cfg.destinations.length > MAX_DESTINATIONS) {
        revert ICustodyGuard.CustodyGuardInvalidConfig("more than 16 destinations");
    }
    if (cfg.freezeWindows.length > MAX_WINDOWS) {
        revert ICustodyGuard.CustodyGuardInvalidConfig("more than 8 freeze windows");
    }
    if (cfg.calls.length > MAX_CALLS) revert ICustodyGuard.CustodyGuardInvalidConfig("more than 8 contract calls");
    if (cfg.messageDomains.length > MAX_MESSAGE_DOMAINS) {
        revert ICustodyGuard.CustodyGuardInvalidConfig("more than 4 message domains");
    }
}
