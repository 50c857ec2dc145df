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
mod dashboards;
mod deploy;
mod exports;
mod kyc;
mod members;
mod metadata;
mod rewards;
mod tables;
mod vouchers;
mod webhooks;

use std::sync::Arc;

use shared::{AppState, ServiceSpec, config::HttpConfig, daemon::Daemon, service::Resources, workflow::Subscriber};
use utoipa_axum::router::OpenApiRouter;

/// How the backoffice service is assembled.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "backoffice",
    description: "Brand and platform staff set up brands, campaigns and rewards, and deploy campaign contracts.",
    routes,
    addr,
    subscribers,
    daemons,
};

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.backoffice_addr
}

/// The service's own routes (health, metrics and docs are added by `shared`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router())
        .merge(brands::router())
        .merge(members::router())
        .merge(api_keys::router())
        .merge(audit::router())
        .merge(campaigns::router())
        .merge(deploy::router())
        .merge(metadata::router())
        .merge(rewards::router())
        .merge(exports::router())
        .merge(vouchers::router())
        .merge(dashboards::router())
        .merge(kyc::router())
        .merge(webhooks::router())
}

/// The outbox subscribers the back office runs.
fn subscribers(resources: &Resources) -> Vec<Arc<dyn Subscriber>> {
    let mut subscribers: Vec<Arc<dyn Subscriber>> =
        vec![Arc::new(deploy::DeploymentWatcher::new(resources)), Arc::new(webhooks::Fanout)];
    match alerts::TelegramAlerts::new(resources.config().alerts.telegram.as_ref()) {
        Ok(alerts) => subscribers.push(Arc::new(alerts)),
        Err(e) => tracing::error!(error = %e, "Telegram alerts are off: no HTTP client"),
    }
    subscribers
}

/// The webhook sender.
fn daemons(resources: &Resources) -> Vec<Arc<dyn Daemon>> {
    match webhooks::Sender::new(&resources.config().webhooks) {
        Ok(sender) => vec![Arc::new(sender)],
        Err(e) => {
            tracing::error!(error = %e, "webhooks are not sent: no HTTP client");
            Vec::new()
        }
    }
}
