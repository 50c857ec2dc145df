// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {Vm} from "forge-std/Vm.sol";
import {BrandmintTest} from "./utils/BrandmintTest.sol";
import {CampaignNFT} from "../src/CampaignNFT.sol";
import {ConsiderationInterface} from "seaport-types/src/interfaces/ConsiderationInterface.sol";
import {
    AdditionalRecipient,
    BasicOrderParameters,
    ConsiderationItem,
    OfferItem,
    Order,
    OrderComponents,
    OrderParameters,
    ReceivedItem,
    SpentItem
} from "seaport-types/src/lib/ConsiderationStructs.sol";
import {BasicOrderType, ItemType, OrderType} from "seaport-types/src/lib/ConsiderationEnums.sol";
import {OperatorAllowlistValidator} from "../src/OperatorAllowlistValidator.sol";
import {ConduitControllerInterface} from "seaport-types/src/interfaces/ConduitControllerInterface.sol";

/// @notice Real Seaport 1.6 (deployed from the committed artifacts/Seaport.json, built by
///         scripts/build-seaport.sh) selling a CampaignNFT with its EIP-2981 royalty as a
///         consideration item — the on-chain shape the indexer's royalty engine parses.
contract SeaportSaleTest is BrandmintTest {
    event OrderFulfilled(
        bytes32 orderHash,
        address indexed offerer,
        address indexed zone,
        address recipient,
        SpentItem[] offer,
        ReceivedItem[] consideration
    );

    bytes32 internal constant ORDER_FULFILLED_TOPIC =
        0x9d9af8e38d66c62e2c12f0225249fd9d721c54b83f48d9352c97c6cacdcb6f31;

    ConsiderationInterface internal seaport;
    address internal conduitController;
    CampaignNFT internal nft;
    uint256 internal sellerPk = 0x5E11E4;
    address internal seller;
    address internal buyer = makeAddr("secondaryBuyer");

    function _deployFromArtifact(string memory name, bytes memory args) internal returns (address addr) {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/artifacts/", name, ".json"));
        bytes memory code = abi.encodePacked(vm.parseJsonBytes(json, ".bytecode.object"), args);
        assembly {
            addr := create(0, add(code, 0x20), mload(code))
        }
        require(addr != address(0), "deploy failed");
    }

    function setUp() public {
        _deployPlatform();
        conduitController = _deployFromArtifact("ConduitController", "");
        seaport = ConsiderationInterface(_deployFromArtifact("Seaport", abi.encode(conduitController)));
        nft = _deployCampaign(CAMPAIGN_ID, MAX_SUPPLY);
        seller = vm.addr(sellerPk);
        vm.prank(relayer);
        nft.mint(seller, 3);
        vm.prank(seller);
        nft.setApprovalForAll(address(seaport), true);
        vm.deal(buyer, 100 ether);
    }

    function test_seaportArtifactIsSeaport16() public view {
        (string memory version,, address cc) = seaport.information();
        assertEq(version, "1.6");
        assertEq(cc, conduitController);
        assertEq(seaport.name(), "Seaport");
    }

    function _listing(uint256 tokenId, uint256 price)
        internal
        view
        returns (OrderParameters memory params, uint256 royalty, bytes32 orderHash, bytes memory signature)
    {
        return _listingVia(tokenId, price, bytes32(0));
    }

    /// A listing whose token moves through the conduit of `conduitKey` (Seaport itself for 0).
    function _listingVia(uint256 tokenId, uint256 price, bytes32 conduitKey)
        internal
        view
        returns (OrderParameters memory params, uint256 royalty, bytes32 orderHash, bytes memory signature)
    {
        address receiver;
        (receiver, royalty) = nft.royaltyInfo(tokenId, price);
        assertEq(receiver, royaltyReceiver);

        OfferItem[] memory offer = new OfferItem[](1);
        offer[0] = OfferItem(ItemType.ERC721, address(nft), tokenId, 1, 1);
        ConsiderationItem[] memory consideration = new ConsiderationItem[](2);
        consideration[0] = ConsiderationItem(ItemType.NATIVE, address(0), 0, price - royalty, price - royalty, payable(seller));
        consideration[1] = ConsiderationItem(ItemType.NATIVE, address(0), 0, royalty, royalty, payable(receiver));

        params = OrderParameters({
            offerer: seller,
            zone: address(0),
            offer: offer,
            consideration: consideration,
            orderType: OrderType.FULL_OPEN,
            startTime: block.timestamp,
            endTime: block.timestamp + 1 days,
            zoneHash: bytes32(0),
            salt: uint256(keccak256(abi.encode(tokenId, price))),
            conduitKey: conduitKey,
            totalOriginalConsiderationItems: 2
        });
        OrderComponents memory components = OrderComponents({
            offerer: params.offerer,
            zone: params.zone,
            offer: params.offer,
            consideration: params.consideration,
            orderType: params.orderType,
            startTime: params.startTime,
            endTime: params.endTime,
            zoneHash: params.zoneHash,
            salt: params.salt,
            conduitKey: params.conduitKey,
            counter: seaport.getCounter(seller)
        });
        orderHash = seaport.getOrderHash(components);
        (, bytes32 domainSeparator,) = seaport.information();
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(sellerPk, keccak256(abi.encodePacked("\x19\x01", domainSeparator, orderHash)));
        signature = abi.encodePacked(r, s, v);
    }

    function _expectOrderFulfilled(bytes32 orderHash, uint256 tokenId, uint256 price, uint256 royalty) internal {
        SpentItem[] memory spent = new SpentItem[](1);
        spent[0] = SpentItem(ItemType.ERC721, address(nft), tokenId, 1);
        ReceivedItem[] memory received = new ReceivedItem[](2);
        received[0] = ReceivedItem(ItemType.NATIVE, address(0), 0, price - royalty, payable(seller));
        received[1] = ReceivedItem(ItemType.NATIVE, address(0), 0, royalty, payable(royaltyReceiver));
        vm.expectEmit(true, true, true, true, address(seaport));
        emit OrderFulfilled(orderHash, seller, address(0), buyer, spent, received);
    }

    /// Advanced path: fulfillOrder with the royalty as an explicit consideration item.
    function test_fulfillOrder_paysRoyalty() public {
        uint256 price = 1.37 ether;
        (OrderParameters memory params, uint256 royalty, bytes32 orderHash, bytes memory sig) = _listing(2, price);
        assertEq(royalty, (price * ROYALTY_BPS) / 10_000);

        _expectOrderFulfilled(orderHash, 2, price, royalty);
        vm.recordLogs();
        vm.prank(buyer);
        bool ok = seaport.fulfillOrder{value: price}(Order(params, sig), bytes32(0));
        assertTrue(ok);

        assertEq(nft.ownerOf(2), buyer);
        assertEq(royaltyReceiver.balance, royalty);
        assertEq(seller.balance, price - royalty);
        assertEq(buyer.balance, 100 ether - price);

        // the raw log has the documented shape: topic0, offerer, zone (3 topics)
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 found;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(seaport) && logs[i].topics[0] == ORDER_FULFILLED_TOPIC) {
                ++found;
                assertEq(logs[i].topics.length, 3);
                assertEq(logs[i].topics[1], bytes32(uint256(uint160(seller))));
                assertEq(logs[i].topics[2], bytes32(0));
            }
        }
        assertEq(found, 1);
        assertEq(
            keccak256(
                "OrderFulfilled(bytes32,address,address,address,(uint8,address,uint256,uint256)[],(uint8,address,uint256,uint256,address)[])"
            ),
            ORDER_FULFILLED_TOPIC
        );
    }

    /// Basic path (what most marketplace listings use): royalty as an additional recipient.
    function test_fulfillBasicOrder_paysRoyalty() public {
        uint256 price = 0.5 ether;
        (OrderParameters memory params, uint256 royalty, bytes32 orderHash, bytes memory sig) = _listing(3, price);
        AdditionalRecipient[] memory extra = new AdditionalRecipient[](1);
        extra[0] = AdditionalRecipient(royalty, payable(royaltyReceiver));
        BasicOrderParameters memory basic = BasicOrderParameters({
            considerationToken: address(0),
            considerationIdentifier: 0,
            considerationAmount: price - royalty,
            offerer: payable(seller),
            zone: address(0),
            offerToken: address(nft),
            offerIdentifier: 3,
            offerAmount: 1,
            basicOrderType: BasicOrderType.ETH_TO_ERC721_FULL_OPEN,
            startTime: params.startTime,
            endTime: params.endTime,
            zoneHash: bytes32(0),
            salt: params.salt,
            offererConduitKey: bytes32(0),
            fulfillerConduitKey: bytes32(0),
            totalOriginalAdditionalRecipients: 1,
            additionalRecipients: extra,
            signature: sig
        });

        _expectOrderFulfilled(orderHash, 3, price, royalty);
        vm.prank(buyer);
        assertTrue(seaport.fulfillBasicOrder{value: price}(basic));
        assertEq(nft.ownerOf(3), buyer);
        assertEq(royaltyReceiver.balance, royalty);
        assertEq(seller.balance, price - royalty);
    }

    /// A listing can not be filled twice.
    function test_fulfillOrder_onlyOnce() public {
        uint256 price = 1 ether;
        (OrderParameters memory params,,, bytes memory sig) = _listing(1, price);
        vm.prank(buyer);
        seaport.fulfillOrder{value: price}(Order(params, sig), bytes32(0));
        vm.expectRevert();
        vm.prank(buyer);
        seaport.fulfillOrder{value: price}(Order(params, sig), bytes32(0));
    }

    /// Royalty enforcement on: an operator not on the allowlist cannot move a token, the owner
    /// can, and a Seaport sale (Seaport allowlisted) goes through with its royalty.
    function test_enforcement_refusesOtherOperators_andLetsSeaportSell() public {
        OperatorAllowlistValidator validator = new OperatorAllowlistValidator();
        address operator = makeAddr("otherMarketplace");
        vm.startPrank(brandAdmin);
        nft.setTransferValidator(address(validator));
        validator.setOperator(address(nft), address(seaport), true);
        vm.stopPrank();
        assertEq(nft.getTransferValidator(), address(validator));

        vm.prank(seller);
        nft.setApprovalForAll(operator, true);
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(OperatorAllowlistValidator.OperatorNotAllowed.selector, address(nft), operator)
        );
        nft.transferFrom(seller, buyer, 1);

        // Only the collection's admin keeps its list.
        vm.prank(operator);
        vm.expectRevert(
            abi.encodeWithSelector(OperatorAllowlistValidator.NotCollectionAdmin.selector, address(nft), operator)
        );
        validator.setOperator(address(nft), operator, true);

        uint256 price = 1 ether;
        (OrderParameters memory params, uint256 royalty,, bytes memory sig) = _listing(2, price);
        vm.prank(buyer);
        assertTrue(seaport.fulfillOrder{value: price}(Order(params, sig), bytes32(0)));
        assertEq(nft.ownerOf(2), buyer);
        assertEq(royaltyReceiver.balance, royalty);

        // The owner moves its own token; turned off, any approved operator can again.
        vm.prank(seller);
        nft.transferFrom(seller, buyer, 3);
        vm.prank(brandAdmin);
        nft.setTransferValidator(address(0));
        vm.prank(operator);
        nft.transferFrom(seller, buyer, 1);
        assertEq(nft.ownerOf(1), buyer);
    }

    /// Royalty enforcement with a marketplace's conduit (as OpenSea's) on the allowlist and
    /// Seaport itself not: a listing through the conduit sells; one without it is refused.
    function test_enforcement_letsAnAllowlistedConduitSell() public {
        bytes32 conduitKey = bytes32(uint256(uint160(address(this))) << 96);
        ConduitControllerInterface controller = ConduitControllerInterface(conduitController);
        address conduit = controller.createConduit(conduitKey, address(this));
        controller.updateChannel(conduit, address(seaport), true);
        OperatorAllowlistValidator validator = new OperatorAllowlistValidator();
        vm.startPrank(brandAdmin);
        nft.setTransferValidator(address(validator));
        validator.setOperator(address(nft), conduit, true);
        vm.stopPrank();
        vm.prank(seller);
        nft.setApprovalForAll(conduit, true);

        uint256 price = 1 ether;
        (OrderParameters memory params, uint256 royalty,, bytes memory sig) = _listingVia(1, price, conduitKey);
        vm.prank(buyer);
        assertTrue(seaport.fulfillOrder{value: price}(Order(params, sig), bytes32(0)));
        assertEq(nft.ownerOf(1), buyer);
        assertEq(royaltyReceiver.balance, royalty);

        (params,,, sig) = _listing(2, price);
        vm.prank(buyer);
        vm.expectRevert(
            abi.encodeWithSelector(OperatorAllowlistValidator.OperatorNotAllowed.selector, address(nft), address(seaport))
        );
        seaport.fulfillOrder{value: price}(Order(params, sig), bytes32(0));
        assertEq(nft.ownerOf(2), seller);
    }
}
