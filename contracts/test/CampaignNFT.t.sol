// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {BrandmintTest} from "./utils/BrandmintTest.sol";
import {CampaignNFT} from "../src/CampaignNFT.sol";
import {IERC721AUpgradeable} from "erc721a-upgradeable/contracts/IERC721AUpgradeable.sol";
import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";

contract CampaignNFTTest is BrandmintTest {
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event BatchMetadataUpdate(uint256 _fromTokenId, uint256 _toTokenId);
    event BaseURIUpdated(string baseURI);
    event RoyaltyUpdated(address indexed receiver, uint96 royaltyBps);

    CampaignNFT internal nft;
    address internal alice = makeAddr("alice");
    address internal bob = makeAddr("bob");

    function setUp() public {
        _deployPlatform();
        nft = _deployCampaign(CAMPAIGN_ID, MAX_SUPPLY);
    }

    // ------------------------------------------------------------------ initialize

    function test_initialize_setsEverything() public view {
        assertEq(nft.name(), "Brand Drop");
        assertEq(nft.symbol(), "DROP");
        assertEq(nft.baseURI(), "ipfs://campaign/");
        assertEq(nft.maxSupply(), MAX_SUPPLY);
        assertEq(nft.totalMinted(), 0);
        assertEq(nft.totalSupply(), 0);
        assertEq(nft.nextTokenId(), 1);
        assertTrue(nft.hasRole(nft.DEFAULT_ADMIN_ROLE(), brandAdmin));
        assertTrue(nft.hasRole(nft.MINTER_ROLE(), relayer));
        assertTrue(nft.hasRole(nft.MINTER_ROLE(), address(checkout)));
        assertFalse(nft.hasRole(nft.MINTER_ROLE(), brandAdmin));
        (address receiver, uint256 amount) = nft.royaltyInfo(1, 10_000);
        assertEq(receiver, royaltyReceiver);
        assertEq(amount, ROYALTY_BPS);
        assertEq(nft.MINTER_ROLE(), keccak256("MINTER_ROLE"));
    }

    function test_initialize_revertsTwice() public {
        CampaignNFT.InitParams memory p = _params(5);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        nft.initialize(p);
    }

    function test_initialize_implementationIsLocked() public {
        CampaignNFT impl = CampaignNFT(factory.implementation());
        CampaignNFT.InitParams memory p = _params(5);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        impl.initialize(p);
    }

    function _freshClone() internal returns (CampaignNFT) {
        return CampaignNFT(Clones.clone(factory.implementation()));
    }

    function test_initialize_revertsZeroAdmin() public {
        CampaignNFT c = _freshClone();
        CampaignNFT.InitParams memory p = _params(5);
        p.admin = address(0);
        vm.expectRevert(CampaignNFT.ZeroAddress.selector);
        c.initialize(p);
    }

    function test_initialize_revertsZeroMaxSupply() public {
        CampaignNFT c = _freshClone();
        vm.expectRevert(CampaignNFT.InvalidMaxSupply.selector);
        c.initialize(_params(0));
    }

    function test_initialize_revertsZeroMinter() public {
        CampaignNFT c = _freshClone();
        CampaignNFT.InitParams memory p = _params(5);
        p.minters[1] = address(0);
        vm.expectRevert(CampaignNFT.ZeroAddress.selector);
        c.initialize(p);
    }

    function test_initialize_revertsRoyaltyAboveDenominator() public {
        CampaignNFT c = _freshClone();
        CampaignNFT.InitParams memory p = _params(5);
        p.royaltyBps = 10_001;
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.InvalidRoyalty.selector, royaltyReceiver, uint96(10_001)));
        c.initialize(p);
    }

    function test_initialize_revertsRoyaltyWithoutReceiver() public {
        CampaignNFT c = _freshClone();
        CampaignNFT.InitParams memory p = _params(5);
        p.royaltyReceiver = address(0);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.InvalidRoyalty.selector, address(0), ROYALTY_BPS));
        c.initialize(p);
    }

    function test_initialize_noRoyalty() public {
        CampaignNFT c = _freshClone();
        CampaignNFT.InitParams memory p = _params(5);
        p.royaltyReceiver = address(0);
        p.royaltyBps = 0;
        c.initialize(p);
        (address receiver, uint256 amount) = c.royaltyInfo(1, 1 ether);
        assertEq(receiver, address(0));
        assertEq(amount, 0);
    }

    // ------------------------------------------------------------------ mint

    function test_mint_single() public {
        vm.expectEmit(true, true, true, true, address(nft));
        emit Transfer(address(0), alice, 1);
        vm.prank(relayer);
        uint256 first = nft.mint(alice, 1);
        assertEq(first, 1);
        assertEq(nft.ownerOf(1), alice);
        assertEq(nft.balanceOf(alice), 1);
        assertEq(nft.totalMinted(), 1);
        assertEq(nft.tokenURI(1), "ipfs://campaign/1");
    }

    function test_mint_batchReturnsFirstIdAndEmitsEveryTransfer() public {
        vm.prank(relayer);
        nft.mint(bob, 2);
        for (uint256 id = 3; id < 8; ++id) {
            vm.expectEmit(true, true, true, true, address(nft));
            emit Transfer(address(0), alice, id);
        }
        vm.prank(address(checkout));
        uint256 first = nft.mint(alice, 5);
        assertEq(first, 3);
        for (uint256 id = 3; id < 8; ++id) {
            assertEq(nft.ownerOf(id), alice);
        }
        assertEq(nft.balanceOf(alice), 5);
        assertEq(nft.totalMinted(), 7);
        assertEq(nft.nextTokenId(), 8);
    }

    function test_mint_revertsForNonMinter() public {
        _expectMissingRole(alice, nft.MINTER_ROLE());
        vm.prank(alice);
        nft.mint(alice, 1);
    }

    function test_mint_revertsZeroQuantity() public {
        vm.expectRevert(IERC721AUpgradeable.MintZeroQuantity.selector);
        vm.prank(relayer);
        nft.mint(alice, 0);
    }

    function test_mint_revertsToZeroAddress() public {
        vm.expectRevert(IERC721AUpgradeable.MintToZeroAddress.selector);
        vm.prank(relayer);
        nft.mint(address(0), 1);
    }

    function test_mint_upToCapThenReverts() public {
        vm.startPrank(relayer);
        nft.mint(alice, MAX_SUPPLY - 1);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.MaxSupplyExceeded.selector, 2, 1));
        nft.mint(alice, 2);
        nft.mint(alice, 1);
        assertEq(nft.totalMinted(), MAX_SUPPLY);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.MaxSupplyExceeded.selector, 1, 0));
        nft.mint(alice, 1);
        vm.stopPrank();
    }

    function test_mintBatch_severalRecipients() public {
        address[] memory to = new address[](3);
        uint256[] memory q = new uint256[](3);
        (to[0], to[1], to[2]) = (alice, bob, alice);
        (q[0], q[1], q[2]) = (2, 1, 3);
        vm.prank(relayer);
        uint256 first = nft.mintBatch(to, q);
        assertEq(first, 1);
        assertEq(nft.ownerOf(1), alice);
        assertEq(nft.ownerOf(2), alice);
        assertEq(nft.ownerOf(3), bob);
        assertEq(nft.ownerOf(4), alice);
        assertEq(nft.ownerOf(6), alice);
        assertEq(nft.balanceOf(alice), 5);
        assertEq(nft.totalMinted(), 6);
    }

    function test_mintBatch_reverts() public {
        address[] memory to = new address[](2);
        uint256[] memory q = new uint256[](1);
        vm.startPrank(relayer);
        vm.expectRevert(CampaignNFT.LengthMismatch.selector);
        nft.mintBatch(to, q);
        vm.expectRevert(CampaignNFT.LengthMismatch.selector);
        nft.mintBatch(new address[](0), new uint256[](0));
        to = new address[](2);
        q = new uint256[](2);
        (to[0], to[1]) = (alice, bob);
        (q[0], q[1]) = (MAX_SUPPLY, 1);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.MaxSupplyExceeded.selector, MAX_SUPPLY + 1, MAX_SUPPLY));
        nft.mintBatch(to, q);
        q[1] = 0;
        vm.expectRevert(IERC721AUpgradeable.MintZeroQuantity.selector);
        nft.mintBatch(to, q);
        vm.stopPrank();
        _expectMissingRole(alice, nft.MINTER_ROLE());
        vm.prank(alice);
        nft.mintBatch(to, q);
    }

    // ------------------------------------------------------------------ admin

    function test_setBaseURI() public {
        vm.prank(relayer);
        nft.mint(alice, 1);
        vm.expectEmit(address(nft));
        emit BaseURIUpdated("https://meta.brand.example/1001/");
        vm.expectEmit(address(nft));
        emit BatchMetadataUpdate(1, type(uint256).max);
        vm.prank(brandAdmin);
        nft.setBaseURI("https://meta.brand.example/1001/");
        assertEq(nft.tokenURI(1), "https://meta.brand.example/1001/1");
        assertEq(nft.baseURI(), "https://meta.brand.example/1001/");
    }

    function test_setBaseURI_revertsForNonAdmin() public {
        _expectMissingRole(relayer, nft.DEFAULT_ADMIN_ROLE());
        vm.prank(relayer);
        nft.setBaseURI("x");
    }

    function test_setBaseURI_emptyGivesEmptyTokenURI() public {
        vm.prank(relayer);
        nft.mint(alice, 1);
        vm.prank(brandAdmin);
        nft.setBaseURI("");
        assertEq(nft.tokenURI(1), "");
    }

    function test_tokenURI_revertsForUnmintedToken() public {
        vm.expectRevert(IERC721AUpgradeable.URIQueryForNonexistentToken.selector);
        nft.tokenURI(1);
    }

    function test_setRoyalty() public {
        vm.expectEmit(address(nft));
        emit RoyaltyUpdated(bob, 1000);
        vm.prank(brandAdmin);
        nft.setRoyalty(bob, 1000);
        (address receiver, uint256 amount) = nft.royaltyInfo(7, 1 ether);
        assertEq(receiver, bob);
        assertEq(amount, 0.1 ether);

        vm.prank(brandAdmin);
        nft.setRoyalty(address(0), 0);
        (receiver, amount) = nft.royaltyInfo(7, 1 ether);
        assertEq(receiver, address(0));
        assertEq(amount, 0);
    }

    function test_setRoyalty_reverts() public {
        vm.startPrank(brandAdmin);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.InvalidRoyalty.selector, bob, uint96(10_001)));
        nft.setRoyalty(bob, 10_001);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.InvalidRoyalty.selector, address(0), uint96(1)));
        nft.setRoyalty(address(0), 1);
        vm.stopPrank();
        _expectMissingRole(relayer, nft.DEFAULT_ADMIN_ROLE());
        vm.prank(relayer);
        nft.setRoyalty(bob, 1);
    }

    function test_adminManagesMinters() public {
        bytes32 minterRole = nft.MINTER_ROLE();
        vm.prank(brandAdmin);
        nft.grantRole(minterRole, alice);
        vm.prank(alice);
        nft.mint(alice, 1);
        vm.prank(brandAdmin);
        nft.revokeRole(minterRole, alice);
        _expectMissingRole(alice, minterRole);
        vm.prank(alice);
        nft.mint(alice, 1);
    }

    // ------------------------------------------------------------------ views / ERC-721

    function test_supportsInterface() public view {
        assertTrue(nft.supportsInterface(0x01ffc9a7)); // ERC-165
        assertTrue(nft.supportsInterface(0x80ac58cd)); // ERC-721
        assertTrue(nft.supportsInterface(0x5b5e139f)); // ERC-721 metadata
        assertTrue(nft.supportsInterface(0x2a55205a)); // EIP-2981
        assertTrue(nft.supportsInterface(0x49064906)); // EIP-4906
        assertTrue(nft.supportsInterface(0x7965db0b)); // IAccessControl
        assertFalse(nft.supportsInterface(0xffffffff));
        assertFalse(nft.supportsInterface(0x12345678));
    }

    function test_exists() public {
        assertFalse(nft.exists(1));
        vm.prank(relayer);
        nft.mint(alice, 2);
        assertTrue(nft.exists(1));
        assertTrue(nft.exists(2));
        assertFalse(nft.exists(3));
        assertFalse(nft.exists(0));
    }

    function test_transferAfterBatchMint() public {
        vm.prank(relayer);
        nft.mint(alice, 3);
        vm.prank(alice);
        nft.transferFrom(alice, bob, 2);
        assertEq(nft.ownerOf(1), alice);
        assertEq(nft.ownerOf(2), bob);
        assertEq(nft.ownerOf(3), alice);
    }

    // ------------------------------------------------------------------ fuzz

    /// royaltyInfo == floor(price * bps / 10_000) to the receiver, for any price and bps.
    function testFuzz_royaltyMath(uint256 price, uint96 bps, uint256 tokenId) public {
        bps = uint96(bound(bps, 0, 10_000));
        price = bound(price, 0, type(uint256).max / 10_000);
        vm.prank(brandAdmin);
        nft.setRoyalty(royaltyReceiver, bps);
        (address receiver, uint256 amount) = nft.royaltyInfo(tokenId, price);
        assertEq(receiver, royaltyReceiver);
        assertEq(amount, (price * bps) / 10_000);
        assertLe(amount, price);
        // floor: amount * 10_000 <= price * bps < (amount + 1) * 10_000
        assertLe(amount * 10_000, price * bps);
        assertGt((amount + 1) * 10_000, price * bps);
    }

    /// Any batch size 1..cap mints exactly that many consecutive ids to the recipient.
    function testFuzz_batchMint(uint256 cap, uint256 n, uint256 premint) public {
        cap = bound(cap, 1, 600);
        premint = bound(premint, 0, cap - 1);
        n = bound(n, 1, cap - premint);
        CampaignNFT c = _deployCampaign(uint256(keccak256(abi.encode(cap, n, premint))), cap);
        vm.startPrank(relayer);
        if (premint > 0) c.mint(bob, premint);
        uint256 first = c.mint(alice, n);
        vm.stopPrank();
        assertEq(first, premint + 1);
        assertEq(c.balanceOf(alice), n);
        assertEq(c.totalMinted(), premint + n);
        assertEq(c.ownerOf(first), alice);
        assertEq(c.ownerOf(first + n - 1), alice);
        if (premint + n < cap) {
            vm.prank(relayer);
            c.mint(bob, cap - premint - n);
        }
        assertEq(c.totalMinted(), cap);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.MaxSupplyExceeded.selector, 1, 0));
        vm.prank(relayer);
        c.mint(alice, 1);
    }

    /// Minting more than what is left always reverts and changes nothing.
    function testFuzz_mintOverCapReverts(uint256 cap, uint256 n) public {
        cap = bound(cap, 1, 10_000);
        n = bound(n, cap + 1, type(uint128).max);
        CampaignNFT c = _deployCampaign(uint256(keccak256(abi.encode("over", cap, n))), cap);
        vm.expectRevert(abi.encodeWithSelector(CampaignNFT.MaxSupplyExceeded.selector, n, cap));
        vm.prank(relayer);
        c.mint(alice, n);
        assertEq(c.totalMinted(), 0);
    }
}
