//! The transactional outbox and its dispatcher.
//!
//! [`append`] writes an event and one delivery row per subscribed subscriber in the caller's
//! transaction, and notifies `outbox_events` (delivered by PostgreSQL on commit). The
//! [`Dispatcher`] delivers due deliveries one per transaction: it locks the delivery
//! (`FOR UPDATE SKIP LOCKED`, so any number of replicas can dispatch), records the
//! subscriber's processed-events key, runs the subscriber in a savepoint and marks the delivery
//! done — all in one commit. A subscriber whose database work goes through the connection it is
//! given therefore takes effect exactly once, however often the event is delivered. Failures are
//! retried with exponential backoff and jitter; after `max_attempts` the delivery is parked as
//! dead (see [`dead_letters`], [`replay`]).
//!
//! Deliveries of different events are not ordered; subscribers that care check the entity's
//! state (state machines refuse out-of-order transitions).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use rand::Rng;
use serde::Serialize;
use serde_json::Value;
use sqlx::{Acquire, PgConnection, PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use super::BoxFuture;

/// The `LISTEN/NOTIFY` channel that wakes dispatchers.
pub const CHANNEL: &str = "outbox_events";

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `<aggregate>.<what happened>`, e.g. `order.fulfilled`, `tx.confirmed`.
    pub event_type: String,
    pub aggregate_type: &'static str,
    pub aggregate_id: i64,
    pub payload: Value,
    pub correlation_id: Option<String>,
}

/// An event as delivered to a subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxEvent {
    pub id: i64,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: i64,
    pub payload: Value,
    pub correlation_id: Option<String>,
    /// 1 on first delivery.
    pub attempt: i32,
}

/// Appends an event in the caller's transaction; returns its id.
pub async fn append(conn: &mut PgConnection, event: NewEvent) -> sqlx::Result<i64> {
    // One statement (one round trip): the event, its deliveries, the wake-up.
    let id = sqlx::query_scalar!(
        "WITH event AS (
             INSERT INTO outbox_events (event_type, aggregate_type, aggregate_id, payload, correlation_id)
             VALUES ($1, $2, $3, $4, $5) RETURNING id
         ), deliveries AS (
             INSERT INTO outbox_deliveries (event_id, subscriber)
             SELECT event.id, s.subscriber FROM event, outbox_subscriptions s WHERE s.event_type = $1
         )
         SELECT event.id AS \"id!\" FROM event, pg_notify($6, $1)",
        event.event_type,
        event.aggregate_type,
        event.aggregate_id,
        event.payload,
        event.correlation_id,
        CHANNEL
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Something that reacts to outbox events. Must tolerate redelivery: do database work through
/// the given connection (exactly once, with the processed-events key) and make external calls
/// idempotent (idempotency keys derived from the event id).
pub trait Subscriber: Send + Sync + 'static {
    /// Stable name; deliveries and processed keys are recorded under it.
    fn name(&self) -> &'static str;
    /// The event types it receives.
    fn event_types(&self) -> &'static [&'static str];
    /// Handles one event inside the delivery's transaction. An error rolls back everything it
    /// did and schedules a retry.
    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>>;
}

/// Retry policy and pacing of a dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct DispatchPolicy {
    /// Attempts before a delivery is parked as dead.
    pub max_attempts: i32,
    /// Backoff after the first failure; doubles each time, with jitter.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// How often to look for due retries when no notification arrives.
    pub poll_interval: Duration,
}

impl Default for DispatchPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl DispatchPolicy {
    /// Exponential backoff with "equal jitter": half fixed, half random, so retries of many
    /// deliveries spread out without ever retrying immediately.
    pub fn backoff(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(20);
        let full = self.base_backoff.saturating_mul(1 << exponent).min(self.max_backoff);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

/// Delivers outbox events to the subscribers registered in this process.
#[derive(Clone)]
pub struct Dispatcher {
    pool: PgPool,
    /// By name: replicas starting together register in the same order (see [`Self::register`]).
    subscribers: Arc<BTreeMap<&'static str, Arc<dyn Subscriber>>>,
    policy: DispatchPolicy,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("subscribers", &self.subscribers.keys())
            .field("policy", &self.policy)
            .finish()
    }
}

/// What one dispatch pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchStats {
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
}

impl Dispatcher {
    pub fn new(pool: PgPool, policy: DispatchPolicy) -> Self {
        Self { pool, subscribers: Arc::default(), policy }
    }

    pub fn subscribe(self, subscriber: impl Subscriber) -> Self {
        self.subscribe_arc(Arc::new(subscriber))
    }

    pub fn subscribe_arc(mut self, subscriber: Arc<dyn Subscriber>) -> Self {
        Arc::make_mut(&mut self.subscribers).insert(subscriber.name(), subscriber);
        self
    }

    /// Records this process's subscriptions, so events appended from now on get deliveries.
    /// Replicas of a service start at once and insert the same rows: always in the same order
    /// (subscribers by name, their event types as listed), so one waits for the other's
    /// transaction instead of the two deadlocking, as they did in a random order.
    pub async fn register(&self) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        for subscriber in self.subscribers.values() {
            for event_type in subscriber.event_types() {
                sqlx::query!(
                    "INSERT INTO outbox_subscriptions (subscriber, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    subscriber.name(),
                    event_type
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }

    /// Registers, then dispatches until `shutdown`: immediately on a notification, otherwise
    /// every `poll_interval` (for retries, and in case a notification was missed).
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        self.register().await?;
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut listener) => listener.listen(CHANNEL).await.map(|()| listener).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "outbox: LISTEN unavailable; polling only");
                None
            }
        };
        loop {
            if let Err(e) = self.dispatch_due().await {
                tracing::warn!(error = %e, "outbox dispatch pass failed");
            }
            let wake = async {
                match listener.as_mut() {
                    Some(l) => drop(tokio::time::timeout(self.policy.poll_interval, l.recv()).await),
                    None => tokio::time::sleep(self.policy.poll_interval).await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = wake => {}
            }
        }
    }

    /// Delivers every delivery that is due now; returns what happened.
    pub async fn dispatch_due(&self) -> sqlx::Result<DispatchStats> {
        let mut stats = DispatchStats::default();
        while let Some(outcome) = self.dispatch_one().await? {
            match outcome {
                Outcome::Delivered => stats.delivered += 1,
                Outcome::Retry => stats.failed += 1,
                Outcome::Dead => stats.dead += 1,
            }
        }
        Ok(stats)
    }

    async fn dispatch_one(&self) -> sqlx::Result<Option<Outcome>> {
        let names: Vec<String> = self.subscribers.keys().map(|n| (*n).to_owned()).collect();
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query!(
            r#"SELECT d.event_id, d.subscriber, d.attempts, e.event_type, e.aggregate_type, e.aggregate_id,
                      e.payload, e.correlation_id
               FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id
               WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND d.subscriber = ANY($1)
               ORDER BY d.next_attempt_at, d.event_id
               LIMIT 1
               FOR UPDATE OF d SKIP LOCKED"#,
            &names
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let Some(subscriber) = self.subscribers.get(row.subscriber.as_str()).cloned() else {
            return Ok(None);
        };
        let attempt = row.attempts + 1;
        let event = OutboxEvent {
            id: row.event_id,
            event_type: row.event_type,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            payload: row.payload,
            correlation_id: row.correlation_id,
            attempt,
        };

        let result = {
            let mut savepoint = tx.begin().await?;
            let first_time = sqlx::query!(
                "INSERT INTO processed_events (subscriber, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                subscriber.name(),
                event.id
            )
            .execute(&mut *savepoint)
            .await?
            .rows_affected()
                == 1;
            let result = if first_time { subscriber.handle(&event, &mut savepoint).await } else { Ok(()) };
            match result {
                Ok(()) => savepoint.commit().await.map_err(anyhow::Error::from),
                Err(e) => {
                    savepoint.rollback().await?;
                    Err(e)
                }
            }
        };

        let outcome = match result {
            Ok(()) => {
                sqlx::query!(
                    "UPDATE outbox_deliveries SET status = 'done', attempts = $3, completed_at = now(), last_error = NULL
                     WHERE event_id = $1 AND subscriber = $2",
                    event.id,
                    subscriber.name(),
                    attempt
                )
                .execute(&mut *tx)
                .await?;
                Outcome::Delivered
            }
            Err(error) => {
                let dead = attempt >= self.policy.max_attempts;
                let retry_in = self.policy.backoff(attempt);
                let message = format!("{error:#}");
                if dead {
                    tracing::error!(subscriber = subscriber.name(), event.id, attempt, error = %message, "outbox delivery dead-lettered");
                } else {
                    tracing::warn!(subscriber = subscriber.name(), event.id, attempt, error = %message, ?retry_in, "outbox delivery failed");
                }
                sqlx::query!(
                    "UPDATE outbox_deliveries
                     SET status = CASE WHEN $3 THEN 'dead' ELSE 'pending' END, attempts = $4, last_error = $5,
                         next_attempt_at = now() + make_interval(secs => $6)
                     WHERE event_id = $1 AND subscriber = $2",
                    event.id,
                    subscriber.name(),
                    dead,
                    attempt,
                    message,
                    retry_in.as_secs_f64()
                )
                .execute(&mut *tx)
                .await?;
                if dead { Outcome::Dead } else { Outcome::Retry }
            }
        };
        tx.commit().await?;
        Ok(Some(outcome))
    }
}

enum Outcome {
    Delivered,
    Retry,
    Dead,
}

/// A delivery parked after too many failures.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub event_id: i64,
    pub subscriber: String,
    pub event_type: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Dead deliveries, oldest first.
pub async fn dead_letters(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<DeadLetter>> {
    sqlx::query_as!(
        DeadLetter,
        "SELECT d.event_id, d.subscriber, e.event_type, d.attempts, d.last_error
         FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id
         WHERE d.status = 'dead' ORDER BY d.event_id LIMIT $1",
        limit
    )
    .fetch_all(conn)
    .await
}

/// Puts a dead delivery back in the queue with a fresh attempt budget. Returns whether there
/// was such a dead delivery.
pub async fn replay(conn: &mut PgConnection, event_id: i64, subscriber: &str) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE outbox_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now()
         WHERE event_id = $1 AND subscriber = $2 AND status = 'dead'",
        event_id,
        subscriber
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 1 {
        sqlx::query!("SELECT pg_notify($1, 'replay')", CHANNEL).execute(conn).await?;
    }
    Ok(updated.rows_affected() == 1)
}
