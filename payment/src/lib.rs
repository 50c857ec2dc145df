//! The payment service: Buyers check out with a card or a wallet; orders, vouchers, refunds.
//!
//! A library (its routes and, later, its daemons) with a thin `main.rs`, so the all-in-one
//! `brandmint` binary and the tests build it the same way.

mod brand_orders;
mod card;
mod catalog;
pub mod config;
mod expiry;
pub mod fx;
mod new_order;
mod orders;
mod reconcile;
mod shop;
pub mod stripe;
mod wallet;

use std::sync::Arc;

use anyhow::Context;
use shared::{
    AppState, ServiceSpec,
    config::HttpConfig,
    daemon::Daemon,
    service::{Part, Resources},
    workflow::Subscriber,
};
use utoipa_axum::router::OpenApiRouter;

/// How the payment service is assembled.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "payment",
    description: "Buyers check out with a card or a wallet; orders, vouchers, refunds.",
    routes,
    addr,
    subscribers,
    daemons,
    prepare,
    ready: ServiceSpec::no_own_check,
};

/// What only the payment service uses: its configuration section and its clients of Stripe and
/// of the FX sources, built once per process.
#[derive(Debug)]
pub(crate) struct Payments {
    pub(crate) config: config::PaymentConfig,
    pub(crate) stripe: stripe::Stripe,
    pub(crate) fx: fx::FxClient,
}

impl Part for Payments {
    fn build(resources: &Resources) -> anyhow::Result<Self> {
        let config = config::PaymentConfig::load(resources.config())?;
        let stripe = stripe::Stripe::new(&config.stripe).context("Stripe client")?;
        let fx = fx::FxClient::new(config.fx.clone()).context("FX client")?;
        Ok(Self { config, stripe, fx })
    }
}

fn prepare(resources: &Resources) -> anyhow::Result<()> {
    resources.part::<Payments>().map(drop)
}

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.payment_addr
}

/// The service's own routes (health, metrics and docs are added by `shared`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(catalog::router())
        .merge(orders::router())
        .merge(card::router())
        .merge(brand_orders::router())
        .merge(shop::router())
}

/// Expires every pending order past its `expires_at` now (what the expiry daemon does every 15
/// seconds); returns how many.
pub async fn expire_due(conn: &mut sqlx::PgConnection) -> anyhow::Result<u64> {
    let mut total = 0;
    loop {
        let expired = expiry::Expiry::batch(conn).await?;
        total += expired;
        if expired == 0 {
            return Ok(total);
        }
    }
}

/// One pass of the Stripe reconciliation (what its daemon does every minute): stuck card orders
/// re-read, authorised PaymentIntents of no live order cancelled; returns how many intents it
/// re-checked.
pub async fn reconcile(resources: &Resources) -> anyhow::Result<u64> {
    reconcile::Reconciliation::new(resources).pass().await
}

/// The card saga's steps and the buyers' receipts.
fn subscribers(resources: &Resources) -> Vec<Arc<dyn Subscriber>> {
    vec![
        Arc::new(card::StripeEvents::new(resources)),
        Arc::new(card::Mints::new(resources)),
        Arc::new(card::Cancellations::new(resources)),
        Arc::new(reconcile::Receipts::new(resources)),
        Arc::new(wallet::WalletPayments::new(resources)),
    ]
}

/// Order expiry and the Stripe reconciliation.
fn daemons(resources: &Resources) -> Vec<Arc<dyn Daemon>> {
    vec![Arc::new(expiry::Expiry), Arc::new(reconcile::Reconciliation::new(resources))]
}
