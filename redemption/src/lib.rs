//! The redemption service: Holders redeem rewards by QR code or wallet signature; rewards are paid by contract calls.
//!
//! Wallet sign-in and KYC; redeeming token and perk rewards with a wallet (eligibility from the
//! indexer), with a brand's printed QR code, or by a counter code scanned at a store, each paid
//! by the reward vault exactly once and above a threshold only after KYC; and royalty-share
//! rewards paid through the reward vault.
//!
//! A library (its routes, subscribers and daemons) with a thin `main.rs`, so the all-in-one
//! `brandmint` binary and the tests build it the same way.

mod claims;
mod codes;
pub mod config;
mod counter;
mod customers;
mod kyc;
mod payouts;
mod redeem;
pub mod royalty_shares;

use std::sync::Arc;

use shared::{
    AppState, ServiceSpec,
    config::HttpConfig,
    daemon::Daemon,
    service::{Part, Resources},
    workflow::outbox::Subscriber,
};
use utoipa_axum::router::OpenApiRouter;

/// How the redemption service is assembled.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "redemption",
    description: "Holders redeem rewards by QR code or wallet signature; rewards are paid by contract calls.",
    routes,
    addr,
    subscribers,
    daemons,
    prepare,
    ready: ServiceSpec::no_own_check,
};

impl Part for config::RedemptionConfig {
    fn build(resources: &Resources) -> anyhow::Result<Self> {
        Ok(Self::load(resources.config())?)
    }
}

/// Reads the service's own configuration section (voucher signer, claim limits, denylist).
fn prepare(resources: &Resources) -> anyhow::Result<()> {
    resources.part::<config::RedemptionConfig>().map(drop)
}

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.redemption_addr
}

/// The service's own routes (health, metrics and docs are added by `shared`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(customers::router())
        .merge(kyc::router())
        .merge(redeem::router())
        .merge(codes::router())
        .merge(counter::router())
}

/// Royalty shares accrue from sales and settle from their distributions' outcomes; claimed
/// rewards complete from their payouts and KYC decisions.
fn subscribers(resources: &Resources) -> Vec<Arc<dyn Subscriber>> {
    vec![Arc::new(royalty_shares::RoyaltyShares), Arc::new(payouts::Payouts::new(resources))]
}

/// Royalty shares are paid in batches through the reward vault.
fn daemons(resources: &Resources) -> Vec<Arc<dyn Daemon>> {
    vec![Arc::new(royalty_shares::Distribution::new(resources))]
}
