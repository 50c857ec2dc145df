//! `brandmint deploy-local`: the platform's contracts on a local anvil, for `cargo xtask dev`. Deterministic (anvil's well-known accounts, fresh nonces), so a reused
//! node is recognised and left as it is.

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ProviderBuilder},
    signers::local::PrivateKeySigner,
};
use anyhow::Context;
use shared::contracts::{Platform, PlatformRoles};

/// anvil's accounts 0–2 (mnemonic "test test … junk"): platform admin/deployer/relayer, quote
/// signer, voucher signer. Public test keys, for local chains only.
const ANVIL_KEYS: [&str; 3] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103e29f0502e07e17ba31d7b643d5d5f24e5b6d1ca",
];

/// The platform's contract addresses as environment lines (`CAMPAIGN_FACTORY_ADDRESS=0x…`),
/// what `cargo xtask dev` passes to the platform.
pub fn env_lines(platform: &Platform) -> String {
    [
        ("CAMPAIGN_FACTORY_ADDRESS", *platform.factory.address()),
        ("CHECKOUT_ADDRESS", *platform.checkout.address()),
        ("REWARD_VAULT_ADDRESS", *platform.vault.address()),
        ("STABLECOIN_ADDRESS", *platform.stablecoin.address()),
        ("TRANSFER_VALIDATOR_ADDRESS", *platform.validator.address()),
    ]
    .iter()
    .map(|(name, address)| format!("{name}={}\n", address.to_checksum(None)))
    // anvil mines a block per transaction: nothing more will come to confirm a block.
    .chain(["INDEXER_CONFIRMATIONS=0\n".to_owned()])
    .collect()
}

/// Deploys (or finds) the suite; returns its addresses as [`env_lines`]. The platform's
/// relayer (account 0) gets 1,000,000 test dollars to fund rewards with. Campaigns are the back
/// office's to deploy (`brandmint seed-demo` deploys the demo campaign through it).
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
    // Deployed from a fresh account the suite sits at the first CREATE addresses (the dollars
    // are minted after all five).
    let addresses: Vec<Address> = (0..5).map(|nonce| me.create(nonce)).collect();
    let platform = if provider.get_code_at(addresses[0]).await?.is_empty() {
        let roles = PlatformRoles {
            admin: me,
            deployer: me,
            quote_signer: quote_signer.address(),
            voucher_signer: voucher_signer.address(),
            distributor: me,
        };
        let platform = Platform::deploy(provider.clone(), roles).await?;
        let dollars = U256::from(1_000_000_000_000_u64); // 1,000,000 tUSD (6 decimals)
        platform.stablecoin.mint(me, dollars).send().await?.get_receipt().await?;
        platform
    } else {
        anyhow::ensure!(
            !provider.get_code_at(addresses[4]).await?.is_empty(),
            "this anvil holds an older platform without its transfer validator: stop it (`cargo xtask infra down dev`) \
             and run again"
        );
        Platform::at(provider.clone(), addresses[0], addresses[1], addresses[2], addresses[3], addresses[4])
    };
    Ok(env_lines(&platform))
}
