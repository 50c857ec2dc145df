//! Wallet checkout on anvil: an order priced by the FX stubs, the platform-signed quote sent by
//! a buyer's wallet to the Checkout contract, the order fulfilled from the `OrderPaid` event;
//! an expired quote refused on chain; Binance refusing (451) and both sources down.

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ext::AnvilApi},
};
use fakes::{
    fx::{Failure, FxStub, Venue},
    stripe::{Signing, StripeEmulator},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use shared::{
    contracts::Checkout,
    ids::{BrandId, ItemId},
    orders::{OrderState, PaymentMethod},
};
use testkit::{
    self as testing,
    api::{Campaign, NewOrder, Order, Reply},
};

use crate::operator::{PNG, Platformed, platformed};

/// A buyer orders two units of `item` for `buyer`'s wallet.
async fn place(setup: &Platformed, item: ItemId, buyer: Address, method: PaymentMethod) -> Reply<Order> {
    let order = NewOrder {
        item_id: item,
        quantity: 2,
        email: "buyer@example.com".into(),
        wallet_address: buyer.to_checksum(None),
        method,
        voucher_code: None,
    };
    setup.payment.public_api().orders().create(&order).await
}

/// The order once its state satisfies `done` (30 s at most).
async fn order_state(setup: &Platformed, order: &Order, done: OrderState) -> Order {
    setup.payment.public_api().orders().until(order.id, |state| state == done).await
}

/// `Checkout.buy` from the buyer's wallet with the order's quote.
async fn pay(setup: &Platformed, buyer: usize, payment: &Value) -> Result<(), String> {
    let (checkout, quote, signature) = testing::wallet_payment(payment);
    let checkout = Checkout::new(checkout, testing::wallet(&setup.anvil, buyer));
    let value = quote.amount;
    match checkout.buy(quote, signature).value(value).send().await {
        Ok(pending) => pending.get_receipt().await.map(drop).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn a_wallet_pays_the_signed_quote_on_chain_and_the_order_is_fulfilled() {
    let fx = FxStub::start().await.unwrap();
    let url = fx.url().to_string();
    let setup =
        platformed(|anvil| anvil.addresses()[0], &[("BINANCE_API_URL", &url), ("FX_SECOND_SOURCE_URL", &url)]).await;
    let Platformed { ref anvil, ref platform, ref owner, brand, .. } = setup;

    // A live campaign with an item at 1,500 EUR payable in ETH.
    let campaign = json!({ "name": "Wallet Drop", "slug": "wallet", "royalty_bps": 0,
        "royalty_receiver": anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 150_000, "currency": "EUR", "supply": 10, "payment_methods": ["eth", "card"] }] });
    let live = live_campaign(owner, brand, &campaign).await;
    treasury_known(&setup, &live).await;
    let collection: Address = live.rest["collection_address"].as_str().unwrap().parse().unwrap();
    let item = live.items[0].id;

    // Two passes = 3,000 EUR = 1 ETH at the stub's 3,000 EUR, plus the 1 % spread.
    let buyer = anvil.addresses()[8];
    let order = place(&setup, item, buyer, PaymentMethod::Eth).await.expect("order created");
    let payment = order.wallet_payment.as_ref().expect("a quote to pay");
    assert_eq!(payment["source"], "binance");
    assert_eq!(payment["quote"]["amount"], "1010000000000000000");
    assert_eq!(payment["quote"]["pay_token"], Address::ZERO.to_checksum(None));
    let provider = testing::wallet(anvil, 0);
    let treasury_before = provider.get_balance(anvil.addresses()[5]).await.unwrap();
    pay(&setup, 8, payment).await.unwrap();
    order_state(&setup, &order, OrderState::Fulfilled).await;
    let nft = platform.collection(collection);
    assert_eq!(nft.ownerOf(U256::from(1)).call().await.unwrap(), buyer);
    assert_eq!(nft.ownerOf(U256::from(2)).call().await.unwrap(), buyer);
    assert_eq!(
        provider.get_balance(anvil.addresses()[5]).await.unwrap() - treasury_before,
        U256::from(1_010_000_000_000_000_000u128),
        "the brand's treasury received the payment"
    );

    // A quote past its deadline is refused by the contract; the order then expires.
    let late = place(&setup, item, anvil.addresses()[7], PaymentMethod::Eth).await.expect("order created");
    provider.anvil_increase_time(400).await.unwrap();
    let refused = pay(&setup, 7, late.wallet_payment.as_ref().unwrap()).await.unwrap_err();
    assert!(refused.contains("revert") || refused.contains("Expired"), "{refused}");
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE public_id = $1")
        .bind(late.id)
        .execute(setup.payment.resources.db())
        .await
        .unwrap();
    let mut conn = setup.payment.resources.db().acquire().await.unwrap();
    payment::expire_due(&mut conn).await.unwrap();
    let late = setup.payment.public_api().orders().get(late.id).await.unwrap();
    assert_eq!(late.state, OrderState::Expired);

    // Binance refuses this location (451): the second source prices the order.
    fx.fail(Venue::Binance, Failure::Restricted);
    let second = place(&setup, item, anvil.addresses()[6], PaymentMethod::Eth).await.expect("order created");
    assert_eq!(second.wallet_payment.as_ref().unwrap()["source"], "coinbase");

    // Both down: a clear 503, no quote, and the units are not held.
    fx.fail(Venue::Coinbase, Failure::ServerError);
    let problem = place(&setup, item, anvil.addresses()[4], PaymentMethod::Eth).await.unwrap_err();
    assert_eq!(problem.status, StatusCode::SERVICE_UNAVAILABLE, "{problem:?}");
    assert!(problem.detail.as_deref().unwrap_or_default().contains("no quote"), "{problem:?}");
    let (quotes, reserved): (i64, i32) =
        sqlx::query_as("SELECT (SELECT count(*) FROM fx_quotes), (SELECT reserved FROM campaign_items WHERE id = $1)")
            .bind(item)
            .fetch_one(setup.payment.resources.db())
            .await
            .unwrap();
    assert_eq!((quotes, reserved), (3, 4), "the failed order holds nothing: 2 sold + 2 for the Coinbase quote");
    setup.stop().await;
}

/// The owner creates `campaign`, uploads its artwork and deploys it; the campaign once live.
pub(crate) async fn live_campaign(owner: &crate::operator::Operator, brand: i64, campaign: &Value) -> Campaign {
    let campaigns = owner.api().campaigns(BrandId::new(brand));
    let created = campaigns.create(campaign).await.expect("campaign created");
    campaigns.artwork(created.id, "image/png", alloy::hex::decode(PNG).unwrap()).await.expect("artwork");
    let live = campaigns.deployed(created.id).await;
    assert_eq!(live.state, "live", "{live:?}");
    live
}

/// Waits until the checkout knows the campaign's treasury (set up after deployment, through the
/// queue): before that it cannot pay the brand.
pub(crate) async fn treasury_known(setup: &Platformed, live: &Campaign) {
    let collection: Address = live.rest["collection_address"].as_str().unwrap().parse().unwrap();
    for _ in 0..100 {
        if !setup.platform.checkout.treasuryOf(collection).call().await.unwrap().is_zero() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A live campaign of `supply` card-payable units; returns its item.
async fn card_campaign(setup: &Platformed, slug: &str, supply: i64) -> ItemId {
    let campaign = json!({ "name": "Card Drop", "slug": slug, "royalty_bps": 0,
        "royalty_receiver": setup.anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": supply, "payment_methods": ["card"] }] });
    live_campaign(&setup.owner, setup.brand, &campaign).await.items[0].id
}

/// Confirms a PaymentIntent with a test card, as Stripe.js would.
async fn confirm(stripe: &StripeEmulator, intent: &str, card: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{}/v1/payment_intents/{intent}/confirm", stripe.base_url().trim_end_matches('/')))
        .bearer_auth("sk_test_brandmint")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("payment_method={card}"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn card_webhooks_in_any_order_and_number_charge_and_mint_once_and_a_failed_mint_charges_nothing() {
    let stripe = StripeEmulator::start("sk_test_brandmint").await.unwrap();
    let setup = card_platform(&stripe).await;
    stripe.pause_delivery(true);
    let item = card_campaign(&setup, "card", 3).await;
    let buyer = setup.anvil.addresses()[8];
    let order = place(&setup, item, buyer, PaymentMethod::Card).await.expect("order created");
    let intent = order.card_payment.as_ref().unwrap()["payment_intent_id"].as_str().unwrap().to_owned();
    assert_eq!(confirm(&stripe, &intent, "pm_card_visa").await, StatusCode::OK);

    // Every event 10 times, shuffled, with forged and stale copies in between.
    let mut deliveries: Vec<String> = stripe.events().iter().flat_map(|e| vec![e.id.clone(); 10]).collect();
    assert!(!deliveries.is_empty());
    use rand::seq::SliceRandom;
    deliveries.shuffle(&mut rand::rng());
    let stale = chrono::Utc::now() - chrono::Duration::minutes(6);
    for (n, id) in deliveries.iter().enumerate() {
        assert_eq!(stripe.redeliver(id, Signing::Genuine).await.unwrap(), StatusCode::OK);
        if n % 7 == 0 {
            assert_eq!(stripe.redeliver(id, Signing::Forged).await.unwrap(), StatusCode::BAD_REQUEST);
            assert_eq!(stripe.redeliver(id, Signing::At(stale)).await.unwrap(), StatusCode::BAD_REQUEST);
        }
    }
    order_state(&setup, &order, OrderState::Fulfilled).await;
    let at_stripe = stripe.payment_intent(&intent).unwrap();
    assert_eq!((at_stripe["status"].as_str(), at_stripe["amount_received"].as_i64()), (Some("succeeded"), Some(5_000)));
    let db = setup.payment.resources.db();
    let (mints, moves): (i64, Vec<String>) = (
        sqlx::query_scalar("SELECT count(*) FROM chain_transactions WHERE idempotency_key LIKE 'order-mint:%'")
            .fetch_one(db)
            .await
            .unwrap(),
        sqlx::query_scalar("SELECT to_state FROM state_transitions WHERE machine = 'order' ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap(),
    );
    assert_eq!(mints, 1, "one mint");
    assert_eq!(moves, ["authorized", "minting", "minted", "fulfilled"], "one of each step");
    let nft = setup.platform.collection(fulfilled_collection(&setup, item).await);
    assert_eq!(nft.balanceOf(buyer).call().await.unwrap(), U256::from(2));

    // The chain's cap is lower than what the back office now sells (an operator's mistake): the
    // mint reverts, the authorisation is cancelled, nothing is charged, the units come back.
    sqlx::query("UPDATE campaign_items SET supply = 10 WHERE id = $1").bind(item).execute(db).await.unwrap();
    stripe.pause_delivery(false);
    let second = place(&setup, item, setup.anvil.addresses()[7], PaymentMethod::Card).await.expect("order created");
    let intent = second.card_payment.as_ref().unwrap()["payment_intent_id"].as_str().unwrap().to_owned();
    assert_eq!(confirm(&stripe, &intent, "pm_card_visa").await, StatusCode::OK);
    let failed = order_state(&setup, &second, OrderState::Failed).await;
    let debug: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT idempotency_key, state, error FROM chain_transactions ORDER BY id")
            .fetch_all(db)
            .await
            .unwrap();
    let errors: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT subscriber, last_error FROM outbox_deliveries WHERE last_error IS NOT NULL")
            .fetch_all(db)
            .await
            .unwrap();
    let running = setup.background_running();
    assert_eq!(failed.state, OrderState::Failed, "{failed:?} {debug:?} {errors:?} background running: {running}");
    for _ in 0..50 {
        if stripe.payment_intent(&intent).unwrap()["status"] == "canceled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let at_stripe = stripe.payment_intent(&intent).unwrap();
    assert_eq!((at_stripe["status"].as_str(), at_stripe["amount_received"].as_i64()), (Some("canceled"), Some(0)));
    let reserved: i32 =
        sqlx::query_scalar("SELECT reserved FROM campaign_items WHERE id = $1").bind(item).fetch_one(db).await.unwrap();
    assert_eq!(reserved, 2, "only the fulfilled order's units are held");
    setup.stop().await;
}

async fn fulfilled_collection(setup: &Platformed, item: ItemId) -> Address {
    let bytes: Vec<u8> = sqlx::query_scalar(
        "SELECT c.collection_address FROM campaigns c JOIN campaign_items i ON i.campaign_id = c.id WHERE i.id = $1",
    )
    .bind(item)
    .fetch_one(setup.payment.resources.db())
    .await
    .unwrap();
    Address::from_slice(&bytes)
}

#[tokio::test]
async fn a_thousand_buyers_of_a_hundred_units_pay_and_exactly_a_hundred_are_minted_across_a_restart() {
    let stripe = StripeEmulator::start("sk_test_brandmint").await.unwrap();
    let secret = "whsec_dGVzdHMtb25seS13ZWJob29rLXNlY3JldA";
    let mut setup = platformed(
        |anvil| anvil.addresses()[0],
        &[
            ("STRIPE_SECRET_KEY", "sk_test_brandmint"),
            ("STRIPE_API_BASE", stripe.base_url()),
            ("STRIPE_WEBHOOK_SECRET", secret),
            ("DATABASE_MAX_CONNECTIONS", "20"),
        ],
    )
    .await;
    stripe.set_webhook(setup.payment.url("/webhooks/stripe").parse().unwrap(), secret);
    let item = card_campaign(&setup, "hundred", 100).await;

    let attempts = (0..1000u64).map(|n| {
        let (client, url) = (setup.payment.client.clone(), setup.payment.url("/orders"));
        let mut wallet = [0x33u8; 20];
        wallet[12..].copy_from_slice(&n.to_be_bytes());
        let body = json!({ "item_id": item, "quantity": 1, "email": format!("b{n}@example.com"),
                           "wallet_address": Address::from(wallet).to_checksum(None), "method": "card" });
        tokio::spawn(async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        })
    });
    let mut intents = Vec::new();
    for attempt in futures_util::future::join_all(attempts).await {
        let (status, body) = attempt.unwrap();
        match status {
            StatusCode::CREATED => intents.push(body["card_payment"]["payment_intent_id"].as_str().unwrap().to_owned()),
            StatusCode::CONFLICT => assert_eq!(body["code"], "sold-out", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(intents.len(), 100, "exactly the supply was reserved");

    // Every buyer pays; while orders are between authorisation and capture, the platform
    // process dies and comes back.
    for intent in &intents {
        assert_eq!(confirm(&stripe, intent, "pm_card_visa").await, StatusCode::OK);
    }
    let db = setup.payment.resources.db().clone();
    let in_flight = loop {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE state IN ('authorized', 'minting', 'minted')")
                .fetch_one(&db)
                .await
                .unwrap();
        if n > 0 {
            break n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    setup.restart_background().await;
    eprintln!("restarted with {in_flight} orders between authorisation and capture");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let fulfilled: i64 =
            sqlx::query_scalar("SELECT count(*) FROM orders WHERE state = 'fulfilled'").fetch_one(&db).await.unwrap();
        if fulfilled == 100 {
            break;
        }
        if std::time::Instant::now() > deadline {
            let stuck: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                "SELECT o.state, o.failure_reason,
                        (SELECT string_agg(e.event_type || ' → ' || d.subscriber || ' ' || d.status || ' x'
                                           || d.attempts || ' ' || coalesce(d.last_error, ''), '; ')
                         FROM outbox_deliveries d JOIN outbox_events e ON e.id = d.event_id
                         WHERE e.aggregate_id = o.id AND d.status <> 'done')
                 FROM orders o WHERE o.state <> 'fulfilled' AND o.state <> 'expired'",
            )
            .fetch_all(&db)
            .await
            .unwrap();
            panic!("{fulfilled} of 100 fulfilled; the others (state, reason, undelivered events): {stuck:#?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    let collection = fulfilled_collection(&setup, item).await;
    let nft = setup.platform.collection(collection);
    assert_eq!(nft.totalMinted().call().await.unwrap(), U256::from(100));
    // Each order knows its token (read from its mint's receipt), and the chain agrees.
    let tokens: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT first_token_id::bigint, wallet_address FROM orders ORDER BY first_token_id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(tokens.iter().map(|(id, _)| *id).collect::<Vec<_>>(), (1..=100).collect::<Vec<_>>());
    for (id, wallet) in &tokens {
        let owner = nft.ownerOf(U256::from(*id)).call().await.unwrap();
        assert_eq!(owner.as_slice(), wallet.as_slice(), "token {id}");
    }
    let (mints, moves): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chain_transactions WHERE idempotency_key LIKE 'order-mint:%'),
                (SELECT count(*) FROM state_transitions WHERE machine = 'order')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((mints, moves), (100, 400), "one mint and four steps per order");
    for intent in &intents {
        let at_stripe = stripe.payment_intent(intent).unwrap();
        assert_eq!(
            (at_stripe["status"].as_str(), at_stripe["amount_received"].as_i64()),
            (Some("succeeded"), Some(2_500))
        );
    }
    // Each buyer got a receipt.
    for _ in 0..50 {
        if setup.payment.mails().await.len() >= 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let receipts = setup.payment.mails().await;
    assert_eq!(receipts.iter().filter(|m| m.contains("Subject: Your Acme order is complete")).count(), 100);
    setup.stop().await;
}

/// The card platform for these tests: the emulator delivers to the payment service.
pub(crate) async fn card_platform(stripe: &StripeEmulator) -> Platformed {
    let secret = "whsec_dGVzdHMtb25seS13ZWJob29rLXNlY3JldA";
    let setup = platformed(
        |anvil| anvil.addresses()[0],
        &[
            ("STRIPE_SECRET_KEY", "sk_test_brandmint"),
            ("STRIPE_API_BASE", stripe.base_url()),
            ("STRIPE_WEBHOOK_SECRET", secret),
        ],
    )
    .await;
    stripe.set_webhook(setup.payment.url("/webhooks/stripe").parse().unwrap(), secret);
    setup
}

/// Opens the order's hosted page; returns its URL.
async fn hosted_page(setup: &Platformed, order: &str) -> String {
    let response = setup
        .payment
        .client
        .post(setup.payment.url(&format!("/orders/{order}/checkout-session")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let session: Value = response.json().await.unwrap();
    session["url"].as_str().unwrap().to_owned()
}

/// The buyer submits the hosted page with a test card; the page's answer.
async fn pay_on_page(url: &str, card: &str) -> StatusCode {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("payment_method={card}"))
        .send()
        .await
        .unwrap();
    response.status()
}

/// Every PaymentIntent of the account in `status`, as Stripe's search reports it.
async fn intents_in(stripe: &StripeEmulator, status: &str) -> Vec<Value> {
    let found: Value = reqwest::Client::new()
        .get(format!(
            "{}/v1/payment_intents/search?limit=100&query=status%3A%27{status}%27",
            stripe.base_url().trim_end_matches('/')
        ))
        .bearer_auth("sk_test_brandmint")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    found["data"].as_array().unwrap().clone()
}

/// Waits until no PaymentIntent of `order` (its own and its page's) is still open.
async fn settled_intents(stripe: &StripeEmulator, order: &str) -> Vec<Value> {
    let mut intents = Vec::new();
    for _ in 0..100 {
        intents.clear();
        for status in ["requires_payment_method", "requires_capture", "succeeded", "canceled"] {
            intents
                .extend(intents_in(stripe, status).await.into_iter().filter(|pi| pi["metadata"]["order_id"] == order));
        }
        if intents.iter().all(|pi| matches!(pi["status"].as_str(), Some("succeeded" | "canceled"))) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    intents
}

fn statuses(intents: &[Value]) -> Vec<&str> {
    let mut statuses: Vec<&str> = intents.iter().map(|pi| pi["status"].as_str().unwrap()).collect();
    statuses.sort_unstable();
    statuses
}

#[tokio::test]
async fn a_hosted_page_pays_like_the_payment_intent_and_no_card_is_left_authorised() {
    let stripe = StripeEmulator::start("sk_test_brandmint").await.unwrap();
    let setup = card_platform(&stripe).await;
    let item = card_campaign(&setup, "hosted", 10).await;
    let collection = fulfilled_collection(&setup, item).await;
    let nft = setup.platform.collection(collection);

    // 1. Paid only on the hosted page: minted to the buyer's wallet and captured, like a
    //    PaymentIntent confirmed by Stripe.js; the order's own intent is cancelled.
    let buyer = setup.anvil.addresses()[8];
    let order = place(&setup, item, buyer, PaymentMethod::Card).await.expect("order created");
    let id = &order.id.to_string();
    let page = hosted_page(&setup, id).await;
    assert_eq!(pay_on_page(&page, "pm_card_visa").await, StatusCode::SEE_OTHER);
    let fulfilled = order_state(&setup, &order, OrderState::Fulfilled).await;
    assert_eq!(nft.balanceOf(buyer).call().await.unwrap(), U256::from(2));
    let intents = settled_intents(&stripe, id).await;
    assert_eq!(statuses(&intents), ["canceled", "succeeded"], "{intents:?}");
    let paid = intents.iter().find(|pi| pi["status"] == "succeeded").unwrap();
    assert_ne!(paid["id"], order.card_payment.unwrap()["payment_intent_id"], "the page's own PaymentIntent paid");
    assert_eq!(paid["amount_received"], 5_000);
    assert_eq!(fulfilled.card_payment.unwrap()["payment_intent_id"], paid["id"], "the order names what paid it");

    // 2. Paid on both paths before either webhook arrives: one capture, one cancellation, one mint.
    stripe.pause_delivery(true);
    let twice = setup.anvil.addresses()[7];
    let order = place(&setup, item, twice, PaymentMethod::Card).await.expect("order created");
    let id = &order.id.to_string();
    let page = hosted_page(&setup, id).await;
    let intent = order.card_payment.as_ref().unwrap()["payment_intent_id"].as_str().unwrap();
    assert_eq!(confirm(&stripe, intent, "pm_card_visa").await, StatusCode::OK);
    assert_eq!(pay_on_page(&page, "pm_card_visa").await, StatusCode::SEE_OTHER);
    assert_eq!(intents_in(&stripe, "requires_capture").await.len(), 2, "both authorised");
    for event in stripe.events() {
        stripe.redeliver(&event.id, Signing::Genuine).await.unwrap();
    }
    stripe.pause_delivery(false);
    order_state(&setup, &order, OrderState::Fulfilled).await;
    let intents = settled_intents(&stripe, id).await;
    assert_eq!(statuses(&intents), ["canceled", "succeeded"], "{intents:?}");
    assert_eq!(nft.balanceOf(twice).call().await.unwrap(), U256::from(2), "minted once");

    // 3. Abandoned on the hosted page: at expiry the order's intent is cancelled and the page
    //    closed, so a late payment there is refused.
    let gone = setup.anvil.addresses()[6];
    let order = place(&setup, item, gone, PaymentMethod::Card).await.expect("order created");
    let id = &order.id.to_string();
    let page = hosted_page(&setup, id).await;
    let db = setup.payment.resources.db();
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE public_id = $1")
        .bind(order.id)
        .execute(db)
        .await
        .unwrap();
    payment::expire_due(&mut db.acquire().await.unwrap()).await.unwrap();
    let intents = settled_intents(&stripe, id).await;
    assert_eq!(statuses(&intents), ["canceled"], "{intents:?}");
    for _ in 0..50 {
        if reqwest::get(&page).await.unwrap().status() == StatusCode::GONE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_ne!(pay_on_page(&page, "pm_card_visa").await, StatusCode::SEE_OTHER, "the page is closed");
    order_state(&setup, &order, OrderState::Expired).await;

    // Whatever the path, no buyer's card is left authorised, and the safety net finds nothing.
    assert_eq!(intents_in(&stripe, "requires_capture").await, Vec::<Value>::new());
    payment::reconcile(&setup.payment.resources).await.unwrap();
    let (mints, orders): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM chain_transactions WHERE idempotency_key LIKE 'order-mint:%'),
                (SELECT count(*) FROM orders WHERE state = 'fulfilled')",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!((mints, orders), (2, 2));
    setup.stop().await;
}
