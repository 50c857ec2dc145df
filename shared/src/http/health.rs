//! Liveness and readiness.
//!
//! `/health/live` answers as long as the process serves HTTP. `/health/ready` checks every
//! dependency (database, migrations, chain RPC) and, when one is down, answers 503 with a
//! problem document whose `checks` member says which one and why.

use std::time::{Duration, Instant};

use axum::extract::State;
use serde::Serialize;
use sqlx::Connection;
use utoipa::ToSchema;

use super::{
    extract::Json,
    problem::{ApiError, ApiResult},
};
use crate::service::AppState;

/// How long one dependency may take to answer a readiness probe.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Up,
    Down,
}

/// The state of one dependency.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    pub status: CheckStatus,
    /// What was seen: the reason it is down, or a short description when up.
    pub detail: String,
    pub latency_ms: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    pub database: Check,
    pub migrations: Check,
    pub rpc: Check,
    /// The service's own check (the indexer: `sync`, whether it keeps up with the chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Check>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub service: &'static str,
    pub checks: Checks,
}

/// The process is up and serving HTTP.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "The process serves HTTP", body = Liveness)))]
pub async fn live(State(state): State<AppState>) -> Json<Liveness> {
    Json(Liveness { status: "live", service: state.service(), version: env!("CARGO_PKG_VERSION") })
}

/// Every dependency answers: the service can take traffic.
#[utoipa::path(get, path = "/health/ready", tag = "operations", responses(
    (status = 200, description = "Every dependency is up", body = Readiness),
    (status = 503, description = "A dependency is down; `checks` says which", body = super::problem::Problem),
))]
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Readiness>> {
    let (database, rpc, service) = tokio::join!(check_database(&state), check_rpc(&state), state.own_check());
    let migrations = state.migrations().check();
    let checks = Checks { database, migrations, rpc, service };
    let own = checks.service.as_ref().map(|check| (state.service(), check));
    let down: Vec<String> = [("database", &checks.database), ("migrations", &checks.migrations), ("rpc", &checks.rpc)]
        .into_iter()
        .chain(own)
        .filter(|(_, c)| c.status == CheckStatus::Down)
        .map(|(name, c)| format!("{name} is down: {}", c.detail))
        .collect();
    if down.is_empty() {
        Ok(Json(Readiness { status: "ready", service: state.service(), checks }))
    } else {
        Err(ApiError::Unavailable {
            detail: down.join("; "),
            checks: Some(serde_json::to_value(&checks).map_err(anyhow::Error::from)?),
        })
    }
}

async fn timed<T, E: std::fmt::Display>(
    probe: impl Future<Output = Result<T, E>>,
    describe: impl FnOnce(T) -> Result<String, String>,
) -> Check {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(value)) => describe(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    };
    let latency_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(detail) => Check { status: CheckStatus::Up, detail, latency_ms },
        Err(detail) => Check { status: CheckStatus::Down, detail, latency_ms },
    }
}

async fn check_database(state: &AppState) -> Check {
    let pool = state.db();
    let check = timed(
        async {
            let mut conn = pool.acquire().await?;
            sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "version!""#).fetch_one(&mut *conn).await
        },
        |version| Ok(format!("PostgreSQL {version}")),
    )
    .await;
    if check.status == CheckStatus::Up {
        return check;
    }
    // The pool only says "timed out"; one direct attempt tells the operator why
    // (refused, unknown host, authentication failed, no such database).
    let reason = timed(sqlx::PgConnection::connect_with(&pool.connect_options()), |_| Ok(String::new())).await;
    Check { detail: if reason.status == CheckStatus::Down { reason.detail } else { check.detail }, ..check }
}

async fn check_rpc(state: &AppState) -> Check {
    let chain = state.chain();
    let expected = state.config().chain.expected_chain_id;
    timed(
        async { Ok::<_, alloy::transports::TransportError>((chain.chain_id().await?, chain.block_number().await?)) },
        |(chain_id, block)| match expected {
            Some(expected) if expected != chain_id => {
                Err(format!("the node is on chain {chain_id}, expected chain {expected}"))
            }
            _ => Ok(format!("chain {chain_id} at block {block}")),
        },
    )
    .await
}
