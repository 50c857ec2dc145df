//! Daemons under leases: never two runs at once, takeover after a crash, failures recorded.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use shared::{
    daemon::{Daemon, DaemonRunner, RunContext, RunOutcome, Schedule},
    db, errors,
    workflow::BoxFuture,
};
use sqlx::PgPool;
use testkit::TestDb;
use tokio_util::sync::CancellationToken;

async fn pool() -> PgPool {
    let test_db = TestDb::create().await;
    let pool = PgPool::connect(&test_db.url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    pool
}

/// Sleeps for `work`, counts its runs, fails when asked.
#[derive(Clone)]
struct Sleeper {
    work: Duration,
    fail: bool,
    runs: Arc<AtomicU32>,
}

impl Daemon for Sleeper {
    fn name(&self) -> &'static str {
        "sleeper"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(Duration::from_secs(1))
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            tokio::select! {
                () = tokio::time::sleep(self.work) => {}
                () = ctx.cancelled.cancelled() => anyhow::bail!("cancelled"),
            }
            if self.fail {
                anyhow::bail!("the upstream API answered 502");
            }
            Ok(7)
        })
    }
}

fn sleeper(work: Duration) -> Sleeper {
    Sleeper { work, fail: false, runs: Arc::default() }
}

type Run = (String, DateTime<Utc>, Option<DateTime<Utc>>, String, i64);

async fn runs(pool: &PgPool) -> Vec<Run> {
    sqlx::query_as("SELECT holder, started_at, finished_at, outcome, items FROM daemon_runs ORDER BY started_at")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_runners_on_one_database_never_overlap_a_daemon() {
    let pool = pool().await;
    let shutdown = CancellationToken::new();
    // Runs last longer than the interval, so both replicas (and each replica's own next trigger)
    // keep finding the lease taken.
    let daemon = sleeper(Duration::from_millis(1_300));
    let a = DaemonRunner::new(pool.clone(), "replica-a").with_lease(Duration::from_secs(3)).with(daemon.clone());
    let b = DaemonRunner::new(pool.clone(), "replica-b").with_lease(Duration::from_secs(3)).with(daemon.clone());
    let (ta, tb) = (tokio::spawn(a.run(shutdown.clone())), tokio::spawn(b.run(shutdown.clone())));
    let deadline = Instant::now() + Duration::from_secs(20);
    while runs(&pool).await.iter().filter(|r| r.3 == "ok").count() < 3 {
        assert!(
            Instant::now() < deadline,
            "daemons did not run: {:?} (triggered {})",
            runs(&pool).await,
            daemon.runs.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    ta.await.unwrap().unwrap();
    tb.await.unwrap().unwrap();
    // Let any run that was in flight finish and record itself.
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let runs = runs(&pool).await;
    let finished: Vec<&Run> = runs.iter().filter(|r| r.2.is_some()).collect();
    for pair in finished.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        assert!(earlier.2.unwrap() <= later.1, "runs overlap: {earlier:?} and {later:?}");
    }
    // A run in flight at shutdown stops early and says so; every other run completed.
    let (cancelled, completed): (Vec<&Run>, Vec<&Run>) = finished.into_iter().partition(|r| r.3 == "cancelled");
    assert!(cancelled.len() <= 2, "{cancelled:?}");
    assert!(completed.iter().all(|r| r.3 == "ok" && r.4 == 7), "{completed:?}");
    assert!(u32::try_from(runs.len()).unwrap() <= daemon.runs.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_crashed_holder_is_taken_over_once_its_lease_expires() {
    let pool = pool().await;
    let lease = Duration::from_secs(2);
    let a = DaemonRunner::new(pool.clone(), "doomed").with_lease(lease);
    let b = DaemonRunner::new(pool.clone(), "survivor").with_lease(lease);
    let long = sleeper(Duration::from_secs(60));
    let crashed = tokio::spawn({
        let long = long.clone();
        async move { a.run_once(&long, &CancellationToken::new()).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while long.runs.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Kill it mid-run: no release, no renewal, no bookkeeping.
    crashed.abort();
    let expires_at: DateTime<Utc> = sqlx::query_scalar("SELECT expires_at FROM daemon_leases WHERE daemon = 'sleeper'")
        .fetch_one(&pool)
        .await
        .unwrap();

    let quick = sleeper(Duration::from_millis(10));
    assert_eq!(b.run_once(&quick, &CancellationToken::new()).await, RunOutcome::Skipped, "the lease is still held");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.run_once(&quick, &CancellationToken::new()).await {
            RunOutcome::Ok(7) => break,
            RunOutcome::Skipped => {
                assert!(Instant::now() < deadline, "never taken over");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("{other:?}"),
        }
    }
    let runs = runs(&pool).await;
    let doomed = runs.iter().find(|r| r.0.starts_with("doomed/")).unwrap();
    assert_eq!((doomed.2, doomed.3.as_str()), (None, "running"), "the crashed run stays visible as unfinished");
    let survivor = runs.iter().find(|r| r.0.starts_with("survivor/")).unwrap();
    assert!(survivor.1 >= expires_at, "took over at {} before the lease expired at {expires_at}", survivor.1);
}

#[tokio::test]
async fn a_failing_run_is_recorded_and_counted_in_the_error_log() {
    let pool = pool().await;
    let runner = DaemonRunner::new(pool.clone(), "replica");
    let failing = Sleeper { work: Duration::ZERO, fail: true, runs: Arc::default() };
    assert_eq!(runner.run_once(&failing, &CancellationToken::new()).await, RunOutcome::Failed);
    assert_eq!(runner.run_once(&failing, &CancellationToken::new()).await, RunOutcome::Failed);
    let runs = runs(&pool).await;
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|r| r.3 == "failed" && r.2.is_some()));
    let logged: (String, String, String, i64) =
        sqlx::query_as("SELECT source, kind, message, count FROM error_log").fetch_one(&pool).await.unwrap();
    assert_eq!(logged, ("daemon:sleeper".into(), "failed".into(), "the upstream API answered 502".into(), 2));
    // The lease was released: the next run does not wait for it to expire.
    let ok = sleeper(Duration::ZERO);
    assert_eq!(runner.run_once(&ok, &CancellationToken::new()).await, RunOutcome::Ok(7));
}

#[tokio::test]
async fn error_log_cleanup_removes_only_records_older_than_the_retention() {
    let pool = pool().await;
    let mut conn = pool.acquire().await.unwrap();
    for message in ["old failure", "recent failure"] {
        let record = errors::ErrorRecord {
            source: "test",
            kind: "boom",
            message,
            context: serde_json::json!({ "order_id": 1 }),
            correlation_id: Some("order:1"),
        };
        errors::record(&mut conn, record).await.unwrap();
    }
    sqlx::query("UPDATE error_log SET last_seen = now() - interval '40 days' WHERE message = 'old failure'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let deleted = errors::cleanup(&mut conn, Duration::from_secs(30 * 24 * 3600)).await.unwrap();
    assert_eq!(deleted, 1);
    let left: Vec<String> = sqlx::query_scalar("SELECT message FROM error_log").fetch_all(&mut *conn).await.unwrap();
    assert_eq!(left, vec!["recent failure".to_owned()]);
}
