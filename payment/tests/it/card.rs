//! The card path's edge: a card order gets a manual-capture PaymentIntent; Stripe's webhook is
//! verified on the raw body and stored once per event, whatever the number of deliveries;
//! forged and stale deliveries get 400 and store nothing.

use reqwest::StatusCode;
use shared::fakes::stripe::Signing;

use crate::orders::{live_item, order, post};

#[tokio::test]
async fn webhooks_are_verified_and_stored_once_per_event() {
    let (app, stripe) = crate::payment_app(&[]).await;
    stripe.pause_delivery(true);
    let (_, item) = live_item(&app, 10, None).await;
    let (status, created) = post(&app, &order(item, 1, 1), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let intent = created["card_payment"]["payment_intent_id"].as_str().unwrap().to_owned();
    assert!(created["card_payment"]["client_secret"].as_str().unwrap().starts_with(&intent));
    let at_stripe = stripe.payment_intent(&intent).unwrap();
    assert_eq!(at_stripe["capture_method"], "manual");
    assert_eq!(at_stripe["amount"], 2500);
    assert_eq!(at_stripe["metadata"]["order_id"], created["id"]);

    // The buyer's card authorises the amount (what Stripe.js does).
    let confirm = app
        .client
        .post(format!("{}/v1/payment_intents/{intent}/confirm", stripe.base_url().trim_end_matches('/')))
        .bearer_auth("sk_test_brandmint")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("payment_method=pm_card_visa")
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), StatusCode::OK);
    let events = stripe.events();
    let authorised = events.iter().find(|e| e.event_type == "payment_intent.amount_capturable_updated").unwrap();

    for _ in 0..10 {
        assert_eq!(stripe.redeliver(&authorised.id, Signing::Genuine).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(stripe.redeliver(&authorised.id, Signing::Forged).await.unwrap(), StatusCode::BAD_REQUEST);
    let stale = chrono::Utc::now() - chrono::Duration::minutes(6);
    assert_eq!(stripe.redeliver(&authorised.id, Signing::At(stale)).await.unwrap(), StatusCode::BAD_REQUEST);
    let (stored, queued): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM stripe_events), (SELECT count(*) FROM outbox_events WHERE event_type = 'stripe.event')",
    )
    .fetch_one(app.resources.db())
    .await
    .unwrap();
    assert_eq!((stored, queued), (1, 1));

    // Not Stripe at all.
    let bare = app.client.post(app.url("/webhooks/stripe")).body("{}").send().await.unwrap();
    assert_eq!(bare.status(), StatusCode::BAD_REQUEST);
    assert_eq!(bare.headers()["content-type"], "application/problem+json");
}
