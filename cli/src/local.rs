//! `brandmint deploy-local`: the platform's contracts on a local anvil, for `cargo xtask dev`,
//! and the marketplace beside them (Seaport 1.6, from the committed artifacts), where local
//! resales happen. Deterministic (anvil's well-known accounts, fresh nonces), so a reused node
//! is recognised and left as it is.

use alloy::{
    primitives::{Address, U256},
    providers::{DynProvider, Provider, ProviderBuilder},
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

/// anvil's account 9: deploys the local Seaport (its first two transactions). A public test
/// key, for local chains only.
const MARKETPLACE_DEPLOYER_KEY: &str = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6";

/// Where `deploy-local` puts the suite and the marketplace on a fresh anvil.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddresses {
    pub factory: Address,
    pub checkout: Address,
    pub vault: Address,
    pub stablecoin: Address,
    pub validator: Address,
    pub seaport: Address,
}

impl LocalAddresses {
    /// The first CREATE addresses of the fresh deployers (anvil's accounts 0 and 9).
    pub fn predicted() -> anyhow::Result<Self> {
        let admin = ANVIL_KEYS[0].parse::<PrivateKeySigner>()?.address();
        let created: Vec<Address> = (0..5).map(|nonce| admin.create(nonce)).collect();
        let marketplace = MARKETPLACE_DEPLOYER_KEY.parse::<PrivateKeySigner>()?.address();
        Ok(Self {
            factory: created[0],
            checkout: created[1],
            vault: created[2],
            stablecoin: created[3],
            validator: created[4],
            seaport: fakes::seaport::predicted(marketplace),
        })
    }

    /// As environment lines (`CAMPAIGN_FACTORY_ADDRESS=0x…`), what `cargo xtask dev` passes to
    /// the platform and the fakes.
    pub fn env_lines(&self) -> String {
        [
            ("CAMPAIGN_FACTORY_ADDRESS", self.factory),
            ("CHECKOUT_ADDRESS", self.checkout),
            ("REWARD_VAULT_ADDRESS", self.vault),
            ("STABLECOIN_ADDRESS", self.stablecoin),
            ("TRANSFER_VALIDATOR_ADDRESS", self.validator),
            ("SEAPORT_ADDRESS", self.seaport),
        ]
        .iter()
        .map(|(name, address)| format!("{name}={}\n", address.to_checksum(None)))
        // anvil mines a block per transaction: nothing more will come to confirm a block.
        .chain(["INDEXER_CONFIRMATIONS=0\n".to_owned()])
        .collect()
    }
}

/// Deploys (or finds) the suite and the marketplace; returns their addresses as
/// [`LocalAddresses::env_lines`]. The platform's relayer (account 0) gets 1,000,000 test dollars
/// to fund rewards with. Campaigns are the back office's to deploy (`brandmint seed-demo` deploys
/// the demo campaign through it).
pub async fn deploy(rpc_url: &str) -> anyhow::Result<String> {
    shared::chain::install_crypto_provider();
    let rpc: reqwest::Url = rpc_url.parse().context("RPC_URL")?;
    let admin: PrivateKeySigner = ANVIL_KEYS[0].parse()?;
    let quote_signer: PrivateKeySigner = ANVIL_KEYS[1].parse()?;
    let voucher_signer: PrivateKeySigner = ANVIL_KEYS[2].parse()?;
    let me = admin.address();
    let provider = wallet(admin, &rpc);
    let at = LocalAddresses::predicted()?;
    // Deployed from a fresh account the suite sits at the first CREATE addresses (the dollars
    // are minted after all five).
    if provider.get_code_at(at.factory).await?.is_empty() {
        let roles = PlatformRoles {
            admin: me,
            deployer: me,
            quote_signer: quote_signer.address(),
            voucher_signer: voucher_signer.address(),
            distributor: me,
        };
        let platform = Platform::deploy(provider.clone(), roles).await?;
        anyhow::ensure!(
            *platform.factory.address() == at.factory,
            "account 0 had sent transactions before the platform was deployed: stop this anvil (`cargo xtask infra \
             down dev`) and run again"
        );
        let dollars = U256::from(1_000_000_000_000_u64); // 1,000,000 tUSD (6 decimals)
        platform.stablecoin.mint(me, dollars).send().await?.get_receipt().await?;
    } else {
        anyhow::ensure!(
            !provider.get_code_at(at.validator).await?.is_empty(),
            "this anvil holds an older platform without its transfer validator: stop it (`cargo xtask infra down dev`) \
             and run again"
        );
    }
    if provider.get_code_at(at.seaport).await?.is_empty() {
        let deployer: PrivateKeySigner = MARKETPLACE_DEPLOYER_KEY.parse()?;
        let seaport = fakes::seaport::deploy(wallet(deployer, &rpc)).await?;
        anyhow::ensure!(
            *seaport.address() == at.seaport,
            "account 9 had sent transactions before Seaport was deployed: stop this anvil (`cargo xtask infra down \
             dev`) and run again"
        );
    }
    Ok(at.env_lines())
}

/// A provider that signs with `key` on the node at `rpc`.
pub fn wallet(key: PrivateKeySigner, rpc: &reqwest::Url) -> DynProvider {
    ProviderBuilder::new().with_simple_nonce_management().wallet(key).connect_http(rpc.clone()).erased()
}
