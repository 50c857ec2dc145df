//! The indexer service: the platform's one reader of the chain. It learns campaign collections
//! from the factory, follows every collection's transfers (owners, holders, history), the
//! Checkout's payments, the RewardVault's movements and Seaport's raw sales logs, survives
//! reorgs, and announces what it read in the outbox (`chain.<kind>`, `chain.<kind>.confirmed`,
//! `chain.<kind>.reverted`) for the other services to react to.
//!
//! A library (its routes and daemons) with a thin `main.rs`, so the all-in-one `brandmint`
//! binary and the tests build it the same way.

mod api;
pub mod config;
pub mod decode;
pub mod fetch;
pub mod marketplaces;
mod metrics;
pub mod sales;
pub mod store;
pub mod sync;

use std::sync::Arc;

use shared::{
    AppState, ServiceSpec,
    config::HttpConfig,
    daemon::Daemon,
    service::{Part, Resources},
};
use utoipa_axum::router::OpenApiRouter;

/// How the indexer service is assembled.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "indexer",
    description: "The platform's reader of the chain: campaign collections, owners and holders, payments, reward \
                  vault movements and marketplace logs, reorg-safe.",
    routes,
    addr,
    subscribers: ServiceSpec::none,
    daemons,
    prepare,
    ready: api::sync_check,
};

/// The indexer's configuration, read once per process.
#[derive(Debug)]
pub struct Indexer {
    pub config: config::IndexerConfig,
}

impl Part for Indexer {
    fn build(resources: &Resources) -> anyhow::Result<Self> {
        Ok(Self { config: config::IndexerConfig::load(resources.config())? })
    }
}

fn prepare(resources: &Resources) -> anyhow::Result<()> {
    resources.part::<Indexer>().map(drop)
}

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.indexer_addr
}

/// The service's own routes (health, metrics and docs are added by `shared`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(api::router()).merge(sales::api::router())
}

/// The chain indexer, the sales decoder and a poller per configured marketplace (each one leased
/// run at a time across replicas).
fn daemons(resources: &Resources) -> Vec<Arc<dyn Daemon>> {
    match resources.part::<Indexer>() {
        Ok(indexer) => {
            let config = &indexer.config;
            let mut daemons: Vec<Arc<dyn Daemon>> = vec![
                Arc::new(sync::Indexing(sync::ChainIndexer::new(resources, config.clone()))),
                Arc::new(sales::SalesDecoding(sales_decoder(resources, config))),
            ];
            for poller in pollers(resources, config) {
                daemons.push(Arc::new(marketplaces::Polling(poller)));
            }
            daemons
        }
        Err(e) => {
            tracing::error!(error = %e, "the indexer's configuration is invalid; not indexing");
            Vec::new()
        }
    }
}

/// A poller per marketplace whose API key is configured.
fn pollers(resources: &Resources, config: &config::IndexerConfig) -> Vec<marketplaces::Poller> {
    [(marketplaces::Source::OpenSea, &config.opensea), (marketplaces::Source::Rarible, &config.rarible)]
        .into_iter()
        .filter_map(|(source, api)| {
            let api = api.clone()?;
            Some(marketplaces::Poller::new(source, api, resources.chain().provider().clone(), config.marketplace_poll))
        })
        .collect()
}

/// Polls every configured marketplace once (what their daemons do every
/// `MARKETPLACE_POLL_SECS`); returns how many reports were new or changed.
pub async fn poll_marketplaces(resources: &Resources) -> anyhow::Result<u64> {
    let mut changed = 0;
    for poller in pollers(resources, &resources.part::<Indexer>()?.config) {
        changed += poller.poll(resources.db()).await?;
    }
    Ok(changed)
}

fn sales_decoder(resources: &Resources, config: &config::IndexerConfig) -> sales::SalesDecoder {
    sales::SalesDecoder::new(resources.chain().provider().clone(), config.marketplaces.clone())
}

/// Indexes the configured chain up to its head now (what the indexing daemon does every poll
/// interval); returns how many facts were written or reverted.
pub async fn index(resources: &Resources) -> anyhow::Result<u64> {
    let config = resources.part::<Indexer>()?.config.clone();
    let indexer = sync::ChainIndexer::new(resources, config);
    indexer.catch_up(resources.db(), &tokio_util::sync::CancellationToken::new()).await
}

/// Decodes the sales of the Seaport logs indexed so far (what the sales daemon does); returns
/// how many sales were recorded.
pub async fn decode_sales(resources: &Resources) -> anyhow::Result<u64> {
    sales_decoder(resources, &resources.part::<Indexer>()?.config).catch_up(resources.db()).await
}

/// [`index`], then [`decode_sales`]: everything on chain so far, in the database. Returns how
/// many facts were written or reverted.
pub async fn catch_up(resources: &Resources) -> anyhow::Result<u64> {
    let facts = index(resources).await?;
    decode_sales(resources).await?;
    Ok(facts)
}
