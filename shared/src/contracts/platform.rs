//! The platform's contract suite on one chain, and the calls each role makes.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::DynProvider,
};

use super::{
    CampaignFactory::{self, CampaignFactoryInstance},
    CampaignNFT::{self, CampaignNFTInstance},
    Checkout::{self, CheckoutInstance},
    OperatorAllowlistValidator::{self, OperatorAllowlistValidatorInstance},
    RewardVault::{self, RewardVaultInstance},
    TestStablecoin::{self, TestStablecoinInstance},
};

/// Who holds which role when the suite is deployed.
#[derive(Debug, Clone, Copy)]
pub struct PlatformRoles {
    /// Platform admin: treasuries, fees, signer rotation.
    pub admin: Address,
    /// The back office key allowed to deploy campaigns.
    pub deployer: Address,
    /// The payment service key that signs checkout quotes.
    pub quote_signer: Address,
    /// The redemption service key that signs reward vouchers.
    pub voucher_signer: Address,
    /// The key that submits royalty-share distributions.
    pub distributor: Address,
}

/// What a campaign's collection is created with.
#[derive(Debug, Clone)]
pub struct CampaignParams {
    pub campaign_id: u64,
    pub name: String,
    pub symbol: String,
    pub base_uri: String,
    pub max_supply: u64,
    pub royalty_receiver: Address,
    pub royalty_bps: u16,
    /// The collection's admin (brand or platform).
    pub admin: Address,
    /// Besides the Checkout contract: who may mint (the card-path relayer).
    pub relayer: Address,
}

/// The deployed suite.
#[derive(Debug, Clone)]
pub struct Platform {
    pub factory: CampaignFactoryInstance<DynProvider>,
    pub checkout: CheckoutInstance<DynProvider>,
    pub vault: RewardVaultInstance<DynProvider>,
    /// A 6-decimal test stablecoin (dev and test chains only).
    pub stablecoin: TestStablecoinInstance<DynProvider>,
    /// The transfer validator of campaigns that enforce royalties (each collection's admin
    /// keeps its own operator allowlist in it).
    pub validator: OperatorAllowlistValidatorInstance<DynProvider>,
}

impl Platform {
    /// Deploys factory, checkout, vault, test stablecoin and transfer validator, in this order,
    /// with `provider`'s wallet.
    pub async fn deploy(provider: DynProvider, roles: PlatformRoles) -> alloy::contract::Result<Self> {
        let factory = CampaignFactory::deploy(provider.clone(), roles.admin, roles.deployer).await?;
        let checkout = Checkout::deploy(provider.clone(), roles.admin, roles.quote_signer).await?;
        let vault = RewardVault::deploy(provider.clone(), roles.admin, roles.voucher_signer, roles.distributor).await?;
        let stablecoin = TestStablecoin::deploy(provider.clone(), roles.admin).await?;
        let validator = OperatorAllowlistValidator::deploy(provider).await?;
        Ok(Self { factory, checkout, vault, stablecoin, validator })
    }

    /// Attaches to an already deployed suite.
    pub fn at(
        provider: DynProvider,
        factory: Address,
        checkout: Address,
        vault: Address,
        stablecoin: Address,
        validator: Address,
    ) -> Self {
        Self {
            factory: CampaignFactory::new(factory, provider.clone()),
            checkout: Checkout::new(checkout, provider.clone()),
            vault: RewardVault::new(vault, provider.clone()),
            stablecoin: TestStablecoin::new(stablecoin, provider.clone()),
            validator: OperatorAllowlistValidator::new(validator, provider),
        }
    }

    /// The same suite, its calls sent from `provider`'s wallet.
    pub fn as_sender(&self, provider: DynProvider) -> Self {
        Self::at(
            provider,
            *self.factory.address(),
            *self.checkout.address(),
            *self.vault.address(),
            *self.stablecoin.address(),
            *self.validator.address(),
        )
    }

    /// The deployer's call creating a campaign's collection (an EIP-1167 clone at the address
    /// `predictCollection(campaignId)` returns).
    pub fn deploy_campaign(
        &self,
        params: &CampaignParams,
    ) -> alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<CampaignFactory::deployCampaignCall>> {
        let init = super::campaign_factory::CampaignNFT::InitParams {
            name: params.name.clone(),
            symbol: params.symbol.clone(),
            baseURI: params.base_uri.clone(),
            maxSupply: U256::from(params.max_supply),
            royaltyReceiver: params.royalty_receiver,
            royaltyBps: alloy::primitives::Uint::from(params.royalty_bps),
            admin: params.admin,
            minters: vec![*self.checkout.address(), params.relayer],
        };
        self.factory.deployCampaign(U256::from(params.campaign_id), init)
    }

    /// A campaign's collection.
    pub fn collection(&self, address: Address) -> CampaignNFTInstance<DynProvider> {
        CampaignNFT::new(address, self.factory.provider().clone())
    }

    /// The card path's relayer call minting `quantity` tokens to `to` in one batch.
    pub fn mint_batch(
        collection: &CampaignNFTInstance<DynProvider>,
        to: Address,
        quantity: u64,
    ) -> alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<CampaignNFT::mintCall>> {
        collection.mint(to, U256::from(quantity))
    }

    /// The distributor's call paying royalty shares in one transaction, once per `batch_id`.
    pub fn distribute(
        &self,
        campaign_id: u64,
        token: Address,
        recipients: Vec<Address>,
        amounts: Vec<U256>,
        batch_id: u64,
    ) -> alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<RewardVault::distributeCall>> {
        self.vault.distribute(U256::from(campaign_id), token, recipients, amounts, U256::from(batch_id))
    }

    /// Anyone's call (usually the relayer's) paying a signed voucher.
    pub fn redeem(
        &self,
        voucher: RewardVault::Voucher,
        signature: Bytes,
    ) -> alloy::contract::CallBuilder<&DynProvider, std::marker::PhantomData<RewardVault::redeemCall>> {
        self.vault.redeem(voucher, signature)
    }
}
