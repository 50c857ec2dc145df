//! `/health/ready` says which dependency is down instead of crashing.

use reqwest::StatusCode;
use serde_json::Value;
use testkit::{self as testing, TestApp, TestDb};

use super::SPEC;

async fn readiness(app: &TestApp) -> (StatusCode, Value) {
    let response = app.get("/health/ready").await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// A loopback port nobody listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn ready_when_database_migrations_and_rpc_are_up() {
    let app = TestApp::spawn(SPEC).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"]["status"], "up");
    assert!(body["checks"]["database"]["detail"].as_str().unwrap().starts_with("PostgreSQL 1"));
    assert_eq!(body["checks"]["migrations"]["status"], "up");
    assert!(body["checks"]["rpc"]["detail"].as_str().unwrap().starts_with("chain 31337"), "{body}");
}

#[tokio::test]
async fn an_unreachable_database_is_named_in_a_503() {
    let url = format!("postgres://brandmint@127.0.0.1:{}/brandmint", closed_port().await);
    let config = testing::config(&url, &testing::required_env("RPC_URL"), &[]);
    let app = TestApp::spawn_with(SPEC, config).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
    assert_eq!(body["checks"]["database"]["status"], "down");
    assert_eq!(body["checks"]["migrations"]["status"], "down");
    assert_eq!(body["checks"]["rpc"]["status"], "up");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with("database is down"), "{detail}");
    assert!(!detail.contains("rpc"), "{detail}");
    // Liveness is unaffected: the process is up, just not ready.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_database_that_refuses_the_credentials_is_reported_with_the_reason() {
    let server = testing::required_env("DATABASE_URL");
    let prefix = server.rsplit_once('/').unwrap().0;
    let config = testing::config(&format!("{prefix}/no_such_database"), &testing::required_env("RPC_URL"), &[]);
    let app = TestApp::spawn_with(SPEC, config).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let detail = body["checks"]["database"]["detail"].as_str().unwrap();
    assert!(detail.contains("no_such_database"), "{detail}");
}

#[tokio::test]
async fn an_unreachable_rpc_is_named_in_a_503() {
    let db = TestDb::create().await;
    let config = testing::config(&db.url, &format!("http://127.0.0.1:{}", closed_port().await), &[]);
    let app = TestApp::spawn_with(SPEC, config).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["rpc"]["status"], "down");
    assert_eq!(body["checks"]["database"]["status"], "up");
    assert!(body["detail"].as_str().unwrap().starts_with("rpc is down"), "{body}");
}

#[tokio::test]
async fn a_node_on_the_wrong_chain_is_not_ready() {
    let db = TestDb::create().await;
    let config = testing::config(&db.url, &testing::required_env("RPC_URL"), &[("CHAIN_ID", "1")]);
    let app = TestApp::spawn_with(SPEC, config).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["checks"]["rpc"]["detail"], "the node is on chain 31337, expected chain 1");
}
