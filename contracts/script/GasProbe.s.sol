// SPDX-License-Identifier: MIT
pragma solidity 0.8.24;

import {Script, console} from "forge-std/Script.sol";
import {CampaignFactory} from "../src/CampaignFactory.sol";
import {CampaignNFT} from "../src/CampaignNFT.sol";
import {RewardVault} from "../src/RewardVault.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {BaselineERC721} from "../src/BaselineERC721.sol";
import {Checkout} from "../src/Checkout.sol";

/// @notice Broadcasts the gas-relevant transactions to a local anvil so their real receipts
///         (gasUsed incl. 21000 intrinsic and calldata) can be read. See scripts/gas-anvil.sh.
contract GasProbe is Script {
    // anvil's well-known dev keys 0 and 1.
    uint256 constant DEPLOYER_PK = 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80;
    uint256 constant SIGNER_PK = 0x59c6995e998f97a5a0044966f0945003ee9c7a5b4a8c4bda1a1e0f0fcdd1c4b5;

    function run() external {
        address deployer = vm.addr(DEPLOYER_PK);
        address signer = vm.addr(SIGNER_PK);

        vm.startBroadcast(DEPLOYER_PK);
        TestStablecoin usd = new TestStablecoin(deployer);
        RewardVault vault = new RewardVault(deployer, signer, deployer);
        vault.setCampaignAdmin(1, deployer);
        usd.mint(deployer, 1e15);
        usd.approve(address(vault), type(uint256).max);
        vault.fund(1, address(usd), 1e14);

        // reference: a plain ERC-20 transfer to a fresh address (the floor inside every ERC-20 payout)
        usd.transfer(address(0xF4E5), 25_000_000);

        // redeem #0 opens a fresh bitmap word, #1.. reuse it.
        for (uint256 id; id < 3; ++id) {
            RewardVault.Voucher memory v = RewardVault.Voucher({
                redemptionId: id,
                campaignId: 1,
                tokenId: 42,
                recipient: address(uint160(uint256(keccak256(abi.encode("fresh", id))))),
                token: address(usd),
                amount: 25_000_000,
                deadline: 2_000_000_000
            });
            (uint8 sv, bytes32 r, bytes32 s) = vm.sign(SIGNER_PK, vault.hashVoucher(v));
            vault.redeem(v, abi.encodePacked(r, s, sv));
        }
        // the same vouchers through redeemCompact (ids 3, 4)
        for (uint256 id = 3; id < 5; ++id) {
            RewardVault.Voucher memory v = RewardVault.Voucher({
                redemptionId: id,
                campaignId: 1,
                tokenId: 42,
                recipient: address(uint160(uint256(keccak256(abi.encode("fresh", id))))),
                token: address(usd),
                amount: 25_000_000,
                deadline: 2_000_000_000
            });
            (uint8 sv, bytes32 r, bytes32 s) = vm.sign(SIGNER_PK, vault.hashVoucher(v));
            vault.redeemCompact(
                (v.redemptionId << 192) | (v.campaignId << 128) | v.tokenId,
                (uint256(uint160(v.recipient)) << 96) | v.amount,
                (uint256(uint160(v.token)) << 96) | v.deadline,
                r,
                bytes32((uint256(sv - 27) << 255) | uint256(s))
            );
        }

        // distribute to 1, 10, 100 fresh recipients (batch ids 0,1,2 share a word).
        uint256[3] memory sizes = [uint256(1), 10, 100];
        for (uint256 b; b < 3; ++b) {
            address[] memory to = new address[](sizes[b]);
            uint256[] memory amounts = new uint256[](sizes[b]);
            for (uint256 i; i < sizes[b]; ++i) {
                to[i] = address(uint160(uint256(keccak256(abi.encode("dist", b, i)))));
                amounts[i] = 1_000_000 + i;
            }
            vault.distribute(1, address(usd), to, amounts, b);
        }

        // mints
        CampaignFactory factory = new CampaignFactory(deployer, deployer);
        address[] memory minters = new address[](1);
        minters[0] = deployer;
        CampaignNFT nft = CampaignNFT(
            factory.deployCampaign(
                7,
                CampaignNFT.InitParams({
                    name: "Probe",
                    symbol: "PRB",
                    baseURI: "https://meta.example/7/",
                    maxSupply: 10_000,
                    royaltyReceiver: deployer,
                    royaltyBps: 500,
                    admin: deployer,
                    minters: minters
                })
            )
        );
        nft.mint(address(0xB0B1), 1);
        nft.mint(address(0xB0B2), 1);
        nft.mint(address(0xB0B3), 10);
        nft.mint(address(0xB0B4), 100);
        // wallet checkout: ERC-20 and ETH quotes, 1 and 5 tokens, with a 2.5% platform fee
        Checkout checkout = new Checkout(deployer, signer);
        checkout.setCollectionTreasury(address(nft), address(0x7EA5));
        checkout.setFee(address(0xFEE), 250);
        nft.grantRole(nft.MINTER_ROLE(), address(checkout));
        usd.approve(address(checkout), type(uint256).max);
        for (uint256 i; i < 4; ++i) {
            Checkout.Quote memory q = Checkout.Quote({
                orderId: keccak256(abi.encode("order", i)),
                buyer: address(uint160(0xB000 + i)),
                collection: address(nft),
                quantity: i % 2 == 0 ? 1 : 5,
                payToken: i < 2 ? address(usd) : address(0),
                amount: i < 2 ? 49_990_000 : 0.02 ether,
                deadline: 2_000_000_000
            });
            (uint8 sv, bytes32 r, bytes32 s) = vm.sign(SIGNER_PK, checkout.hashQuote(q));
            checkout.buy{value: i < 2 ? 0 : q.amount}(q, abi.encodePacked(r, s, sv));
        }

        BaselineERC721 base = new BaselineERC721();
        base.mint(address(0xB0B1));
        base.mint(address(0xB0B2));
        vm.stopBroadcast();
        console.log("vault", address(vault));
    }
}
