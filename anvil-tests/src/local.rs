//! `brandmint deploy-local`: the platform's contracts and a demo campaign on a local anvil, for
//! `cargo xtask dev`. Deterministic (anvil's well-known accounts, fresh nonces), so a reused
//! node is recognised and left as it is.

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::Context;
use shared::contracts::{CampaignParams, Platform, PlatformRoles};

/// anvil's accounts 0–2 (mnemonic "test test … junk"): platform admin/deployer/relayer, quote
/// signer, voucher signer. Public test keys, for local chains only.
const ANVIL_KEYS: [&str; 3] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103e29f0502e07e17ba31d7b643d5d5f24e5b6d1ca",
];
/// The demo holder: anvil's account 9.
const DEMO_HOLDER: &str = "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720";

/// Deploys (or finds) the suite and the demo campaign; returns a printable summary.
pub async fn deploy(rpc_url: &str) -> anyhow::Result<String> {
    shared::chain::install_crypto_provider();
    let admin: PrivateKeySigner = ANVIL_KEYS[0].parse()?;
    let quote_signer: PrivateKeySigner = ANVIL_KEYS[1].parse()?;
    let voucher_signer: PrivateKeySigner = ANVIL_KEYS[2].parse()?;
    let me = admin.address();
    let provider = ProviderBuilder::new()
        .with_simple_nonce_management()
        .wallet(admin)
        .connect_http(rpc_url.parse().context("RPC_URL")?)
        .erased();
    // Deployed from a fresh account the suite sits at the first four CREATE addresses.
    let addresses: Vec<Address> = (0..4).map(|nonce| me.create(nonce)).collect();
    let platform = if provider.get_code_at(addresses[0]).await?.is_empty() {
        let roles = PlatformRoles {
            admin: me,
            deployer: me,
            quote_signer: quote_signer.address(),
            voucher_signer: voucher_signer.address(),
            distributor: me,
        };
        let platform = Platform::deploy(provider.clone(), roles).await?;
        demo_campaign(&platform, me).await?;
        platform
    } else {
        Platform::at(provider.clone(), addresses[0], addresses[1], addresses[2], addresses[3])
    };
    let collection = platform.factory.collectionOf(U256::from(1)).call().await?;
    let minted = platform.collection(collection).totalMinted().call().await?;
    Ok(format!(
        "  CampaignFactory  {}\n  Checkout         {}\n  RewardVault      {}\n  TestStablecoin   {}\n  \
         demo campaign 1  {collection} (\"Brandmint Demo Drop\", {minted} minted to {DEMO_HOLDER}, vault funded)",
        platform.factory.address(),
        platform.checkout.address(),
        platform.vault.address(),
        platform.stablecoin.address(),
    ))
}

async fn demo_campaign(platform: &Platform, me: Address) -> anyhow::Result<()> {
    let params = CampaignParams {
        campaign_id: 1,
        name: "Brandmint Demo Drop".into(),
        symbol: "DEMO".into(),
        base_uri: "http://127.0.0.1:8081/metadata/1/".into(),
        max_supply: 1_000,
        royalty_receiver: me,
        royalty_bps: 500,
        admin: me,
        relayer: me,
    };
    platform.deploy_campaign(&params).send().await?.get_receipt().await?;
    let collection = platform.factory.collectionOf(U256::from(1)).call().await?;
    platform.checkout.setCollectionTreasury(collection, me).send().await?.get_receipt().await?;
    let holder: Address = DEMO_HOLDER.parse()?;
    Platform::mint_batch(&platform.collection(collection), holder, 3).send().await?.get_receipt().await?;
    let funding = U256::from(10_000_000_000_u64); // 10,000 tUSD (6 decimals)
    platform.stablecoin.mint(me, funding).send().await?.get_receipt().await?;
    platform.stablecoin.approve(*platform.vault.address(), funding).send().await?.get_receipt().await?;
    platform.vault.setCampaignAdmin(U256::from(1), me).send().await?.get_receipt().await?;
    platform.vault.fund(U256::from(1), *platform.stablecoin.address(), funding).send().await?.get_receipt().await?;
    Ok(())
}
