//! Every service of the platform boots side by side on one database, migrates it once, and
//! serves health, metrics and its OpenAPI document.

use reqwest::StatusCode;
use serde_json::Value;
use shared::testing::{self, TestApp, TestDb};

#[tokio::test]
async fn every_service_boots_and_is_ready_on_one_database() {
    let db = TestDb::create().await;
    let rpc = testing::required_env("RPC_URL");
    let mut apps = Vec::new();
    for spec in anvil_tests::SERVICES {
        // Each service migrates on boot; the second and later find the schema current.
        apps.push((
            spec.name,
            TestApp::spawn_with(spec, testing::config(&db.url, &rpc, &[("CHAIN_ID", "31337")])).await,
        ));
    }
    for (name, app) in &apps {
        let ready = app.get("/health/ready").await;
        assert_eq!(ready.status(), StatusCode::OK, "{name} is not ready");
        let body: Value = ready.json().await.unwrap();
        assert_eq!(body["service"], *name);

        let metrics = app.get("/metrics").await;
        assert_eq!(metrics.status(), StatusCode::OK);
        assert!(metrics.text().await.unwrap().contains("http_requests_total"), "{name} metrics");

        let raw = app.get("/openapi.json").await.text().await.unwrap();
        let doc: utoipa::openapi::OpenApi = serde_json::from_str(&raw).unwrap();
        assert_eq!(doc.info.title, format!("Brandmint {name}"));
        assert!(doc.paths.paths.contains_key("/health/ready"), "{name} documents its readiness route");
    }
    for (_, app) in apps {
        app.stop().await.unwrap();
    }
}
