// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {CampaignNFT} from "./CampaignNFT.sol";

/// @title CampaignFactory
/// @notice Deploys one {CampaignNFT} per campaign as an EIP-1167 minimal proxy (clone) of a single
///         implementation, created with CREATE2 keyed by `campaignId`: the collection address is
///         known before deployment ({predictCollection}) and a campaign id can be deployed once.
/// @dev The implementation is created by this factory's constructor, so a deployment is one
///      transaction. Roles: `DEFAULT_ADMIN_ROLE` (platform admin: manages deployers),
///      `DEPLOYER_ROLE` (platform back office / deployer key: calls {deployCampaign}).
contract CampaignFactory is AccessControl {
    bytes32 public constant DEPLOYER_ROLE = keccak256("DEPLOYER_ROLE");

    /// @notice The CampaignNFT implementation every clone delegates to.
    address public immutable implementation;

    /// @notice campaignId => collection (address(0) when not deployed yet).
    mapping(uint256 campaignId => address collection) public collectionOf;

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

    error ZeroAddress();
    error CampaignAlreadyDeployed(uint256 campaignId, address collection);

    /// @param admin    platform admin (DEFAULT_ADMIN_ROLE).
    /// @param deployer optional first holder of DEPLOYER_ROLE (address(0) = none).
    constructor(address admin, address deployer) {
        if (admin == address(0)) revert ZeroAddress();
        implementation = address(new CampaignNFT());
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        if (deployer != address(0)) _grantRole(DEPLOYER_ROLE, deployer);
    }

    /// @notice Creates and initializes the campaign's collection in one transaction.
    function deployCampaign(uint256 campaignId, CampaignNFT.InitParams calldata params)
        external
        onlyRole(DEPLOYER_ROLE)
        returns (address collection)
    {
        address existing = collectionOf[campaignId];
        if (existing != address(0)) revert CampaignAlreadyDeployed(campaignId, existing);
        collection = Clones.cloneDeterministic(implementation, _salt(campaignId));
        collectionOf[campaignId] = collection;
        CampaignNFT(collection).initialize(params);
        emit CampaignDeployed(
            campaignId,
            collection,
            params.admin,
            params.name,
            params.symbol,
            params.baseURI,
            params.maxSupply,
            params.royaltyReceiver,
            params.royaltyBps
        );
    }

    /// @notice The address {deployCampaign} uses (or used) for `campaignId`.
    function predictCollection(uint256 campaignId) external view returns (address) {
        return Clones.predictDeterministicAddress(implementation, _salt(campaignId));
    }

    function _salt(uint256 campaignId) private pure returns (bytes32) {
        return bytes32(campaignId);
    }
}
