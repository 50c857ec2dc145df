//! The backoffice service: Brand and platform staff set up brands, campaigns and rewards, and deploy campaign contracts.
//!
//! A library (its routes and, later, its daemons) with a thin `main.rs`, so the all-in-one
//! `brandmint` binary and the tests build it the same way.

mod alerts;
mod api_keys;
mod audit;
mod auth;
mod brands;
mod campaigns;
mod chain_ops;
mod charts;
pub mod config;
mod dashboards;
mod deploy;
mod enforcement;
mod exports;
mod kyc;
mod members;
mod metadata;
mod pages;
mod qr_batches;
mod rewards;
mod royalties;
mod tables;
mod vouchers;
mod webhooks;

use std::sync::Arc;

use shared::{
    AppState, ServiceSpec,
    config::HttpConfig,
    daemon::Daemon,
    service::{Part, Resources},
    workflow::Subscriber,
};
use utoipa_axum::router::OpenApiRouter;

/// How the backoffice service is assembled.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "backoffice",
    description: "Brand and platform staff set up brands, campaigns and rewards, and deploy campaign contracts.",
    routes,
    addr,
    subscribers,
    daemons,
    prepare,
    ready: ServiceSpec::no_own_check,
};

impl Part for config::BackofficeConfig {
    fn build(resources: &Resources) -> anyhow::Result<Self> {
        Ok(Self::load(resources.config())?)
    }
}

/// Reads the back office's own configuration section (webhook delivery, alerts).
fn prepare(resources: &Resources) -> anyhow::Result<()> {
    resources.part::<config::BackofficeConfig>().map(drop)
}

/// The back office's configuration section, read when the service was prepared.
fn settings(resources: &Resources) -> anyhow::Result<Arc<config::BackofficeConfig>> {
    resources.part::<config::BackofficeConfig>()
}

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.backoffice_addr
}

/// The service's own routes (health, metrics and docs are added by `shared`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(pages::router())
        .merge(auth::router())
        .merge(brands::router())
        .merge(members::router())
        .merge(api_keys::router())
        .merge(audit::router())
        .merge(campaigns::router())
        .merge(deploy::router())
        .merge(metadata::router())
        .merge(rewards::router())
        .merge(qr_batches::router())
        .merge(exports::router())
        .merge(vouchers::router())
        .merge(dashboards::router())
        .merge(royalties::router())
        .merge(kyc::router())
        .merge(webhooks::router())
        .merge(chain_ops::router())
}

/// The outbox subscribers the back office runs.
fn subscribers(resources: &Resources) -> Vec<Arc<dyn Subscriber>> {
    let mut subscribers: Vec<Arc<dyn Subscriber>> =
        vec![Arc::new(deploy::DeploymentWatcher::new(resources)), Arc::new(webhooks::Fanout)];
    match settings(resources).and_then(|s| Ok(alerts::TelegramAlerts::new(s.alerts.telegram.as_ref())?)) {
        Ok(alerts) => subscribers.push(Arc::new(alerts)),
        Err(e) => tracing::error!(error = %e, "Telegram alerts are off"),
    }
    subscribers
}

/// The webhook sender and the generator of large QR code batches.
fn daemons(resources: &Resources) -> Vec<Arc<dyn Daemon>> {
    let mut daemons: Vec<Arc<dyn Daemon>> = vec![Arc::new(qr_batches::Generator::new(resources))];
    match settings(resources).and_then(|s| Ok(webhooks::Sender::new(&s.webhooks)?)) {
        Ok(sender) => daemons.push(Arc::new(sender)),
        Err(e) => tracing::error!(error = %e, "webhooks are not sent"),
    }
    daemons
}
