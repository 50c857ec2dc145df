//! The shared HTTP plumbing as a client sees it.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use testkit::{self as testing, TestApp, TestDb};

use super::SPEC;

const PROBLEM: &str = "application/problem+json";

fn content_type(response: &reqwest::Response) -> String {
    response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn liveness_answers_with_the_service_name() {
    let app = TestApp::spawn(SPEC).await;
    let response = app.get("/health/live").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "live");
    assert_eq!(body["service"], "probe");
}

#[tokio::test]
async fn metrics_are_prometheus_text_counting_requests_by_route() {
    let app = TestApp::spawn(SPEC).await;
    app.get("/health/live").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    assert!(text.contains("# TYPE http_requests_total counter"), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("http_requests_total{")
            && l.contains(r#"service="probe""#)
            && l.contains(r#"route="/health/live""#)
            && l.contains(r#"status="200""#)),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains(r#"brandmint_build_info{service="probe""#), "{text}");
}

#[tokio::test]
async fn the_openapi_document_is_openapi_3_1_and_lists_the_operational_routes() {
    let app = TestApp::spawn(SPEC).await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let raw = response.text().await.unwrap();
    let doc: utoipa::openapi::OpenApi = serde_json::from_str(&raw).expect("a parseable OpenAPI document");
    let value: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(value["openapi"], "3.1.0");
    assert_eq!(doc.info.title, "Brandmint probe");
    for path in ["/health/live", "/health/ready", "/metrics"] {
        assert!(doc.paths.paths.contains_key(path), "{path} missing from the document");
    }
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"), "Swagger UI is served at /docs/");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let app = TestApp::spawn(SPEC).await;
    let response = app.get("/no/such/route").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(content_type(&response), PROBLEM);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "not-found");
    assert_eq!(body["status"], 404);

    let response = app.client.delete(app.url("/health/live")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(content_type(&response), PROBLEM);
}

#[tokio::test]
async fn malformed_json_is_a_400_and_a_bad_field_a_422_naming_the_field() {
    let app = TestApp::spawn(SPEC).await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client.post(app.url("/echo")).header(header::CONTENT_TYPE, content_type).body(body).send()
    };

    let ok = post(r#"{"name":"x","amount":"1000000000000000000","fee":250}"#, "application/json").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.json::<Value>().await.unwrap()["amount"], "1000000000000000000");

    let syntax = post(r#"{"name": "x", "#, "application/json").await.unwrap();
    assert_eq!(syntax.status(), StatusCode::BAD_REQUEST);
    assert_eq!(content_type(&syntax), PROBLEM);

    let bad_fee = post(r#"{"name":"x","amount":"1","fee":10001}"#, "application/json").await.unwrap();
    assert_eq!(bad_fee.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = bad_fee.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "fee", "{body}");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("10000"), "{body}");

    let negative = post(r#"{"name":"x","amount":"-5","fee":1}"#, "application/json").await.unwrap();
    assert_eq!(negative.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(negative.json::<Value>().await.unwrap()["errors"][0]["field"], "amount");

    let missing = post(r#"{"amount":"5","fee":1}"#, "application/json").await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(missing.json::<Value>().await.unwrap()["detail"].as_str().unwrap().contains("name"));

    let wrong_type = post(r#"{"name":"x"}"#, "text/plain").await.unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(content_type(&wrong_type), PROBLEM);

    let huge = format!(r#"{{"name":"{}","amount":"1","fee":1}}"#, "x".repeat(2 * 1024 * 1024));
    let too_large = app
        .client
        .post(app.url("/echo"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(content_type(&too_large), PROBLEM);
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_that_reveals_nothing() {
    let app = TestApp::spawn(SPEC).await;
    let response = app.get("/panic").await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(content_type(&response), PROBLEM);
    let text = response.text().await.unwrap();
    assert!(!text.contains("hunter2") && !text.contains("boom"), "{text}");
    // The server keeps serving.
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_running_past_the_timeout_gets_a_503_problem() {
    let db = TestDb::create().await;
    let config = testing::config(&db.url, &testing::required_env("RPC_URL"), &[("HTTP_REQUEST_TIMEOUT_SECS", "0")]);
    let app = TestApp::spawn_with(SPEC, config).await;
    let response = app.get("/slow").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "timeout");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let app = TestApp::spawn(SPEC).await;
    let in_flight = tokio::spawn(app.client.get(app.url("/slow")).send());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = tokio::spawn(app.stop());
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), stopped).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn echoed_json_round_trips_exact_amounts() {
    let app = TestApp::spawn(SPEC).await;
    let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    let response = app
        .client
        .post(app.url("/echo"))
        .json(&json!({"name": "max", "amount": max, "fee": 10000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["amount"], max);
}
