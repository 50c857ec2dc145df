//! The redemption service: Holders redeem rewards by QR code or wallet signature; rewards are paid by contract calls.
//!
//! Today: wallet sign-in, KYC, and royalty-share rewards paid through the reward vault.
//!
//! A library (its routes, subscribers and daemons) with a thin `main.rs`, so the all-in-one
//! `brandmint` binary and the tests build it the same way.

mod customers;
mod kyc;
pub mod royalty_shares;

use std::sync::Arc;

use shared::{
    AppState, ServiceSpec, config::HttpConfig, daemon::Daemon, service::Resources, workflow::outbox::Subscriber,
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
    prepare: ServiceSpec::nothing_to_prepare,
    ready: ServiceSpec::no_own_check,
};

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.redemption_addr
}

/// The service's own routes (health, metrics and docs are added by `shared`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(customers::router()).merge(kyc::router())
}

/// Royalty shares accrue from sales and settle from their distributions' outcomes.
fn subscribers(_: &Resources) -> Vec<Arc<dyn Subscriber>> {
    vec![Arc::new(royalty_shares::RoyaltyShares)]
}

/// Royalty shares are paid in batches through the reward vault.
fn daemons(resources: &Resources) -> Vec<Arc<dyn Daemon>> {
    vec![Arc::new(royalty_shares::Distribution::new(resources))]
}
