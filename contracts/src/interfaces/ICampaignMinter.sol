// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

/// @notice What {Checkout} needs from a campaign collection.
interface ICampaignMinter {
    /// @return firstTokenId the first id of the consecutive batch minted to `to`.
    function mint(address to, uint256 quantity) external returns (uint256 firstTokenId);
}
