// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {BrandmintTest, EthRejecter} from "./utils/BrandmintTest.sol";
import {Checkout} from "../src/Checkout.sol";
import {CampaignNFT} from "../src/CampaignNFT.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

/// @dev A treasury that tries to re-enter Checkout when paid.
contract ReentrantTreasury {
    Checkout internal checkout;
    Checkout.Quote internal quote;
    bytes internal signature;
    bytes public revertData;

    function arm(Checkout c, Checkout.Quote memory q, bytes memory sig) external {
        checkout = c;
        quote = q;
        signature = sig;
    }

    receive() external payable {
        if (address(checkout) == address(0)) return;
        Checkout c = checkout;
        checkout = Checkout(address(0));
        try c.buy{value: quote.amount}(quote, signature) {}
        catch (bytes memory err) {
            revertData = err;
            revert("reentry blocked");
        }
    }
}

contract CheckoutTest is BrandmintTest {
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

    CampaignNFT internal nft;
    uint256 internal buyerPk = 0xB0B;
    address internal buyer;

    function setUp() public {
        _deployPlatform();
        nft = _deployCampaign(CAMPAIGN_ID, MAX_SUPPLY);
        buyer = vm.addr(buyerPk);
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(address(nft), treasury);
        vm.deal(buyer, 100 ether);
        usd.mint(buyer, 1_000_000e6);
        vm.prank(buyer);
        usd.approve(address(checkout), type(uint256).max);
    }

    function _quote(bytes32 orderId, address payToken, uint256 amount, uint256 quantity)
        internal
        view
        returns (Checkout.Quote memory)
    {
        return Checkout.Quote({
            orderId: orderId,
            buyer: buyer,
            collection: address(nft),
            quantity: quantity,
            payToken: payToken,
            amount: amount,
            deadline: block.timestamp + 15 minutes
        });
    }

    function _setFee(uint16 bps) internal {
        vm.prank(platformAdmin);
        checkout.setFee(feeRecipient, bps);
    }

    // ------------------------------------------------------------------ happy paths

    function test_constants() public view {
        assertEq(checkout.QUOTE_TYPEHASH(), keccak256(bytes(QUOTE_TYPE)));
        assertEq(checkout.QUOTE_SIGNER_ROLE(), keccak256("QUOTE_SIGNER_ROLE"));
        assertEq(checkout.domainSeparator(), _domain("Brandmint Checkout", address(checkout)));
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = checkout.eip712Domain();
        assertEq(name, "Brandmint Checkout");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(checkout));
        assertTrue(checkout.hasRole(checkout.QUOTE_SIGNER_ROLE(), quoteSigner));
        assertTrue(checkout.hasRole(checkout.DEFAULT_ADMIN_ROLE(), platformAdmin));
    }

    function test_hashQuote_matchesOffchainDigest() public view {
        Checkout.Quote memory q = _quote("order-1", address(usd), 25e6, 2);
        assertEq(checkout.hashQuote(q), _quoteDigest(q, address(checkout)));
    }

    function test_buy_eth_noFee() public {
        Checkout.Quote memory q = _quote("order-eth", address(0), 0.3 ether, 3);
        bytes memory sig = _signQuote(q);
        vm.expectEmit(true, true, true, true, address(checkout));
        emit OrderPaid("order-eth", buyer, address(0), 0.3 ether, 1, 3);
        vm.prank(buyer);
        uint256 first = checkout.buy{value: 0.3 ether}(q, sig);
        assertEq(first, 1);
        assertEq(treasury.balance, 0.3 ether);
        assertEq(address(checkout).balance, 0);
        assertEq(nft.balanceOf(buyer), 3);
        assertEq(nft.ownerOf(3), buyer);
        assertTrue(checkout.orderPaid("order-eth"));
    }

    function test_buy_eth_withFee() public {
        _setFee(250); // 2.5 %
        Checkout.Quote memory q = _quote("order-fee", address(0), 1 ether + 3, 1);
        bytes memory sig = _signQuote(q);
        vm.prank(buyer);
        checkout.buy{value: q.amount}(q, sig);
        uint256 amount = 1 ether + 3;
        uint256 fee = (amount * 250) / 10_000; // rounded down, the brand gets the rest
        assertEq(feeRecipient.balance, fee);
        assertEq(treasury.balance, 1 ether + 3 - fee);
    }

    function test_buy_erc20_withFee() public {
        _setFee(500);
        Checkout.Quote memory q = _quote("order-usd", address(usd), 49_990_001, 2);
        bytes memory sig = _signQuote(q);
        uint256 before = usd.balanceOf(buyer);
        vm.expectEmit(true, true, true, true, address(checkout));
        emit OrderPaid("order-usd", buyer, address(usd), 49_990_001, 1, 2);
        vm.prank(buyer);
        checkout.buy(q, sig);
        assertEq(usd.balanceOf(buyer), before - 49_990_001);
        assertEq(usd.balanceOf(feeRecipient), 2_499_500);
        assertEq(usd.balanceOf(treasury), 49_990_001 - 2_499_500);
        assertEq(usd.balanceOf(address(checkout)), 0);
        assertEq(nft.balanceOf(buyer), 2);
    }

    function test_buy_fullFeeSkipsTreasuryTransfer() public {
        _setFee(10_000);
        Checkout.Quote memory q = _quote("all-fee", address(usd), 10e6, 1);
        bytes memory sig = _signQuote(q);
        vm.prank(buyer);
        checkout.buy(q, sig);
        assertEq(usd.balanceOf(feeRecipient), 10e6);
        assertEq(usd.balanceOf(treasury), 0);
    }

    function test_buy_freeOrder() public {
        Checkout.Quote memory q = _quote("free", address(usd), 0, 1);
        bytes memory sig = _signQuote(q);
        vm.prank(buyer);
        checkout.buy(q, sig);
        assertEq(nft.balanceOf(buyer), 1);
        Checkout.Quote memory e = _quote("free-eth", address(0), 0, 1);
        sig = _signQuote(e);
        vm.prank(buyer);
        checkout.buy(e, sig);
        assertEq(nft.balanceOf(buyer), 2);
    }

    function test_buy_anyonePaysNftGoesToQuoteBuyer() public {
        address friend = makeAddr("friend");
        vm.deal(friend, 1 ether);
        Checkout.Quote memory q = _quote("gift", address(0), 0.1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.prank(friend);
        checkout.buy{value: 0.1 ether}(q, sig);
        assertEq(nft.ownerOf(1), buyer);
        assertEq(friend.balance, 0.9 ether);
    }

    function test_buy_consecutiveOrdersGetConsecutiveIds() public {
        Checkout.Quote memory a = _quote("a", address(usd), 1e6, 2);
        Checkout.Quote memory b = _quote("b", address(usd), 1e6, 5);
        bytes memory sa = _signQuote(a);
        bytes memory sb = _signQuote(b);
        vm.startPrank(buyer);
        assertEq(checkout.buy(a, sa), 1);
        assertEq(checkout.buy(b, sb), 3);
        vm.stopPrank();
        assertEq(nft.totalMinted(), 7);
    }

    function _permit(uint256 value, uint256 deadline) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"),
                buyer,
                address(checkout),
                value,
                usd.nonces(buyer),
                deadline
            )
        );
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", usd.DOMAIN_SEPARATOR(), structHash));
        (v, r, s) = vm.sign(buyerPk, digest);
    }

    function test_buyWithPermit() public {
        vm.prank(buyer);
        usd.approve(address(checkout), 0);
        Checkout.Quote memory q = _quote("permit", address(usd), 12e6, 1);
        bytes memory sig = _signQuote(q);
        (uint8 v, bytes32 r, bytes32 s) = _permit(12e6, block.timestamp + 1 hours);
        vm.prank(buyer);
        uint256 first = checkout.buyWithPermit(q, sig, block.timestamp + 1 hours, v, r, s);
        assertEq(first, 1);
        assertEq(usd.balanceOf(treasury), 12e6);
        assertEq(usd.allowance(buyer, address(checkout)), 0);
        assertEq(usd.nonces(buyer), 1);
    }

    function test_buyWithPermit_frontRunPermitStillBuys() public {
        vm.prank(buyer);
        usd.approve(address(checkout), 0);
        Checkout.Quote memory q = _quote("permit-frontrun", address(usd), 12e6, 1);
        bytes memory sig = _signQuote(q);
        uint256 dl = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = _permit(12e6, dl);
        usd.permit(buyer, address(checkout), 12e6, dl, v, r, s); // griefer uses the permit first
        vm.prank(buyer);
        checkout.buyWithPermit(q, sig, dl, v, r, s);
        assertEq(usd.balanceOf(treasury), 12e6);
    }

    function test_buyWithPermit_badPermitWithoutAllowanceReverts() public {
        vm.prank(buyer);
        usd.approve(address(checkout), 0);
        Checkout.Quote memory q = _quote("permit-bad", address(usd), 12e6, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(checkout), 0, 12e6)
        );
        vm.prank(buyer);
        checkout.buyWithPermit(q, sig, block.timestamp, 27, bytes32(0), bytes32(0));
    }

    function test_buyWithPermit_revertsForEthQuote() public {
        Checkout.Quote memory q = _quote("permit-eth", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(Checkout.NotAnErc20Quote.selector);
        vm.prank(buyer);
        checkout.buyWithPermit(q, sig, block.timestamp, 27, bytes32(0), bytes32(0));
    }

    // ------------------------------------------------------------------ reverts

    function test_buy_revertsExpired() public {
        Checkout.Quote memory q = _quote("late", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.warp(q.deadline + 1);
        vm.expectRevert(abi.encodeWithSelector(Checkout.QuoteExpired.selector, q.deadline));
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_atDeadlineIsFine() public {
        Checkout.Quote memory q = _quote("edge", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.warp(q.deadline);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_revertsWrongSigner() public {
        Checkout.Quote memory q = _quote("forged", address(0), 1 ether, 1);
        bytes memory sig = _sign(0xBAD, _quoteDigest(q, address(checkout)));
        vm.expectRevert(Checkout.InvalidSignature.selector);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_revertsMalformedSignature() public {
        Checkout.Quote memory q = _quote("malformed", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        bytes memory short = new bytes(64);
        for (uint256 i; i < 64; ++i) {
            short[i] = sig[i];
        }
        vm.startPrank(buyer);
        vm.expectRevert(Checkout.InvalidSignature.selector);
        checkout.buy{value: 1 ether}(q, short);
        vm.expectRevert(Checkout.InvalidSignature.selector);
        checkout.buy{value: 1 ether}(q, "");
        vm.stopPrank();
    }

    function test_buy_revertsHighSSignature() public {
        Checkout.Quote memory q = _quote("malleable", address(0), 1 ether, 1);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(QUOTE_SIGNER_PK, _quoteDigest(q, address(checkout)));
        // the malleable twin (r, n - s, v ^ 1) recovers the same signer but must be rejected
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes memory twin = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.expectRevert(Checkout.InvalidSignature.selector);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, twin);
    }

    function test_buy_revertsSignatureForOtherCheckout() public {
        Checkout other = new Checkout(platformAdmin, quoteSigner);
        Checkout.Quote memory q = _quote("other-domain", address(0), 1 ether, 1);
        bytes memory sig = _sign(QUOTE_SIGNER_PK, _quoteDigest(q, address(other)));
        vm.expectRevert(Checkout.InvalidSignature.selector);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_revertsAfterSignerRevoked() public {
        Checkout.Quote memory q = _quote("revoked", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        bytes32 role = checkout.QUOTE_SIGNER_ROLE();
        vm.prank(platformAdmin);
        checkout.revokeRole(role, quoteSigner);
        vm.expectRevert(Checkout.InvalidSignature.selector);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_revertsReplay() public {
        Checkout.Quote memory q = _quote("once", address(usd), 5e6, 1);
        bytes memory sig = _signQuote(q);
        vm.startPrank(buyer);
        checkout.buy(q, sig);
        vm.expectRevert(abi.encodeWithSelector(Checkout.OrderAlreadyPaid.selector, bytes32("once")));
        checkout.buy(q, sig);
        // a differently priced quote for the same order id is also refused
        Checkout.Quote memory q2 = _quote("once", address(usd), 1e6, 1);
        bytes memory sig2 = _signQuote(q2);
        vm.expectRevert(abi.encodeWithSelector(Checkout.OrderAlreadyPaid.selector, bytes32("once")));
        checkout.buy(q2, sig2);
        vm.stopPrank();
        assertEq(nft.balanceOf(buyer), 1);
    }

    function test_buy_revertsUnknownCollection() public {
        CampaignNFT other = _deployCampaign(77, 10);
        Checkout.Quote memory q = _quote("unknown", address(0), 1 ether, 1);
        q.collection = address(other);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(abi.encodeWithSelector(Checkout.UnknownCollection.selector, address(other)));
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_revertsZeroQuantity() public {
        Checkout.Quote memory q = _quote("zero", address(0), 1 ether, 0);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(Checkout.ZeroQuantity.selector);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_revertsOverpayment() public {
        Checkout.Quote memory q = _quote("over", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(abi.encodeWithSelector(Checkout.IncorrectEthAmount.selector, 1 ether, 1 ether + 1));
        vm.prank(buyer);
        checkout.buy{value: 1 ether + 1}(q, sig);
    }

    function test_buy_revertsUnderpayment() public {
        Checkout.Quote memory q = _quote("under", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(abi.encodeWithSelector(Checkout.IncorrectEthAmount.selector, 1 ether, 1 ether - 1));
        vm.prank(buyer);
        checkout.buy{value: 1 ether - 1}(q, sig);
    }

    function test_buy_revertsEthWithErc20Quote() public {
        Checkout.Quote memory q = _quote("mixed", address(usd), 5e6, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(Checkout.UnexpectedEth.selector);
        vm.prank(buyer);
        checkout.buy{value: 1}(q, sig);
    }

    function test_buy_revertsWithoutAllowance() public {
        vm.prank(buyer);
        usd.approve(address(checkout), 0);
        Checkout.Quote memory q = _quote("no-allowance", address(usd), 5e6, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(checkout), 0, 5e6)
        );
        vm.prank(buyer);
        checkout.buy(q, sig);
    }

    function test_buy_revertsWhenTreasuryRejectsEth() public {
        EthRejecter rejecter = new EthRejecter();
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(address(nft), address(rejecter));
        Checkout.Quote memory q = _quote("rejected", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(abi.encodeWithSelector(Checkout.EthTransferFailed.selector, address(rejecter)));
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
        assertFalse(checkout.orderPaid("rejected"));
    }

    function test_buy_revertsWhenCheckoutIsNotMinter() public {
        bytes32 minterRole = nft.MINTER_ROLE();
        vm.prank(brandAdmin);
        nft.revokeRole(minterRole, address(checkout));
        Checkout.Quote memory q = _quote("not-minter", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        _expectMissingRole(address(checkout), minterRole);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_revertsOverCap() public {
        CampaignNFT small = _deployCampaign(55, 2);
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(address(small), treasury);
        Checkout.Quote memory q = _quote("cap", address(0), 1 ether, 3);
        q.collection = address(small);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.MaxSupplyExceeded.selector, 3, 2));
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_buy_reentrancyBlocked() public {
        ReentrantTreasury evil = new ReentrantTreasury();
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(address(nft), address(evil));
        Checkout.Quote memory inner = _quote("inner", address(0), 0.1 ether, 1);
        evil.arm(checkout, inner, _signQuote(inner));
        vm.deal(address(evil), 1 ether);
        Checkout.Quote memory q = _quote("outer", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.expectRevert(abi.encodeWithSelector(Checkout.EthTransferFailed.selector, address(evil)));
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    function test_reentrantCallGetsGuardError() public {
        // same setup, but observe the inner error through a non-reverting probe
        Checkout.Quote memory inner = _quote("inner2", address(0), 0, 1);
        bytes memory sig = _signQuote(inner);
        ReentrancyProbe probe = new ReentrancyProbe(checkout, inner, sig);
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(address(nft), address(probe));
        Checkout.Quote memory q = _quote("outer2", address(0), 1 ether, 1);
        bytes memory osig = _signQuote(q);
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, osig);
        assertEq(probe.innerError(), abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector));
        assertFalse(checkout.orderPaid("inner2"));
    }

    function test_pause() public {
        Checkout.Quote memory q = _quote("paused", address(0), 1 ether, 1);
        bytes memory sig = _signQuote(q);
        vm.prank(platformAdmin);
        checkout.pause();
        vm.startPrank(buyer);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        checkout.buy{value: 1 ether}(q, sig);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        checkout.buyWithPermit(q, sig, 0, 0, 0, 0);
        vm.stopPrank();
        vm.prank(platformAdmin);
        checkout.unpause();
        vm.prank(buyer);
        checkout.buy{value: 1 ether}(q, sig);
    }

    // ------------------------------------------------------------------ admin

    function test_setCollectionTreasury() public {
        address c = makeAddr("collection");
        vm.expectEmit(true, true, true, true, address(checkout));
        emit CollectionTreasurySet(c, treasury);
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(c, treasury);
        assertEq(checkout.treasuryOf(c), treasury);
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(c, address(0));
        assertEq(checkout.treasuryOf(c), address(0));
    }

    function test_setCollectionTreasury_reverts() public {
        vm.expectRevert(Checkout.ZeroAddress.selector);
        vm.prank(platformAdmin);
        checkout.setCollectionTreasury(address(0), treasury);
        _expectMissingRole(buyer, checkout.DEFAULT_ADMIN_ROLE());
        vm.prank(buyer);
        checkout.setCollectionTreasury(address(nft), buyer);
    }

    function test_setFee() public {
        vm.expectEmit(true, true, true, true, address(checkout));
        emit FeeConfigSet(feeRecipient, 300);
        vm.prank(platformAdmin);
        checkout.setFee(feeRecipient, 300);
        assertEq(checkout.feeRecipient(), feeRecipient);
        assertEq(checkout.feeBps(), 300);
        vm.prank(platformAdmin);
        checkout.setFee(address(0), 0); // disable
        assertEq(checkout.feeBps(), 0);
    }

    function test_setFee_reverts() public {
        vm.startPrank(platformAdmin);
        vm.expectRevert(abi.encodeWithSelector(Checkout.InvalidFee.selector, 10_001));
        checkout.setFee(feeRecipient, 10_001);
        vm.expectRevert(Checkout.ZeroAddress.selector);
        checkout.setFee(address(0), 1);
        vm.stopPrank();
        _expectMissingRole(buyer, checkout.DEFAULT_ADMIN_ROLE());
        vm.prank(buyer);
        checkout.setFee(buyer, 1);
    }

    function test_pause_onlyAdmin() public {
        _expectMissingRole(buyer, checkout.DEFAULT_ADMIN_ROLE());
        vm.prank(buyer);
        checkout.pause();
        vm.prank(platformAdmin);
        checkout.pause();
        _expectMissingRole(buyer, checkout.DEFAULT_ADMIN_ROLE());
        vm.prank(buyer);
        checkout.unpause();
    }

    function test_constructor() public {
        vm.expectRevert(Checkout.ZeroAddress.selector);
        new Checkout(address(0), quoteSigner);
        Checkout c = new Checkout(platformAdmin, address(0));
        assertFalse(c.hasRole(c.QUOTE_SIGNER_ROLE(), address(0)));
    }

    // ------------------------------------------------------------------ fuzz

    /// Changing any single field of a signed quote makes the signature invalid.
    function testFuzz_tamperedQuoteRejected(uint8 field, uint256 delta, uint256 seed) public {
        Checkout.Quote memory q = _quote(keccak256(abi.encode(seed)), address(usd), 7e6, 2);
        bytes memory sig = _signQuote(q);
        field = uint8(bound(field, 0, 6));
        delta = bound(delta, 1, type(uint160).max);
        if (field == 0) q.orderId = bytes32(uint256(q.orderId) ^ delta);
        if (field == 1) q.buyer = address(uint160(q.buyer) ^ uint160(delta));
        if (field == 2) q.collection = address(uint160(q.collection) ^ uint160(delta));
        if (field == 3) q.quantity = q.quantity ^ delta;
        if (field == 4) {
            q.payToken = address(uint160(q.payToken) ^ uint160(delta));
            if (q.payToken == address(0)) q.payToken = address(1); // stay an ERC-20 quote (no msg.value check)
        }
        if (field == 5) q.amount = q.amount ^ delta;
        if (field == 6) q.deadline = q.deadline + delta;
        vm.expectRevert(Checkout.InvalidSignature.selector);
        vm.prank(buyer);
        checkout.buy(q, sig);
    }

    /// A paid quote can never be paid again, whatever the amounts.
    function testFuzz_replayRejected(bytes32 orderId, uint256 amount, uint256 quantity) public {
        amount = bound(amount, 0, 1_000e6);
        quantity = bound(quantity, 1, 20);
        Checkout.Quote memory q = _quote(orderId, address(usd), amount, quantity);
        bytes memory sig = _signQuote(q);
        vm.startPrank(buyer);
        checkout.buy(q, sig);
        vm.expectRevert(abi.encodeWithSelector(Checkout.OrderAlreadyPaid.selector, orderId));
        checkout.buy(q, sig);
        vm.stopPrank();
        assertEq(nft.balanceOf(buyer), quantity);
        assertEq(usd.balanceOf(treasury), amount);
    }

    /// Fee split: fee = floor(amount * bps / 10_000), treasury gets exactly the rest.
    function testFuzz_feeSplit(uint256 amount, uint16 bps) public {
        amount = bound(amount, 0, 1_000_000e6);
        bps = uint16(bound(bps, 1, 10_000));
        _setFee(bps);
        Checkout.Quote memory q = _quote("fee-fuzz", address(usd), amount, 1);
        bytes memory sig = _signQuote(q);
        vm.prank(buyer);
        checkout.buy(q, sig);
        uint256 fee = (amount * bps) / 10_000;
        assertEq(usd.balanceOf(feeRecipient), fee);
        assertEq(usd.balanceOf(treasury), amount - fee);
    }
}

/// @dev Treasury that re-enters buy() and records the error without reverting the outer call.
contract ReentrancyProbe {
    Checkout internal immutable checkout;
    Checkout.Quote internal quote;
    bytes internal signature;
    bytes public innerError;
    bool internal done;

    constructor(Checkout c, Checkout.Quote memory q, bytes memory sig) {
        checkout = c;
        quote = q;
        signature = sig;
    }

    receive() external payable {
        if (done) return;
        done = true;
        try checkout.buy(quote, signature) {}
        catch (bytes memory err) {
            innerError = err;
        }
    }
}
