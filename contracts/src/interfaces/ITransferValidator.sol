// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

/// @notice ERC721-C-style transfer validation: a collection asks its validator before every
///         transfer between two holders; the validator reverts to refuse it.
interface ITransferValidator {
    /// @param caller who asked the collection to move the token (the owner, or an operator)
    function validateTransfer(address caller, address from, address to, uint256 tokenId) external view;
}
