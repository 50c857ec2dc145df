//! Daemons: named background jobs on a schedule, each run under a 60-second lease in
//! PostgreSQL so that across any number of replicas one instance at most runs a given daemon at
//! a time. The lease is renewed while the run lasts; a holder that dies stops renewing and its
//! lease expires. Every run is recorded in `daemon_runs`; a failing run is logged once, written
//! to the error log and reported to Sentry (when configured).

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::{errors, workflow::BoxFuture};

/// The default lease: long enough to ride out a slow query, short enough to fail over fast.
pub const LEASE: Duration = Duration::from_secs(60);

/// When a daemon runs.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// Every so often, starting one interval after start-up. Whole seconds, at least one (the
    /// scheduler's resolution).
    Every(Duration),
    /// A cron expression with seconds (`sec min hour day month weekday`), in UTC.
    Cron(&'static str),
}

/// What a run can use.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub pool: PgPool,
    /// Cancelled when the lease is lost or the process shuts down: stop promptly.
    pub cancelled: CancellationToken,
    /// The lease holder of this run (`<instance>/<run uuid>`).
    pub holder: String,
}

/// A background job.
pub trait Daemon: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn schedule(&self) -> Schedule;
    /// Does one run's work; returns how many items it processed.
    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>>;
    /// Its own lease, when the runner's is too long for it: how long a killed holder keeps
    /// others from taking over (the indexer: a short one, so a crash stalls the chain briefly).
    fn lease(&self) -> Option<Duration> {
        None
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// Another holder has the lease; nothing ran.
    Skipped,
    Ok(u64),
    Failed,
    LeaseLost,
    /// The process is shutting down; the run stopped early (not a failure).
    Cancelled,
}

/// Runs daemons on their schedules under leases.
#[derive(Clone)]
pub struct DaemonRunner {
    pool: PgPool,
    instance: String,
    lease: Duration,
    daemons: Vec<Arc<dyn Daemon>>,
}

impl std::fmt::Debug for DaemonRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.daemons.iter().map(|d| d.name()).collect();
        f.debug_struct("DaemonRunner").field("instance", &self.instance).field("daemons", &names).finish()
    }
}

impl DaemonRunner {
    /// `instance` identifies this process in leases and run records (host/pid/uuid).
    pub fn new(pool: PgPool, instance: impl Into<String>) -> Self {
        Self { pool, instance: instance.into(), lease: LEASE, daemons: Vec::new() }
    }

    /// Overrides the lease duration (tests use a short one).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    pub fn with(self, daemon: impl Daemon) -> Self {
        self.with_arc(Arc::new(daemon))
    }

    pub fn with_arc(mut self, daemon: Arc<dyn Daemon>) -> Self {
        self.daemons.push(daemon);
        self
    }

    /// Schedules every daemon and runs them until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut scheduler = JobScheduler::new().await.context("daemon scheduler")?;
        for daemon in &self.daemons {
            let (name, schedule) = (daemon.name(), daemon.schedule());
            let (runner, daemon, token) = (self.clone(), daemon.clone(), shutdown.clone());
            let task = move |_id, _scheduler| -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
                let (runner, daemon, token) = (runner.clone(), daemon.clone(), token.clone());
                Box::pin(async move {
                    if !token.is_cancelled() {
                        runner.run_once(daemon.as_ref(), &token).await;
                    }
                })
            };
            let job = match schedule {
                Schedule::Every(interval) if interval < Duration::from_secs(1) => {
                    anyhow::bail!("daemon {name}: intervals below one second are not supported")
                }
                Schedule::Every(interval) => Job::new_repeated_async(interval, task),
                Schedule::Cron(expression) => Job::new_async(expression, task),
            }
            .with_context(|| format!("daemon {name}: bad schedule"))?;
            scheduler.add(job).await.context("adding a daemon")?;
        }
        scheduler.start().await.context("starting the daemon scheduler")?;
        shutdown.cancelled().await;
        scheduler.shutdown().await.context("stopping the daemon scheduler")?;
        Ok(())
    }

    /// One run of `daemon` if the lease can be taken: the unit the scheduler triggers, public
    /// so tests and operators can trigger a run directly.
    pub async fn run_once(&self, daemon: &dyn Daemon, shutdown: &CancellationToken) -> RunOutcome {
        match self.try_run(daemon, shutdown).await {
            Ok(outcome) => outcome,
            Err(e) => {
                // The bookkeeping itself failed (database down): nothing ran or it is recorded
                // as running and will be superseded when the lease expires.
                tracing::warn!(daemon = daemon.name(), error = %e, "daemon run could not be recorded");
                RunOutcome::Failed
            }
        }
    }

    async fn try_run(&self, daemon: &dyn Daemon, shutdown: &CancellationToken) -> sqlx::Result<RunOutcome> {
        let name = daemon.name();
        let holder = format!("{}/{}", self.instance, uuid::Uuid::new_v4().simple());
        let lease = daemon.lease().unwrap_or(self.lease);
        let lease_secs = lease.as_secs_f64();
        let acquired = sqlx::query_scalar!(
            "INSERT INTO daemon_leases (daemon, holder, acquired_at, expires_at)
             VALUES ($1, $2, clock_timestamp(), clock_timestamp() + make_interval(secs => $3))
             ON CONFLICT (daemon) DO UPDATE
             SET holder = EXCLUDED.holder, acquired_at = EXCLUDED.acquired_at, expires_at = EXCLUDED.expires_at
             WHERE daemon_leases.expires_at < clock_timestamp()
             RETURNING holder",
            name,
            holder,
            lease_secs
        )
        .fetch_optional(&self.pool)
        .await?;
        if acquired.is_none() {
            return Ok(RunOutcome::Skipped);
        }
        let run_id =
            sqlx::query_scalar!("INSERT INTO daemon_runs (daemon, holder) VALUES ($1, $2) RETURNING id", name, holder)
                .fetch_one(&self.pool)
                .await?;

        let cancelled = shutdown.child_token();
        let ctx = RunContext { pool: self.pool.clone(), cancelled: cancelled.clone(), holder: holder.clone() };
        let renew_every = lease / 3;
        let renewal = async {
            loop {
                tokio::time::sleep(renew_every).await;
                let renewed = sqlx::query!(
                    "UPDATE daemon_leases SET expires_at = clock_timestamp() + make_interval(secs => $3)
                     WHERE daemon = $1 AND holder = $2",
                    name,
                    holder,
                    lease_secs
                )
                .execute(&self.pool)
                .await;
                match renewed {
                    Ok(r) if r.rows_affected() == 1 => {}
                    // Lost it (expired and taken), or cannot reach the database: stop now,
                    // someone else may take over once the lease runs out.
                    _ => return,
                }
            }
        };
        let (outcome, items, error) = tokio::select! {
            result = daemon.run(&ctx) => match result {
                Ok(items) => (RunOutcome::Ok(items), items, None),
                Err(_) if shutdown.is_cancelled() => (RunOutcome::Cancelled, 0, None),
                Err(e) => (RunOutcome::Failed, 0, Some(format!("{e:#}"))),
            },
            () = renewal => {
                cancelled.cancel();
                (RunOutcome::LeaseLost, 0, Some("lease lost".to_owned()))
            }
        };
        let outcome_name = match outcome {
            RunOutcome::Ok(_) => "ok",
            RunOutcome::Failed => "failed",
            RunOutcome::Cancelled => "cancelled",
            RunOutcome::LeaseLost | RunOutcome::Skipped => "lease_lost",
        };
        sqlx::query!(
            "UPDATE daemon_runs SET finished_at = clock_timestamp(), outcome = $2, items = $3, error = $4 WHERE id = $1",
            run_id,
            outcome_name,
            i64::try_from(items).unwrap_or(i64::MAX),
            error
        )
        .execute(&self.pool)
        .await?;
        sqlx::query!("DELETE FROM daemon_leases WHERE daemon = $1 AND holder = $2", name, holder)
            .execute(&self.pool)
            .await?;

        if let Some(message) = &error {
            tracing::error!(daemon = name, run_id, error = %message, "daemon run failed");
            let mut conn = self.pool.acquire().await?;
            errors::record(
                &mut conn,
                errors::ErrorRecord {
                    source: &format!("daemon:{name}"),
                    kind: outcome_name,
                    message,
                    context: json!({ "run_id": run_id, "holder": holder }),
                    correlation_id: None,
                },
            )
            .await?;
            sentry::capture_message(&format!("daemon {name} {outcome_name}: {message}"), sentry::Level::Error);
        } else {
            tracing::debug!(daemon = name, run_id, items, "daemon run finished");
        }
        Ok(outcome)
    }
}
