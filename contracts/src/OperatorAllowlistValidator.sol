// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {ITransferValidator} from "./interfaces/ITransferValidator.sol";

/// @notice Royalty enforcement in the manner of ERC721-C: a collection that names this validator
///         lets a token move between holders only when its owner moves it, or when the operator
///         moving it (a marketplace that pays royalties: Seaport, or its conduit) is on the
///         collection's allowlist. Each collection's admin keeps its own list.
contract OperatorAllowlistValidator is ITransferValidator {
    bytes32 private constant DEFAULT_ADMIN_ROLE = 0x00;

    mapping(address collection => mapping(address operator => bool)) public isAllowed;

    event OperatorAllowed(address indexed collection, address indexed operator, bool allowed);

    error NotCollectionAdmin(address collection, address account);
    error OperatorNotAllowed(address collection, address operator);

    /// @notice Allows (or stops allowing) `operator` to move `collection`'s tokens.
    function setOperator(address collection, address operator, bool allowed) external {
        if (!IAccessControl(collection).hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert NotCollectionAdmin(collection, msg.sender);
        }
        isAllowed[collection][operator] = allowed;
        emit OperatorAllowed(collection, operator, allowed);
    }

    /// @inheritdoc ITransferValidator
    /// @dev Called by the collection (`msg.sender`).
    function validateTransfer(address caller, address from, address, uint256) external view {
        if (caller == from) return;
        if (!isAllowed[msg.sender][caller]) revert OperatorNotAllowed(msg.sender, caller);
    }
}
