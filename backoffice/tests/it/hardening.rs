//! Bad input, one test per kind of fault: whatever a careless or hostile client sends, the
//! answer is a problem document naming the field, never a 500, and nothing is stored.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::campaigns::{Owner, fields};

fn campaign(name: &str, item: Value) -> Value {
    json!({ "name": name, "slug": "drop", "royalty_bps": 0, "items": [item] })
}

fn item() -> Value {
    json!({ "name": "Pass", "price_minor": 1_000, "currency": "EUR", "supply": 10, "payment_methods": ["card"] })
}

#[tokio::test]
async fn nul_and_control_characters_are_refused_by_name_wherever_they_are_sent() {
    let owner = Owner::new().await;
    let path = format!("/brands/{}/campaigns", owner.brand);
    for (name, says) in [("n\u{0}ul", "NUL"), ("bell\u{7}", "control"), ("two\r\nlines", "single line")] {
        let (status, problem) = owner.call(Method::POST, &path, campaign(name, item())).await;
        assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["name".to_owned()]));
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains(says), "{problem}");
    }
    // Deep in the body too, and every bad field at once.
    let mut bad_item = item();
    bad_item["name"] = json!("x\u{0}");
    let (status, problem) = owner.call(Method::POST, &path, campaign("Drop\u{1b}", bad_item)).await;
    assert_eq!(
        (status, fields(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["items[0].name".into(), "name".into()])
    );
    // A description may span lines, but not carry NUL.
    let mut multi = campaign("Drop", item());
    multi["description"] = json!("line one\nline two");
    let (status, created) = owner.call(Method::POST, &path, multi).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, problem) =
        owner.call(Method::PATCH, &format!("{path}/{}", created["id"]), json!({ "description": "a\u{0}b" })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["description".to_owned()]));
    // Query parameters: named too.
    let (status, problem) =
        owner.raw(Method::GET, &format!("/brands/{}/exports/orders?format=c%00sv", owner.brand), "").await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["format".to_owned()]));
    // Sign-in with NUL in the e-mail: a client error, no login.
    let (status, _) =
        owner.call(Method::POST, "/auth/sign-in", json!({ "email": "a\u{0}@b.example", "password": "x" })).await;
    assert!(status.is_client_error(), "{status}");
}

#[tokio::test]
async fn a_huge_email_is_refused_before_it_becomes_a_key_and_never_reaches_the_log_or_the_table() {
    let owner = Owner::new().await;
    // Far beyond any e-mail: refused at the edge, by name.
    let huge = format!("{}@example.com", "a".repeat(3_000));
    let (status, problem) = owner.call(Method::POST, "/auth/password-reset", json!({ "email": huge })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["email".to_owned()]));
    // Longer than RFC 5321 allows but within what the edge reads: the handlers see it, and its
    // rate-limit bucket is a fixed-size digest.
    let long = format!("{}@example.com", "b".repeat(300));
    for path in ["/auth/password-reset", "/auth/sign-in"] {
        let (status, _) = owner.call(Method::POST, path, json!({ "email": long, "password": "whatever-it-is" })).await;
        assert!(status.is_client_error() || status.is_success(), "{path}: {status}");
    }
    let buckets: Vec<String> =
        sqlx::query_scalar("SELECT bucket FROM rate_limit_windows").fetch_all(owner.app.resources.db()).await.unwrap();
    assert!(!buckets.is_empty());
    for bucket in &buckets {
        assert!(bucket.len() < 120 && !bucket.contains('@'), "a fixed-size key without the e-mail: {bucket}");
    }
}

#[tokio::test]
async fn amounts_beyond_their_bounds_and_numbers_no_field_can_hold_are_named() {
    let owner = Owner::new().await;
    let path = format!("/brands/{}/campaigns", owner.brand);
    let mut expensive = item();
    expensive["price_minor"] = json!(i64::MAX);
    let (status, problem) = owner.call(Method::POST, &path, campaign("Drop", expensive)).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["items[0].price_minor".to_owned()]));
    // 1e400 is valid JSON but no number: named, not a bare 400.
    let body = campaign("Drop", item()).to_string().replace("1000", "1e400");
    let (status, problem) = owner.raw(Method::POST, &path, &body).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["items[0].price_minor".to_owned()]));
    // A number where a word is expected.
    let (status, problem) = owner.call(Method::POST, &format!("{path}/1/state"), json!({ "action": 7 })).await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND, "{status}");
    if status == StatusCode::UNPROCESSABLE_ENTITY {
        assert_eq!(fields(&problem), ["action"]);
    }
    // Vouchers: fixed amounts and minimum orders are bounded by the largest order total.
    let (status, problem) = owner
        .call(
            Method::POST,
            &format!("/brands/{}/vouchers", owner.brand),
            json!({ "code": "BIG", "kind": "fixed", "amount_minor": i64::MAX, "currency": "EUR", "min_order_minor": i64::MAX }),
        )
        .await;
    assert_eq!(
        (status, fields(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["amount_minor".into(), "min_order_minor".into()])
    );
    let (status, problem) =
        owner.raw(Method::GET, &format!("/brands/{}/dashboard?campaign_id=1e400", owner.brand), "").await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["campaign_id".to_owned()]));
}

#[tokio::test]
async fn cross_field_rules_are_checked_before_the_database_sees_them() {
    let owner = Owner::new().await;
    let (_, created) =
        owner.call(Method::POST, &format!("/brands/{}/campaigns", owner.brand), campaign("Drop", item())).await;
    let rewards = format!("/brands/{}/campaigns/{}/rewards", owner.brand, created["id"]);
    let (status, reward) = owner
        .call(
            Method::POST,
            &rewards,
            json!({ "kind": "token", "name": "Cash", "token": "eth", "amount_per_redemption": "1000" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reward}");
    let (status, problem) = owner
        .call(
            Method::PATCH,
            &format!("{rewards}/{}", reward["id"]),
            json!({ "redemptions_per_nft": 2, "share_bps": 100 }),
        )
        .await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["share_bps".to_owned()]));
    // Nothing changed.
    let (_, list) = owner.call(Method::GET, &rewards, Value::Null).await;
    assert_eq!(list[0]["redemptions_per_nft"], reward["redemptions_per_nft"]);
    // Another brand's (or no) campaign: 404 like every other route, not an empty list.
    let (status, _) =
        owner.call(Method::GET, &format!("/brands/{}/campaigns/999999/rewards", owner.brand), Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn dates_outside_any_sensible_range_are_refused_and_no_date_arithmetic_panics() {
    let owner = Owner::new().await;
    let path = format!("/brands/{}/campaigns", owner.brand);
    for far in ["-262143-01-01T00:00:00Z", "+262142-12-31T23:59:59Z", "1969-12-31T23:59:59Z"] {
        let mut dated = item();
        dated["sale_starts_at"] = json!(far);
        let (status, problem) = owner.call(Method::POST, &path, campaign("Drop", dated)).await;
        assert_eq!(
            (status, fields(&problem)),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["items[0].sale_starts_at".to_owned()])
        );
        let (status, problem) = owner
            .call(
                Method::POST,
                &format!("/brands/{}/vouchers", owner.brand),
                json!({ "code": "FAR", "kind": "percent", "percent_bps": 100, "ends_at": far }),
            )
            .await;
        assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["ends_at".to_owned()]));
        let encoded = far.replace('+', "%2B");
        let (status, problem) =
            owner.raw(Method::GET, &format!("/brands/{}/dashboard?to={encoded}", owner.brand), "").await;
        assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["to".to_owned()]));
    }
    // The earliest accepted end still has a default start.
    let (status, dashboard) =
        owner.raw(Method::GET, &format!("/brands/{}/dashboard?to=1970-01-02T00:00:00Z", owner.brand), "").await;
    assert_eq!(status, StatusCode::OK, "{dashboard}");
}

#[tokio::test]
async fn made_up_methods_add_no_metric_series() {
    let owner = Owner::new().await;
    let series = |text: &str| text.lines().filter(|l| l.starts_with("http_requests_total{")).count();
    let metrics = || async { owner.app.get("/metrics").await.text().await.unwrap() };
    for n in 0..20 {
        let method = Method::from_bytes(format!("ANYTHING{n}").as_bytes()).unwrap();
        drop(owner.app.client.request(method, owner.app.url("/health/live")).send().await.unwrap());
    }
    let after_made_up = metrics().await;
    assert!(!after_made_up.contains("ANYTHING"), "no series per made-up method");
    assert!(after_made_up.contains("method=\"other\""), "counted under `other`");
    // Unknown paths are one `unmatched` route, whatever the path.
    for n in 0..20 {
        drop(owner.app.get(&format!("/no/such/path/{n}")).await);
    }
    let before = series(&metrics().await);
    for n in 20..40 {
        drop(owner.app.get(&format!("/no/such/path/{n}")).await);
        let other = Method::from_bytes(format!("MADEUP{n}").as_bytes()).unwrap();
        drop(owner.app.client.request(other, owner.app.url("/health/live")).send().await.unwrap());
    }
    assert_eq!(series(&metrics().await), before, "the series count is bounded");
}

#[tokio::test]
async fn draft_artwork_is_only_for_the_brand_until_the_campaign_is_deployed() {
    let owner = Owner::new().await;
    let (_, created) =
        owner.call(Method::POST, &format!("/brands/{}/campaigns", owner.brand), campaign("Drop", item())).await;
    let id = created["id"].as_i64().unwrap();
    let png = alloy::hex::decode(
        "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da636460f85f0f0002870180eb47ba920000000049454e44ae426082",
    )
    .unwrap();
    let upload = owner
        .app
        .client
        .put(owner.app.url(&format!("/brands/{}/campaigns/{id}/artwork", owner.brand)))
        .bearer_auth(&owner.token)
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert!(upload.status().is_success(), "{}", upload.status());
    let image = format!("/metadata/{id}/image");
    assert_eq!(owner.app.get(&image).await.status(), StatusCode::NOT_FOUND, "strangers see nothing");
    let (_, stranger) = owner.app.account("someone@else.example", None).await;
    let as_stranger = owner.app.client.get(owner.app.url(&image)).bearer_auth(stranger).send().await.unwrap();
    assert_eq!(as_stranger.status(), StatusCode::NOT_FOUND, "nor do other accounts");
    let own = owner.app.client.get(owner.app.url(&image)).bearer_auth(&owner.token).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(own.headers()["cache-control"], "private, no-store");
}
