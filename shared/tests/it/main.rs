//! Integration tests of the commerce core against the real PostgreSQL and anvil started by
//! `cargo xtask test`. One binary for the crate, one module per area.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod daemons;
mod database;
mod http;
mod outbox;
mod readiness;
mod tx_queue;
mod workflow;

use std::time::Duration;

use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use shared::{
    AppState, ServiceSpec,
    config::HttpConfig,
    http::extract::Json,
    money::{Bps, Wei},
};
use utoipa_axum::router::OpenApiRouter;

#[derive(Debug, Deserialize, Serialize)]
struct Echo {
    name: String,
    amount: Wei,
    fee: Bps,
}

async fn echo(Json(body): Json<Echo>) -> Json<Echo> {
    Json(body)
}

async fn panics() -> &'static str {
    panic!("boom: secret=hunter2")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_millis(400)).await;
    "done"
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().route("/echo", post(echo)).route("/panic", get(panics)).route("/slow", get(slow))
}

fn addr(http: &HttpConfig) -> std::net::SocketAddr {
    http.payment_addr
}

/// A service with a few extra routes to exercise the shared plumbing.
const SPEC: ServiceSpec = ServiceSpec {
    name: "probe",
    description: "test service",
    routes,
    addr,
    subscribers: ServiceSpec::none,
    daemons: ServiceSpec::none,
    prepare: ServiceSpec::nothing_to_prepare,
    ready: ServiceSpec::no_own_check,
};
