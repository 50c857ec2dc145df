// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {BrandmintTest} from "./utils/BrandmintTest.sol";
import {CampaignFactory} from "../src/CampaignFactory.sol";
import {CampaignNFT} from "../src/CampaignNFT.sol";
import {Initializable} from "@openzeppelin/contracts-upgradeable/proxy/utils/Initializable.sol";

contract CampaignFactoryTest is BrandmintTest {
    event CampaignDeployed(
        uint256 indexed campaignId,
        address indexed collection,
        address indexed admin,
        string name,
        string symbol,
        string baseURI,
        uint256 maxSupply,
        address royaltyReceiver,
        uint96 royaltyBps
    );

    function setUp() public {
        _deployPlatform();
    }

    function test_constructor() public view {
        assertTrue(factory.hasRole(factory.DEFAULT_ADMIN_ROLE(), platformAdmin));
        assertTrue(factory.hasRole(factory.DEPLOYER_ROLE(), deployerKey));
        assertEq(factory.DEPLOYER_ROLE(), keccak256("DEPLOYER_ROLE"));
        assertGt(factory.implementation().code.length, 0);
    }

    function test_constructor_withoutDeployer() public {
        CampaignFactory f = new CampaignFactory(platformAdmin, address(0));
        assertFalse(f.hasRole(f.DEPLOYER_ROLE(), address(0)));
    }

    function test_constructor_revertsZeroAdmin() public {
        vm.expectRevert(CampaignFactory.ZeroAddress.selector);
        new CampaignFactory(address(0), deployerKey);
    }

    function test_deployCampaign() public {
        address predicted = factory.predictCollection(CAMPAIGN_ID);
        assertEq(predicted.code.length, 0);
        vm.expectEmit(true, true, true, true, address(factory));
        emit CampaignDeployed(
            CAMPAIGN_ID,
            predicted,
            brandAdmin,
            "Brand Drop",
            "DROP",
            "ipfs://campaign/",
            MAX_SUPPLY,
            royaltyReceiver,
            ROYALTY_BPS
        );
        vm.prank(deployerKey);
        address collection = factory.deployCampaign(CAMPAIGN_ID, _params(MAX_SUPPLY));
        assertEq(collection, predicted);
        assertEq(factory.collectionOf(CAMPAIGN_ID), collection);
        assertEq(factory.predictCollection(CAMPAIGN_ID), collection);

        // EIP-1167 minimal proxy pointing at the implementation.
        assertEq(
            collection.code,
            abi.encodePacked(
                hex"363d3d373d3d3d363d73", factory.implementation(), hex"5af43d82803e903d91602b57fd5bf3"
            )
        );
        CampaignNFT nft = CampaignNFT(collection);
        assertEq(nft.maxSupply(), MAX_SUPPLY);
        assertEq(nft.name(), "Brand Drop");
        assertTrue(nft.hasRole(nft.MINTER_ROLE(), address(checkout)));
        assertTrue(nft.hasRole(nft.DEFAULT_ADMIN_ROLE(), brandAdmin));
        assertFalse(nft.hasRole(nft.DEFAULT_ADMIN_ROLE(), address(factory)));
    }

    function test_deployCampaign_clonesAreIndependent() public {
        CampaignNFT a = _deployCampaign(1, 10);
        CampaignNFT b = _deployCampaign(2, 20);
        assertTrue(address(a) != address(b));
        vm.prank(relayer);
        a.mint(relayer, 3);
        assertEq(a.totalMinted(), 3);
        assertEq(b.totalMinted(), 0);
        assertEq(b.maxSupply(), 20);
    }

    function test_deployCampaign_revertsTwice() public {
        CampaignNFT nft = _deployCampaign(CAMPAIGN_ID, MAX_SUPPLY);
        CampaignNFT.InitParams memory p = _params(5);
        vm.expectRevert(
            abi.encodeWithSelector(CampaignFactory.CampaignAlreadyDeployed.selector, CAMPAIGN_ID, address(nft))
        );
        vm.prank(deployerKey);
        factory.deployCampaign(CAMPAIGN_ID, p);
    }

    function test_deployCampaign_revertsForNonDeployer() public {
        CampaignNFT.InitParams memory p = _params(5);
        _expectMissingRole(platformAdmin, factory.DEPLOYER_ROLE());
        vm.prank(platformAdmin);
        factory.deployCampaign(CAMPAIGN_ID, p);
    }

    function test_deployCampaign_invalidParamsRevertAtomically() public {
        CampaignNFT.InitParams memory p = _params(0);
        vm.expectRevert(CampaignNFT.InvalidMaxSupply.selector);
        vm.prank(deployerKey);
        factory.deployCampaign(CAMPAIGN_ID, p);
        // nothing was created, the id is still free
        assertEq(factory.collectionOf(CAMPAIGN_ID), address(0));
        assertEq(factory.predictCollection(CAMPAIGN_ID).code.length, 0);
        _deployCampaign(CAMPAIGN_ID, 5);
    }

    function test_deployedCloneCannotBeReinitialized() public {
        CampaignNFT nft = _deployCampaign(CAMPAIGN_ID, MAX_SUPPLY);
        CampaignNFT.InitParams memory p = _params(5);
        p.admin = address(this);
        vm.expectRevert(Initializable.InvalidInitialization.selector);
        nft.initialize(p);
    }

    function test_adminManagesDeployers() public {
        address other = makeAddr("other");
        bytes32 role = factory.DEPLOYER_ROLE();
        vm.prank(platformAdmin);
        factory.grantRole(role, other);
        vm.prank(other);
        factory.deployCampaign(7, _params(3));
        vm.prank(platformAdmin);
        factory.revokeRole(role, other);
        CampaignNFT.InitParams memory p = _params(3);
        _expectMissingRole(other, role);
        vm.prank(other);
        factory.deployCampaign(8, p);
    }

    /// The predicted address is where the clone lands, for any campaign id, and is unique per id.
    function testFuzz_predictedAddress(uint256 campaignId, uint256 otherId) public {
        vm.assume(campaignId != otherId);
        address predicted = factory.predictCollection(campaignId);
        assertTrue(predicted != factory.predictCollection(otherId));
        CampaignNFT nft = _deployCampaign(campaignId, 1);
        assertEq(address(nft), predicted);
        assertEq(factory.collectionOf(campaignId), predicted);
    }
}
