// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {Test} from "forge-std/Test.sol";
import {CampaignFactory} from "../../src/CampaignFactory.sol";
import {CampaignNFT} from "../../src/CampaignNFT.sol";
import {Checkout} from "../../src/Checkout.sol";
import {RewardVault} from "../../src/RewardVault.sol";
import {TestStablecoin} from "../../src/TestStablecoin.sol";

/// @dev Shared deployment + independent EIP-712 signing helpers (the digests are rebuilt here from
///      the type strings, not taken from the contracts, so the tests cross-check the contracts).
abstract contract BrandmintTest is Test {
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    string internal constant QUOTE_TYPE =
        "Quote(bytes32 orderId,address buyer,address collection,uint256 quantity,address payToken,uint256 amount,uint256 deadline)";
    string internal constant VOUCHER_TYPE =
        "Voucher(uint256 redemptionId,uint256 campaignId,uint256 tokenId,address recipient,address token,uint256 amount,uint256 deadline)";

    uint256 internal constant QUOTE_SIGNER_PK = 0x51A7E;
    uint256 internal constant VOUCHER_SIGNER_PK = 0x70C4E5;

    address internal platformAdmin = makeAddr("platformAdmin");
    address internal deployerKey = makeAddr("deployer");
    address internal relayer = makeAddr("relayer");
    address internal distributor = makeAddr("distributor");
    address internal brandAdmin = makeAddr("brandAdmin");
    address internal treasury = makeAddr("treasury");
    address internal royaltyReceiver = makeAddr("royaltyReceiver");
    address internal feeRecipient = makeAddr("feeRecipient");
    address internal quoteSigner;
    address internal voucherSigner;

    CampaignFactory internal factory;
    Checkout internal checkout;
    RewardVault internal vault;
    TestStablecoin internal usd;

    uint256 internal constant CAMPAIGN_ID = 1001;
    uint96 internal constant ROYALTY_BPS = 750;
    uint256 internal constant MAX_SUPPLY = 1000;

    function _deployPlatform() internal {
        quoteSigner = vm.addr(QUOTE_SIGNER_PK);
        voucherSigner = vm.addr(VOUCHER_SIGNER_PK);
        factory = new CampaignFactory(platformAdmin, deployerKey);
        checkout = new Checkout(platformAdmin, quoteSigner);
        vault = new RewardVault(platformAdmin, voucherSigner, distributor);
        usd = new TestStablecoin(platformAdmin);
    }

    function _params(uint256 maxSupply) internal view returns (CampaignNFT.InitParams memory p) {
        address[] memory minters = new address[](2);
        minters[0] = relayer;
        minters[1] = address(checkout);
        p = CampaignNFT.InitParams({
            name: "Brand Drop",
            symbol: "DROP",
            baseURI: "ipfs://campaign/",
            maxSupply: maxSupply,
            royaltyReceiver: royaltyReceiver,
            royaltyBps: ROYALTY_BPS,
            admin: brandAdmin,
            minters: minters
        });
    }

    function _deployCampaign(uint256 campaignId, uint256 maxSupply) internal returns (CampaignNFT nft) {
        vm.prank(deployerKey);
        nft = CampaignNFT(factory.deployCampaign(campaignId, _params(maxSupply)));
    }

    // ------------------------------------------------------------------ EIP-712

    function _domain(string memory name, address verifyingContract) internal view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256("1"), block.chainid, verifyingContract)
        );
    }

    function _quoteDigest(Checkout.Quote memory q, address verifyingContract) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(bytes(QUOTE_TYPE)),
                q.orderId,
                q.buyer,
                q.collection,
                q.quantity,
                q.payToken,
                q.amount,
                q.deadline
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", _domain("Brandmint Checkout", verifyingContract), structHash));
    }

    function _voucherDigest(RewardVault.Voucher memory v, address verifyingContract) internal view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256(bytes(VOUCHER_TYPE)),
                v.redemptionId,
                v.campaignId,
                v.tokenId,
                v.recipient,
                v.token,
                v.amount,
                v.deadline
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", _domain("Brandmint RewardVault", verifyingContract), structHash));
    }

    function _sign(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signQuote(Checkout.Quote memory q) internal view returns (bytes memory) {
        return _sign(QUOTE_SIGNER_PK, _quoteDigest(q, address(checkout)));
    }

    function _signVoucher(RewardVault.Voucher memory v) internal view returns (bytes memory) {
        return _sign(VOUCHER_SIGNER_PK, _voucherDigest(v, address(vault)));
    }

    /// @dev EIP-2098 compact form of a voucher signature, plus the packed redeemCompact words.
    function _compact(RewardVault.Voucher memory v, uint256 pk)
        internal
        view
        returns (uint256 ids, uint256 recipientAmount, uint256 tokenDeadline, bytes32 r, bytes32 vs)
    {
        uint8 sv;
        bytes32 s;
        (sv, r, s) = vm.sign(pk, _voucherDigest(v, address(vault)));
        vs = bytes32((uint256(sv - 27) << 255) | uint256(s));
        ids = (v.redemptionId << 192) | (v.campaignId << 128) | v.tokenId;
        recipientAmount = (uint256(uint160(v.recipient)) << 96) | v.amount;
        tokenDeadline = (uint256(uint160(v.token)) << 96) | v.deadline;
    }

    function _expectMissingRole(address account, bytes32 role) internal {
        vm.expectRevert(abi.encodeWithSignature("AccessControlUnauthorizedAccount(address,bytes32)", account, role));
    }
}

/// @dev Rejects ETH (treasury / recipient that cannot receive).
contract EthRejecter {
    receive() external payable {
        revert("no ETH");
    }
}
