//! A stateful Stripe emulator: the subset of Stripe's HTTP API the card path uses, for the local
//! run command and tests (never production configuration).
//!
//! It speaks Stripe's wire format: form-encoded requests (`metadata[order_id]=…`), Bearer
//! secret-key authentication (401 otherwise), `Idempotency-Key` semantics (same key and
//! parameters → the saved response replayed, including errors; same key, other parameters → 400
//! `idempotency_error`), complete JSON objects that async-stripe deserialises, Stripe's error
//! bodies (402 `card_error` with `decline_code`), and events delivered to a webhook URL signed
//! exactly as Stripe signs them.
//!
//! Endpoints: `POST /v1/payment_intents`, `GET /v1/payment_intents/{id}`,
//! `POST /v1/payment_intents/{id}/{confirm,capture,cancel}`, `POST /v1/refunds`,
//! `GET /v1/payment_intents/search` (exact `status:` and `metadata[…]:` clauses),
//! `GET /v1/refunds/{id}`, `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! `POST /v1/checkout/sessions/{id}/expire`, `GET /v1/events`, `GET /v1/events/{id}`, and the
//! hosted page `GET|POST /pay/{session}`.
//!
//! Like Stripe, it takes the account's publishable key ([`StripeEmulator::publishable_key`]) where
//! Stripe.js uses it: retrieving and confirming a PaymentIntent together with that intent's
//! `client_secret`, so a buyer's page never needs the secret key.
//!
//! Test cards: `pm_card_visa` and `pm_card_mastercard` succeed (manual capture →
//! `requires_capture`), `pm_card_chargeDeclined` is declined (`generic_decline`),
//! `pm_card_chargeDeclinedInsufficientFunds` is declined with `insufficient_funds`.
//!
//! Automatic delivery posts each event once, in creation order, to the configured webhook URL; a
//! test replays with [`StripeEmulator::redeliver`]. With [`StripeEmulator::retry_deliveries`] a
//! failed delivery (no answer, or not 2xx) is retried with growing waits, as Stripe does (for
//! tests whose receivers die and come back). Test controls are plain
//! methods on [`StripeEmulator`].

mod page;
mod state;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Extension, Path, Query, Request, State as AxumState},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use self::state::{ApiError, Form, Reply, Saved, State};

/// The header Stripe signs webhook deliveries in.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// The `Stripe-Signature` value Stripe sends for `payload` at `timestamp`:
/// `t={timestamp},v1={hex HMAC-SHA256(secret, "{timestamp}.{payload}")}` (Stripe's documented
/// scheme, implemented here from the documentation, not shared with the platform's verifier).
pub fn signature_header(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    format!("t={timestamp},v1={}", alloy::hex::encode(mac.finalize().into_bytes()))
}

/// How a (re)delivery is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// As Stripe signs: the endpoint's secret, the current time.
    Genuine,
    /// The endpoint's secret with this timestamp (e.g. 6 minutes ago: a stale replay).
    At(DateTime<Utc>),
    /// Signed with a secret that is not the endpoint's: a forgery.
    Forged,
}

/// Why a manual delivery could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("no webhook endpoint is configured")]
    NoEndpoint,
    #[error("no event {0}")]
    NoSuchEvent(String),
    #[error("the endpoint could not be reached: {0}")]
    Unreachable(#[from] reqwest::Error),
}

/// An event the emulator recorded.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    /// `evt_…`.
    pub id: String,
    /// e.g. `payment_intent.amount_capturable_updated`.
    pub event_type: String,
    /// The id of the object in `data.object`.
    pub object_id: String,
    /// The event as `GET /v1/events/{id}` returns it.
    pub json: Value,
    /// `None` until a delivery was attempted; then whether the last attempt got a 2xx.
    pub delivered: Option<bool>,
}

#[derive(Debug, Clone)]
struct Endpoint {
    url: reqwest::Url,
    secret: String,
}

/// How a request to the API authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The account's secret key: everything.
    Secret,
    /// The publishable key (as Stripe.js sends it, in the `Authorization` header or the `key`
    /// parameter): only a PaymentIntent's retrieval and confirmation, with its `client_secret`.
    Publishable,
}

#[derive(Debug)]
struct Inner {
    secret_key: String,
    publishable_key: String,
    state: Mutex<State>,
    endpoint: Mutex<Option<Endpoint>>,
    paused: AtomicBool,
    retrying: AtomicBool,
    outbox: mpsc::UnboundedSender<String>,
    http: reqwest::Client,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn endpoint(&self) -> Option<Endpoint> {
        self.endpoint.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Queues the events the last request created for automatic delivery (unless paused).
    fn dispatch(&self, events: Vec<String>) {
        if self.paused.load(Ordering::SeqCst) {
            return;
        }
        for id in events {
            // The worker stops only with the emulator.
            let _ = self.outbox.send(id);
        }
    }

    /// Delivers `event_id` again after 0.25 s, 0.5 s, 1 s, … (at most 5 s apart, 40 tries).
    async fn retry(inner: Arc<Inner>, event_id: String) {
        for attempt in 0..40u32 {
            tokio::time::sleep(Duration::from_millis((250u64 << attempt.min(5)).min(5_000))).await;
            if inner.deliver(&event_id, Signing::Genuine).await.is_ok_and(|status| status.is_success()) {
                return;
            }
        }
        tracing::warn!(event.id = %event_id, "Stripe emulator gave up delivering");
    }

    async fn deliver(&self, event_id: &str, signing: Signing) -> Result<StatusCode, DeliveryError> {
        let endpoint = self.endpoint().ok_or(DeliveryError::NoEndpoint)?;
        let payload = {
            let state = self.state();
            let event = state.event(event_id).ok_or_else(|| DeliveryError::NoSuchEvent(event_id.to_owned()))?;
            serde_json::to_vec(&event.to_json()).unwrap_or_default()
        };
        let signature = match signing {
            Signing::Genuine => signature_header(&endpoint.secret, Utc::now().timestamp(), &payload),
            Signing::At(at) => signature_header(&endpoint.secret, at.timestamp(), &payload),
            Signing::Forged => signature_header("whsec_forged_by_someone_else", Utc::now().timestamp(), &payload),
        };
        let response = self
            .http
            .post(endpoint.url)
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .header(SIGNATURE_HEADER, signature)
            .body(payload)
            .send()
            .await;
        let status = response.as_ref().map(reqwest::Response::status).ok();
        if signing == Signing::Genuine
            && let Some(event) = self.state().event_mut(event_id)
        {
            event.delivered = Some(status.is_some_and(|s| s.is_success()));
        }
        Ok(response?.status())
    }
}

/// A running emulator; it stops when dropped (or on [`StripeEmulator::shutdown`]).
#[derive(Debug)]
pub struct StripeEmulator {
    inner: Arc<Inner>,
    base_url: String,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl StripeEmulator {
    /// Starts an emulator on 127.0.0.1 with a free port, accepting `secret_key` as the API key.
    pub async fn start(secret_key: &str) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), secret_key).await
    }

    /// Starts an emulator on `addr` (the run command uses a fixed port).
    pub async fn start_on(addr: SocketAddr, secret_key: &str) -> std::io::Result<Self> {
        shared::chain::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let base_url = format!("http://{}/", listener.local_addr()?);
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?;
        let (outbox, mut queue) = mpsc::unbounded_channel::<String>();
        let state = State::new(base_url.clone());
        let publishable_key =
            format!("pk_test_{}", secret_key.trim_start_matches("sk_test_").trim_start_matches("sk_"));
        let inner = Arc::new(Inner {
            secret_key: secret_key.to_owned(),
            publishable_key,
            state: Mutex::new(state),
            endpoint: Mutex::new(None),
            paused: AtomicBool::new(false),
            retrying: AtomicBool::new(false),
            outbox,
            http,
        });
        let stop = CancellationToken::new();
        let server = tokio::spawn({
            let app = router(inner.clone());
            let stop = stop.clone();
            async move {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await {
                    tracing::warn!(error = %e, "the Stripe emulator stopped");
                }
            }
        });
        let worker = tokio::spawn({
            let inner = inner.clone();
            async move {
                while let Some(id) = queue.recv().await {
                    let delivered = match inner.deliver(&id, Signing::Genuine).await {
                        Ok(status) => {
                            tracing::debug!(event.id = %id, %status, "Stripe emulator delivered");
                            status.is_success()
                        }
                        Err(DeliveryError::NoEndpoint) => true,
                        Err(e) => {
                            tracing::debug!(event.id = %id, error = %e, "Stripe emulator delivery failed");
                            false
                        }
                    };
                    if !delivered && inner.retrying.load(Ordering::SeqCst) {
                        tokio::spawn(Inner::retry(inner.clone(), id));
                    }
                }
            }
        });
        Ok(Self { inner, base_url, stop, tasks: vec![server, worker] })
    }

    /// The API base to configure as `STRIPE_API_BASE` (`http://127.0.0.1:PORT/`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The secret key it accepts.
    pub fn secret_key(&self) -> &str {
        &self.inner.secret_key
    }

    /// The account's publishable key (`pk_test_…`): what a buyer's page hands Stripe.js, enough to
    /// confirm a PaymentIntent whose `client_secret` it holds and nothing else.
    pub fn publishable_key(&self) -> &str {
        &self.inner.publishable_key
    }

    /// Where events are delivered, and the `whsec_…` secret they are signed with.
    pub fn set_webhook(&self, url: reqwest::Url, secret: &str) {
        *self.inner.endpoint.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Endpoint { url, secret: secret.to_owned() });
    }

    /// Retries failed automatic deliveries (off by default: most tests want each event once).
    pub fn retry_deliveries(&self, on: bool) {
        self.inner.retrying.store(on, Ordering::SeqCst);
    }

    /// Pauses (or resumes) automatic delivery. Events created while paused are recorded but not
    /// sent on resume: deliver them with [`StripeEmulator::redeliver`].
    pub fn pause_delivery(&self, paused: bool) {
        self.inner.paused.store(paused, Ordering::SeqCst);
    }

    /// Every recorded event, oldest first.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.inner
            .state()
            .events
            .iter()
            .map(|event| RecordedEvent {
                id: event.id.clone(),
                event_type: event.event_type.clone(),
                object_id: event.object["id"].as_str().unwrap_or_default().to_owned(),
                json: event.to_json(),
                delivered: event.delivered,
            })
            .collect()
    }

    /// Delivers an event now, signed as asked, and returns the endpoint's answer.
    pub async fn redeliver(&self, event_id: &str, signing: Signing) -> Result<StatusCode, DeliveryError> {
        self.inner.deliver(event_id, signing).await
    }

    /// The PaymentIntent as `GET /v1/payment_intents/{id}` returns it.
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.inner.state().payment_intent_json(id).ok()
    }

    /// Stops the server and the delivery worker.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for StripeEmulator {
    fn drop(&mut self) {
        self.stop.cancel();
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

type App = Arc<Inner>;

fn router(inner: App) -> Router {
    let api = Router::new()
        .route("/payment_intents", post(create_payment_intent))
        .route("/payment_intents/search", get(search_payment_intents))
        .route("/payment_intents/{id}", get(retrieve_payment_intent))
        .route("/payment_intents/{id}/confirm", post(confirm_payment_intent))
        .route("/payment_intents/{id}/capture", post(capture_payment_intent))
        .route("/payment_intents/{id}/cancel", post(cancel_payment_intent))
        .route("/refunds", post(create_refund))
        .route("/refunds/{id}", get(retrieve_refund))
        .route("/checkout/sessions", post(create_session))
        .route("/checkout/sessions/{id}", get(retrieve_session))
        .route("/checkout/sessions/{id}/expire", post(expire_session))
        .route("/events", get(list_events))
        .route("/events/{id}", get(retrieve_event))
        .fallback(unknown_endpoint)
        .layer(middleware::from_fn_with_state(inner.clone(), authenticate));
    Router::new().nest("/v1", api).route("/pay/{id}", get(show_page).post(pay_page)).with_state(inner)
}

async fn authenticate(AxumState(app): AxumState<App>, mut request: Request, next: Next) -> Response {
    let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let bearer = given.and_then(|v| v.strip_prefix("Bearer "));
    let access = match bearer {
        Some(key) if !app.secret_key.is_empty() && key == app.secret_key => Some(Access::Secret),
        // Stripe.js's calls: the key in the header or in the `key` parameter, which the handler checks.
        Some(key) if key == app.publishable_key => Some(Access::Publishable),
        None if client_secret_route(&request) => Some(Access::Publishable),
        _ => None,
    };
    match access {
        Some(Access::Publishable) if !client_secret_route(&request) => {
            let message = "This API call cannot be made with a publishable API key. Please use a secret API key.";
            answer(Err(ApiError::invalid("secret_key_required", message, None).with_status(401)), "", false)
        }
        Some(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        None => answer(Err(ApiError::unauthorized()), "", false),
    }
}

/// `GET /v1/payment_intents/{id}` and `POST /v1/payment_intents/{id}/confirm`: what Stripe.js
/// may call with a publishable key and the intent's client secret.
fn client_secret_route(request: &Request) -> bool {
    let path = request.uri().path();
    let segments: Vec<&str> = path.trim_start_matches("/v1").trim_matches('/').split('/').collect();
    match (request.method().as_str(), segments.as_slice()) {
        ("GET", ["payment_intents", id]) => *id != "search",
        ("POST", ["payment_intents", _, "confirm"]) => true,
        _ => false,
    }
}

/// A publishable-key request must name the account's publishable key (header or `key`) and the
/// PaymentIntent's own client secret.
fn publishable_allowed(app: &App, headers: &HeaderMap, params: &Form, intent: &str) -> Result<(), ApiError> {
    let in_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.strip_prefix("Bearer ") == Some(app.publishable_key.as_str()));
    if !in_header && params.get("key") != Some(&app.publishable_key) {
        return Err(ApiError::unauthorized());
    }
    match app.state().client_secret_matches(intent, params.get("client_secret").map(String::as_str)) {
        true => Ok(()),
        false => Err(ApiError::invalid(
            "resource_missing",
            format!("No such payment_intent: '{intent}'; a publishable key needs the intent's client_secret"),
            Some("client_secret"),
        )
        .with_status(404)),
    }
}

async fn unknown_endpoint(request: Request) -> Response {
    let message = format!("Unrecognized request URL ({} {}).", request.method(), request.uri().path());
    answer(Err(ApiError::invalid("resource_missing", message, None).with_status(404)), "", false)
}

fn answer(reply: Reply, request_id: &str, replayed: bool) -> Response {
    let (status, body) = match reply {
        Ok(body) => (200, body),
        Err(error) => (error.status, error.body),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("request-id", value);
    }
    if replayed {
        response.headers_mut().insert("idempotent-replayed", header::HeaderValue::from_static("true"));
    }
    response
}

fn parse_form(body: &[u8]) -> Form {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Runs a mutating request under Stripe's idempotency rules, then queues its events.
fn mutate(
    app: &App,
    headers: &HeaderMap,
    path: String,
    body: &[u8],
    op: impl FnOnce(&mut State, &Form) -> Reply,
) -> Response {
    let form = parse_form(body);
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (reply, request_id, replayed, events) = {
        let mut state = app.state();
        state.begin(key.clone());
        let request = (path, form.clone());
        match key.as_ref().and_then(|k| state.idempotency.get(k)) {
            Some(saved) if saved.request == request => {
                let reply = match saved.status {
                    200 => Ok(saved.body.clone()),
                    status => Err(ApiError { status, body: saved.body.clone() }),
                };
                (reply, state.request_id().to_owned(), true, Vec::new())
            }
            Some(_) => {
                let message = "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than the one used in the original request.";
                (Err(ApiError::idempotency(message)), state.request_id().to_owned(), false, Vec::new())
            }
            None => {
                let reply = op(&mut state, &form);
                let events = std::mem::take(&mut state.new_events);
                if let Some(key) = key {
                    let saved = match &reply {
                        Ok(body) => Some(Saved { request, status: 200, body: body.clone() }),
                        Err(error) if !error.is_validation() => {
                            Some(Saved { request, status: error.status, body: error.body.clone() })
                        }
                        Err(_) => None,
                    };
                    if let Some(saved) = saved {
                        state.idempotency.insert(key, saved);
                    }
                }
                (reply, state.request_id().to_owned(), false, events)
            }
        }
    };
    app.dispatch(events);
    answer(reply, &request_id, replayed)
}

fn read(app: &App, op: impl FnOnce(&State) -> Reply) -> Response {
    let state = app.state();
    answer(op(&state), "", false)
}

async fn create_payment_intent(AxumState(app): AxumState<App>, headers: HeaderMap, body: Bytes) -> Response {
    mutate(&app, &headers, "/v1/payment_intents".into(), &body, State::create_payment_intent)
}

async fn retrieve_payment_intent(
    AxumState(app): AxumState<App>,
    Path(id): Path<String>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    Query(query): Query<Form>,
) -> Response {
    if access == Access::Publishable
        && let Err(refused) = publishable_allowed(&app, &headers, &query, &id)
    {
        return answer(Err(refused), "", false);
    }
    read(&app, |state| state.payment_intent_json(&id))
}

async fn search_payment_intents(
    AxumState(app): AxumState<App>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    read(&app, |state| state.search_payment_intents(&query))
}

async fn confirm_payment_intent(
    AxumState(app): AxumState<App>,
    Path(id): Path<String>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match access {
        Access::Secret => body,
        Access::Publishable => {
            let mut form = parse_form(&body);
            if let Err(refused) = publishable_allowed(&app, &headers, &form, &id) {
                return answer(Err(refused), "", false);
            }
            // What identified the caller is not part of the confirmation itself.
            form.remove("key");
            form.remove("client_secret");
            Bytes::from(url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form.iter()).finish())
        }
    };
    mutate(&app, &headers, format!("/v1/payment_intents/{id}/confirm"), &body, |state, form| {
        state.confirm(&id, Some(form))
    })
}

async fn capture_payment_intent(
    AxumState(app): AxumState<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mutate(&app, &headers, format!("/v1/payment_intents/{id}/capture"), &body, |state, form| state.capture(&id, form))
}

async fn cancel_payment_intent(
    AxumState(app): AxumState<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mutate(&app, &headers, format!("/v1/payment_intents/{id}/cancel"), &body, |state, form| state.cancel(&id, form))
}

async fn create_refund(AxumState(app): AxumState<App>, headers: HeaderMap, body: Bytes) -> Response {
    mutate(&app, &headers, "/v1/refunds".into(), &body, State::create_refund)
}

async fn retrieve_refund(AxumState(app): AxumState<App>, Path(id): Path<String>) -> Response {
    read(&app, |state| state.refund_json(&id))
}

async fn create_session(AxumState(app): AxumState<App>, headers: HeaderMap, body: Bytes) -> Response {
    mutate(&app, &headers, "/v1/checkout/sessions".into(), &body, State::create_session)
}

async fn retrieve_session(AxumState(app): AxumState<App>, Path(id): Path<String>) -> Response {
    read(&app, |state| state.session_json(&id))
}

async fn expire_session(
    AxumState(app): AxumState<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    mutate(&app, &headers, format!("/v1/checkout/sessions/{id}/expire"), &body, |state, _| state.expire_session(&id))
}

async fn list_events(AxumState(app): AxumState<App>, Query(query): Query<Vec<(String, String)>>) -> Response {
    read(&app, |state| state.list_events(&query))
}

async fn retrieve_event(AxumState(app): AxumState<App>, Path(id): Path<String>) -> Response {
    read(&app, |state| {
        state.event(&id).map(state::Event::to_json).ok_or_else(|| {
            ApiError::invalid("resource_missing", format!("No such event: '{id}'"), None).with_status(404)
        })
    })
}

async fn show_page(AxumState(app): AxumState<App>, Path(id): Path<String>) -> Response {
    let state = app.state();
    match state.session(&id) {
        Ok(session) if session.status == "open" => Html(page::render(session, None)).into_response(),
        Ok(session) => {
            let message = format!("This Checkout Session is {}.", session.status);
            (StatusCode::GONE, Html(page::closed(&message))).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, Html(page::closed("No such Checkout Session."))).into_response(),
    }
}

async fn pay_page(AxumState(app): AxumState<App>, Path(id): Path<String>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let payment_method = form.get("payment_method").cloned().unwrap_or_default();
    let (outcome, events) = {
        let mut state = app.state();
        state.begin(None);
        let outcome = match state.pay_session(&id, &payment_method) {
            Ok(redirect) => Ok(redirect),
            Err(error) => Err((error.status, error.message(), state.session(&id).ok().cloned())),
        };
        (outcome, std::mem::take(&mut state.new_events))
    };
    app.dispatch(events);
    match outcome {
        Ok(redirect) => Redirect::to(&redirect).into_response(),
        // A declined card: the page again, with the reason; the buyer may try another card.
        Err((402, message, Some(session))) if session.status == "open" => {
            (StatusCode::PAYMENT_REQUIRED, Html(page::render(&session, Some(&message)))).into_response()
        }
        Err((404, message, _)) => (StatusCode::NOT_FOUND, Html(page::closed(&message))).into_response(),
        Err((_, message, _)) => (StatusCode::BAD_REQUEST, Html(page::closed(&message))).into_response(),
    }
}
