//! Sentry reporting, from the shipped binaries (`testkit::cluster`: Sentry is initialised only
//! in a real process) to a local fake Sentry (`fakes::sentry`): every failed daemon run and
//! every 500 answer arrives there exactly once, and the 500's client sees none of its cause.

use std::time::{Duration, Instant};

use fakes::sentry::{SentryFake, event_text};
use reqwest::StatusCode;
use serde_json::Value;
use testkit::{self as testing, cluster::Cluster};

/// The daemon made to fail: the indexer's OpenSea poller, pointed at a port nobody listens on
/// and run every second.
const DAEMON: &str = "indexer.opensea";

/// The events whose text starts with `prefix`.
fn count(sentry: &SentryFake, prefix: &str) -> usize {
    sentry.events().iter().filter(|e| event_text(e).starts_with(prefix)).count()
}

/// Waits (up to 10 s: Sentry sends in the background) until `prefix`'s events number `expected`,
/// then a little longer to see no more arrive; their number.
async fn settled_count(sentry: &SentryFake, prefix: &str, expected: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while count(sentry, prefix) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    count(sentry, prefix)
}

#[tokio::test]
async fn sentry_gets_each_daemon_failure_and_each_server_error_exactly_once() {
    let started = Instant::now();
    shared::chain::install_crypto_provider();
    let sentry = SentryFake::start().await.unwrap();
    let anvil = testing::anvil();
    let dsn = sentry.dsn();
    let env = [
        ("SENTRY_DSN", dsn.as_str()),
        ("OPENSEA_API_URL", "http://127.0.0.1:1"),
        ("OPENSEA_API_KEY", "opensea-test-key"),
        ("MARKETPLACE_POLL_SECS", "1"),
    ];
    let anvil_addr = anvil.endpoint_url().socket_addrs(|| None).unwrap()[0];
    let cluster = Cluster::start(1, anvil_addr, &env).await.unwrap();
    let db = sqlx::PgPool::connect(&cluster.postgres.url()).await.unwrap();

    // A brand with its owner, and a campaign with a collection for the poller to ask about.
    let (brand, token) = cluster.brand_owner(&db, "Sentry", "owner@sentry.example").await;
    sqlx::query(
        "INSERT INTO campaigns (brand_id, name, slug, symbol, royalty_bps, chain_id, collection_address)
         VALUES ($1, 'Polled', 'polled', 'POLL', 0, $2, $3)",
    )
    .bind(brand)
    .bind(i64::try_from(anvil.chain_id()).unwrap())
    .bind(vec![0x11u8; 20])
    .execute(&db)
    .await
    .unwrap();

    // The poller fails on every run while OpenSea does not answer: wait for two failures.
    let failed = |db: &sqlx::PgPool| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM daemon_runs WHERE daemon = $1 AND outcome = 'failed'")
                .bind(DAEMON)
                .fetch_one(&db)
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while failed(&db).await < 2 {
        assert!(Instant::now() < deadline, "{DAEMON} did not fail twice in 60 s; logs in {:?}", cluster.log_dir());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Nothing left to poll: the runs succeed from now on, so the failures stop growing. Once a
    // run that started after this has finished, every failed run is recorded.
    let calm: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("WITH gone AS (DELETE FROM campaigns WHERE brand_id = $1) SELECT clock_timestamp()")
            .bind(brand)
            .fetch_one(&db)
            .await
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM daemon_runs WHERE daemon = $1 AND outcome = 'ok' AND started_at > $2",
        )
        .bind(DAEMON)
        .bind(calm)
        .fetch_one(&db)
        .await
        .unwrap();
        if ok > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{DAEMON} did not recover in 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every run that ended with an error is reported (lease losses too, should any happen).
    let reported: i64 = sqlx::query_scalar("SELECT count(*) FROM daemon_runs WHERE daemon = $1 AND error IS NOT NULL")
        .bind(DAEMON)
        .fetch_one(&db)
        .await
        .unwrap();
    let failed = failed(&db).await;
    assert!(failed >= 2, "{failed} failed runs");
    let expected = usize::try_from(reported).unwrap();
    let prefix = format!("daemon {DAEMON} ");
    let events = settled_count(&sentry, &prefix, expected).await;
    assert_eq!(events, expected, "one event per failed run: {:#?}", sentry.events());

    // A 500: the stores' table loses the column the route reads.
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let backoffice = cluster.any("backoffice");
    let before = count(&sentry, "internal server error");
    assert_eq!(before, 0, "no 500 yet: {:#?}", sentry.events());
    sqlx::query("ALTER TABLE stores RENAME COLUMN name TO name_gone").execute(&db).await.unwrap();
    let response =
        http.get(backoffice.url(&format!("/brands/{brand}/stores"))).bearer_auth(&token).send().await.unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    sqlx::query("ALTER TABLE stores RENAME COLUMN name_gone TO name").execute(&db).await.unwrap();
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "internal", "{body}");
    for internal in ["name_gone", "column", "stores", "sql", "database"] {
        assert!(!body.to_lowercase().contains(internal), "the client sees `{internal}`: {body}");
    }
    let events = settled_count(&sentry, "internal server error", 1).await;
    assert_eq!(events, 1, "one event for the one 500: {:#?}", sentry.events());
    // The route answers again once the column is back, and nothing more is reported.
    let again = http.get(backoffice.url(&format!("/brands/{brand}/stores"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(count(&sentry, "internal server error"), 1);
    eprintln!(
        "sentry: {failed} failed {DAEMON} runs, {} events in all, in {:.1} s",
        sentry.events().len(),
        started.elapsed().as_secs_f64()
    );
    sentry.shutdown();
}
