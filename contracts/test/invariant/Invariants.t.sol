// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {Test, console} from "forge-std/Test.sol";
import {BrandmintTest} from "../utils/BrandmintTest.sol";
import {CampaignNFT} from "../../src/CampaignNFT.sol";
import {Checkout} from "../../src/Checkout.sol";
import {RewardVault} from "../../src/RewardVault.sol";
import {TestStablecoin} from "../../src/TestStablecoin.sol";

// =====================================================================================
// CampaignNFT: minted <= cap
// =====================================================================================

contract NftHandler is Test {
    CampaignNFT internal immutable nft;
    address internal immutable minter;
    uint256 public ghostMinted;
    uint256 public calls;
    address[4] internal actors = [address(0xA1), address(0xA2), address(0xA3), address(0xA4)];

    constructor(CampaignNFT nft_, address minter_) {
        nft = nft_;
        minter = minter_;
    }

    function actor(uint256 i) external view returns (address) {
        return actors[i];
    }

    function mint(uint256 who, uint256 quantity) external {
        ++calls;
        quantity = _bound(quantity, 1, 40); // sometimes more than what is left
        vm.prank(minter);
        try nft.mint(actors[who % 4], quantity) returns (uint256 first) {
            assertEq(first, ghostMinted + 1);
            ghostMinted += quantity;
        } catch {}
    }

    function mintBatch(uint256 who, uint256 q0, uint256 q1) external {
        ++calls;
        address[] memory to = new address[](2);
        uint256[] memory q = new uint256[](2);
        (to[0], to[1]) = (actors[who % 4], actors[(who + 1) % 4]);
        (q[0], q[1]) = (_bound(q0, 1, 25), _bound(q1, 1, 25));
        vm.prank(minter);
        try nft.mintBatch(to, q) {
            ghostMinted += q[0] + q[1];
        } catch {}
    }

    function transfer(uint256 from, uint256 to, uint256 tokenId) external {
        ++calls;
        if (ghostMinted == 0) return;
        tokenId = _bound(tokenId, 1, ghostMinted);
        address owner = nft.ownerOf(tokenId);
        vm.prank(owner);
        nft.transferFrom(owner, actors[to % 4], tokenId);
        from; // unused: the owner is looked up
    }
}

contract CampaignNFTInvariants is BrandmintTest {
    CampaignNFT internal nft;
    NftHandler internal handler;
    uint256 internal constant CAP = 300;

    function setUp() public {
        _deployPlatform();
        nft = _deployCampaign(CAMPAIGN_ID, CAP);
        handler = new NftHandler(nft, relayer);
        targetContract(address(handler));
    }

    function invariant_mintedNeverExceedsCap() public view {
        assertLe(nft.totalMinted(), nft.maxSupply());
        assertEq(nft.maxSupply(), CAP);
    }

    function invariant_mintedMatchesGhostAndBalances() public view {
        assertEq(nft.totalMinted(), handler.ghostMinted());
        assertEq(nft.totalSupply(), handler.ghostMinted());
        uint256 sum;
        for (uint256 i; i < 4; ++i) {
            sum += nft.balanceOf(handler.actor(i));
        }
        assertEq(sum, nft.totalMinted());
    }
}

// =====================================================================================
// RewardVault: paid out <= funded per campaign; no redemption id / batch id pays twice
// =====================================================================================

contract VaultHandler is Test {
    RewardVault internal immutable vault;
    TestStablecoin internal immutable usd;
    uint256 internal immutable signerPk;
    address internal immutable distributor;
    address internal immutable funder = address(0xF00D);

    uint256[3] public campaigns = [uint256(11), 22, 33];
    mapping(uint256 => address) public brandAdminOf;

    // ghost accounting, per campaign and token (address(0) = ETH)
    mapping(uint256 => mapping(address => uint256)) public funded;
    mapping(uint256 => mapping(address => uint256)) public paidOut;
    mapping(uint256 => uint256) public redemptionPays;
    mapping(uint256 => uint256) public batchPays;
    uint256 public maxRedemptionPays;
    uint256 public maxBatchPays;
    uint256 public replaysAttempted;
    uint256 public redeemed;
    uint256 public distributions;

    constructor(RewardVault v, TestStablecoin u, uint256 pk, address dist, address[3] memory admins) {
        vault = v;
        usd = u;
        signerPk = pk;
        distributor = dist;
        for (uint256 i; i < 3; ++i) {
            brandAdminOf[campaigns[i]] = admins[i];
        }
        vm.prank(funder);
        usd.approve(address(vault), type(uint256).max);
    }

    function _token(uint256 seed) internal view returns (address) {
        return seed % 2 == 0 ? address(usd) : address(0);
    }

    function _campaign(uint256 seed) internal view returns (uint256) {
        return campaigns[seed % 3];
    }

    function fund(uint256 c, uint256 t, uint256 amount) external {
        uint256 campaignId = _campaign(c);
        address token = _token(t);
        amount = _bound(amount, 1, 1_000e6);
        if (token == address(0)) {
            vm.deal(funder, amount);
            vm.prank(funder);
            vault.fund{value: amount}(campaignId, token, amount);
        } else {
            usd.mint(funder, amount);
            vm.prank(funder);
            vault.fund(campaignId, token, amount);
        }
        funded[campaignId][token] += amount;
    }

    function _voucher(uint256 id, uint256 c, uint256 t, uint256 amount, uint256 r)
        internal
        view
        returns (RewardVault.Voucher memory v)
    {
        v = RewardVault.Voucher({
            redemptionId: _bound(id, 0, 80), // small id space: plenty of replays and shared words
            campaignId: _campaign(c),
            tokenId: r % 1000,
            recipient: address(uint160(0x100000 + (r % 50))),
            token: _token(t),
            amount: _bound(amount, 0, 50e6),
            deadline: block.timestamp + 1 hours
        });
    }

    function _record(RewardVault.Voucher memory v) internal {
        paidOut[v.campaignId][v.token] += v.amount;
        ++redeemed;
        uint256 n = ++redemptionPays[v.redemptionId];
        if (n > maxRedemptionPays) maxRedemptionPays = n;
    }

    function redeem(uint256 id, uint256 c, uint256 t, uint256 amount, uint256 r) external {
        RewardVault.Voucher memory v = _voucher(id, c, t, amount, r);
        if (vault.isRedeemed(v.redemptionId)) ++replaysAttempted;
        (uint8 sv, bytes32 rr, bytes32 s) = vm.sign(signerPk, vault.hashVoucher(v));
        try vault.redeem(v, abi.encodePacked(rr, s, sv)) {
            _record(v);
        } catch {}
    }

    function redeemCompact(uint256 id, uint256 c, uint256 t, uint256 amount, uint256 r) external {
        RewardVault.Voucher memory v = _voucher(id, c, t, amount, r);
        if (vault.isRedeemed(v.redemptionId)) ++replaysAttempted;
        (uint8 sv, bytes32 rr, bytes32 s) = vm.sign(signerPk, vault.hashVoucher(v));
        try vault.redeemCompact(
            (v.redemptionId << 192) | (v.campaignId << 128) | v.tokenId,
            (uint256(uint160(v.recipient)) << 96) | v.amount,
            (uint256(uint160(v.token)) << 96) | v.deadline,
            rr,
            bytes32((uint256(sv - 27) << 255) | uint256(s))
        ) {
            _record(v);
        } catch {}
    }

    function distribute(uint256 batchId, uint256 c, uint256 t, uint256 n, uint256 seed) external {
        batchId = _bound(batchId, 0, 40);
        uint256 campaignId = _campaign(c);
        address token = _token(t);
        n = _bound(n, 1, 5);
        address[] memory to = new address[](n);
        uint256[] memory amounts = new uint256[](n);
        uint256 total;
        for (uint256 i; i < n; ++i) {
            to[i] = address(uint160(0x200000 + uint256(keccak256(abi.encode(seed, i))) % 100));
            amounts[i] = uint256(keccak256(abi.encode(seed, i, "a"))) % 20e6;
            total += amounts[i];
        }
        vm.prank(distributor);
        try vault.distribute(campaignId, token, to, amounts, batchId) {
            paidOut[campaignId][token] += total;
            ++distributions;
            uint256 k = ++batchPays[batchId];
            if (k > maxBatchPays) maxBatchPays = k;
        } catch {}
    }

    function withdraw(uint256 c, uint256 t, uint256 amount) external {
        uint256 campaignId = _campaign(c);
        address token = _token(t);
        amount = _bound(amount, 1, 200e6);
        vm.prank(brandAdminOf[campaignId]);
        try vault.withdraw(campaignId, token, amount, address(0xB1AD)) {
            paidOut[campaignId][token] += amount;
        } catch {}
    }
}

contract RewardVaultInvariants is BrandmintTest {
    VaultHandler internal handler;

    function setUp() public {
        _deployPlatform();
        address[3] memory admins = [makeAddr("admin11"), makeAddr("admin22"), makeAddr("admin33")];
        handler = new VaultHandler(vault, usd, VOUCHER_SIGNER_PK, distributor, admins);
        vm.startPrank(platformAdmin);
        for (uint256 i; i < 3; ++i) {
            vault.setCampaignAdmin(handler.campaigns(i), admins[i]);
        }
        vm.stopPrank();
        // start every campaign with some funds in both tokens (recorded by the handler's ghosts)
        for (uint256 i; i < 6; ++i) {
            handler.fund(i, i / 3, 500e6);
        }
        targetContract(address(handler));
    }

    function invariant_paidOutNeverExceedsFunded() public view {
        address[2] memory tokens = [address(usd), address(0)];
        for (uint256 i; i < 3; ++i) {
            uint256 c = handler.campaigns(i);
            for (uint256 j; j < 2; ++j) {
                uint256 f = handler.funded(c, tokens[j]);
                uint256 p = handler.paidOut(c, tokens[j]);
                assertLe(p, f);
                assertEq(vault.campaignBalance(c, tokens[j]), f - p);
            }
        }
    }

    function invariant_vaultIsSolvent() public view {
        uint256 usdSum;
        uint256 ethSum;
        for (uint256 i; i < 3; ++i) {
            uint256 c = handler.campaigns(i);
            usdSum += vault.campaignBalance(c, address(usd));
            ethSum += vault.campaignBalance(c, address(0));
        }
        assertEq(usd.balanceOf(address(vault)), usdSum);
        assertEq(address(vault).balance, ethSum);
    }

    function invariant_noRedemptionOrBatchPaysTwice() public view {
        assertLe(handler.maxRedemptionPays(), 1);
        assertLe(handler.maxBatchPays(), 1);
    }

    /// Call summary (visible with -vv): shows the handler really pays and really replays.
    function afterInvariant() public view {
        console.log("redeemed", handler.redeemed(), "replays attempted", handler.replaysAttempted());
        console.log("distributions", handler.distributions());
    }
}

// =====================================================================================
// Checkout: no orderId pays twice; money and mints add up
// =====================================================================================

contract CheckoutHandler is Test {
    Checkout internal immutable checkout;
    CampaignNFT internal immutable nft;
    TestStablecoin internal immutable usd;
    uint256 internal immutable signerPk;
    address internal immutable buyer = address(0xB0B0);

    mapping(bytes32 => uint256) public orderPays;
    uint256 public maxOrderPays;
    uint256 public ghostEth;
    uint256 public ghostUsd;
    uint256 public ghostMinted;

    constructor(Checkout c, CampaignNFT n, TestStablecoin u, uint256 pk) {
        checkout = c;
        nft = n;
        usd = u;
        signerPk = pk;
        vm.prank(buyer);
        usd.approve(address(checkout), type(uint256).max);
    }

    function buy(uint256 orderSeed, bool eth, uint256 amount, uint256 quantity, uint256 payExtra) external {
        Checkout.Quote memory q = Checkout.Quote({
            orderId: bytes32(_bound(orderSeed, 0, 30)), // small id space: many replays
            buyer: buyer,
            collection: address(nft),
            quantity: _bound(quantity, 1, 5),
            payToken: eth ? address(0) : address(usd),
            amount: _bound(amount, 0, 50e6),
            deadline: block.timestamp + 10 minutes
        });
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signerPk, checkout.hashQuote(q));
        uint256 value = eth ? q.amount + (payExtra % 4 == 0 ? 1 : 0) : 0; // sometimes overpay
        if (eth) vm.deal(buyer, value);
        else usd.mint(buyer, q.amount);
        vm.prank(buyer);
        try checkout.buy{value: value}(q, abi.encodePacked(r, s, v)) {
            uint256 k = ++orderPays[q.orderId];
            if (k > maxOrderPays) maxOrderPays = k;
            if (eth) ghostEth += q.amount;
            else ghostUsd += q.amount;
            ghostMinted += q.quantity;
        } catch {}
    }
}

contract CheckoutInvariants is BrandmintTest {
    CheckoutHandler internal handler;
    CampaignNFT internal nft;

    function setUp() public {
        _deployPlatform();
        nft = _deployCampaign(CAMPAIGN_ID, 100_000);
        vm.startPrank(platformAdmin);
        checkout.setCollectionTreasury(address(nft), treasury);
        checkout.setFee(feeRecipient, 250);
        vm.stopPrank();
        handler = new CheckoutHandler(checkout, nft, usd, QUOTE_SIGNER_PK);
        targetContract(address(handler));
    }

    function invariant_noOrderPaysTwice() public view {
        assertLe(handler.maxOrderPays(), 1);
    }

    function invariant_moneyAndMintsAddUp() public view {
        assertEq(treasury.balance + feeRecipient.balance, handler.ghostEth());
        assertEq(usd.balanceOf(treasury) + usd.balanceOf(feeRecipient), handler.ghostUsd());
        assertEq(address(checkout).balance, 0);
        assertEq(usd.balanceOf(address(checkout)), 0);
        assertEq(nft.totalMinted(), handler.ghostMinted());
    }
}
