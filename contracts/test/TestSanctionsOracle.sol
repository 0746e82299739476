// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title TestSanctionsOracle
/// @notice A local stand-in for the Chainalysis sanctions oracle, with the same read interface
///         (`isSanctioned(address) returns (bool)`). Tests only: its deployer lists and delists addresses.
contract TestSanctionsOracle {
    /// @notice Emitted after an address was listed (`sanctioned` true) or delisted.
    event SanctionStatusChanged(address indexed addr, bool sanctioned);

    error TestSanctionsOracleNotOwner(address caller);

    address public immutable owner;
    mapping(address => bool) private _sanctioned;

    constructor() {
        owner = msg.sender;
    }

    /// @notice Whether `addr` is on this oracle's list (the Chainalysis oracle's interface).
    function isSanctioned(address addr) external view returns (bool) {
        return _sanctioned[addr];
    }

    /// @notice List or delist `addr`. Requirements: the caller is the deployer.
    function setSanctioned(address addr, bool sanctioned) external {
        // only the test's deployer maintains the list
        if (msg.sender != owner) revert TestSanctionsOracleNotOwner(msg.sender);
        _sanctioned[addr] = sanctioned;
        emit SanctionStatusChanged(addr, sanctioned);
    }
}
