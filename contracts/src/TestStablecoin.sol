// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @title TestStablecoin — a 6-decimal USD-like token for local chains and tests. NOT for production.
/// @notice Plain OpenZeppelin ERC-20 + EIP-2612 permit (domain name "Test USD", version "1").
///         Anyone can mint (faucet); `owner` is informational.
contract TestStablecoin is ERC20, ERC20Permit {
    address public immutable owner;

    constructor(address owner_) ERC20("Test USD", "TUSD") ERC20Permit("Test USD") {
        owner = owner_;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Test faucet: mints `amount` base units (6 decimals) to `to`. Open to everyone.
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
