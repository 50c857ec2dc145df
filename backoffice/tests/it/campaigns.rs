//! Campaigns, rewards, vouchers, dashboards and exports through HTTP: bad input is refused
//! field by field and changes nothing; imports are all or nothing; exports read back exactly.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::auth::BrandRole;
use testkit::TestApp;

/// A brand owner signed in to a back office of its own; every 4xx checked to be a problem document.
pub(crate) struct Owner {
    pub(crate) app: TestApp,
    pub(crate) token: String,
    pub(crate) brand: i64,
}

impl Owner {
    pub(crate) async fn new() -> Self {
        let app = TestApp::spawn(backoffice::SERVICE).await;
        let brand = app.brand("Acme").await;
        let (owner, token) = app.account("owner@acme.example", None).await;
        app.member(brand, owner, BrandRole::Owner, &[]).await;
        Self { app, token, brand }
    }

    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let request = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        let response = request.header("content-type", content_type).body(body).send().await.unwrap();
        let status = response.status();
        assert!(!status.is_server_error(), "{path}: {status}");
        if status.is_client_error() {
            assert_eq!(response.headers()["content-type"], "application/problem+json");
        }
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn call(&self, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(method, path, "application/json", serde_json::to_vec(&body).unwrap()).await
    }

    /// Sends `body` as raw JSON text (so it may hold what serde_json would not write).
    pub(crate) async fn raw(&self, method: Method, path: &str, body: &str) -> (StatusCode, Value) {
        self.send(method, path, "application/json", body.as_bytes().to_vec()).await
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.app.client.get(self.app.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }

    async fn campaign(&self, slug: &str) -> i64 {
        let body = json!({ "name": "Drop", "slug": slug, "royalty_bps": 500, "items": [
            { "name": "Pass", "price_minor": 1_000, "currency": "EUR", "supply": 100, "payment_methods": ["card"] }] });
        let campaigns = self.app.api(&self.token).campaigns(shared::ids::BrandId::new(self.brand));
        campaigns.create(&body).await.expect("campaign created").id.get()
    }
}

/// The fields a 422 names, in order.
pub(crate) fn fields(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().map_or_else(Vec::new, |errors| {
        errors.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect()
    })
}

#[tokio::test]
async fn bad_campaigns_are_refused_field_by_field_and_nothing_is_stored() {
    let owner = Owner::new().await;
    let path = format!("/brands/{}/campaigns", owner.brand);
    let bad = json!({
        "name": "Drop", "slug": "drop", "royalty_bps": 10_001,
        "royalty_receiver": "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        "items": [{ "name": "Pass", "price_minor": -1, "currency": "EURO", "supply": 0,
                    "sale_starts_at": "2026-12-02T00:00:00Z", "sale_ends_at": "2026-12-01T00:00:00Z",
                    "payment_methods": ["card", "paypal"] }],
    });
    let (status, problem) = owner.call(Method::POST, &path, bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        fields(&problem),
        [
            "royalty_bps",
            "royalty_receiver",
            "items[0].price_minor",
            "items[0].currency",
            "items[0].supply",
            "items[0].sale_ends_at",
            "items[0].payment_methods",
        ]
    );
    // A wrong type is named too, and a bad slug.
    let (status, problem) =
        owner.call(Method::POST, &path, json!({ "name": "Drop", "slug": "Drop!", "royalty_bps": "lots" })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["royalty_bps".to_owned()]));
    let (status, problem) =
        owner.call(Method::POST, &path, json!({ "name": "Drop", "slug": "Drop!", "royalty_bps": 1 })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["slug".to_owned()]));
    // Royalty enforcement needs the platform's transfer validator, which this one lacks.
    let body = json!({ "name": "Drop", "slug": "enforced", "royalty_bps": 500, "royalty_enforcement": true });
    let (status, problem) = owner.call(Method::POST, &path, body).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["royalty_enforcement".to_owned()]));
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("TRANSFER_VALIDATOR_ADDRESS"), "{problem}");
    let (_, list) = owner.call(Method::GET, &path, Value::Null).await;
    assert_eq!(list, json!([]), "nothing was stored");

    // What could never be paid is refused where it is set up: free items, prices beyond Stripe's
    // largest charge, below its minimum for cards, and currencies a wallet quote cannot price.
    for (price, currency, methods, field, says) in [
        (0, "EUR", json!(["card"]), "items[0].price_minor", "at least 1"),
        (0, "EUR", json!(["eth"]), "items[0].price_minor", "at least 1"),
        (100_000_000, "USD", json!(["card", "eth"]), "items[0].price_minor", "at most 99999999"),
        (49, "USD", json!(["card"]), "items[0].price_minor", "0.50 USD"),
        (5_000, "JPY", json!(["card", "eth"]), "items[0].currency", "USD or EUR"),
        (5_000, "GBP", json!(["stablecoin"]), "items[0].currency", "USD or EUR"),
    ] {
        let item = json!({ "name": "Pass", "price_minor": price, "currency": currency, "supply": 1, "payment_methods": methods });
        let body = json!({ "name": "Drop", "slug": "never", "royalty_bps": 0, "items": [item] });
        let (status, problem) = owner.call(Method::POST, &path, body).await;
        assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]), "{problem}");
        assert!(problem["errors"][0]["message"].as_str().unwrap().contains(says), "{problem}");
    }
    let (_, list) = owner.call(Method::GET, &path, Value::Null).await;
    assert_eq!(list, json!([]), "nothing was stored");

    // A slug is unique within the brand.
    owner.campaign("drop").await;
    let (status, problem) =
        owner.call(Method::POST, &path, json!({ "name": "Again", "slug": "drop", "royalty_bps": 0 })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["slug".to_owned()]));

    // Artwork must be an image, whatever the Content-Type claims; and not too large.
    let id = owner.campaign("second").await;
    let (status, problem) =
        owner.call(Method::PATCH, &format!("{path}/{id}"), json!({ "royalty_enforcement": true })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["royalty_enforcement".to_owned()]));
    let (status, campaign) =
        owner.call(Method::PATCH, &format!("{path}/{id}"), json!({ "royalty_enforcement": false })).await;
    assert_eq!((status, &campaign["royalty_enforcement"]), (StatusCode::OK, &json!(false)), "{campaign}");
    let artwork = format!("{path}/{id}/artwork");
    let (status, problem) = owner.send(Method::PUT, &artwork, "image/png", b"<html>not an image</html>".to_vec()).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["artwork".to_owned()]));
    let (status, _) = owner.send(Method::PUT, &artwork, "image/png", vec![0; 10 * 1024 * 1024 + 10]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Another brand's campaign does not exist for this owner.
    let other = owner.app.brand("Other").await;
    let foreign: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (brand_id, name, slug, symbol, royalty_bps) VALUES ($1, 'X', 'x', 'X', 0) RETURNING id",
    )
    .bind(other)
    .fetch_one(owner.app.resources.db())
    .await
    .unwrap();
    let (status, _) = owner.call(Method::GET, &format!("{path}/{foreign}"), Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = owner.call(Method::POST, &format!("{path}/{foreign}/deploy"), Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Lifecycle: a draft cannot pause; deploying needs a factory (none configured here).
    let (status, problem) = owner.call(Method::POST, &format!("{path}/{id}/state"), json!({ "action": "pause" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, problem) = owner.call(Method::POST, &format!("{path}/{id}/state"), json!({ "action": "fly" })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["action".to_owned()]));
    let (status, problem) = owner.call(Method::POST, &format!("{path}/{id}/deploy"), Value::Null).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
}

#[tokio::test]
async fn perk_codes_import_all_or_nothing_from_csv_and_xlsx() {
    let owner = Owner::new().await;
    let id = owner.campaign("drop").await;
    let rewards = format!("/brands/{}/campaigns/{id}/rewards", owner.brand);
    let (status, perk) = owner.call(Method::POST, &rewards, json!({ "kind": "perk", "name": "Free coffee" })).await;
    assert_eq!(status, StatusCode::CREATED, "{perk}");
    let codes = format!("{rewards}/{}/codes", perk["id"]);

    // One malformed row (two columns) and one duplicate: both named, nothing imported.
    let csv = b"code\nCOFFEE-1\nCOFFEE-2,extra\nCOFFEE-1\nCOFFEE-3\n".to_vec();
    let (status, problem) = owner.send(Method::POST, &codes, "text/csv", csv).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(fields(&problem), ["rows[3]", "rows[4]"]);
    let (_, list) = owner.call(Method::GET, &rewards, Value::Null).await;
    assert_eq!(list[0]["codes_total"], 0, "nothing half-imported");

    let (status, report) = owner.send(Method::POST, &codes, "text/csv", b"code\nCOFFEE-1\nCOFFEE-2\n".to_vec()).await;
    assert_eq!((status, report["imported"].as_i64()), (StatusCode::CREATED, Some(2)));

    // XLSX: the first sheet's first column; a code imported before is refused by row.
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (row, code) in (0u32..).zip(["code", "COFFEE-3", "COFFEE-2"]) {
        sheet.write_string(row, 0, code).unwrap();
    }
    let xlsx = workbook.save_to_buffer().unwrap();
    let kind = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let (status, problem) = owner.send(Method::POST, &codes, kind, xlsx).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["rows[3]".to_owned()]));
    let (status, _) = owner.send(Method::POST, &codes, kind, b"PK\x03\x04 broken".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = owner.send(Method::POST, &codes, "application/pdf", b"%PDF".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (_, list) = owner.call(Method::GET, &rewards, Value::Null).await;
    assert_eq!((list[0]["codes_total"].as_i64(), list[0]["codes_available"].as_i64()), (Some(2), Some(2)));

    // Money-bearing fields of rewards are validated too.
    let (status, problem) = owner
        .call(
            Method::POST,
            &rewards,
            json!({ "kind": "token", "name": "Cash", "token": "doge", "amount_per_redemption": "-5" }),
        )
        .await;
    assert_eq!(
        (status, fields(&problem)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["token".into(), "amount_per_redemption".into()])
    );
    let (status, problem) = owner
        .call(Method::POST, &rewards, json!({ "kind": "royalty_share", "name": "Share", "share_bps": 20_000 }))
        .await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["share_bps".to_owned()]));
}

#[tokio::test]
async fn vouchers_are_validated_and_never_capped_below_their_uses() {
    let owner = Owner::new().await;
    let path = format!("/brands/{}/vouchers", owner.brand);
    let (status, problem) = owner
        .call(Method::POST, &path, json!({ "code": "x", "kind": "fixed", "amount_minor": 0, "min_order_minor": -1 }))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&problem), ["code", "amount_minor", "currency", "min_order_minor"]);
    let (status, voucher) = owner
        .call(
            Method::POST,
            &path,
            json!({ "code": "summer10", "kind": "percent", "percent_bps": 1_000, "max_uses": 50 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{voucher}");
    assert_eq!(voucher["code"], "SUMMER10");
    let (status, problem) =
        owner.call(Method::POST, &path, json!({ "code": "SUMMER10", "kind": "percent", "percent_bps": 5 })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["code".to_owned()]));
    sqlx::query("UPDATE vouchers SET uses = 7").execute(owner.app.resources.db()).await.unwrap();
    let one = format!("{path}/{}", voucher["id"]);
    let (status, problem) = owner.call(Method::PATCH, &one, json!({ "max_uses": 5 })).await;
    assert_eq!((status, fields(&problem)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["max_uses".to_owned()]));
    let (status, voucher) = owner.call(Method::PATCH, &one, json!({ "active": false, "max_uses": 7 })).await;
    assert_eq!(
        (status, voucher["active"].as_bool(), voucher["max_uses"].as_i64()),
        (StatusCode::OK, Some(false), Some(7))
    );
}

/// Orders as the payment service writes them: `(state, method, currency, total, email)`.
async fn orders(app: &TestApp, brand: i64, campaign: i64, rows: &[(&str, &str, &str, i64, &str)]) {
    let item: i64 = sqlx::query_scalar("SELECT id FROM campaign_items WHERE campaign_id = $1")
        .bind(campaign)
        .fetch_one(app.resources.db())
        .await
        .unwrap();
    for (state, method, currency, total, email) in rows {
        sqlx::query(
            "INSERT INTO orders (state, brand_id, campaign_id, item_id, quantity, method, currency, subtotal_minor,
                 total_minor, buyer_email, wallet_address)
             VALUES ($1, $2, $3, $4, 2, $5, $6, $7, $7, $8, '\\xf39fd6e51aad88f6f4ce6ab8827279cfffb92266')",
        )
        .bind(state)
        .bind(brand)
        .bind(campaign)
        .bind(item)
        .bind(method)
        .bind(currency)
        .bind(total)
        .bind(email)
        .execute(app.resources.db())
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn exports_read_back_as_the_database_rows_and_dashboards_add_them_up() {
    let owner = Owner::new().await;
    let campaign = owner.campaign("drop").await;
    let rows = [
        ("fulfilled", "card", "EUR", 2_000, "a@example.com"),
        ("fulfilled", "eth", "EUR", 1_800, "b@example.com"),
        ("pending", "card", "EUR", 2_000, "c@example.com"),
        ("fulfilled", "card", "USD", 2_500, "d@example.com"),
        // Refunded after minting; the buyer's address reads as a spreadsheet formula.
        ("refunded", "card", "EUR", 2_000, "=2+3+0*len(\"@example.com\")"),
    ];
    orders(&owner.app, owner.brand, campaign, &rows).await;
    // Another brand's orders never show.
    let other_brand = owner.app.brand("Other").await;
    let other: i64 = sqlx::query_scalar(
        "WITH c AS (INSERT INTO campaigns (brand_id, name, slug, symbol, royalty_bps) VALUES ($1, 'X', 'x', 'X', 0) RETURNING id)
         INSERT INTO campaign_items (brand_id, campaign_id, name, price_minor, currency, supply, payment_methods)
         SELECT $1, id, 'I', 1, 'EUR', 5, '{card}' FROM c RETURNING campaign_id",
    )
    .bind(other_brand)
    .fetch_one(owner.app.resources.db())
    .await
    .unwrap();
    orders(&owner.app, other_brand, other, &[("fulfilled", "card", "EUR", 9_999, "z@example.com")]).await;

    let response = owner.get(&format!("/brands/{}/exports/orders?format=xlsx", owner.brand)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
    let bytes = response.bytes().await.unwrap();
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(bytes.to_vec())).unwrap();
    let sheet = workbook.worksheet_range_at(0).unwrap().unwrap();
    let sheet: Vec<Vec<Data>> = sheet.rows().map(<[Data]>::to_vec).collect();
    assert_eq!(sheet[0][0], Data::String("order_id".into()));
    assert_eq!(sheet.len(), 1 + rows.len(), "a header and this brand's rows only");
    let stored: Vec<(uuid::Uuid, String, String, String, i64, String)> = sqlx::query_as(
        "SELECT public_id, state, method, currency, total_minor, buyer_email FROM orders WHERE brand_id = $1 ORDER BY id",
    )
    .bind(owner.brand)
    .fetch_all(owner.app.resources.db())
    .await
    .unwrap();
    for (row, (id, state, method, currency, total, email)) in sheet[1..].iter().zip(&stored) {
        #[allow(clippy::cast_precision_loss)]
        let number = |n: i64| Data::Float(n as f64);
        assert_eq!(row[0], Data::String(id.to_string()), "the id the API knows the order by");
        assert!(matches!(row[1], Data::DateTime(_)), "{:?}", row[1]);
        assert_eq!(row[2], Data::String(state.clone()));
        assert_eq!(row[6], Data::String(method.clone()));
        assert_eq!(row[7], Data::String(currency.clone()));
        assert_eq!(row[10], number(*total));
        assert_eq!(row[11], Data::String(email.clone()));
        assert_eq!(row[12], Data::String("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266".into()));
    }

    let csv = owner.get(&format!("/brands/{}/exports/orders?campaign_id={campaign}", owner.brand)).await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let emails: Vec<String> = reader.records().map(|r| r.unwrap()[11].to_owned()).collect();
    assert_eq!(
        emails,
        ["a@example.com", "b@example.com", "c@example.com", "d@example.com", "'=2+3+0*len(\"@example.com\")"],
        "a cell that would be a formula is neutralised"
    );
    let (status, _) = owner.call(Method::GET, &format!("/brands/{}/exports/secrets", owner.brand), Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, dashboard) = owner.call(Method::GET, &format!("/brands/{}/dashboard", owner.brand), Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{dashboard}");
    assert_eq!(
        dashboard["revenue"],
        json!([
            { "currency": "EUR", "method": "card", "orders": 1, "amount_minor": 2_000 },
            { "currency": "EUR", "method": "eth", "orders": 1, "amount_minor": 1_800 },
            { "currency": "USD", "method": "card", "orders": 1, "amount_minor": 2_500 },
        ])
    );
    assert_eq!(
        dashboard["orders"],
        json!([{ "state": "fulfilled", "count": 3 }, { "state": "pending", "count": 1 }, { "state": "refunded", "count": 1 }])
    );
    assert_eq!(dashboard["items"][0]["sold"], 6, "three fulfilled orders of two");
    assert_eq!(dashboard["items"][0]["refunded"], 2, "refunded tokens stay with their buyer, apart from sales");
    assert_eq!(dashboard["items"][0]["supply"], 100);
    let today = dashboard["daily"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((today["orders"].as_i64(), today["fulfilled"].as_i64()), (Some(5), Some(3)));
}
