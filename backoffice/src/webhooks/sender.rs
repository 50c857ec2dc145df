//! The daemon that sends due webhook deliveries.
//!
//! Each pass claims a batch of due deliveries (`FOR UPDATE SKIP LOCKED`, pushing their
//! `next_attempt_at` past the longest attempt, so an overlapping run elsewhere cannot take
//! them too), sends them concurrently, and records every attempt: success, or a retry after
//! exponential backoff with jitter, or `failed` once the attempts are used up. A process that
//! dies mid-attempt leaves the claim to expire and the delivery is sent again with the same
//! `webhook-id` (receivers deduplicate on it, as the spec asks).

use std::time::{Duration, Instant};

use anyhow::Context;
use shared::{
    daemon::{Daemon, RunContext, Schedule},
    workflow::{BoxFuture, outbox::DispatchPolicy},
};
use sqlx::PgPool;
use tokio::task::JoinSet;

use super::standard::{self as webhooks, Secret, TargetPolicy};
use crate::config::WebhooksConfig;

/// Per-attempt timeout (connect, send, response).
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery stays invisible to other senders: longer than any attempt.
const CLAIM_SECS: f64 = 60.0;
/// Deliveries claimed and sent concurrently per round.
const BATCH: i64 = 32;
/// How much of a response body the attempt log keeps.
const KEEP_BODY: usize = 1024;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// Sends webhook deliveries.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    client: reqwest::Client,
    policy: TargetPolicy,
    backoff: DispatchPolicy,
    max_attempts: i32,
}

impl Sender {
    pub(crate) fn new(config: &WebhooksConfig) -> reqwest::Result<Self> {
        let policy = super::policy(config);
        Ok(Self {
            client: webhooks::client(policy, TIMEOUT)?,
            policy,
            backoff: DispatchPolicy { base_backoff: config.retry_base, max_backoff: MAX_BACKOFF, ..Default::default() },
            max_attempts: i32::try_from(config.max_attempts).unwrap_or(i32::MAX),
        })
    }
}

impl Daemon for Sender {
    fn name(&self) -> &'static str {
        "webhook-sender"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(1))
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(self.send_due(ctx))
    }
}

/// A claimed delivery with what is needed to send it.
#[derive(Debug)]
struct Job {
    id: i64,
    brand_id: i64,
    message_id: String,
    body: String,
    attempts: i32,
    total_attempts: i32,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    live: bool,
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Delivered {
        status: u16,
        body: String,
    },
    Failed {
        status: Option<u16>,
        error: String,
        body: Option<String>,
    },
    /// The endpoint was disabled or deleted since the delivery was queued.
    Cancelled,
}

impl Sender {
    async fn send_due(&self, ctx: &RunContext) -> anyhow::Result<u64> {
        let mut sent = 0;
        while !ctx.cancelled.is_cancelled() {
            let jobs = claim(&ctx.pool).await.context("claiming webhook deliveries")?;
            if jobs.is_empty() {
                break;
            }
            let mut tasks = JoinSet::new();
            for job in jobs {
                let (sender, pool) = (self.clone(), ctx.pool.clone());
                tasks.spawn(async move {
                    let started = Instant::now();
                    let outcome = sender.attempt(&job).await;
                    sender.record(&pool, &job, outcome, started.elapsed()).await
                });
            }
            while let Some(result) = tasks.join_next().await {
                result.context("webhook attempt panicked")?.context("recording a webhook attempt")?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    #[tracing::instrument(skip_all, fields(delivery.id = job.id, brand.id = job.brand_id))]
    async fn attempt(&self, job: &Job) -> Outcome {
        let failed = |error: String| Outcome::Failed { status: None, error, body: None };
        if !job.live {
            return Outcome::Cancelled;
        }
        let url = match reqwest::Url::parse(&job.url) {
            Ok(url) => url,
            Err(e) => return failed(format!("invalid URL: {e}")),
        };
        // IP literals never reach the guarded resolver: check them (and the scheme) here.
        if let Err(e) = self.policy.check_url(&url) {
            return failed(format!("target refused: the URL {e}"));
        }
        let (Ok(secret), Ok(previous)) =
            (Secret::parse(&job.secret), job.previous_secret.as_deref().map(Secret::parse).transpose())
        else {
            return failed("the endpoint's secret is unreadable".into());
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature =
            webhooks::signature_header(&secret, previous.as_ref(), &job.message_id, timestamp, job.body.as_bytes());
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &job.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(job.body.clone())
            .send()
            .await;
        let response = match response {
            Ok(response) => response,
            Err(e) => return failed(describe(e)),
        };
        let status = response.status();
        let body = read_start(response).await;
        if status.is_success() {
            Outcome::Delivered { status: status.as_u16(), body }
        } else {
            let error = if status.is_redirection() {
                format!("HTTP {status}: redirects are not followed")
            } else {
                format!("HTTP {status}")
            };
            Outcome::Failed { status: Some(status.as_u16()), error, body: Some(body) }
        }
    }

    async fn record(&self, pool: &PgPool, job: &Job, outcome: Outcome, took: Duration) -> sqlx::Result<()> {
        let mut tx = pool.begin().await?;
        let attempts = job.attempts + 1;
        let total = job.total_attempts + 1;
        let duration_ms = i32::try_from(took.as_millis()).unwrap_or(i32::MAX);
        let (status, error, body) = match &outcome {
            Outcome::Cancelled => {
                sqlx::query!(
                    "UPDATE webhook_deliveries SET status = 'cancelled', last_error = 'endpoint disabled or deleted'
                     WHERE id = $1 AND status = 'pending'",
                    job.id
                )
                .execute(&mut *tx)
                .await?;
                return tx.commit().await;
            }
            Outcome::Delivered { status, body } => (Some(*status), None, Some(body)),
            Outcome::Failed { status, error, body } => (*status, Some(error), body.as_ref()),
        };
        sqlx::query!(
            "INSERT INTO webhook_attempts
                 (brand_id, delivery_id, attempt, duration_ms, status_code, error, response_body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            job.brand_id,
            job.id,
            total,
            duration_ms,
            status.map(i32::from),
            error,
            body
        )
        .execute(&mut *tx)
        .await?;
        match outcome {
            Outcome::Delivered { .. } => {
                tracing::debug!(delivery.id = job.id, attempts, "webhook delivered");
                sqlx::query!(
                    "UPDATE webhook_deliveries
                     SET status = 'succeeded', attempts = $2, total_attempts = $3, last_status_code = $4,
                         last_error = NULL, delivered_at = now()
                     WHERE id = $1 AND status = 'pending'",
                    job.id,
                    attempts,
                    total,
                    status.map(i32::from)
                )
                .execute(&mut *tx)
                .await?;
            }
            Outcome::Failed { .. } | Outcome::Cancelled => {
                let exhausted = attempts >= self.max_attempts;
                let retry_in = self.backoff.backoff(attempts);
                tracing::info!(delivery.id = job.id, attempts, exhausted, ?retry_in, error = ?error, "webhook attempt failed");
                sqlx::query!(
                    "UPDATE webhook_deliveries
                     SET status = CASE WHEN $5 THEN 'failed' ELSE 'pending' END, attempts = $2, total_attempts = $3,
                         last_status_code = $4, last_error = $6, next_attempt_at = now() + make_interval(secs => $7)
                     WHERE id = $1 AND status = 'pending'",
                    job.id,
                    attempts,
                    total,
                    status.map(i32::from),
                    exhausted,
                    error,
                    retry_in.as_secs_f64()
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }
}

/// Claims up to [`BATCH`] due deliveries with their endpoints.
async fn claim(pool: &PgPool) -> sqlx::Result<Vec<Job>> {
    sqlx::query_as!(
        Job,
        r#"WITH due AS (
               SELECT id FROM webhook_deliveries
               WHERE status = 'pending' AND next_attempt_at <= now()
               ORDER BY next_attempt_at, id
               LIMIT $1
               FOR UPDATE SKIP LOCKED
           )
           UPDATE webhook_deliveries d
           SET next_attempt_at = now() + make_interval(secs => $2)
           FROM due, webhook_endpoints e
           WHERE d.id = due.id AND e.brand_id = d.brand_id AND e.id = d.endpoint_id
           RETURNING d.id, d.brand_id, d.message_id, d.body, d.attempts, d.total_attempts, e.url, e.secret,
                     CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret,
                     (e.enabled AND e.deleted_at IS NULL) AS "live!""#,
        BATCH,
        CLAIM_SECS
    )
    .fetch_all(pool)
    .await
}

/// The first [`KEEP_BODY`] bytes of a response body (what fits in the attempt log).
async fn read_start(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < KEEP_BODY {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    kept.truncate(KEEP_BODY);
    String::from_utf8_lossy(&kept).into_owned()
}

/// A transport error for the delivery log: the whole cause chain (a refused target shows as
/// such), never the URL twice.
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() { "timed out" } else { "request failed" };
    let mut message = kind.to_owned();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
