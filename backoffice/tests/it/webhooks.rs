//! Brand webhooks end to end: endpoints through the API, events through the outbox, the
//! real sender daemon posting to receivers running in the test; and the operators' Telegram
//! alerts against a fake Bot API.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode as AxumStatus, Uri, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use shared::{
    auth::BrandRole,
    workflow::{NewEvent, outbox},
};
use testkit::{TestApp, TestDb, config, required_env};
use tokio_util::sync::{CancellationToken, DropGuard};

/// A back office with the given settings, a brand and its owner's token.
async fn brand_app(settings: &[(&str, &str)]) -> (TestApp, i64, String) {
    let db = TestDb::create().await;
    let app = TestApp::spawn_with(backoffice::SERVICE, config(&db.url, &required_env("RPC_URL"), settings)).await;
    let brand = app.brand("Acme").await;
    let (owner_id, owner) = app.account("owner@acme.example", None).await;
    app.member(brand, owner_id, BrandRole::Owner, &[]).await;
    (app, brand, owner)
}

/// Receivers in these tests listen on 127.0.0.1, which only local development allows.
const LOCAL: (&str, &str) = ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true");

/// Runs the outbox dispatcher and the daemons (as `shared::service::run` does) until dropped;
/// returns once the subscriptions are registered, so events appended from then on are seen.
async fn background(app: &TestApp) -> DropGuard {
    let shutdown = CancellationToken::new();
    let (resources, token) = (app.resources.clone(), shutdown.clone());
    tokio::spawn(async move { shared::service::background(&resources, &[backoffice::SERVICE], token).await });
    let pool = app.resources.db().clone();
    eventually("outbox subscriptions", || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM outbox_subscriptions WHERE subscriber IN ('webhook-fanout', 'admin-telegram-alerts')",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (n > 0).then_some(())
        }
    })
    .await;
    shutdown.drop_guard()
}

/// Polls `check` until it yields, for up to 30 seconds.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Appends an event to the outbox, as a state transition would; returns its id.
async fn emit(app: &TestApp, event_type: &str, aggregate_type: &'static str, aggregate_id: i64, payload: Value) -> i64 {
    let mut conn = app.resources.db().acquire().await.unwrap();
    let event = NewEvent { event_type: event_type.into(), aggregate_type, aggregate_id, payload, correlation_id: None };
    outbox::append(&mut conn, event).await.unwrap()
}

/// Waits until the fan-out subscriber has handled an event.
async fn fanned_out(app: &TestApp, event_id: i64) {
    eventually("the fan-out of the event", || async {
        let done: bool = sqlx::query_scalar(
            "SELECT status = 'done' FROM outbox_deliveries WHERE event_id = $1 AND subscriber = 'webhook-fanout'",
        )
        .bind(event_id)
        .fetch_one(app.resources.db())
        .await
        .unwrap();
        done.then_some(())
    })
    .await;
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A local HTTP receiver: answers 500 to its first `failures` requests, or redirects every
/// request when `redirect_to` is set, else 200.
#[derive(Debug, Clone, Default)]
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    failures_left: Arc<AtomicUsize>,
    redirect_to: Option<String>,
}

impl Receiver {
    async fn start(failures: usize, redirect_to: Option<String>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}/hooks/brandmint", listener.local_addr().unwrap()),
            failures_left: Arc::new(AtomicUsize::new(failures)),
            redirect_to,
            ..Receiver::default()
        };
        let router = axum::Router::new().fallback(receive).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        receiver
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    async fn wait_for(&self, count: usize) -> Vec<Received> {
        eventually(&format!("{count} requests at {}", self.url), || async {
            let received = self.received();
            (received.len() >= count).then_some(received)
        })
        .await
    }
}

async fn receive(State(receiver): State<Receiver>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    receiver.received.lock().unwrap().push(Received { path: uri.path().to_owned(), headers, body });
    if let Some(to) = &receiver.redirect_to {
        return (AxumStatus::FOUND, [(header::LOCATION, to.clone())]).into_response();
    }
    if receiver.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return (AxumStatus::INTERNAL_SERVER_ERROR, "not today").into_response();
    }
    (AxumStatus::OK, "thanks").into_response()
}

/// What a receiver does, written independently of the platform's code: HMAC-SHA256 with the
/// base64-decoded `whsec_` secret over `{id}.{timestamp}.{body}`, compared with each `v1,`
/// signature of the header, and a timestamp within five minutes.
fn verifies(secret: &str, request: &Received) -> bool {
    let key = BASE64.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).unwrap();
    let (id, timestamp) = (request.header("webhook-id"), request.header("webhook-timestamp"));
    let sent_at: i64 = timestamp.parse().unwrap();
    if (chrono::Utc::now().timestamp() - sent_at).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
    request.header("webhook-signature").split(' ').any(|signature| signature == expected)
}

async fn create_endpoint(app: &TestApp, brand: i64, owner: &str, url: &str, events: &[&str]) -> (i64, String) {
    let body = json!({ "url": url, "event_types": events, "description": "orders to the ERP" });
    let (status, created) = app.call(Method::POST, &format!("/brands/{brand}/webhooks"), owner, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (created["endpoint"]["id"].as_i64().unwrap(), created["secret"].as_str().unwrap().to_owned())
}

async fn deliveries(app: &TestApp, brand: i64, endpoint: i64, owner: &str) -> Value {
    let (status, log) =
        app.call(Method::GET, &format!("/brands/{brand}/webhooks/{endpoint}/deliveries"), owner, None).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    log
}

#[tokio::test]
async fn a_brand_event_reaches_its_endpoint_signed_the_standard_webhooks_way() {
    let (app, brand, owner) = brand_app(&[LOCAL]).await;
    let receiver = Receiver::start(0, None).await;
    let (endpoint, secret) = create_endpoint(&app, brand, &owner, &receiver.url, &["order.created"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    // The secret is shown once: never in reads.
    let (_, read) = app.call(Method::GET, &format!("/brands/{brand}/webhooks/{endpoint}"), &owner, None).await;
    assert_eq!(read["event_types"], json!(["order.created"]));
    assert!(!read.to_string().contains(&secret[6..]), "{read}");

    let _background = background(&app).await;
    let other_brand = app.brand("Other").await;
    // Not subscribed, another brand's, and brandless: none of these is sent.
    emit(&app, "campaign.live", "campaign", 3, json!({ "brand_id": brand, "campaign_id": 3 })).await;
    emit(&app, "order.created", "order", 41, json!({ "brand_id": other_brand })).await;
    emit(&app, "order.created", "order", 40, json!({ "id": 40 })).await;
    emit(&app, "order.created", "order", 42, json!({ "brand_id": brand, "id": 42, "total_minor": 4_900 })).await;

    let request = receiver.wait_for(1).await.remove(0);
    assert_eq!(request.path, "/hooks/brandmint");
    assert_eq!(request.header("content-type"), "application/json");
    assert!(request.header("webhook-id").starts_with("msg_"));
    assert!(verifies(&secret, &request), "signature does not verify: {:?}", request.headers);
    let body = request.json();
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["data"], json!({ "brand_id": brand, "id": 42, "total_minor": 4_900 }));
    assert!(chrono::DateTime::parse_from_rfc3339(body["timestamp"].as_str().unwrap()).is_ok(), "{body}");

    let log = eventually("the delivery to be marked succeeded", || async {
        let log = deliveries(&app, brand, endpoint, &owner).await;
        (log[0]["status"] == "succeeded").then_some(log)
    })
    .await;
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["webhook_id"], request.header("webhook-id"));
    assert_eq!(log[0]["last_status_code"], 200);
    assert_eq!(log[0]["attempt_log"][0]["response_body"], "thanks");

    // After a rotation both secrets sign, so the receiver can switch over at leisure.
    let (status, rotated) =
        app.call(Method::POST, &format!("/brands/{brand}/webhooks/{endpoint}/rotate-secret"), &owner, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let (status, _) = app.call(Method::POST, &format!("/brands/{brand}/webhooks/{endpoint}/test"), &owner, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let test = receiver.wait_for(2).await.remove(1);
    assert_eq!(test.json()["type"], "webhook.test");
    assert_eq!(test.header("webhook-signature").split(' ').count(), 2);
    assert!(verifies(new_secret, &test) && verifies(&secret, &test));
    assert_ne!(test.header("webhook-id"), request.header("webhook-id"));

    // Every change is audited, without secrets.
    let (_, audit) = app.call(Method::GET, &format!("/brands/{brand}/audit"), &owner, None).await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["webhook.tested", "webhook.secret-rotated", "webhook.created"]);
    assert!(!audit.to_string().contains(&new_secret[6..]) && !audit.to_string().contains(&secret[6..]));
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_the_event_on_the_third_attempt() {
    let (app, brand, owner) = brand_app(&[LOCAL, ("WEBHOOK_RETRY_BASE_SECS", "1")]).await;
    let receiver = Receiver::start(2, None).await;
    let (endpoint, secret) = create_endpoint(&app, brand, &owner, &receiver.url, &["deployment.failed"]).await;
    let _background = background(&app).await;
    emit(&app, "deployment.failed", "deployment", 9, json!({ "brand_id": brand, "id": 9 })).await;

    let requests = receiver.wait_for(3).await;
    let ids: Vec<&str> = requests.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids, [ids[0]; 3], "retries keep the webhook-id");
    assert!(requests.iter().all(|r| verifies(&secret, r) && r.body == requests[0].body));

    let log = eventually("the delivery to be marked succeeded", || async {
        let log = deliveries(&app, brand, endpoint, &owner).await;
        (log[0]["status"] == "succeeded").then_some(log)
    })
    .await;
    let attempts: Vec<(i64, Option<i64>)> = log[0]["attempt_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["attempt"].as_i64().unwrap(), a["status_code"].as_i64()))
        .collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    assert_eq!(log[0]["attempt_log"][0]["error"], "HTTP 500 Internal Server Error");
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(receiver.received().len(), 3, "nothing more once delivered");
}

#[tokio::test]
async fn a_replay_redelivers_a_failed_delivery_with_the_same_webhook_id() {
    let (app, brand, owner) = brand_app(&[LOCAL, ("WEBHOOK_MAX_ATTEMPTS", "1")]).await;
    let receiver = Receiver::start(1, None).await;
    let (endpoint, secret) = create_endpoint(&app, brand, &owner, &receiver.url, &["order.refunded"]).await;
    let _background = background(&app).await;
    emit(&app, "order.refunded", "order", 5, json!({ "brand_id": brand, "id": 5 })).await;

    let first = receiver.wait_for(1).await.remove(0);
    let log = eventually("the delivery to fail", || async {
        let log = deliveries(&app, brand, endpoint, &owner).await;
        (log[0]["status"] == "failed").then_some(log)
    })
    .await;
    let delivery = log[0]["id"].as_i64().unwrap();
    assert_eq!(log[0]["last_status_code"], 500);

    let replay = format!("/brands/{brand}/webhooks/{endpoint}/deliveries/{delivery}/replay");
    let (status, replayed) = app.call(Method::POST, &replay, &owner, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{replayed}");
    assert_eq!(replayed["status"], "pending");
    let second = receiver.wait_for(2).await.remove(1);
    assert_eq!(second.header("webhook-id"), first.header("webhook-id"));
    assert_eq!(second.body, first.body);
    assert!(verifies(&secret, &second));
    let log = eventually("the replay to succeed", || async {
        let log = deliveries(&app, brand, endpoint, &owner).await;
        (log[0]["status"] == "succeeded").then_some(log)
    })
    .await;
    assert_eq!(log[0]["attempt_log"].as_array().unwrap().len(), 2, "{log}");

    // A delivered one can be replayed again; another brand's cannot be reached at all.
    let (status, _) = app.call(Method::POST, &replay, &owner, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    receiver.wait_for(3).await;
    let other = app.brand("Other").await;
    let (other_owner_id, other_owner) = app.account("owner@other.example", None).await;
    app.member(other, other_owner_id, BrandRole::Owner, &[]).await;
    let foreign = format!("/brands/{other}/webhooks/{endpoint}/deliveries/{delivery}/replay");
    let (status, _) = app.call(Method::POST, &foreign, &other_owner, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor through Acme's path: to a non-member, another brand does not exist.
    let (status, _) = app.call(Method::POST, &replay, &other_owner, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, log) =
        app.call(Method::GET, &format!("/brands/{brand}/webhooks/{endpoint}/deliveries"), &owner, None).await;
    assert_eq!(log[0]["attempt_log"].as_array().unwrap().len(), 3, "{log}");
}

#[tokio::test]
async fn a_webhook_at_a_loopback_address_is_refused_in_production() {
    let production =
        [("APP_ENV", "production"), ("STRIPE_SECRET_KEY", "sk_test_x"), ("STRIPE_WEBHOOK_SECRET", "whsec_eA")];
    let (app, brand, owner) = brand_app(&production).await;
    let path = format!("/brands/{brand}/webhooks");
    for url in [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/hook",
        "https://0.0.0.0/hook",
        "https://localhost/hook",
        "http://93.184.215.14/hook",
        "https://user:pass@93.184.215.14/hook",
        "not a url",
    ] {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&owner)
            .json(&json!({ "url": url, "event_types": ["order.created"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{url}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "validation");
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    let (status, problem) = app
        .call(
            Method::POST,
            &path,
            &owner,
            Some(json!({ "url": "https://93.184.215.14/hook", "event_types": ["order.shipped"] })),
        )
        .await;
    assert_eq!((status, &problem["errors"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("event_types")));
    let (status, _) = app.call(Method::POST, &path, &owner, Some(json!({ "url": 42, "event_types": [] }))).await;
    assert!(status.is_client_error(), "{status}");

    // A public HTTPS endpoint is fine; pointing it at loopback later is refused the same way.
    let (endpoint, _) = create_endpoint(&app, brand, &owner, "https://93.184.215.14/hook", &["order.created"]).await;
    let (status, problem) = app
        .call(
            Method::PATCH,
            &format!("{path}/{endpoint}"),
            &owner,
            Some(json!({ "url": "https://127.0.0.1:8443/hook" })),
        )
        .await;
    assert_eq!((status, &problem["errors"][0]["field"]), (StatusCode::UNPROCESSABLE_ENTITY, &json!("url")));
    let (_, stored) = app.call(Method::GET, &format!("{path}/{endpoint}"), &owner, None).await;
    assert_eq!(stored["url"], "https://93.184.215.14/hook");

    // Staff cannot manage webhooks.
    let (staff_id, staff) = app.account("staff@acme.example", None).await;
    app.member(brand, staff_id, BrandRole::Staff, &[]).await;
    let (status, _) = app.call(Method::GET, &path, &staff, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_sender_refuses_private_targets_at_send_time_also_behind_a_host_name() {
    // No private targets allowed here; the endpoints are written straight to the table, as if
    // registered when their names resolved elsewhere (DNS rebinding) or under another policy.
    let (app, brand, owner) = brand_app(&[("WEBHOOK_MAX_ATTEMPTS", "1")]).await;
    let receiver = Receiver::start(0, None).await;
    let port = receiver.url.split(':').nth(2).unwrap().split('/').next().unwrap().to_owned();
    let mut endpoints = Vec::new();
    for url in [receiver.url.clone(), format!("http://localhost:{port}/hooks/brandmint")] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_endpoints (brand_id, url, event_types, secret)
             VALUES ($1, $2, ARRAY['order.created'], $3) RETURNING id",
        )
        .bind(brand)
        .bind(url)
        .bind("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3")
        .fetch_one(app.resources.db())
        .await
        .unwrap();
        endpoints.push(id);
    }
    let _background = background(&app).await;
    emit(&app, "order.created", "order", 1, json!({ "brand_id": brand, "id": 1 })).await;

    for endpoint in endpoints {
        let log = eventually("the delivery to fail", || async {
            let log = deliveries(&app, brand, endpoint, &owner).await;
            (log.get(0).is_some_and(|d| d["status"] == "failed")).then_some(log)
        })
        .await;
        let error = log[0]["last_error"].as_str().unwrap();
        assert!(error.contains("private, loopback, link-local or unspecified"), "{error}");
        assert_eq!(log[0]["attempt_log"][0]["status_code"], Value::Null);
    }
    assert!(receiver.received().is_empty(), "a refused target was called");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (app, brand, owner) = brand_app(&[LOCAL, ("WEBHOOK_MAX_ATTEMPTS", "1")]).await;
    let elsewhere = Receiver::start(0, None).await;
    let redirecting = Receiver::start(0, Some(elsewhere.url.clone())).await;
    let (endpoint, _) = create_endpoint(&app, brand, &owner, &redirecting.url, &["order.created"]).await;
    let _background = background(&app).await;
    emit(&app, "order.created", "order", 1, json!({ "brand_id": brand })).await;
    let log = eventually("the delivery to fail", || async {
        let log = deliveries(&app, brand, endpoint, &owner).await;
        (log.get(0).is_some_and(|d| d["status"] == "failed")).then_some(log)
    })
    .await;
    assert_eq!(log[0]["last_status_code"], 302);
    assert!(log[0]["last_error"].as_str().unwrap().contains("redirects are not followed"), "{log}");
    assert_eq!(redirecting.received().len(), 1);
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}

#[tokio::test]
async fn deleting_an_endpoint_stops_its_deliveries_and_keeps_its_log() {
    let (app, brand, owner) = brand_app(&[LOCAL]).await;
    let receiver = Receiver::start(0, None).await;
    let (endpoint, _) = create_endpoint(&app, brand, &owner, &receiver.url, &["order.created"]).await;
    let path = format!("/brands/{brand}/webhooks/{endpoint}");
    let _background = background(&app).await;
    let (status, _) = app.call(Method::POST, &format!("{path}/test"), &owner, None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    receiver.wait_for(1).await;

    let (status, disabled) = app.call(Method::PATCH, &path, &owner, Some(json!({ "enabled": false }))).await;
    assert_eq!((status, &disabled["enabled"]), (StatusCode::OK, &json!(false)));
    let (status, problem) = app.call(Method::POST, &format!("{path}/test"), &owner, None).await;
    assert_eq!((status, &problem["code"]), (StatusCode::CONFLICT, &json!("endpoint-disabled")));
    let (status, _) = app.call(Method::DELETE, &path, &owner, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.call(Method::GET, &path, &owner, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.call(Method::GET, &format!("/brands/{brand}/webhooks"), &owner, None).await;
    assert_eq!(list, json!([]));
    // Events for it are no longer fanned out; what was sent stays in the log.
    let event = emit(&app, "order.created", "order", 3, json!({ "brand_id": brand })).await;
    fanned_out(&app, event).await;
    let log = deliveries(&app, brand, endpoint, &owner).await;
    assert_eq!(log.as_array().unwrap().len(), 1, "{log}");
    assert_eq!(log[0]["event_type"], "webhook.test");
    let secret: String = sqlx::query_scalar("SELECT secret FROM webhook_endpoints WHERE id = $1")
        .bind(endpoint)
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(secret, "", "a deleted endpoint's secret is wiped");
}

/// The `sendMessage` calls a fake Telegram got: the `bot<token>` path segment and the body.
type TelegramCalls = Arc<Mutex<Vec<(String, Value)>>>;

/// A fake Telegram Bot API: records `sendMessage` calls and answers like Telegram.
async fn fake_telegram() -> (String, TelegramCalls) {
    let calls = TelegramCalls::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = axum::Router::new()
        .route(
            "/{bot}/sendMessage",
            axum::routing::post(
                |State(calls): State<TelegramCalls>,
                 axum::extract::Path(bot): axum::extract::Path<String>,
                 axum::Json(body): axum::Json<Value>| async move {
                    calls.lock().unwrap().push((bot, body.clone()));
                    axum::Json(json!({ "ok": true, "result": { "message_id": 1, "text": body["text"] } }))
                },
            ),
        )
        .with_state(calls.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{address}"), calls)
}

#[tokio::test]
async fn operators_get_a_telegram_alert_for_new_orders_and_failed_deployments() {
    let (api, calls) = fake_telegram().await;
    let (app, brand, _) = brand_app(&[
        ("TELEGRAM_BOT_TOKEN", "123456:test-token"),
        ("TELEGRAM_CHAT_ID", "-100777"),
        ("TELEGRAM_API_URL", &api),
    ])
    .await;
    let _background = background(&app).await;
    emit(&app, "order.created", "order", 77, json!({ "brand_id": brand, "id": 77 })).await;
    emit(&app, "order.fulfilled", "order", 77, json!({ "brand_id": brand, "id": 77 })).await;
    emit(
        &app,
        "deployment.failed",
        "deployment",
        5,
        json!({ "brand_id": brand, "campaign_id": 12, "cause": "execution reverted: supply is zero" }),
    )
    .await;

    let recorded = eventually("two alerts", || async {
        let recorded = calls.lock().unwrap().clone();
        (recorded.len() >= 2).then_some(recorded)
    })
    .await;
    let mut texts: Vec<&str> = recorded.iter().map(|(_, body)| body["text"].as_str().unwrap()).collect();
    texts.sort_unstable();
    assert!(recorded.iter().all(|(bot, body)| bot == "bot123456:test-token" && body["chat_id"] == "-100777"));
    assert!(texts[0].starts_with("Deployment #5 failed for Acme (brand #"), "{texts:?}");
    assert!(texts[0].contains("Campaign #12") && texts[0].contains("supply is zero"), "{texts:?}");
    assert!(texts[1].starts_with("New order #77 for Acme (brand #"), "{texts:?}");
    // Give a wrong extra alert (order.fulfilled is not one) the time to show up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(calls.lock().unwrap().len(), 2, "order.fulfilled is not an alert");
}
