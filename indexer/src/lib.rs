//! The indexer service: Follows the chain and the marketplaces; computes royalties on secondary sales.
//!
//! A library (its routes and, later, its daemons) with a thin `main.rs`, so the all-in-one
//! `brandmint` binary and the tests build it the same way.

use shared::{AppState, ServiceSpec, config::HttpConfig};
use utoipa_axum::router::OpenApiRouter;

/// How the indexer service is assembled.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "indexer",
    description: "Follows the chain and the marketplaces; computes royalties on secondary sales.",
    routes,
    addr,
    subscribers: ServiceSpec::none,
    daemons: ServiceSpec::none,
    prepare: ServiceSpec::nothing_to_prepare,
};

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.indexer_addr
}

/// The service's own routes (health, metrics and docs are added by `shared`).
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
