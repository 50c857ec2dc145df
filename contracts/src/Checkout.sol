// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ICampaignMinter} from "./interfaces/ICampaignMinter.sol";

/// @title Checkout — wallet checkout for campaign NFTs
/// @notice The platform prices an order off-chain (FX quote) and signs an EIP-712 `Quote`. The
///         buyer's wallet submits it with the payment; in one transaction the contract checks the
///         quote, takes the payment (ETH or an ERC-20), forwards it to the collection's brand
///         treasury minus the platform fee, and mints the NFTs to `quote.buyer`.
/// @dev EIP-712 domain: name "Brandmint Checkout", version "1", chainId, verifyingContract = this.
///      The payer is `msg.sender` (usually the buyer; anyone may pay for a quote, the NFTs always go
///      to `quote.buyer`). Fee-on-transfer / rebasing ERC-20s are not supported.
///      Roles: `DEFAULT_ADMIN_ROLE` (platform admin: treasuries, fee, pause, roles),
///      `QUOTE_SIGNER_ROLE` (the platform's quote-signing key(s)). This contract must hold
///      `MINTER_ROLE` on every collection it sells.
contract Checkout is AccessControl, Pausable, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;

    bytes32 public constant QUOTE_SIGNER_ROLE = keccak256("QUOTE_SIGNER_ROLE");

    bytes32 public constant QUOTE_TYPEHASH = keccak256(
        "Quote(bytes32 orderId,address buyer,address collection,uint256 quantity,address payToken,uint256 amount,uint256 deadline)"
    );

    uint256 public constant BPS_DENOMINATOR = 10_000;

    struct Quote {
        bytes32 orderId;
        address buyer;
        address collection;
        uint256 quantity;
        /// @dev address(0) = native ETH, else an ERC-20.
        address payToken;
        /// @dev total price in payToken base units (wei / token decimals).
        uint256 amount;
        /// @dev unix seconds; the quote is valid while block.timestamp <= deadline.
        uint256 deadline;
    }

    /// @notice collection => brand treasury that receives the proceeds (address(0) = not sellable).
    mapping(address collection => address treasury) public treasuryOf;

    /// @notice orderId => already paid.
    mapping(bytes32 orderId => bool) public orderPaid;

    /// @notice Receives the platform fee (when feeBps > 0).
    address public feeRecipient;
    /// @notice Platform fee in basis points of the quote amount, rounded down.
    uint16 public feeBps;

    event OrderPaid(
        bytes32 indexed orderId,
        address indexed buyer,
        address payToken,
        uint256 amount,
        uint256 firstTokenId,
        uint256 quantity
    );
    event CollectionTreasurySet(address indexed collection, address indexed treasury);
    event FeeConfigSet(address indexed feeRecipient, uint16 feeBps);

    error ZeroAddress();
    error InvalidFee(uint256 feeBps);
    error InvalidSignature();
    error QuoteExpired(uint256 deadline);
    error OrderAlreadyPaid(bytes32 orderId);
    error UnknownCollection(address collection);
    error ZeroQuantity();
    /// @dev ETH quote paid with a msg.value different from quote.amount (over- or underpayment).
    error IncorrectEthAmount(uint256 expected, uint256 received);
    /// @dev ETH sent along with an ERC-20 quote.
    error UnexpectedEth();
    /// @dev buyWithPermit used with an ETH quote.
    error NotAnErc20Quote();
    error EthTransferFailed(address to);

    constructor(address admin, address quoteSigner) EIP712("Brandmint Checkout", "1") {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (quoteSigner != address(0)) _grantRole(QUOTE_SIGNER_ROLE, quoteSigner);
    }

    // ------------------------------------------------------------------ buying

    /// @notice Pays a platform-signed quote and mints to `quote.buyer`.
    ///         ETH quote: send exactly `quote.amount` as msg.value.
    ///         ERC-20 quote: approve this contract for `quote.amount` first, send no ETH.
    /// @return firstTokenId first id of the `quote.quantity` consecutive tokens minted.
    function buy(Quote calldata quote, bytes calldata signature)
        external
        payable
        nonReentrant
        whenNotPaused
        returns (uint256 firstTokenId)
    {
        if (quote.payToken == address(0)) {
            if (msg.value != quote.amount) revert IncorrectEthAmount(quote.amount, msg.value);
        } else if (msg.value != 0) {
            revert UnexpectedEth();
        }
        return _buy(quote, signature);
    }

    /// @notice ERC-20 quote paid with an EIP-2612 permit (no separate approve transaction). The
    ///         permit must be signed by msg.sender for this contract and at least `quote.amount`.
    ///         A permit that fails (e.g. already used by a front-runner) is ignored; the payment
    ///         then needs an existing allowance.
    function buyWithPermit(
        Quote calldata quote,
        bytes calldata signature,
        uint256 permitDeadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant whenNotPaused returns (uint256 firstTokenId) {
        if (quote.payToken == address(0)) revert NotAnErc20Quote();
        try IERC20Permit(quote.payToken).permit(msg.sender, address(this), quote.amount, permitDeadline, v, r, s) {}
            catch {}
        return _buy(quote, signature);
    }

    function _buy(Quote calldata quote, bytes calldata signature) private returns (uint256 firstTokenId) {
        // --- checks
        if (block.timestamp > quote.deadline) revert QuoteExpired(quote.deadline);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(hashQuote(quote), signature);
        if (err != ECDSA.RecoverError.NoError || !hasRole(QUOTE_SIGNER_ROLE, signer)) revert InvalidSignature();
        if (orderPaid[quote.orderId]) revert OrderAlreadyPaid(quote.orderId);
        address treasury = treasuryOf[quote.collection];
        if (treasury == address(0)) revert UnknownCollection(quote.collection);
        if (quote.quantity == 0) revert ZeroQuantity();

        // --- effects
        orderPaid[quote.orderId] = true;

        // --- interactions: payment, then mint
        uint256 amount = quote.amount;
        uint256 fee = (amount * feeBps) / BPS_DENOMINATOR;
        address feeTo = feeRecipient;
        if (quote.payToken == address(0)) {
            if (fee != 0) _sendEth(feeTo, fee);
            if (amount != fee) _sendEth(treasury, amount - fee);
        } else {
            IERC20 token = IERC20(quote.payToken);
            if (fee != 0) token.safeTransferFrom(msg.sender, feeTo, fee);
            if (amount != fee) token.safeTransferFrom(msg.sender, treasury, amount - fee);
        }
        firstTokenId = ICampaignMinter(quote.collection).mint(quote.buyer, quote.quantity);

        emit OrderPaid(quote.orderId, quote.buyer, quote.payToken, amount, firstTokenId, quote.quantity);
    }

    function _sendEth(address to, uint256 value) private {
        (bool ok,) = to.call{value: value}("");
        if (!ok) revert EthTransferFailed(to);
    }

    // ------------------------------------------------------------------ views

    /// @notice The EIP-712 digest the quote signer signs (for cross-checking off-chain signers).
    function hashQuote(Quote calldata quote) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    QUOTE_TYPEHASH,
                    quote.orderId,
                    quote.buyer,
                    quote.collection,
                    quote.quantity,
                    quote.payToken,
                    quote.amount,
                    quote.deadline
                )
            )
        );
    }

    /// @notice EIP-712 domain separator of this contract.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ admin

    /// @notice Registers (or, with treasury = address(0), unregisters) a sellable collection.
    function setCollectionTreasury(address collection, address treasury) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (collection == address(0)) revert ZeroAddress();
        treasuryOf[collection] = treasury;
        emit CollectionTreasurySet(collection, treasury);
    }

    /// @notice Platform fee taken from every order. feeBps = 0 disables it.
    function setFee(address recipient, uint16 newFeeBps) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (newFeeBps > BPS_DENOMINATOR) revert InvalidFee(newFeeBps);
        if (newFeeBps != 0 && recipient == address(0)) revert ZeroAddress();
        feeRecipient = recipient;
        feeBps = newFeeBps;
        emit FeeConfigSet(recipient, newFeeBps);
    }

    function pause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }
}
