//! Rate limits, two kinds:
//!
//! * [`check`]: counters in PostgreSQL for the endpoints that guard credentials
//!   (sign-in, refresh, password reset, SIWE), per IP and per account. They live in the
//!   database so every replica counts together: an attacker gains nothing by spreading
//!   attempts over instances.
//! * [`IpBudget`]: every client IP's overall request budget, kept in process (GCRA, `governor`)
//!   because it is checked on every request; with N replicas behind a balancer the effective
//!   budget is N times the configured one.
//!
//! Both answer 429 with `Retry-After`.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use sqlx::PgPool;

use super::{ApiError, ApiResult};
use crate::config::RateLimitConfig;

/// Counts one attempt in each bucket (`sign-in:ip:1.2.3.4`, `sign-in:account:<sha-256>`) and refuses
/// it with 429 when any bucket has had more than `auth_max` attempts in the current window. A
/// bucket's window starts at its first attempt (not at a clock boundary), so `auth_max + 1`
/// attempts within one window's length are always refused, however they fall on the clock.
pub async fn check(db: &PgPool, config: &RateLimitConfig, buckets: &[String]) -> ApiResult<()> {
    let window = i64::try_from(config.auth_window.as_secs()).unwrap_or(i64::MAX);
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "INSERT INTO rate_limit_windows AS w (bucket, window_start, hits)
         SELECT bucket, now(), 1
         FROM unnest($1::text[]) AS bucket
         ON CONFLICT (bucket) DO UPDATE
             SET hits = CASE WHEN w.window_start > now() - make_interval(secs => $2) THEN w.hits + 1 ELSE 1 END,
                 window_start = CASE WHEN w.window_start > now() - make_interval(secs => $2)
                                     THEN w.window_start ELSE now() END
         RETURNING hits, ceil(extract(epoch FROM window_start + make_interval(secs => $2) - now()))::bigint",
    )
    .bind(buckets)
    .bind(window as f64)
    .fetch_all(db)
    .await?;
    let limit = i32::try_from(config.auth_max).unwrap_or(i32::MAX);
    let over = rows.iter().filter(|(hits, _)| *hits > limit);
    match over.map(|(_, retry_after)| *retry_after).max() {
        Some(retry_after) => {
            tracing::warn!(buckets = ?buckets, "rate limit reached");
            Err(ApiError::RateLimited { retry_after_secs: u64::try_from(retry_after.max(1)).unwrap_or(1) })
        }
        None => Ok(()),
    }
}

/// Counts one attempt at `action` against the client IP's budget (`<action>:ip:<ip>`) and, when
/// given, the account's (`<action>:account:<hash>`), with the configured authentication limits.
///
/// The account's key (an e-mail, a token's digest, a wallet) is whatever the client sent, of any
/// length: the bucket holds its SHA-256 instead, so every bucket name has a fixed size (it is an
/// index key) and no e-mail reaches the table or the log.
pub async fn attempt(
    state: &crate::AppState,
    action: &str,
    meta: &crate::auth::RequestMeta,
    account: Option<&str>,
) -> ApiResult<()> {
    let mut buckets = vec![format!("{action}:ip:{}", meta.ip_key())];
    buckets.extend(account.map(|key| format!("{action}:account:{}", account_key(key))));
    check(state.db(), &state.config().auth.rate_limits, &buckets).await
}

/// The fixed-size name of an account's bucket: the hex SHA-256 of its key, case-folded.
fn account_key(key: &str) -> String {
    use sha2::{Digest, Sha256};
    alloy::hex::encode(Sha256::digest(key.trim().to_lowercase().as_bytes()))
}

/// Deletes windows that ended more than a day ago.
pub async fn cleanup(db: &PgPool) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM rate_limit_windows WHERE window_start < now() - interval '1 day'")
        .execute(db)
        .await?
        .rows_affected())
}

/// Hourly [`cleanup`] of old rate-limit windows, run by every process.
#[derive(Debug)]
pub struct RateLimitCleanup;

impl crate::daemon::Daemon for RateLimitCleanup {
    fn name(&self) -> &'static str {
        "rate-limit-cleanup"
    }

    fn schedule(&self) -> crate::daemon::Schedule {
        crate::daemon::Schedule::Cron("0 29 * * * *")
    }

    fn run<'a>(&'a self, ctx: &'a crate::daemon::RunContext) -> crate::workflow::BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move { Ok(cleanup(&ctx.pool).await?) })
    }
}

/// The per-IP request budget of one process.
#[derive(Clone)]
pub struct IpBudget {
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    trust_forwarded_for: bool,
}

impl std::fmt::Debug for IpBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpBudget").field("tracked_ips", &self.limiter.len()).finish_non_exhaustive()
    }
}

impl IpBudget {
    /// `None` when the budget is off (0 per minute).
    pub fn new(per_minute: u32, trust_forwarded_for: bool) -> Option<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute)?);
        Some(Self { limiter: Arc::new(RateLimiter::keyed(quota)), trust_forwarded_for })
    }

    /// Middleware: 429 once the client IP has spent its budget.
    pub async fn enforce(self, request: Request, next: Next) -> Response {
        let ip = crate::auth::client_ip(
            request.headers(),
            request.extensions().get::<ConnectInfo<std::net::SocketAddr>>(),
            self.trust_forwarded_for,
        );
        if let Some(ip) = ip {
            if let Err(not_until) = self.limiter.check_key(&ip) {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                return ApiError::RateLimited { retry_after_secs: wait.as_secs().max(1) }.into_response();
            }
            // Forget idle IPs now and then so the map does not grow without bound.
            if self.limiter.len() > 10_000 {
                self.limiter.retain_recent();
            }
        }
        next.run(request).await
    }
}
