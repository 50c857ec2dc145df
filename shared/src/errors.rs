//! The structured error log: one row per distinct failure (source, kind, message), counted,
//! with first and last sighting; old rows are removed by the cleanup daemon.

use std::time::Duration;

use alloy::primitives::keccak256;
use serde_json::Value;
use sqlx::PgConnection;

use crate::{
    daemon::{Daemon, RunContext, Schedule},
    workflow::BoxFuture,
};

/// One failure to record.
#[derive(Debug, Clone)]
pub struct ErrorRecord<'a> {
    /// Where: `daemon:order-expiry`, `subscriber:mint-on-authorize`, `http:payment`.
    pub source: &'a str,
    /// What kind: `run_failed`, `rpc_timeout`, …
    pub kind: &'a str,
    pub message: &'a str,
    /// Anything that helps at 3 a.m. (ids, attempt numbers). Never secrets.
    pub context: Value,
    /// The order/event/request id this failure belongs to.
    pub correlation_id: Option<&'a str>,
}

/// Records a failure, or counts another sighting of the same one.
pub async fn record(conn: &mut PgConnection, error: ErrorRecord<'_>) -> sqlx::Result<()> {
    let fingerprint = keccak256(format!("{}\u{1f}{}\u{1f}{}", error.source, error.kind, error.message)).to_string();
    sqlx::query!(
        "INSERT INTO error_log (fingerprint, source, kind, message, context, correlation_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (fingerprint) DO UPDATE
         SET count = error_log.count + 1, last_seen = now(), context = EXCLUDED.context,
             correlation_id = EXCLUDED.correlation_id",
        fingerprint,
        error.source,
        error.kind,
        error.message,
        error.context,
        error.correlation_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes failures not seen for longer than `retention`; returns how many.
pub async fn cleanup(conn: &mut PgConnection, retention: Duration) -> sqlx::Result<u64> {
    let deleted = sqlx::query!(
        "DELETE FROM error_log WHERE last_seen < now() - make_interval(secs => $1)",
        retention.as_secs_f64()
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}

/// The daemon that applies the retention every hour.
#[derive(Debug, Clone, Copy)]
pub struct ErrorLogCleanup {
    pub retention: Duration,
}

impl Daemon for ErrorLogCleanup {
    fn name(&self) -> &'static str {
        "error-log-cleanup"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Cron("0 17 * * * *")
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let mut conn = ctx.pool.acquire().await?;
            Ok(cleanup(&mut conn, self.retention).await?)
        })
    }
}
