//! Every service of the platform boots side by side on one database, migrates it once, and
//! serves health, metrics and its OpenAPI document.

use reqwest::StatusCode;
use serde_json::Value;
use testkit::{self as testing, TestApp, TestDb};

#[tokio::test]
async fn every_service_boots_and_is_ready_on_one_database() {
    let db = TestDb::create().await;
    let rpc = testing::required_env("RPC_URL");
    let mut apps = Vec::new();
    for spec in cli::SERVICES {
        // Each service migrates on boot; the second and later find the schema current.
        apps.push((
            spec.name,
            TestApp::spawn_with(spec, testing::config(&db.url, &rpc, &[("CHAIN_ID", "31337")])).await,
        ));
    }
    for (name, app) in &apps {
        if *name == "indexer" {
            // Not ready until it has caught up with the chain: say so, then catch up.
            let behind = app.get("/health/ready").await;
            assert_eq!(behind.status(), StatusCode::SERVICE_UNAVAILABLE);
            let problem: Value = behind.json().await.unwrap();
            assert!(problem["detail"].as_str().unwrap().contains("not indexed yet"), "{problem}");
            assert_eq!(problem["checks"]["service"]["status"], "down", "{problem}");
            indexer::catch_up(&app.resources).await.unwrap();
        }
        let ready = app.get("/health/ready").await;
        assert_eq!(ready.status(), StatusCode::OK, "{name} is not ready");
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["service"], *name);

        let metrics = app.get("/metrics").await;
        assert_eq!(metrics.status(), StatusCode::OK);
        assert!(metrics.text().await.unwrap().contains("http_requests_total"), "{name} metrics");

        let raw = app.get("/openapi.json").await.text().await.unwrap();
        let doc: serde_json::Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(doc["info"]["title"], format!("Brandmint {name}"));
        assert!(doc["paths"].get("/health/ready").is_some(), "{name} documents its readiness route");
        // Every error response is documented with the media type it is sent with.
        let mut problems = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                    let content = response["content"].as_object();
                    let problem = content.and_then(|c| c.get("application/problem+json"));
                    if status.starts_with(['4', '5']) && content.is_some_and(|c| !c.is_empty()) {
                        assert!(problem.is_some(), "{name} {method} {path} {status}: {response}");
                        problems += 1;
                    }
                    assert!(content.is_none_or(|c| !c.contains_key("application/json") || !status.starts_with('4')));
                }
            }
        }
        assert!(problems > 0, "{name} documents its error responses");
    }
    for (_, app) in apps {
        app.stop().await.unwrap();
    }
}

/// The background of a platform process (what `service::run` starts next to the HTTP servers)
/// sends what is queued: a contract write enqueued by a service is signed, broadcast and
/// confirmed, and `tx.confirmed` lands in the outbox.
#[tokio::test]
async fn the_platform_process_sends_queued_transactions() {
    use alloy::primitives::{Address, Bytes};
    use shared::{
        chain::txqueue::{self, IdempotencyKey, TxRequest},
        service::{Resources, background},
        workflow::machines::TxState,
    };
    use tokio_util::sync::CancellationToken;

    let db = TestDb::create().await;
    let anvil = testing::anvil();
    let key = format!("0x{}", alloy::hex::encode(anvil.keys()[7].to_bytes()));
    let config = testing::config(&db.url, anvil.endpoint_url().as_str(), &[("TX_SIGNER_PRIVATE_KEYS", &key)]);
    let resources = Resources::new(config).unwrap();
    let shutdown = CancellationToken::new();
    resources.migrate(shutdown.clone()).await;
    let running = tokio::spawn({
        let (resources, shutdown) = (resources.clone(), shutdown.clone());
        async move { background(&resources, &cli::SERVICES, shutdown).await }
    });

    let mut conn = resources.db().acquire().await.unwrap();
    let request = TxRequest::call(
        IdempotencyKey::new("test:platform-process:1").unwrap(),
        anvil.chain_id(),
        anvil.addresses()[7],
        Address::repeat_byte(0x11),
        Bytes::new(),
    );
    let queued = txqueue::enqueue(&mut conn, &request).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let view = txqueue::get(&mut conn, queued.id).await.unwrap().unwrap();
        if view.state == TxState::Confirmed {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not confirmed: {view:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let confirmed: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type LIKE 'tx.confirmed%'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(confirmed, 1);
    shutdown.cancel();
    running.await.unwrap().unwrap();
}
