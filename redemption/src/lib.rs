//! The redemption service: Holders redeem rewards by QR code or wallet signature; rewards are paid by contract calls.
//!
//! A library (its routes and, later, its daemons) with a thin `main.rs`, so the all-in-one
//! `brandmint` binary and the tests build it the same way.

mod customers;
mod kyc;

use shared::{AppState, ServiceSpec, config::HttpConfig};
use utoipa_axum::router::OpenApiRouter;

/// How the redemption service is assembled.
pub const SERVICE: ServiceSpec = ServiceSpec {
    name: "redemption",
    description: "Holders redeem rewards by QR code or wallet signature; rewards are paid by contract calls.",
    routes,
    addr,
    subscribers: ServiceSpec::none,
    daemons: ServiceSpec::none,
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
