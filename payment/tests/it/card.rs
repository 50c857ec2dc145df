//! The card path's edge: a card order gets a manual-capture PaymentIntent; Stripe's webhook is
//! verified on the raw body and stored once per event, whatever the number of deliveries;
//! forged and stale deliveries get 400 and store nothing.

use fakes::stripe::{Signing, StripeEmulator};
use reqwest::StatusCode;
use serde_json::Value;
use testkit::TestApp;

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

/// Confirms `intent` as Stripe.js does: the publishable key and the intent's client secret.
async fn confirm_as_buyer(
    app: &TestApp,
    stripe: &StripeEmulator,
    intent: &str,
    client_secret: &str,
    card: &str,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/v1/payment_intents/{intent}/confirm", stripe.base_url().trim_end_matches('/')))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}&client_secret={client_secret}&payment_method={card}", stripe.publishable_key()))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_retried_creation_gets_the_client_secret_again_and_the_buyer_pays_with_the_publishable_key() {
    let (app, stripe) = crate::payment_app(&[]).await;
    stripe.pause_delivery(true);
    let (_, item) = live_item(&app, 10, None).await;
    let body = order(item, 1, 7);
    let (status, first) = post(&app, &body, Some("retry-me")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The buyer's first answer was lost: the retry must carry what paying needs.
    let (status, again) = post(&app, &body, Some("retry-me")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["card_payment"]["payment_intent_id"], first["card_payment"]["payment_intent_id"]);
    let secret = again["card_payment"]["client_secret"].as_str().expect("the client secret on the replay");
    assert_eq!(Some(secret), first["card_payment"]["client_secret"].as_str());
    // Anyone else reading the order does not see it.
    let seen: Value = app.get(&format!("/orders/{}", first["id"].as_str().unwrap())).await.json().await.unwrap();
    assert!(seen["card_payment"]["client_secret"].is_null(), "{seen}");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'order.created'")
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(events, 1, "announced once");

    // The publishable key with a wrong secret, or on a call that needs the secret key: refused.
    let intent = first["card_payment"]["payment_intent_id"].as_str().unwrap();
    let (status, _) = confirm_as_buyer(&app, &stripe, intent, "pi_x_secret_wrong", "pm_card_visa").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let create = app
        .client
        .post(format!("{}/v1/payment_intents", stripe.base_url().trim_end_matches('/')))
        .bearer_auth(stripe.publishable_key())
        .body("amount=100&currency=eur")
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::UNAUTHORIZED);
    // With its own client secret, the buyer's page authorises the card.
    let (status, confirmed) = confirm_as_buyer(&app, &stripe, intent, secret, "pm_card_visa").await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["status"], "requires_capture");
}

#[tokio::test]
async fn a_creation_refused_by_the_payment_provider_leaves_no_order_and_announces_nothing() {
    let (app, stripe) = crate::payment_app(&[]).await;
    let (_, item) = live_item(&app, 10, None).await;
    stripe.shutdown().await;
    let (status, problem) = post(&app, &order(item, 2, 1), Some("k-1")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    let (orders, announced, reserved): (i64, i64, i32) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM outbox_events WHERE event_type LIKE 'order.%'),
                (SELECT reserved FROM campaign_items WHERE id = $1)",
    )
    .bind(item)
    .fetch_one(app.resources.db())
    .await
    .unwrap();
    assert_eq!((orders, announced, reserved), (0, 0, 0), "nothing held, nothing announced");

    // Items that can never be paid this way (set up before the rules): a 422 naming why.
    sqlx::query("UPDATE campaign_items SET price_minor = 0 WHERE id = $1")
        .bind(item)
        .execute(app.resources.db())
        .await
        .unwrap();
    let (status, problem) = post(&app, &order(item, 1, 2), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "method", "{problem}");
    sqlx::query("UPDATE campaign_items SET price_minor = 2500, currency = 'JPY' WHERE id = $1")
        .bind(item)
        .execute(app.resources.db())
        .await
        .unwrap();
    let mut eth = order(item, 1, 3);
    eth["method"] = "eth".into();
    let (status, problem) = post(&app, &eth, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("USD or EUR"), "{problem}");
    // A card total above what Stripe can charge: named on the quantity.
    sqlx::query("UPDATE campaign_items SET price_minor = 99999999, currency = 'EUR' WHERE id = $1")
        .bind(item)
        .execute(app.resources.db())
        .await
        .unwrap();
    let (status, problem) = post(&app, &order(item, 2, 4), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "quantity", "{problem}");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(app.resources.db()).await.unwrap();
    assert_eq!(orders, 0);
}

#[tokio::test]
async fn reconciliation_cancels_authorised_payment_intents_of_no_live_order() {
    let (app, stripe) = crate::payment_app(&[]).await;
    stripe.pause_delivery(true);
    let (_, item) = live_item(&app, 10, None).await;
    // An order that expired, and a PaymentIntent authorised for it outside the saga (a stray
    // retry, a manual charge) — and one for an order that never existed.
    let (_, expired) = post(&app, &order(item, 1, 1), None).await;
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second'")
        .execute(app.resources.db())
        .await
        .unwrap();
    let mut conn = app.resources.db().acquire().await.unwrap();
    payment::expire_due(&mut conn).await.unwrap();
    let stray = |order: String| {
        let (client, url) =
            (app.client.clone(), format!("{}/v1/payment_intents", stripe.base_url().trim_end_matches('/')));
        async move {
            let body = format!(
                "amount=2500&currency=eur&capture_method=manual&confirm=true&payment_method=pm_card_visa&metadata[order_id]={order}&metadata[brand_id]=1"
            );
            let response = client
                .post(url)
                .bearer_auth("sk_test_brandmint")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let pi: Value = response.json().await.unwrap();
            assert_eq!(pi["status"], "requires_capture", "{pi}");
            pi["id"].as_str().unwrap().to_owned()
        }
    };
    let late = stray(expired["id"].as_str().unwrap().to_owned()).await;
    let orphan = stray(uuid::Uuid::new_v4().to_string()).await;
    // Not ours (no order in its metadata): left alone.
    let foreign: Value = app
        .client
        .post(format!("{}/v1/payment_intents", stripe.base_url().trim_end_matches('/')))
        .bearer_auth("sk_test_brandmint")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("amount=900&currency=eur&capture_method=manual&confirm=true&payment_method=pm_card_visa")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    payment::reconcile(&app.resources).await.unwrap();
    for intent in [&late, &orphan] {
        assert_eq!(stripe.payment_intent(intent).unwrap()["status"], "canceled", "{intent}");
    }
    assert_eq!(stripe.payment_intent(foreign["id"].as_str().unwrap()).unwrap()["status"], "requires_capture");
    let expired_state: String =
        sqlx::query_scalar("SELECT state FROM orders").fetch_one(app.resources.db()).await.unwrap();
    assert_eq!(expired_state, "expired", "the order stays as it was");
}
