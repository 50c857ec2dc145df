//! The Stripe client against the Stripe emulator, over real HTTP: manual capture, declines,
//! cancellation, refunds, idempotency, the hosted Checkout page and signed webhooks.
//! No database needed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, http::HeaderMap, http::StatusCode, routing::post};
use chrono::Utc;
use fakes::stripe::{Signing, StripeEmulator};
use payment::config::StripeConfig;
use payment::stripe::{
    CheckoutRequest, Error, EventType, IntentStatus, OrderRef, RefundStatus, SIGNATURE_HEADER, SessionStatus, Stripe,
    WebhookError, WebhookEvent,
};
use shared::money::{Currency, Money};

const KEY: &str = "sk_test_brandmint_emulator";
const WHSEC: &str = "whsec_brandmint_emulator";

async fn stripe() -> (StripeEmulator, Stripe) {
    let emulator = StripeEmulator::start(KEY).await.unwrap();
    let stripe = client(&emulator, KEY);
    (emulator, stripe)
}

fn client(emulator: &StripeEmulator, key: &str) -> Stripe {
    Stripe::new(&StripeConfig {
        secret_key: Some(key.to_owned().into()),
        api_base: emulator.base_url().parse().unwrap(),
        webhook_secret: Some(WHSEC.to_owned().into()),
    })
    .unwrap()
}

fn order(id: &str) -> OrderRef {
    OrderRef::new(id, shared::ids::BrandId::new(42)).unwrap()
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}

/// Polls until `check` yields something, for at most five seconds.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_visa_is_authorised_once_per_order_then_captured() {
    let (emulator, stripe) = stripe().await;
    let order = order("o-visa");
    let first = stripe.create_payment_intent(&order, usd(2500), Some("pm_card_visa")).await.unwrap();
    let again = stripe.create_payment_intent(&order, usd(2500), Some("pm_card_visa")).await.unwrap();
    assert_eq!(first.id, again.id, "the order's idempotency key makes one PaymentIntent");
    assert_eq!(first.status, IntentStatus::RequiresCapture);
    assert_eq!((first.amount, first.amount_capturable, first.amount_received), (usd(2500), 2500, 0));
    assert_eq!(first.order_id(), Some("o-visa"));
    assert_eq!(first.metadata["brand_id"], "42");

    let captured = stripe.capture(&order, &first.id).await.unwrap();
    assert_eq!((captured.status, captured.amount_received), (IntentStatus::Succeeded, 2500));
    let replayed = stripe.capture(&order, &first.id).await.unwrap();
    assert_eq!(replayed.status, IntentStatus::Succeeded, "a repeated capture replays the first answer");
    let fetched = stripe.payment_intent(&first.id).await.unwrap();
    assert_eq!((fetched.status, fetched.amount_capturable), (IntentStatus::Succeeded, 0));
    let captures = emulator.events().iter().filter(|e| e.event_type == "payment_intent.succeeded").count();
    assert_eq!(captures, 1);
}

#[tokio::test]
async fn declines_are_permanent_card_errors_and_leave_the_intent_retryable_with_another_card() {
    let (_emulator, stripe) = stripe().await;
    let err = stripe.create_payment_intent(&order("o-declined"), usd(1000), Some("pm_card_chargeDeclined")).await;
    let Err(Error::CardDeclined { decline_code, payment_intent: Some(id), .. }) = err else {
        panic!("expected a card decline, got {err:?}")
    };
    assert_eq!(decline_code.as_deref(), Some("generic_decline"));
    let declined = stripe.payment_intent(&id).await.unwrap();
    assert_eq!(declined.status, IntentStatus::RequiresPaymentMethod);
    assert_eq!(declined.last_error.unwrap().code.as_deref(), Some("card_declined"));

    let err = stripe
        .create_payment_intent(&order("o-poor"), usd(1000), Some("pm_card_chargeDeclinedInsufficientFunds"))
        .await
        .unwrap_err();
    assert!(err.is_card_error() && !err.is_retryable(), "{err}");
    let Error::InsufficientFunds { payment_intent: Some(id), .. } = err else {
        panic!("expected insufficient funds: {err:?}")
    };
    let poor = stripe.payment_intent(&id).await.unwrap();
    assert_eq!(poor.last_error.unwrap().decline_code.as_deref(), Some("insufficient_funds"));
    assert_eq!((poor.amount_capturable, poor.amount_received), (0, 0));
}

#[tokio::test]
async fn cancelling_an_authorisation_never_charges_the_buyer() {
    let (_emulator, stripe) = stripe().await;
    let order = order("o-mint-failed");
    let pi = stripe.create_payment_intent(&order, usd(4200), Some("pm_card_visa")).await.unwrap();
    let canceled = stripe.cancel(&order, &pi.id).await.unwrap();
    assert_eq!((canceled.status, canceled.amount_received), (IntentStatus::Canceled, 0));
    assert_eq!(stripe.cancel(&order, &pi.id).await.unwrap().status, IntentStatus::Canceled);
    let err = stripe.capture(&order, &pi.id).await.unwrap_err();
    assert!(matches!(&err, Error::UnexpectedState { code, .. } if code == "payment_intent_unexpected_state"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_refund_is_made_once_per_order_for_the_full_amount() {
    let (emulator, stripe) = stripe().await;
    let order = order("o-refund");
    let pi = stripe.create_payment_intent(&order, usd(1999), Some("pm_card_visa")).await.unwrap();
    stripe.capture(&order, &pi.id).await.unwrap();
    let refund = stripe.refund(&order, &pi.id).await.unwrap();
    assert_eq!((refund.amount, refund.status.clone()), (usd(1999), RefundStatus::Succeeded));
    assert_eq!(refund.payment_intent.as_ref(), Some(&pi.id));
    assert_eq!(stripe.refund(&order, &pi.id).await.unwrap().id, refund.id, "the same key replays the refund");
    let refunds = emulator.events().iter().filter(|e| e.event_type == "refund.created").count();
    assert_eq!(refunds, 1);
    assert!(emulator.events().iter().any(|e| e.event_type == "charge.refunded"));

    let authorised_only = OrderRef::new("o-uncaptured", shared::ids::BrandId::new(42)).unwrap();
    let pi = stripe.create_payment_intent(&authorised_only, usd(1999), Some("pm_card_visa")).await.unwrap();
    let err = stripe.refund(&authorised_only, &pi.id).await.unwrap_err();
    assert!(matches!(err, Error::InvalidRequest { .. }) && !err.is_retryable(), "cancel, not refund: {err}");
}

/// The emulator must speak the API version the SDK is generated for, and every event it records
/// (PaymentIntents, charges, refunds, sessions) must parse as the SDK parses Stripe's.
#[tokio::test]
async fn every_object_the_emulator_sends_parses_through_the_sdk() {
    let (emulator, stripe) = stripe().await;
    let order = order("o-sdk");
    let pi = stripe.create_payment_intent(&order, usd(2500), Some("pm_card_visa")).await.unwrap();
    stripe.capture(&order, &pi.id).await.unwrap();
    stripe.refund(&order, &pi.id).await.unwrap();
    drop(stripe.create_payment_intent(&self::order("o-declined"), usd(2500), Some("pm_card_chargeDeclined")).await);
    let events = emulator.events();
    assert!(events.len() >= 8, "{} events", events.len());
    for event in &events {
        let text = event.json.to_string();
        let parsed: stripe_shared::Event = miniserde::json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} does not deserialise: {e}", event.event_type));
        assert_eq!(parsed.id.as_str(), event.id);
        assert_eq!(event.json["api_version"], stripe_shared::version::VERSION.as_str());
        if event.event_type == "charge.refunded" {
            let charge: stripe_shared::Charge =
                miniserde::json::from_str(&event.json["data"]["object"].to_string()).unwrap();
            assert!(charge.refunded && charge.amount_refunded == 2500);
        }
    }
}

#[tokio::test]
async fn an_order_key_reused_with_other_parameters_is_an_idempotency_conflict() {
    let (_emulator, stripe) = stripe().await;
    let order = order("o-changed");
    stripe.create_payment_intent(&order, usd(2500), None).await.unwrap();
    let err = stripe.create_payment_intent(&order, usd(3000), None).await.unwrap_err();
    assert!(matches!(err, Error::IdempotencyConflict { .. }) && !err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused() {
    let (emulator, _stripe) = stripe().await;
    let intruder = client(&emulator, "sk_test_not_the_key");
    let err = intruder.create_payment_intent(&order("o-1"), usd(100), None).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err}");
}

#[tokio::test]
async fn the_hosted_checkout_page_authorises_without_capturing() {
    let (emulator, stripe) = stripe().await;
    let order = order("o-hosted");
    let request = CheckoutRequest {
        order: &order,
        amount: usd(5000),
        product_name: "Genesis <Pass>",
        success_url: "https://shop.example/thanks?session={CHECKOUT_SESSION_ID}",
        cancel_url: "https://shop.example/cart",
        expires_at: Some(Utc::now() + chrono::Duration::hours(1)),
    };
    let session = stripe.create_checkout_session(&request).await.unwrap();
    assert_eq!(stripe.create_checkout_session(&request).await.unwrap().id, session.id);
    assert_eq!(
        (session.status, session.amount_total, session.payment_intent.clone()),
        (Some(SessionStatus::Open), Some(5000), None)
    );
    assert_eq!(session.order_id(), Some("o-hosted"));
    let url = session.url.clone().unwrap();
    assert!(url.starts_with(emulator.base_url()) && url.ends_with(&format!("/pay/{}", session.id)), "{url}");

    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("pm_card_visa") && html.contains("50.00 USD") && html.contains("Genesis &lt;Pass&gt;"));

    let declined = pay(&browser, &url, "pm_card_chargeDeclined").send().await.unwrap();
    assert_eq!(declined.status(), 402);
    assert!(declined.text().await.unwrap().contains("declined"));
    let paid = pay(&browser, &url, "pm_card_visa").send().await.unwrap();
    assert_eq!(paid.status(), 303);
    let location = paid.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("https://shop.example/thanks?session={}", session.id));

    let completed = stripe.checkout_session(&session.id).await.unwrap();
    assert_eq!(completed.status, Some(SessionStatus::Complete));
    let pi = stripe.payment_intent(&completed.payment_intent.unwrap()).await.unwrap();
    assert_eq!((&pi.status, pi.amount_capturable), (&IntentStatus::RequiresCapture, 5000));
    assert_eq!(pi.order_id(), Some("o-hosted"), "the order's metadata reaches the PaymentIntent");
    let events = emulator.events();
    let completion = events.iter().find(|e| e.event_type == "checkout.session.completed").unwrap();
    assert_eq!(completion.object_id, session.id.as_str());
    assert_eq!(browser.get(&url).send().await.unwrap().status(), 410, "a completed session's page is closed");
}

/// Submits the hosted page's form as a browser does.
fn pay(browser: &reqwest::Client, url: &str, card: &str) -> reqwest::RequestBuilder {
    browser.post(url).header("content-type", "application/x-www-form-urlencoded").body(format!("payment_method={card}"))
}

/// A webhook endpoint like the payment service's: raw body, `Stripe-Signature`, 400 on refusal.
async fn receiver(stripe: Stripe) -> (reqwest::Url, Arc<Mutex<Vec<Result<WebhookEvent, WebhookError>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/webhooks/stripe",
        post(move |headers: HeaderMap, body: Bytes| async move {
            let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let verdict = stripe.verify_webhook(&body, signature, Utc::now());
            let status = if verdict.is_ok() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
            record.lock().unwrap().push(verdict);
            status
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap()).parse().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn webhooks_are_signed_like_stripe_and_forgeries_and_replays_are_refused() {
    let (emulator, stripe) = stripe().await;
    let (url, seen) = receiver(stripe.clone()).await;
    emulator.set_webhook(url, WHSEC);
    let pi = stripe.create_payment_intent(&order("o-hook"), usd(700), Some("pm_card_visa")).await.unwrap();

    let authorised = eventually("the authorisation webhook", || {
        seen.lock()
            .unwrap()
            .iter()
            .flatten()
            .find(|e| e.event_type == EventType::PaymentIntentAmountCapturableUpdated)
            .cloned()
    })
    .await;
    assert_eq!(authorised.object_id, pi.id.as_str());
    assert_eq!(authorised.object_type, "payment_intent");
    let event_id = authorised.id.as_str().to_owned();
    eventually("the delivery to be recorded", || {
        emulator.events().into_iter().find(|e| e.id == event_id && e.delivered == Some(true))
    })
    .await;
    assert!(seen.lock().unwrap().iter().all(Result::is_ok), "genuine deliveries verify: {:?}", seen.lock().unwrap());

    emulator.pause_delivery(true);
    let forged = emulator.redeliver(&event_id, Signing::Forged).await.unwrap();
    assert_eq!(forged, StatusCode::BAD_REQUEST);
    let six_minutes_ago = Utc::now() - chrono::Duration::minutes(6);
    let stale = emulator.redeliver(&event_id, Signing::At(six_minutes_ago)).await.unwrap();
    assert_eq!(stale, StatusCode::BAD_REQUEST);
    let again = emulator.redeliver(&event_id, Signing::Genuine).await.unwrap();
    assert_eq!(again, StatusCode::OK);
    let verdicts = seen.lock().unwrap().clone();
    let refused: Vec<_> = verdicts.iter().rev().skip(1).take(2).cloned().collect();
    assert!(matches!(refused[0], Err(WebhookError::StaleTimestamp { .. })), "{refused:?}");
    assert_eq!(refused[1], Err(WebhookError::BadSignature));
    assert_eq!(verdicts.last().unwrap().as_ref().unwrap().id, authorised.id, "a redelivery keeps the event id");

    // Events created while paused are recorded, listed, and not delivered.
    let delivered_before = verdicts.len();
    stripe.capture(&order("o-hook"), &pi.id).await.unwrap();
    let listed = stripe.events(&[EventType::PaymentIntentSucceeded], false, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].event_type, EventType::PaymentIntentSucceeded);
    let undelivered = stripe.events(&[EventType::PaymentIntentSucceeded], true, 10).await.unwrap();
    assert_eq!(undelivered, listed, "reconciliation finds the event no endpoint received");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(seen.lock().unwrap().len(), delivered_before, "nothing is delivered while paused");
}
