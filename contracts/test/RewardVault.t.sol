// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {BrandmintTest, EthRejecter} from "./utils/BrandmintTest.sol";
import {RewardVault} from "../src/RewardVault.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @dev ERC-20 that keeps 1% of every transfer (to check that fund() credits what arrived).
contract FeeOnTransferToken is ERC20 {
    constructor() ERC20("Fee", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (from != address(0) && to != address(0)) {
            uint256 fee = value / 100;
            super._update(from, address(0xdead), fee);
            value -= fee;
        }
        super._update(from, to, value);
    }
}

/// @dev ETH recipient that re-enters the vault with another voucher when paid.
contract ReentrantRecipient {
    RewardVault internal immutable vault;
    RewardVault.Voucher internal next;
    bytes internal sig;
    bytes public innerError;
    bool internal armed;

    constructor(RewardVault v) {
        vault = v;
    }

    function arm(RewardVault.Voucher memory v, bytes memory s) external {
        next = v;
        sig = s;
        armed = true;
    }

    receive() external payable {
        if (!armed) return;
        armed = false;
        try vault.redeem(next, sig) {}
        catch (bytes memory err) {
            innerError = err;
        }
    }
}

contract RewardVaultTest is BrandmintTest {
    event VaultFunded(uint256 indexed campaignId, address indexed token, address indexed from, uint256 amount);
    event RewardRedeemed(uint256 indexed redemptionId);
    event RewardsDistributed(
        uint256 indexed batchId, uint256 indexed campaignId, address indexed token, uint256 recipients, uint256 total
    );
    event VaultWithdrawn(uint256 indexed campaignId, address indexed token, address indexed to, uint256 amount);
    event CampaignAdminSet(uint256 indexed campaignId, address indexed admin);

    address internal funder = makeAddr("funder");
    address internal holder = makeAddr("holder");
    uint256 internal constant FUNDS = 1_000e6;

    function setUp() public {
        _deployPlatform();
        vm.prank(platformAdmin);
        vault.setCampaignAdmin(CAMPAIGN_ID, brandAdmin);
        usd.mint(funder, 1_000_000e6);
        vm.deal(funder, 100 ether);
        vm.startPrank(funder);
        usd.approve(address(vault), type(uint256).max);
        vault.fund(CAMPAIGN_ID, address(usd), FUNDS);
        vault.fund{value: 10 ether}(CAMPAIGN_ID, address(0), 10 ether);
        vm.stopPrank();
    }

    function _voucher(uint256 id, address token, uint256 amount) internal view returns (RewardVault.Voucher memory) {
        return RewardVault.Voucher({
            redemptionId: id,
            campaignId: CAMPAIGN_ID,
            tokenId: 42,
            recipient: holder,
            token: token,
            amount: amount,
            deadline: block.timestamp + 1 days
        });
    }

    // ------------------------------------------------------------------ constants / constructor

    function test_constants() public view {
        assertEq(vault.VOUCHER_TYPEHASH(), keccak256(bytes(VOUCHER_TYPE)));
        assertEq(vault.VOUCHER_SIGNER_ROLE(), keccak256("VOUCHER_SIGNER_ROLE"));
        assertEq(vault.DISTRIBUTOR_ROLE(), keccak256("DISTRIBUTOR_ROLE"));
        assertEq(vault.domainSeparator(), _domain("Brandmint RewardVault", address(vault)));
        assertTrue(vault.hasRole(vault.VOUCHER_SIGNER_ROLE(), voucherSigner));
        assertTrue(vault.hasRole(vault.DISTRIBUTOR_ROLE(), distributor));
        assertTrue(vault.hasRole(vault.DEFAULT_ADMIN_ROLE(), platformAdmin));
    }

    function test_constructor() public {
        vm.expectRevert(RewardVault.ZeroAddress.selector);
        new RewardVault(address(0), voucherSigner, distributor);
        RewardVault v = new RewardVault(platformAdmin, address(0), address(0));
        assertFalse(v.hasRole(v.VOUCHER_SIGNER_ROLE(), address(0)));
        assertFalse(v.hasRole(v.DISTRIBUTOR_ROLE(), address(0)));
    }

    function test_hashVoucher_matchesOffchainDigest() public view {
        RewardVault.Voucher memory v = _voucher(9, address(usd), 5e6);
        assertEq(vault.hashVoucher(v), _voucherDigest(v, address(vault)));
    }

    // ------------------------------------------------------------------ fund

    function test_fund_erc20() public {
        vm.expectEmit(true, true, true, true, address(vault));
        emit VaultFunded(CAMPAIGN_ID, address(usd), funder, 5e6);
        vm.prank(funder);
        vault.fund(CAMPAIGN_ID, address(usd), 5e6);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(usd)), FUNDS + 5e6);
        assertEq(usd.balanceOf(address(vault)), FUNDS + 5e6);
    }

    function test_fund_eth() public {
        vm.expectEmit(true, true, true, true, address(vault));
        emit VaultFunded(CAMPAIGN_ID, address(0), funder, 1 ether);
        vm.prank(funder);
        vault.fund{value: 1 ether}(CAMPAIGN_ID, address(0), 1 ether);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(0)), 11 ether);
        assertEq(address(vault).balance, 11 ether);
    }

    function test_fund_feeOnTransferCreditsReceived() public {
        FeeOnTransferToken fot = new FeeOnTransferToken();
        fot.mint(funder, 1000);
        vm.startPrank(funder);
        fot.approve(address(vault), 1000);
        vm.expectEmit(true, true, true, true, address(vault));
        emit VaultFunded(CAMPAIGN_ID, address(fot), funder, 990);
        vault.fund(CAMPAIGN_ID, address(fot), 1000);
        vm.stopPrank();
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(fot)), 990);
    }

    function test_fund_reverts() public {
        vm.startPrank(funder);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.UnknownCampaign.selector, 999));
        vault.fund(999, address(usd), 1);
        vm.expectRevert(RewardVault.ZeroAmount.selector);
        vault.fund(CAMPAIGN_ID, address(usd), 0);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.IncorrectEthAmount.selector, 1 ether, 1 ether - 1));
        vault.fund{value: 1 ether - 1}(CAMPAIGN_ID, address(0), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.IncorrectEthAmount.selector, 1 ether, 1 ether + 1));
        vault.fund{value: 1 ether + 1}(CAMPAIGN_ID, address(0), 1 ether);
        vm.expectRevert(RewardVault.UnexpectedEth.selector);
        vault.fund{value: 1}(CAMPAIGN_ID, address(usd), 1);
        vm.stopPrank();
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(vault), 0, 1)
        );
        vm.prank(holder);
        vault.fund(CAMPAIGN_ID, address(usd), 1);
    }

    function test_directEthTransferRejected() public {
        vm.prank(funder);
        (bool ok,) = address(vault).call{value: 1}("");
        assertFalse(ok);
    }

    // ------------------------------------------------------------------ redeem

    function test_redeem_erc20() public {
        RewardVault.Voucher memory v = _voucher(1, address(usd), 25e6);
        bytes memory sig = _signVoucher(v);
        vm.expectEmit(true, true, true, true, address(vault));
        emit RewardRedeemed(1);
        vm.prank(relayer); // anyone can submit
        vault.redeem(v, sig);
        assertEq(usd.balanceOf(holder), 25e6);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(usd)), FUNDS - 25e6);
        assertTrue(vault.isRedeemed(1));
        assertFalse(vault.isRedeemed(0));
        assertFalse(vault.isRedeemed(2));
    }

    function test_redeem_eth() public {
        RewardVault.Voucher memory v = _voucher(2, address(0), 0.5 ether);
        bytes memory sig = _signVoucher(v);
        vault.redeem(v, sig);
        assertEq(holder.balance, 0.5 ether);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(0)), 9.5 ether);
    }

    function test_redeemCompact() public {
        RewardVault.Voucher memory v = _voucher(3, address(usd), 25e6);
        v.campaignId = CAMPAIGN_ID;
        (uint256 ids, uint256 ra, uint256 td, bytes32 r, bytes32 vs) = _compact(v, VOUCHER_SIGNER_PK);
        vm.expectEmit(true, true, true, true, address(vault));
        emit RewardRedeemed(3);
        vault.redeemCompact(ids, ra, td, r, vs);
        assertEq(usd.balanceOf(holder), 25e6);
        assertTrue(vault.isRedeemed(3));
        // the same voucher through the ABI entry point is a replay
        bytes memory sig = _signVoucher(v);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.AlreadyRedeemed.selector, 3));
        vault.redeem(v, sig);
    }

    function test_redeemCompact_thenRedeemIsReplay() public {
        RewardVault.Voucher memory v = _voucher(4, address(0), 1 ether);
        vault.redeem(v, _signVoucher(v));
        (uint256 ids, uint256 ra, uint256 td, bytes32 r, bytes32 vs) = _compact(v, VOUCHER_SIGNER_PK);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.AlreadyRedeemed.selector, 4));
        vault.redeemCompact(ids, ra, td, r, vs);
    }

    function test_redeemCompact_reverts() public {
        RewardVault.Voucher memory v = _voucher(5, address(usd), 25e6);
        (uint256 ids, uint256 ra, uint256 td, bytes32 r, bytes32 vs) = _compact(v, 0xBAD);
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeemCompact(ids, ra, td, r, vs);
        (ids, ra, td, r, vs) = _compact(v, VOUCHER_SIGNER_PK);
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeemCompact(ids, ra + 1, td, r, vs); // amount tampered
        // high-s in the compact form is rejected
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        uint256 s = uint256(vs) & ((1 << 255) - 1);
        bytes32 badVs = bytes32(n - s);
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeemCompact(ids, ra, td, r, badVs);
        vm.warp(v.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.VoucherExpired.selector, v.deadline));
        vault.redeemCompact(ids, ra, td, r, vs);
    }

    function test_redeem_revertsReplay() public {
        RewardVault.Voucher memory v = _voucher(7, address(usd), 1e6);
        bytes memory sig = _signVoucher(v);
        vault.redeem(v, sig);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.AlreadyRedeemed.selector, 7));
        vault.redeem(v, sig);
        // a new signature for the same redemption id (different recipient) is refused too
        RewardVault.Voucher memory w = _voucher(7, address(usd), 1e6);
        w.recipient = relayer;
        bytes memory wsig = _signVoucher(w);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.AlreadyRedeemed.selector, 7));
        vault.redeem(w, wsig);
        assertEq(usd.balanceOf(holder), 1e6);
    }

    function test_redeem_revertsExpired() public {
        RewardVault.Voucher memory v = _voucher(8, address(usd), 1e6);
        bytes memory sig = _signVoucher(v);
        vm.warp(v.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.VoucherExpired.selector, v.deadline));
        vault.redeem(v, sig);
        vm.warp(v.deadline);
        vault.redeem(v, sig); // the deadline itself is still valid
    }

    function test_redeem_revertsBadSignatures() public {
        RewardVault.Voucher memory v = _voucher(10, address(usd), 1e6);
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeem(v, _sign(0xBAD, _voucherDigest(v, address(vault))));
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeem(v, "");
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeem(v, new bytes(65));
        // signed for another vault (domain separation)
        RewardVault other = new RewardVault(platformAdmin, voucherSigner, distributor);
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeem(v, _sign(VOUCHER_SIGNER_PK, _voucherDigest(v, address(other))));
    }

    function test_redeem_revertsAfterSignerRevoked() public {
        RewardVault.Voucher memory v = _voucher(11, address(usd), 1e6);
        bytes memory sig = _signVoucher(v);
        bytes32 role = vault.VOUCHER_SIGNER_ROLE();
        vm.prank(platformAdmin);
        vault.revokeRole(role, voucherSigner);
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeem(v, sig);
    }

    function test_redeem_revertsInsufficientCampaignBalance() public {
        RewardVault.Voucher memory v = _voucher(12, address(usd), FUNDS + 1);
        bytes memory sig = _signVoucher(v);
        vm.expectRevert(
            abi.encodeWithSelector(
                RewardVault.InsufficientCampaignBalance.selector, CAMPAIGN_ID, address(usd), FUNDS, FUNDS + 1
            )
        );
        vault.redeem(v, sig);
        // another campaign's funds are never touched
        v = _voucher(13, address(usd), 1);
        v.campaignId = 555;
        sig = _signVoucher(v);
        vm.expectRevert(
            abi.encodeWithSelector(RewardVault.InsufficientCampaignBalance.selector, 555, address(usd), 0, 1)
        );
        vault.redeem(v, sig);
        assertFalse(vault.isRedeemed(12));
    }

    function test_redeem_revertsZeroRecipient() public {
        RewardVault.Voucher memory v = _voucher(14, address(usd), 1);
        v.recipient = address(0);
        bytes memory sig = _signVoucher(v);
        vm.expectRevert(RewardVault.ZeroAddress.selector);
        vault.redeem(v, sig);
    }

    function test_redeem_revertsEthRecipientRejects() public {
        EthRejecter rejecter = new EthRejecter();
        RewardVault.Voucher memory v = _voucher(15, address(0), 1 ether);
        v.recipient = address(rejecter);
        bytes memory sig = _signVoucher(v);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.EthTransferFailed.selector, address(rejecter)));
        vault.redeem(v, sig);
        assertFalse(vault.isRedeemed(15));
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(0)), 10 ether);
    }

    function test_redeem_reentrancyBlocked() public {
        ReentrantRecipient evil = new ReentrantRecipient(vault);
        RewardVault.Voucher memory inner = _voucher(16, address(0), 1 ether);
        inner.recipient = address(evil);
        evil.arm(inner, _signVoucher(inner));
        RewardVault.Voucher memory outer = _voucher(17, address(0), 1 ether);
        outer.recipient = address(evil);
        vault.redeem(outer, _signVoucher(outer));
        assertEq(evil.innerError(), abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector));
        assertEq(address(evil).balance, 1 ether);
        assertFalse(vault.isRedeemed(16));
    }

    function test_redeem_bitmapWordBoundaries() public {
        uint256[5] memory ids = [uint256(0), 255, 256, 511, type(uint256).max];
        for (uint256 i; i < ids.length; ++i) {
            RewardVault.Voucher memory v = _voucher(ids[i], address(usd), 1);
            vault.redeem(v, _signVoucher(v));
        }
        for (uint256 i; i < ids.length; ++i) {
            assertTrue(vault.isRedeemed(ids[i]));
        }
        assertFalse(vault.isRedeemed(1));
        assertFalse(vault.isRedeemed(254));
        assertFalse(vault.isRedeemed(257));
        assertFalse(vault.isRedeemed(type(uint256).max - 1));
    }

    // ------------------------------------------------------------------ distribute

    function _batch(uint256 n) internal returns (address[] memory to, uint256[] memory amounts, uint256 total) {
        to = new address[](n);
        amounts = new uint256[](n);
        for (uint256 i; i < n; ++i) {
            to[i] = makeAddr(string(abi.encodePacked("r", vm.toString(i))));
            amounts[i] = 1e6 + i;
            total += amounts[i];
        }
    }

    function test_distribute_erc20() public {
        (address[] memory to, uint256[] memory amounts, uint256 total) = _batch(5);
        vm.expectEmit(true, true, true, true, address(vault));
        emit RewardsDistributed(77, CAMPAIGN_ID, address(usd), 5, total);
        vm.prank(distributor);
        vault.distribute(CAMPAIGN_ID, address(usd), to, amounts, 77);
        for (uint256 i; i < 5; ++i) {
            assertEq(usd.balanceOf(to[i]), amounts[i]);
        }
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(usd)), FUNDS - total);
        assertTrue(vault.isDistributed(77));
        assertFalse(vault.isDistributed(78));
    }

    function test_distribute_eth() public {
        (address[] memory to,,) = _batch(3);
        uint256[] memory amounts = new uint256[](3);
        (amounts[0], amounts[1], amounts[2]) = (1 ether, 2 ether, 0);
        vm.prank(distributor);
        vault.distribute(CAMPAIGN_ID, address(0), to, amounts, 1);
        assertEq(to[0].balance, 1 ether);
        assertEq(to[1].balance, 2 ether);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(0)), 7 ether);
    }

    function test_distribute_oncePerBatch() public {
        (address[] memory to, uint256[] memory amounts,) = _batch(2);
        vm.startPrank(distributor);
        vault.distribute(CAMPAIGN_ID, address(usd), to, amounts, 5);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.BatchAlreadyDistributed.selector, 5));
        vault.distribute(CAMPAIGN_ID, address(usd), to, amounts, 5);
        vm.stopPrank();
    }

    function test_distribute_reverts() public {
        (address[] memory to, uint256[] memory amounts, uint256 total) = _batch(3);
        vm.startPrank(distributor);
        vm.expectRevert(RewardVault.LengthMismatch.selector);
        vault.distribute(CAMPAIGN_ID, address(usd), to, new uint256[](2), 1);
        vm.expectRevert(RewardVault.EmptyBatch.selector);
        vault.distribute(CAMPAIGN_ID, address(usd), new address[](0), new uint256[](0), 1);
        amounts[2] = FUNDS;
        vm.expectRevert(
            abi.encodeWithSelector(
                RewardVault.InsufficientCampaignBalance.selector,
                CAMPAIGN_ID,
                address(usd),
                FUNDS,
                total - (1e6 + 2) + FUNDS
            )
        );
        vault.distribute(CAMPAIGN_ID, address(usd), to, amounts, 1);
        amounts[2] = 1;
        to[1] = address(0);
        vm.expectRevert(RewardVault.ZeroAddress.selector);
        vault.distribute(CAMPAIGN_ID, address(usd), to, amounts, 1);
        vm.expectRevert(RewardVault.ZeroAddress.selector);
        vault.distribute(CAMPAIGN_ID, address(0), to, amounts, 1);
        to[1] = address(new EthRejecter());
        vm.expectRevert(abi.encodeWithSelector(RewardVault.EthTransferFailed.selector, to[1]));
        vault.distribute(CAMPAIGN_ID, address(0), to, amounts, 1);
        vm.stopPrank();
        assertFalse(vault.isDistributed(1));
        _expectMissingRole(relayer, vault.DISTRIBUTOR_ROLE());
        vm.prank(relayer);
        vault.distribute(CAMPAIGN_ID, address(usd), to, amounts, 1);
    }

    function test_distribute_overflowingAmountsRevert() public {
        address[] memory to = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        (to[0], to[1]) = (holder, relayer);
        (amounts[0], amounts[1]) = (type(uint256).max, 2);
        vm.expectRevert(); // arithmetic overflow panic
        vm.prank(distributor);
        vault.distribute(CAMPAIGN_ID, address(usd), to, amounts, 1);
    }

    // ------------------------------------------------------------------ withdraw / admin

    function test_withdraw() public {
        address brandWallet = makeAddr("brandWallet");
        vm.expectEmit(true, true, true, true, address(vault));
        emit VaultWithdrawn(CAMPAIGN_ID, address(usd), brandWallet, 100e6);
        vm.prank(brandAdmin);
        vault.withdraw(CAMPAIGN_ID, address(usd), 100e6, brandWallet);
        assertEq(usd.balanceOf(brandWallet), 100e6);
        vm.prank(brandAdmin);
        vault.withdraw(CAMPAIGN_ID, address(0), 10 ether, brandWallet);
        assertEq(brandWallet.balance, 10 ether);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(usd)), FUNDS - 100e6);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(0)), 0);
        // vouchers beyond the remaining balance now fail
        RewardVault.Voucher memory v = _voucher(20, address(0), 1);
        bytes memory sig = _signVoucher(v);
        vm.expectRevert(
            abi.encodeWithSelector(RewardVault.InsufficientCampaignBalance.selector, CAMPAIGN_ID, address(0), 0, 1)
        );
        vault.redeem(v, sig);
    }

    function test_withdraw_reverts() public {
        vm.expectRevert(abi.encodeWithSelector(RewardVault.NotCampaignAdmin.selector, CAMPAIGN_ID, platformAdmin));
        vm.prank(platformAdmin);
        vault.withdraw(CAMPAIGN_ID, address(usd), 1, platformAdmin);
        vm.startPrank(brandAdmin);
        vm.expectRevert(RewardVault.ZeroAddress.selector);
        vault.withdraw(CAMPAIGN_ID, address(usd), 1, address(0));
        vm.expectRevert(RewardVault.ZeroAmount.selector);
        vault.withdraw(CAMPAIGN_ID, address(usd), 0, brandAdmin);
        vm.expectRevert(
            abi.encodeWithSelector(
                RewardVault.InsufficientCampaignBalance.selector, CAMPAIGN_ID, address(usd), FUNDS, FUNDS + 1
            )
        );
        vault.withdraw(CAMPAIGN_ID, address(usd), FUNDS + 1, brandAdmin);
        address rejecter = address(new EthRejecter());
        vm.expectRevert(abi.encodeWithSelector(RewardVault.EthTransferFailed.selector, rejecter));
        vault.withdraw(CAMPAIGN_ID, address(0), 1, rejecter);
        // the brand admin of one campaign cannot touch another campaign
        vm.expectRevert(abi.encodeWithSelector(RewardVault.NotCampaignAdmin.selector, 999, brandAdmin));
        vault.withdraw(999, address(usd), 1, brandAdmin);
        vm.stopPrank();
    }

    function test_setCampaignAdmin() public {
        address newAdmin = makeAddr("newAdmin");
        vm.expectEmit(true, true, true, true, address(vault));
        emit CampaignAdminSet(CAMPAIGN_ID, newAdmin);
        vm.prank(platformAdmin);
        vault.setCampaignAdmin(CAMPAIGN_ID, newAdmin);
        assertEq(vault.campaignAdmin(CAMPAIGN_ID), newAdmin);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.NotCampaignAdmin.selector, CAMPAIGN_ID, brandAdmin));
        vm.prank(brandAdmin);
        vault.withdraw(CAMPAIGN_ID, address(usd), 1, brandAdmin);
        // unregistering freezes funding, but vouchers still pay from existing funds
        vm.prank(platformAdmin);
        vault.setCampaignAdmin(CAMPAIGN_ID, address(0));
        vm.expectRevert(abi.encodeWithSelector(RewardVault.UnknownCampaign.selector, CAMPAIGN_ID));
        vm.prank(funder);
        vault.fund(CAMPAIGN_ID, address(usd), 1);
        RewardVault.Voucher memory v = _voucher(30, address(usd), 1);
        vault.redeem(v, _signVoucher(v));
    }

    function test_setCampaignAdmin_onlyPlatformAdmin() public {
        _expectMissingRole(brandAdmin, vault.DEFAULT_ADMIN_ROLE());
        vm.prank(brandAdmin);
        vault.setCampaignAdmin(CAMPAIGN_ID, brandAdmin);
    }

    // ------------------------------------------------------------------ fuzz

    /// Changing any single field of a signed voucher makes the signature invalid (both entry points).
    function testFuzz_tamperedVoucherRejected(uint8 field, uint256 delta, uint64 id) public {
        RewardVault.Voucher memory v = _voucher(id, address(usd), 3e6);
        bytes memory sig = _signVoucher(v);
        (uint256 ids, uint256 ra, uint256 td, bytes32 r, bytes32 vs) = _compact(v, VOUCHER_SIGNER_PK);
        field = uint8(bound(field, 0, 6));
        delta = bound(delta, 1, type(uint32).max);
        if (field == 0) v.redemptionId ^= delta;
        if (field == 1) v.campaignId ^= delta;
        if (field == 2) v.tokenId ^= delta;
        if (field == 3) v.recipient = address(uint160(v.recipient) ^ uint160(delta));
        if (field == 4) v.token = address(uint160(v.token) ^ uint160(delta));
        if (field == 5) v.amount ^= delta;
        if (field == 6) v.deadline += delta;
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeem(v, sig);
        // compact: same tampering on the packed words
        (uint256 ids2, uint256 ra2, uint256 td2,,) = _compact(v, VOUCHER_SIGNER_PK);
        assertTrue(ids2 != ids || ra2 != ra || td2 != td);
        vm.expectRevert(RewardVault.InvalidSignature.selector);
        vault.redeemCompact(ids2, ra2, td2, r, vs);
        // the untampered voucher still works exactly once
        vault.redeemCompact(ids, ra, td, r, vs);
        vm.expectRevert(abi.encodeWithSelector(RewardVault.AlreadyRedeemed.selector, uint256(id)));
        vault.redeemCompact(ids, ra, td, r, vs);
    }

    /// Any redemption id pays once; a replay through either entry point is refused.
    function testFuzz_replayRejected(uint256 id, uint256 amount) public {
        amount = bound(amount, 1, FUNDS);
        RewardVault.Voucher memory v = _voucher(id, address(usd), amount);
        bytes memory sig = _signVoucher(v);
        assertFalse(vault.isRedeemed(id));
        vault.redeem(v, sig);
        assertTrue(vault.isRedeemed(id));
        vm.expectRevert(abi.encodeWithSelector(RewardVault.AlreadyRedeemed.selector, id));
        vault.redeem(v, sig);
        assertEq(usd.balanceOf(holder), amount);
        assertEq(vault.campaignBalance(CAMPAIGN_ID, address(usd)), FUNDS - amount);
    }
}
