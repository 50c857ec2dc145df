//! The outbox: at-least-once delivery, exactly-once effects, retries, dead letters, replay,
//! prompt wake-ups and safe concurrent dispatchers.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;
use shared::{
    db,
    workflow::{
        BoxFuture, Dispatcher, NewEvent, OutboxEvent, Subscriber,
        outbox::{self, DispatchPolicy},
    },
};
use sqlx::{PgConnection, PgPool};
use testkit::TestDb;
use tokio_util::sync::CancellationToken;

async fn pool() -> PgPool {
    let test_db = TestDb::create().await;
    let pool = PgPool::connect(&test_db.url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    sqlx::query("CREATE TABLE effects (event_id BIGINT NOT NULL, subscriber TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

fn fast_policy(max_attempts: i32) -> DispatchPolicy {
    DispatchPolicy {
        max_attempts,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        poll_interval: Duration::from_millis(50),
    }
}

/// Fails the first `fail_first` attempts of every event, then records its effect through the
/// delivery's connection.
#[derive(Clone)]
struct Flaky {
    name: &'static str,
    fail_first: u32,
    broken: Arc<AtomicBool>,
    calls: Arc<Mutex<HashMap<i64, u32>>>,
}

impl Flaky {
    fn new(name: &'static str, fail_first: u32) -> Self {
        Self { name, fail_first, broken: Arc::default(), calls: Arc::default() }
    }
}

impl Subscriber for Flaky {
    fn name(&self) -> &'static str {
        self.name
    }

    fn event_types(&self) -> &'static [&'static str] {
        &["order.paid"]
    }

    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let call = {
                let mut calls = self.calls.lock().unwrap();
                let n = calls.entry(event.id).or_default();
                *n += 1;
                *n
            };
            sqlx::query("INSERT INTO effects (event_id, subscriber) VALUES ($1, $2)")
                .bind(event.id)
                .bind(self.name)
                .execute(&mut *conn)
                .await?;
            if self.broken.load(Ordering::SeqCst) || call <= self.fail_first {
                anyhow::bail!("transient failure #{call}");
            }
            Ok(())
        })
    }
}

async fn append(pool: &PgPool, event_type: &str, n: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let mut tx = pool.begin().await.unwrap();
        let event = NewEvent {
            event_type: event_type.into(),
            aggregate_type: "order",
            aggregate_id: i,
            payload: json!({ "n": i }),
            correlation_id: None,
        };
        ids.push(outbox::append(&mut tx, event).await.unwrap());
        tx.commit().await.unwrap();
    }
    ids
}

/// Runs dispatch passes until nothing is pending (or fails after a deadline).
async fn drain(dispatcher: &Dispatcher, pool: &PgPool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        dispatcher.dispatch_due().await.unwrap();
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_deliveries WHERE status = 'pending'")
            .fetch_one(pool)
            .await
            .unwrap();
        if pending == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{pending} deliveries still pending");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn effects(pool: &PgPool, subscriber: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT event_id FROM effects WHERE subscriber = $1 ORDER BY event_id")
        .bind(subscriber)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscriber_failing_k_times_completes_every_event_exactly_once() {
    let pool = pool().await;
    let flaky = Flaky::new("flaky", 3);
    let dispatcher = Dispatcher::new(pool.clone(), fast_policy(10)).subscribe(flaky.clone());
    dispatcher.register().await.unwrap();
    let ids = append(&pool, "order.paid", 20).await;
    drain(&dispatcher, &pool).await;

    // Failed attempts rolled back their effects: each event's effect is there once.
    assert_eq!(effects(&pool, "flaky").await, ids);
    let calls = flaky.calls.lock().unwrap().clone();
    assert!(ids.iter().all(|id| calls[id] == 4), "3 failures then one success each: {calls:?}");
    let done: Vec<(i32, String)> =
        sqlx::query_as("SELECT attempts, status FROM outbox_deliveries WHERE subscriber = 'flaky'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(done.len(), 20);
    assert!(done.iter().all(|(attempts, status)| *attempts == 4 && status == "done"), "{done:?}");
}

#[tokio::test]
async fn only_subscribed_event_types_are_delivered() {
    let pool = pool().await;
    let flaky = Flaky::new("paid-only", 0);
    let dispatcher = Dispatcher::new(pool.clone(), fast_policy(3)).subscribe(flaky.clone());
    dispatcher.register().await.unwrap();
    append(&pool, "order.expired", 3).await;
    let paid = append(&pool, "order.paid", 2).await;
    drain(&dispatcher, &pool).await;
    assert_eq!(effects(&pool, "paid-only").await, paid);
}

#[tokio::test]
async fn a_delivery_is_dead_after_max_attempts_and_replay_delivers_it() {
    let pool = pool().await;
    let flaky = Flaky::new("broken", 0);
    flaky.broken.store(true, Ordering::SeqCst);
    let dispatcher = Dispatcher::new(pool.clone(), fast_policy(3)).subscribe(flaky.clone());
    dispatcher.register().await.unwrap();
    let ids = append(&pool, "order.paid", 2).await;
    drain(&dispatcher, &pool).await;

    let mut conn = pool.acquire().await.unwrap();
    let dead = outbox::dead_letters(&mut conn, 10).await.unwrap();
    assert_eq!(dead.iter().map(|d| d.event_id).collect::<Vec<_>>(), ids);
    assert!(
        dead.iter().all(|d| d.attempts == 3 && d.last_error.as_deref() == Some("transient failure #3")),
        "{dead:?}"
    );
    assert!(effects(&pool, "broken").await.is_empty());

    flaky.broken.store(false, Ordering::SeqCst);
    assert!(outbox::replay(&mut conn, ids[0], "broken").await.unwrap());
    assert!(!outbox::replay(&mut conn, ids[0], "broken").await.unwrap(), "no longer dead");
    drain(&dispatcher, &pool).await;
    assert_eq!(effects(&pool, "broken").await, vec![ids[0]]);
    assert_eq!(outbox::dead_letters(&mut conn, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_redelivered_event_whose_effects_committed_is_not_handled_again() {
    let pool = pool().await;
    let flaky = Flaky::new("once", 0);
    let dispatcher = Dispatcher::new(pool.clone(), fast_policy(3)).subscribe(flaky.clone());
    dispatcher.register().await.unwrap();
    let ids = append(&pool, "order.paid", 1).await;
    drain(&dispatcher, &pool).await;
    // As if the process died after the effects committed but before anyone knew: deliver again.
    sqlx::query("UPDATE outbox_deliveries SET status = 'pending'").execute(&pool).await.unwrap();
    drain(&dispatcher, &pool).await;
    assert_eq!(effects(&pool, "once").await, ids);
    assert_eq!(flaky.calls.lock().unwrap()[&ids[0]], 1);
}

#[tokio::test]
async fn two_dispatchers_share_the_work_without_handling_an_event_twice() {
    let pool = pool().await;
    let flaky = Flaky::new("shared", 1);
    let a = Dispatcher::new(pool.clone(), fast_policy(5)).subscribe(flaky.clone());
    let b = Dispatcher::new(pool.clone(), fast_policy(5)).subscribe(flaky.clone());
    a.register().await.unwrap();
    let ids = append(&pool, "order.paid", 60).await;
    let (ra, rb) = tokio::join!(drain(&a, &pool), drain(&b, &pool));
    let ((), ()) = (ra, rb);
    assert_eq!(effects(&pool, "shared").await, ids);
}

#[tokio::test]
async fn the_dispatcher_wakes_on_notify_without_waiting_for_a_poll() {
    let pool = pool().await;
    let flaky = Flaky::new("prompt", 0);
    let policy = DispatchPolicy { poll_interval: Duration::from_secs(30), ..fast_policy(3) };
    let dispatcher = Dispatcher::new(pool.clone(), policy).subscribe(flaky.clone());
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(dispatcher.clone().run(shutdown.clone()));
    // Wait for registration (the dispatcher's first pass), then append.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox_subscriptions").fetch_one(&pool).await.unwrap() == 0
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await; // let it reach LISTEN
    let appended = Instant::now();
    let ids = append(&pool, "order.paid", 1).await;
    while effects(&pool, "prompt").await != ids {
        assert!(appended.elapsed() < Duration::from_secs(5), "not woken by NOTIFY");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

#[tokio::test]
async fn replicas_starting_together_register_the_same_subscriptions_without_deadlocking() {
    // Replicas of a service insert the same subscription rows at start; in different orders,
    // two of them deadlocked and one process failed to start.
    let pool = pool().await;
    let names = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];
    for _ in 0..5 {
        sqlx::query("TRUNCATE outbox_subscriptions CASCADE").execute(&pool).await.unwrap();
        let mut replicas = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let dispatcher = names
                .iter()
                .fold(Dispatcher::new(pool.clone(), fast_policy(3)), |d, name| d.subscribe(Flaky::new(name, 0)));
            replicas.spawn(async move { dispatcher.register().await });
        }
        for registered in replicas.join_all().await {
            registered.unwrap();
        }
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_subscriptions").fetch_one(&pool).await.unwrap();
        assert_eq!(rows, 8);
    }
}
