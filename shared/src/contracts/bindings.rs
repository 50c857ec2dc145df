//! `sol!` bindings generated from the checked-in artifacts (ABI + creation bytecode). Each
//! contract gets its own module because an ABI that uses another contract's struct (the
//! factory takes `CampaignNFT.InitParams`) makes `sol!` emit a module of that name too.

#![allow(missing_docs, missing_debug_implementations, unreachable_pub, clippy::too_many_arguments)]

macro_rules! binding {
    ($module:ident, $contract:ident, $artifact:literal) => {
        pub mod $module {
            alloy::sol!(
                #[sol(rpc)]
                #[derive(Debug)]
                $contract,
                $artifact
            );
        }
        pub use $module::$contract;
    };
}

binding!(campaign_nft, CampaignNFT, "../contracts/artifacts/CampaignNFT.json");
binding!(campaign_factory, CampaignFactory, "../contracts/artifacts/CampaignFactory.json");
binding!(checkout, Checkout, "../contracts/artifacts/Checkout.json");
binding!(reward_vault, RewardVault, "../contracts/artifacts/RewardVault.json");
binding!(test_stablecoin, TestStablecoin, "../contracts/artifacts/TestStablecoin.json");
binding!(baseline_erc721, BaselineERC721, "../contracts/artifacts/BaselineERC721.json");
binding!(test_smart_wallet, TestSmartWallet, "../contracts/artifacts/TestSmartWallet.json");
binding!(
    operator_allowlist_validator,
    OperatorAllowlistValidator,
    "../contracts/artifacts/OperatorAllowlistValidator.json"
);

/// The EIP-1271 interface, to check contract wallets' signatures.
pub mod erc1271 {
    alloy::sol! {
        #[sol(rpc)]
        interface IERC1271 {
            function isValidSignature(bytes32 hash, bytes signature) external view returns (bytes4 magicValue);
        }
    }
}
pub use erc1271::IERC1271;
