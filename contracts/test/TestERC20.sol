// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title TestERC20
/// @notice Demo/test token with an open `mint`. Deployed only on local chains by the pilot and tests;
///         never use it as a real asset.
contract TestERC20 is ERC20 {
    uint8 private immutable DECIMALS;

    constructor(string memory name_, string memory symbol_, uint8 decimals_) ERC20(name_, symbol_) {
        DECIMALS = decimals_;
    }

    function decimals() public view override returns (uint8) {
        return DECIMALS;
    }

    /// @notice Mints `amount` to `to`. Unrestricted: test token only.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
