// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @title BaselineERC721 — gas baseline only: plain OpenZeppelin ERC-721, one token per `mint`.
/// @notice Unrestricted mint; ids 1, 2, 3, ... Used to compare single mints with CampaignNFT's
///         batch mint. Never deploy for real users.
contract BaselineERC721 is ERC721 {
    uint256 public totalMinted;

    constructor() ERC721("Baseline", "BASE") {}

    function mint(address to) external returns (uint256 tokenId) {
        tokenId = ++totalMinted;
        _mint(to, tokenId);
    }
}
