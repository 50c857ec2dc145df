// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {ERC721AUpgradeable} from "erc721a-upgradeable/contracts/ERC721AUpgradeable.sol";
import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {AccessControlUpgradeable} from "@openzeppelin/contracts-upgradeable/access/AccessControlUpgradeable.sol";
import {ERC2981Upgradeable} from "@openzeppelin/contracts-upgradeable/token/common/ERC2981Upgradeable.sol";
import {ICampaignMinter} from "./interfaces/ICampaignMinter.sol";
import {ITransferValidator} from "./interfaces/ITransferValidator.sol";

/// @title CampaignNFT
/// @notice One ERC-721 collection per brand campaign, deployed by {CampaignFactory} as an EIP-1167
///         clone of a single implementation and set up through {initialize}.
///
/// - ERC-721 + metadata: `tokenURI(id) = baseURI ++ decimal(id)`; the base URI is per campaign and
///   can be changed by the admin (emits EIP-4906 `BatchMetadataUpdate`).
/// - EIP-2981 royalties in basis points (denominator 10_000, amount rounded down).
/// - Capped supply: at most `maxSupply` tokens are ever minted (token ids 1..maxSupply).
/// - Batch minting through ERC721A: minting n tokens costs one balance/ownership write plus one
///   `Transfer` log per token.
/// - Roles: `DEFAULT_ADMIN_ROLE` (brand or platform admin: metadata, royalty, role management) and
///   `MINTER_ROLE` (platform relayer for card payments, the {Checkout} contract for wallet payments).
contract CampaignNFT is Initializable, ERC721AUpgradeable, ERC2981Upgradeable, AccessControlUpgradeable, ICampaignMinter {
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    /// @dev EIP-4906 interface id.
    bytes4 private constant _INTERFACE_ID_ERC4906 = 0x49064906;

    /// @notice Everything a campaign collection is created with.
    struct InitParams {
        string name;
        string symbol;
        string baseURI;
        uint256 maxSupply;
        /// @dev address(0) together with royaltyBps == 0 means "no royalty".
        address royaltyReceiver;
        /// @dev basis points of the sale price, 0..10_000.
        uint96 royaltyBps;
        /// @dev receives DEFAULT_ADMIN_ROLE.
        address admin;
        /// @dev each receives MINTER_ROLE (platform relayer, Checkout, ...).
        address[] minters;
    }

    uint256 private _maxSupply;
    string private _baseTokenURI;
    /// @dev ERC721-C-style royalty enforcement: when set, every transfer between two holders is
    ///      validated by it (mints and burns are not). Off by default.
    address private _transferValidator;

    /// @dev EIP-4906.
    event BatchMetadataUpdate(uint256 _fromTokenId, uint256 _toTokenId);
    event BaseURIUpdated(string baseURI);
    event RoyaltyUpdated(address indexed receiver, uint96 royaltyBps);
    event TransferValidatorUpdated(address oldValidator, address newValidator);

    error ZeroAddress();
    error InvalidMaxSupply();
    error InvalidRoyalty(address receiver, uint96 royaltyBps);
    error MaxSupplyExceeded(uint256 requested, uint256 remaining);
    error LengthMismatch();

    /// @dev The implementation itself can never be initialized; only its clones can.
    constructor() {
        _disableInitializers();
    }

    /// @notice Sets the clone up. Callable once, by anyone, so the factory calls it in the same
    ///         transaction that creates the clone.
    function initialize(InitParams calldata p) external initializer initializerERC721A {
        if (p.admin == address(0)) revert ZeroAddress();
        if (p.maxSupply == 0) revert InvalidMaxSupply();
        __ERC721A_init(p.name, p.symbol);
        __ERC2981_init();
        __AccessControl_init();
        _maxSupply = p.maxSupply;
        _baseTokenURI = p.baseURI;
        _setRoyalty(p.royaltyReceiver, p.royaltyBps);
        _grantRole(DEFAULT_ADMIN_ROLE, p.admin);
        uint256 n = p.minters.length;
        for (uint256 i; i < n; ++i) {
            if (p.minters[i] == address(0)) revert ZeroAddress();
            _grantRole(MINTER_ROLE, p.minters[i]);
        }
    }

    // ------------------------------------------------------------------ minting

    /// @notice Mints `quantity` consecutive tokens to `to` (no receiver callback).
    /// @return firstTokenId the id of the first minted token; the batch is
    ///         firstTokenId .. firstTokenId + quantity - 1.
    function mint(address to, uint256 quantity) external onlyRole(MINTER_ROLE) returns (uint256 firstTokenId) {
        firstTokenId = _nextTokenId();
        _checkSupply(firstTokenId, quantity);
        _mint(to, quantity);
    }

    /// @notice Several recipients in one transaction (card-path batching). Recipient i gets
    ///         quantities[i] consecutive tokens, in order.
    /// @return firstTokenId the id of the first token minted to `to[0]`.
    function mintBatch(address[] calldata to, uint256[] calldata quantities)
        external
        onlyRole(MINTER_ROLE)
        returns (uint256 firstTokenId)
    {
        uint256 n = to.length;
        if (n != quantities.length || n == 0) revert LengthMismatch();
        firstTokenId = _nextTokenId();
        uint256 total;
        for (uint256 i; i < n; ++i) {
            total += quantities[i];
        }
        _checkSupply(firstTokenId, total);
        for (uint256 i; i < n; ++i) {
            _mint(to[i], quantities[i]);
        }
    }

    function _checkSupply(uint256 nextId, uint256 quantity) private view {
        // nextId - 1 == tokens minted so far (ids start at 1).
        uint256 remaining = _maxSupply - (nextId - 1);
        if (quantity > remaining) revert MaxSupplyExceeded(quantity, remaining);
    }

    // ------------------------------------------------------------------ admin

    function setBaseURI(string calldata newBaseURI) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _baseTokenURI = newBaseURI;
        emit BaseURIUpdated(newBaseURI);
        emit BatchMetadataUpdate(_startTokenId(), type(uint256).max);
    }

    /// @notice Changes the EIP-2981 royalty for all tokens. (address(0), 0) removes it.
    function setRoyalty(address receiver, uint96 royaltyBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setRoyalty(receiver, royaltyBps);
    }

    function _setRoyalty(address receiver, uint96 royaltyBps) private {
        if (receiver == address(0)) {
            if (royaltyBps != 0) revert InvalidRoyalty(receiver, royaltyBps);
            _deleteDefaultRoyalty();
        } else {
            if (royaltyBps > _feeDenominator()) revert InvalidRoyalty(receiver, royaltyBps);
            _setDefaultRoyalty(receiver, royaltyBps);
        }
        emit RoyaltyUpdated(receiver, royaltyBps);
    }

    // ------------------------------------------------------------------ views

    /// @notice Turns royalty enforcement on (a validator) or off (the zero address).
    function setTransferValidator(address validator) external onlyRole(DEFAULT_ADMIN_ROLE) {
        emit TransferValidatorUpdated(_transferValidator, validator);
        _transferValidator = validator;
    }

    function getTransferValidator() external view returns (address) {
        return _transferValidator;
    }

    function maxSupply() external view returns (uint256) {
        return _maxSupply;
    }

    /// @notice Number of tokens ever minted (burning is not supported, so also the supply).
    function totalMinted() external view returns (uint256) {
        return _totalMinted();
    }

    /// @notice Next id `mint` will hand out.
    function nextTokenId() external view returns (uint256) {
        return _nextTokenId();
    }

    function baseURI() external view returns (string memory) {
        return _baseTokenURI;
    }

    function exists(uint256 tokenId) external view returns (bool) {
        return _exists(tokenId);
    }

    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721AUpgradeable, ERC2981Upgradeable, AccessControlUpgradeable)
        returns (bool)
    {
        return interfaceId == _INTERFACE_ID_ERC4906 || ERC721AUpgradeable.supportsInterface(interfaceId)
            || ERC2981Upgradeable.supportsInterface(interfaceId) || AccessControlUpgradeable.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ ERC721A hooks

    function _startTokenId() internal pure override returns (uint256) {
        return 1;
    }

    function _baseURI() internal view override returns (string memory) {
        return _baseTokenURI;
    }

    /// @dev A transfer between two holders asks the validator, if any (mints and burns do not,
    ///      and pay nothing for it).
    function _beforeTokenTransfers(address from, address to, uint256 startTokenId, uint256 quantity)
        internal
        override
    {
        if (from != address(0) && to != address(0)) {
            address validator = _transferValidator;
            if (validator != address(0)) {
                ITransferValidator(validator).validateTransfer(msg.sender, from, to, startTokenId);
            }
        }
        super._beforeTokenTransfers(from, to, startTokenId, quantity);
    }
}
