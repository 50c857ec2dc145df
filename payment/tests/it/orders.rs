//! Orders through HTTP: atomic reservation under concurrency, per-wallet limits, vouchers with
//! atomic use counting, idempotent creation, expiry giving everything back, the status stream.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::TestApp;

/// A live campaign with one item; returns (brand, item).
pub(crate) async fn live_item(app: &TestApp, supply: i32, per_wallet: Option<i32>) -> (i64, i64) {
    let brand = app.brand("Acme").await;
    let item: i64 = sqlx::query_scalar(
        "WITH c AS (INSERT INTO campaigns (brand_id, state, name, slug, symbol, royalty_bps)
                    VALUES ($1, 'live', 'Drop', 'drop', 'DROP', 500) RETURNING id)
         INSERT INTO campaign_items (brand_id, campaign_id, name, price_minor, currency, supply, per_wallet_limit, payment_methods)
         SELECT $1, id, 'Pass', 2500, 'EUR', $2, $3, '{card,eth}' FROM c RETURNING id",
    )
    .bind(brand)
    .bind(supply)
    .bind(per_wallet)
    .fetch_one(app.resources.db())
    .await
    .unwrap();
    (brand, item)
}

/// A distinct checksummed address per `n`.
pub(crate) fn wallet(n: u64) -> String {
    let mut bytes = [0x11u8; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    alloy::primitives::Address::from(bytes).to_checksum(None)
}

pub(crate) fn order(item: i64, quantity: i64, n: u64) -> Value {
    json!({ "item_id": item, "quantity": quantity, "email": format!("buyer{n}@example.com"),
            "wallet_address": wallet(n), "method": "card" })
}

pub(crate) async fn post(app: &TestApp, body: &Value, key: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url("/orders")).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if status.is_client_error() {
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    (status, response.json().await.unwrap())
}

pub(crate) async fn reserved(app: &TestApp, item: i64) -> i32 {
    sqlx::query_scalar("SELECT reserved FROM campaign_items WHERE id = $1")
        .bind(item)
        .fetch_one(app.resources.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_thousand_concurrent_buyers_of_a_hundred_units_get_exactly_a_hundred_orders() {
    let (app, _stripe) = crate::payment_app(&[("DATABASE_MAX_CONNECTIONS", "20")]).await;
    let (_, item) = live_item(&app, 100, None).await;
    let attempts = (0..1000u64).map(|n| {
        let (client, url, body) = (app.client.clone(), app.url("/orders"), order(item, 1, n));
        tokio::spawn(async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        })
    });
    let mut outcomes: HashMap<StatusCode, usize> = HashMap::new();
    for attempt in futures_util::future::join_all(attempts).await {
        let (status, body) = attempt.unwrap();
        if status == StatusCode::CONFLICT {
            assert_eq!(body["code"], "sold-out", "{body}");
            assert!(body["detail"].as_str().unwrap().contains("sold out"), "a clear answer: {body}");
        } else {
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        *outcomes.entry(status).or_default() += 1;
    }
    assert_eq!(outcomes.get(&StatusCode::CREATED), Some(&100));
    assert_eq!(outcomes.get(&StatusCode::CONFLICT), Some(&900));
    assert_eq!(reserved(&app, item).await, 100);
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(app.resources.db()).await.unwrap();
    assert_eq!(orders, 100);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'order.created'")
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(events, 100);
}

#[tokio::test]
async fn creation_is_idempotent_and_bad_requests_are_named() {
    let (app, _stripe) = crate::payment_app(&[]).await;
    let (_, item) = live_item(&app, 10, None).await;
    let body = order(item, 2, 1);
    let (status, first) = post(&app, &body, Some("checkout-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!((first["state"].as_str(), first["total_minor"].as_i64()), (Some("pending"), Some(5000)));
    let (status, again) = post(&app, &body, Some("checkout-1")).await;
    assert_eq!((status, &again["id"]), (StatusCode::OK, &first["id"]));
    assert_eq!(reserved(&app, item).await, 2, "the retry reserved nothing");
    let (status, problem) = post(&app, &order(item, 3, 1), Some("checkout-1")).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("idempotency-key-reused")));

    // Two retries at once: one order.
    let twice = order(item, 1, 2);
    let (a, b) = tokio::join!(post(&app, &twice, Some("checkout-2")), post(&app, &twice, Some("checkout-2")));
    assert_eq!(a.1["id"], b.1["id"]);
    assert_eq!(reserved(&app, item).await, 3);

    let bad = json!({ "item_id": item, "quantity": 0, "email": "nope", "method": "paypal",
                      "wallet_address": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266" });
    let (status, problem) = post(&app, &bad, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["quantity", "email", "wallet_address", "method"]);
    let (status, problem) = post(
        &app,
        &json!({ "item_id": 999_999, "quantity": 1, "email": "a@b.example",
        "wallet_address": wallet(4), "method": "card" }),
        None,
    )
    .await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("item_id")));
    let mut stablecoin = order(item, 1, 5);
    stablecoin["method"] = json!("stablecoin");
    let (status, problem) = post(&app, &stablecoin, None).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("method")));
    sqlx::query("UPDATE campaigns SET state = 'paused'").execute(app.resources.db()).await.unwrap();
    let (status, problem) = post(&app, &order(item, 1, 6), None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("not-on-sale")));
}

#[tokio::test]
async fn the_per_wallet_limit_and_voucher_caps_hold_and_expiry_gives_everything_back() {
    let (app, _stripe) = crate::payment_app(&[]).await;
    let (brand, item) = live_item(&app, 50, Some(3)).await;
    let (status, _) = post(&app, &order(item, 2, 1), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, problem) = post(&app, &order(item, 2, 1), None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("wallet-limit")));
    assert_eq!(reserved(&app, item).await, 2, "the refused order holds nothing");

    // A 10 % voucher usable 3 times, once per buyer: 10 buyers at once, 3 get it.
    sqlx::query(
        "INSERT INTO vouchers (brand_id, code, kind, percent_bps, max_uses, max_uses_per_buyer) VALUES ($1, 'TEN', 'percent', 1000, 3, 1)",
    )
    .bind(brand)
    .execute(app.resources.db())
    .await
    .unwrap();
    let with_voucher = |n: u64| {
        let mut body = order(item, 1, n);
        body["voucher_code"] = json!("ten");
        body
    };
    let attempts = futures_util::future::join_all((10..20).map(|n| {
        let body = with_voucher(n);
        let app = &app;
        async move { post(app, &body, None).await }
    }))
    .await;
    let used: Vec<&Value> = attempts.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b).collect();
    assert_eq!(used.len(), 3);
    assert!(used.iter().all(|o| o["discount_minor"] == 250 && o["total_minor"] == 2250 && o["voucher_code"] == "TEN"));
    assert!(
        attempts
            .iter()
            .filter(|(s, _)| *s != StatusCode::CREATED)
            .all(|(s, b)| *s == StatusCode::UNPROCESSABLE_ENTITY && b["errors"][0]["field"] == "voucher_code")
    );
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM vouchers").fetch_one(app.resources.db()).await.unwrap();
    assert_eq!(uses, 3);
    assert_eq!(reserved(&app, item).await, 5);

    // The status stream shows the order now.
    let id = used[0]["id"].as_str().unwrap().to_owned();
    let mut stream = app.client.get(app.url(&format!("/orders/{id}/events"))).send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let first = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.contains("event: order") && first.contains("\"state\":\"pending\""), "{first}");

    // Time passes: every pending order expires, releasing units and voucher uses, once.
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second'")
        .execute(app.resources.db())
        .await
        .unwrap();
    let mut conn = app.resources.db().acquire().await.unwrap();
    assert_eq!(payment::expire_due(&mut conn).await.unwrap(), 4);
    assert_eq!(payment::expire_due(&mut conn).await.unwrap(), 0);
    assert_eq!(reserved(&app, item).await, 0);
    let uses: i32 = sqlx::query_scalar("SELECT uses FROM vouchers").fetch_one(app.resources.db()).await.unwrap();
    assert_eq!(uses, 0);
    let rest = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(rest.contains("\"state\":\"expired\""), "{rest}");
    let order: Value = app.get(&format!("/orders/{id}")).await.json().await.unwrap();
    assert_eq!(order["state"], "expired");
    let expired: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'order.expired'")
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert_eq!(expired, 4);
}

#[tokio::test]
async fn the_creation_answer_is_the_stored_order_held_for_the_configured_time() {
    let (app, _stripe) = crate::payment_app(&[("ORDER_HOLD_SECS", "120")]).await;
    let (brand, item) = live_item(&app, 10, None).await;
    sqlx::query(
        "INSERT INTO vouchers (brand_id, code, kind, amount_minor, currency) VALUES ($1, 'FIVE', 'fixed', 500, 'EUR')",
    )
    .bind(brand)
    .execute(app.resources.db())
    .await
    .unwrap();
    let mut body = order(item, 2, 7);
    body["voucher_code"] = json!(" five ");
    let (status, mut created) = post(&app, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["card_payment"]["client_secret"].as_str().is_some_and(|s| s.contains("_secret_")), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let stored: Value = app.get(&format!("/orders/{id}")).await.json().await.unwrap();
    // The client secret is for the buyer's page once; everything else is what is stored.
    created["card_payment"]["client_secret"] = Value::Null;
    assert_eq!(created, stored);
    assert_eq!((stored["total_minor"].as_i64(), stored["voucher_code"].as_str()), (Some(4500), Some("FIVE")));
    let held: f64 = sqlx::query_scalar("SELECT extract(epoch FROM expires_at - created_at)::float8 FROM orders")
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    assert!((held - 120.0).abs() < 1.0, "held {held} s");
}

#[tokio::test]
async fn a_brand_lists_and_reads_its_own_orders_and_no_one_elses() {
    use shared::auth::BrandRole;
    let (app, _stripe) = crate::payment_app(&[]).await;
    let (brand, item) = live_item(&app, 100, None).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let (status, created) = post(&app, &order(item, 1, n), None).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let (owner, owner_token) = app.account("owner@acme.example", None).await;
    app.member(brand, owner, BrandRole::Owner, &[]).await;
    let (staff, staff_token) = app.account("staff@acme.example", None).await;
    app.member(brand, staff, BrandRole::Staff, &[]).await;
    let other = app.brand("Other").await;
    let (stranger, stranger_token) = app.account("owner@other.example", None).await;
    app.member(other, stranger, BrandRole::Owner, &[]).await;

    // Newest first, two per page, every order exactly once across the pages.
    let mut seen = Vec::new();
    let mut path = format!("/brands/{brand}/orders?limit=2&method=card&state=pending");
    loop {
        let (status, page) = app.call(reqwest::Method::GET, &path, &owner_token, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(page["orders"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/brands/{brand}/orders?limit=2&method=card&state=pending&cursor={cursor}"),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let (_, none) =
        app.call(reqwest::Method::GET, &format!("/brands/{brand}/orders?state=fulfilled"), &owner_token, None).await;
    assert_eq!(none["orders"], json!([]));
    let (status, bad) = app
        .call(reqwest::Method::GET, &format!("/brands/{brand}/orders?state=lost&limit=0&cursor=x"), &owner_token, None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let fields: Vec<&str> = bad["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["state", "limit", "cursor"]);

    let (status, one) =
        app.call(reqwest::Method::GET, &format!("/brands/{brand}/orders/{}", ids[0]), &owner_token, None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!((one["id"].as_str(), one["buyer_email"].as_str()), (Some(ids[0].as_str()), Some("buyer0@example.com")));
    // Another brand's order is not there for them, and staff do not see finances.
    let (status, _) =
        app.call(reqwest::Method::GET, &format!("/brands/{other}/orders/{}", ids[0]), &stranger_token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = app.call(reqwest::Method::GET, &format!("/brands/{other}/orders"), &stranger_token, None).await;
    assert_eq!(theirs["orders"], json!([]));
    let (status, _) = app.call(reqwest::Method::GET, &format!("/brands/{brand}/orders"), &stranger_token, None).await;
    assert!(matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{status}");
    // The same access as refunds: staff and managers are refused.
    let (status, _) = app.call(reqwest::Method::GET, &format!("/brands/{brand}/orders"), &staff_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (manager, manager_token) = app.account("manager@acme.example", None).await;
    app.member(brand, manager, BrandRole::Manager, &[]).await;
    let (status, _) = app.call(reqwest::Method::GET, &format!("/brands/{brand}/orders"), &manager_token, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_browser_gets_the_brands_orders_as_staff_pages_and_is_sent_to_sign_in_without_credentials() {
    use shared::auth::BrandRole;
    let (app, _stripe) = crate::payment_app(&[]).await;
    let (brand, item) = live_item(&app, 10, None).await;
    let (status, created) = post(&app, &order(item, 2, 1), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (owner, token) = app.account("owner@acme.example", None).await;
    app.member(brand, owner, BrandRole::Owner, &[]).await;
    // A browser: it asks for HTML and sees redirects rather than following them.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let list = format!("/brands/{brand}/orders");
    let open = |path: String| browser.get(app.url(&path)).header("accept", HTML).bearer_auth(&token).send();
    let html = |response: &reqwest::Response| {
        response.headers()["content-type"].to_str().unwrap().starts_with("text/html; charset=utf-8")
    };

    let page = open(list.clone()).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(html(&page));
    let text = page.text().await.unwrap();
    assert!(text.contains(&format!(r#"href="{list}/{id}""#)) && text.contains(&format!(">{id}</a>")), "{text}");
    assert!(text.contains("buyer1@example.com") && text.contains("50.00 EUR") && text.contains("Drop"), "{text}");
    assert!(text.contains(r#"data-state="pending""#), "{text}");

    // The order's page: a pending order cannot be refunded; once fulfilled it can.
    let page = open(format!("{list}/{id}")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(html(&page));
    let text = page.text().await.unwrap();
    assert!(text.contains(&id) && text.contains("buyer1@example.com") && !text.contains("/refund"), "{text}");
    sqlx::query("UPDATE orders SET state = 'fulfilled', fulfilled_at = now(), first_token_id = 7 WHERE public_id = $1")
        .bind(uuid::Uuid::parse_str(&id).unwrap())
        .execute(app.resources.db())
        .await
        .unwrap();
    let text = open(format!("{list}/{id}")).await.unwrap().text().await.unwrap();
    assert!(text.contains(&format!(r#"data-api="{list}/{id}/refund""#)), "{text}");
    assert!(text.contains(r#"<label for="refund-confirm">"#) && text.contains("7–8"), "{text}");
    let missing = open(format!("{list}/{}", uuid::Uuid::new_v4())).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(html(&missing));

    // Without credentials: to the sign-in page, coming back here afterwards.
    let anonymous = browser.get(app.url(&format!("{list}?state=pending"))).header("accept", HTML).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.headers()["location"],
        format!("/sign-in?next=%2Fbrands%2F{brand}%2Forders%3Fstate%3Dpending")
    );

    // An API client still gets JSON.
    let answer =
        browser.get(app.url(&list)).header("accept", "application/json").bearer_auth(&token).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["content-type"], "application/json");
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["orders"][0]["id"], json!(id));
}

#[tokio::test]
async fn strangers_get_problems_for_bad_input_and_see_the_buyers_email_masked() {
    let (app, _stripe) = crate::payment_app(&[]).await;
    let (_, item) = live_item(&app, 10, None).await;
    // NUL and control characters in any text: named, nothing stored.
    let mut body = order(item, 1, 1);
    body["email"] = json!("n\u{0}ul@example.com");
    body["voucher_code"] = json!("SAVE\u{7}");
    let (status, problem) = post(&app, &body, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "voucher_code"]);
    let mut huge = order(item, 1, 2);
    huge["quantity"] = json!(i64::MAX);
    let (status, problem) = post(&app, &huge, None).await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("quantity")));
    // A body beyond the limit, even on the Stripe webhook: a problem document.
    let response = app
        .client
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders").fetch_one(app.resources.db()).await.unwrap();
    assert_eq!(orders, 0);

    // Whoever holds an order's id sees the buyer's e-mail masked.
    let (status, created) = post(&app, &order(item, 1, 3), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email"], "b***@example.com");
    let seen: Value = app.get(&format!("/orders/{}", created["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(seen["email"], "b***@example.com");
}
