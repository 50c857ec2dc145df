// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title RewardVault — per-campaign reward funds, paid by signed vouchers or batch distributions
/// @notice Brands (or the platform) fund a campaign with ETH or ERC-20s. Funds leave only through:
///         - {redeem}: a platform-signed EIP-712 `Voucher`, exactly once per `redemptionId`
///           (bitmap), submitted by anyone (typically the platform relayer, gasless for the holder);
///         - {distribute}: royalty-share payouts by the distributor role, once per `batchId`;
///         - {withdraw}: the campaign's brand admin takes unallocated funds back.
///         Every payout is debited from the campaign's own balance for that token, which can never
///         go negative (`InsufficientCampaignBalance`).
/// @dev EIP-712 domain: name "Brandmint RewardVault", version "1", chainId, verifyingContract = this.
///      Roles: `DEFAULT_ADMIN_ROLE` (platform admin: campaign admins, roles), `VOUCHER_SIGNER_ROLE`
///      (platform voucher-signing key(s)), `DISTRIBUTOR_ROLE` (platform distribution relayer).
///      Redemption / batch ids are bitmap indexes: allocate them sequentially (e.g. a database
///      sequence) so consecutive redemptions share a storage word and cost ~5k instead of ~22k.
///      Fee-on-transfer / rebasing ERC-20s are not supported for payouts.
contract RewardVault is AccessControl, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;

    bytes32 public constant VOUCHER_SIGNER_ROLE = keccak256("VOUCHER_SIGNER_ROLE");
    bytes32 public constant DISTRIBUTOR_ROLE = keccak256("DISTRIBUTOR_ROLE");

    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(uint256 redemptionId,uint256 campaignId,uint256 tokenId,address recipient,address token,uint256 amount,uint256 deadline)"
    );

    struct Voucher {
        /// @dev unique per redemption, used as a bitmap index (allocate sequentially).
        uint256 redemptionId;
        uint256 campaignId;
        /// @dev the NFT the reward is redeemed for (informational; checked off-chain).
        uint256 tokenId;
        address recipient;
        /// @dev address(0) = native ETH, else an ERC-20.
        address token;
        uint256 amount;
        /// @dev unix seconds; valid while block.timestamp <= deadline.
        uint256 deadline;
    }

    /// @notice campaignId => token (address(0) = ETH) => funds not yet paid out.
    mapping(uint256 campaignId => mapping(address token => uint256)) public campaignBalance;

    /// @notice campaignId => brand admin allowed to withdraw (set by the platform admin).
    mapping(uint256 campaignId => address) public campaignAdmin;

    mapping(uint256 word => uint256 bits) private _redeemedWords;
    mapping(uint256 word => uint256 bits) private _distributedWords;

    event VaultFunded(uint256 indexed campaignId, address indexed token, address indexed from, uint256 amount);
    /// @dev Deliberately minimal (gas): the platform knows the voucher behind every id; an ERC-20
    ///      payout also emits the token's Transfer(vault, recipient, amount).
    event RewardRedeemed(uint256 indexed redemptionId);
    event RewardsDistributed(
        uint256 indexed batchId, uint256 indexed campaignId, address indexed token, uint256 recipients, uint256 total
    );
    event VaultWithdrawn(uint256 indexed campaignId, address indexed token, address indexed to, uint256 amount);
    event CampaignAdminSet(uint256 indexed campaignId, address indexed admin);

    error ZeroAddress();
    error ZeroAmount();
    error UnknownCampaign(uint256 campaignId);
    error NotCampaignAdmin(uint256 campaignId, address caller);
    error IncorrectEthAmount(uint256 expected, uint256 received);
    error UnexpectedEth();
    error InvalidSignature();
    error VoucherExpired(uint256 deadline);
    error AlreadyRedeemed(uint256 redemptionId);
    error BatchAlreadyDistributed(uint256 batchId);
    error LengthMismatch();
    error EmptyBatch();
    error InsufficientCampaignBalance(uint256 campaignId, address token, uint256 available, uint256 required);
    error EthTransferFailed(address to);

    constructor(address admin, address voucherSigner, address distributor) EIP712("Brandmint RewardVault", "1") {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (voucherSigner != address(0)) _grantRole(VOUCHER_SIGNER_ROLE, voucherSigner);
        if (distributor != address(0)) _grantRole(DISTRIBUTOR_ROLE, distributor);
    }

    // ------------------------------------------------------------------ funding

    /// @notice Adds reward funds to a campaign. ETH: token = address(0) and msg.value == amount.
    ///         ERC-20: approve first, send no ETH. Anyone may fund a registered campaign.
    function fund(uint256 campaignId, address token, uint256 amount) external payable nonReentrant {
        if (campaignAdmin[campaignId] == address(0)) revert UnknownCampaign(campaignId);
        if (amount == 0) revert ZeroAmount();
        if (token == address(0)) {
            if (msg.value != amount) revert IncorrectEthAmount(amount, msg.value);
        } else {
            if (msg.value != 0) revert UnexpectedEth();
            // Credit what actually arrived.
            uint256 before = IERC20(token).balanceOf(address(this));
            IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
            amount = IERC20(token).balanceOf(address(this)) - before;
        }
        campaignBalance[campaignId][token] += amount;
        emit VaultFunded(campaignId, token, msg.sender, amount);
    }

    // ------------------------------------------------------------------ vouchers

    /// @notice Pays a platform-signed voucher to `voucher.recipient`, once per `redemptionId`.
    ///         Anyone may submit it (the platform relayer does, so holders need no gas).
    /// @param signature 65-byte (r, s, v) ECDSA signature over {hashVoucher}.
    function redeem(Voucher calldata voucher, bytes calldata signature) external nonReentrant {
        bytes32 digest = _voucherDigest(
            voucher.redemptionId,
            voucher.campaignId,
            voucher.tokenId,
            voucher.recipient,
            voucher.token,
            voucher.amount,
            voucher.deadline
        );
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
        _redeem(
            signer, voucher.redemptionId, voucher.campaignId, voucher.recipient, voucher.token, voucher.amount, voucher.deadline
        );
    }

    /// @notice Same as {redeem} (same signed `Voucher`, same checks), with ~35% less calldata for
    ///         relayers. Usable when redemptionId and campaignId fit in 64 bits, tokenId in 128,
    ///         amount and deadline in 96:
    ///           ids             = redemptionId << 192 | campaignId << 128 | tokenId
    ///           recipientAmount = uint256(uint160(recipient)) << 96 | amount
    ///           tokenDeadline   = uint256(uint160(token)) << 96 | deadline
    ///           (r, vs)         = EIP-2098 compact signature (vs = yParity << 255 | s)
    function redeemCompact(uint256 ids, uint256 recipientAmount, uint256 tokenDeadline, bytes32 r, bytes32 vs)
        external
        nonReentrant
    {
        uint256 redemptionId = ids >> 192;
        uint256 campaignId = uint64(ids >> 128);
        address recipient = address(uint160(recipientAmount >> 96));
        uint256 amount = uint96(recipientAmount);
        address token = address(uint160(tokenDeadline >> 96));
        uint256 deadline = uint96(tokenDeadline);
        bytes32 digest =
            _voucherDigest(redemptionId, campaignId, uint128(ids), recipient, token, amount, deadline);
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, r, vs);
        if (err != ECDSA.RecoverError.NoError) revert InvalidSignature();
        _redeem(signer, redemptionId, campaignId, recipient, token, amount, deadline);
    }

    function _redeem(
        address signer,
        uint256 redemptionId,
        uint256 campaignId,
        address recipient,
        address token,
        uint256 amount,
        uint256 deadline
    ) private {
        // checks
        if (!hasRole(VOUCHER_SIGNER_ROLE, signer)) revert InvalidSignature();
        if (block.timestamp > deadline) revert VoucherExpired(deadline);
        if (recipient == address(0)) revert ZeroAddress();
        uint256 word = redemptionId >> 8;
        uint256 bits = _redeemedWords[word];
        uint256 mask = 1 << (redemptionId & 0xff);
        if (bits & mask != 0) revert AlreadyRedeemed(redemptionId);
        // effects
        _redeemedWords[word] = bits | mask;
        _debit(campaignId, token, amount);
        emit RewardRedeemed(redemptionId);
        // interaction
        _pay(token, recipient, amount);
    }

    /// @notice The EIP-712 digest the voucher signer signs.
    function hashVoucher(Voucher calldata voucher) external view returns (bytes32) {
        return _voucherDigest(
            voucher.redemptionId,
            voucher.campaignId,
            voucher.tokenId,
            voucher.recipient,
            voucher.token,
            voucher.amount,
            voucher.deadline
        );
    }

    function _voucherDigest(
        uint256 redemptionId,
        uint256 campaignId,
        uint256 tokenId,
        address recipient,
        address token,
        uint256 amount,
        uint256 deadline
    ) private view returns (bytes32) {
        bytes32 typeHash = VOUCHER_TYPEHASH;
        bytes32 structHash;
        // keccak256(abi.encode(VOUCHER_TYPEHASH, ...fields)) in scratch memory above the free pointer.
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            mstore(add(m, 0x20), redemptionId)
            mstore(add(m, 0x40), campaignId)
            mstore(add(m, 0x60), tokenId)
            mstore(add(m, 0x80), shr(96, shl(96, recipient))) // addresses: clear any dirty upper bits
            mstore(add(m, 0xa0), shr(96, shl(96, token)))
            mstore(add(m, 0xc0), amount)
            mstore(add(m, 0xe0), deadline)
            structHash := keccak256(m, 0x100)
        }
        return _hashTypedDataV4(structHash);
    }

    function isRedeemed(uint256 redemptionId) external view returns (bool) {
        return _redeemedWords[redemptionId >> 8] & (1 << (redemptionId & 0xff)) != 0;
    }

    // ------------------------------------------------------------------ distributions

    /// @notice Pays `amounts[i]` of `token` to `recipients[i]` from the campaign's balance, once
    ///         per `batchId`. All-or-nothing: one failing transfer reverts the whole batch.
    function distribute(
        uint256 campaignId,
        address token,
        address[] calldata recipients,
        uint256[] calldata amounts,
        uint256 batchId
    ) external nonReentrant onlyRole(DISTRIBUTOR_ROLE) {
        uint256 n = recipients.length;
        if (n != amounts.length) revert LengthMismatch();
        if (n == 0) revert EmptyBatch();
        uint256 bits = _distributedWords[batchId >> 8];
        uint256 mask = 1 << (batchId & 0xff);
        if (bits & mask != 0) revert BatchAlreadyDistributed(batchId);
        _distributedWords[batchId >> 8] = bits | mask;

        uint256 total;
        for (uint256 i; i < n; ++i) {
            total += amounts[i];
        }
        _debit(campaignId, token, total);
        emit RewardsDistributed(batchId, campaignId, token, n, total);

        if (token == address(0)) {
            for (uint256 i; i < n; ++i) {
                address to = recipients[i];
                if (to == address(0)) revert ZeroAddress();
                _sendEth(to, amounts[i]);
            }
        } else {
            IERC20 erc20 = IERC20(token);
            for (uint256 i; i < n; ++i) {
                address to = recipients[i];
                if (to == address(0)) revert ZeroAddress();
                erc20.safeTransfer(to, amounts[i]);
            }
        }
    }

    function isDistributed(uint256 batchId) external view returns (bool) {
        return _distributedWords[batchId >> 8] & (1 << (batchId & 0xff)) != 0;
    }

    // ------------------------------------------------------------------ brand withdrawals

    /// @notice The campaign's brand admin takes back unallocated funds. Outstanding vouchers for
    ///         the campaign become unredeemable if the balance no longer covers them.
    function withdraw(uint256 campaignId, address token, uint256 amount, address to) external nonReentrant {
        if (msg.sender != campaignAdmin[campaignId]) revert NotCampaignAdmin(campaignId, msg.sender);
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        _debit(campaignId, token, amount);
        emit VaultWithdrawn(campaignId, token, to, amount);
        _pay(token, to, amount);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Registers a campaign (or changes its brand admin). Only registered campaigns can be
    ///         funded. Setting address(0) freezes fund/withdraw but keeps existing funds payable.
    function setCampaignAdmin(uint256 campaignId, address admin) external onlyRole(DEFAULT_ADMIN_ROLE) {
        campaignAdmin[campaignId] = admin;
        emit CampaignAdminSet(campaignId, admin);
    }

    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------------ internals

    function _debit(uint256 campaignId, address token, uint256 amount) private {
        uint256 available = campaignBalance[campaignId][token];
        if (amount > available) revert InsufficientCampaignBalance(campaignId, token, available, amount);
        unchecked {
            campaignBalance[campaignId][token] = available - amount;
        }
    }

    function _pay(address token, address to, uint256 amount) private {
        if (token == address(0)) {
            _sendEth(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    function _sendEth(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert EthTransferFailed(to);
    }
}
