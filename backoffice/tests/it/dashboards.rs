//! The dashboard and the royalty report as pages: a browser (asking for `text/html`) gets the
//! period's figures with charts drawn on the server, on the same URL whose JSON keeps its fields
//! and gains the daily revenue and the royalties' marketplace.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::campaigns::Owner;

/// A campaign with one item, its orders on 2 March 2025 and its royalty ledger that day.
async fn seeded(owner: &Owner) -> i64 {
    let db = owner.app.resources.db();
    let (campaign, item): (i64, i64) = sqlx::query_as(
        "WITH c AS (INSERT INTO campaigns (brand_id, name, slug, symbol, royalty_bps)
                    VALUES ($1, 'Spring <drop>', 'spring', 'SPR', 500) RETURNING id)
         INSERT INTO campaign_items (brand_id, campaign_id, name, price_minor, currency, supply, payment_methods)
         SELECT $1, id, 'Pass', 1000, 'EUR', 100, '{card}' FROM c RETURNING campaign_id, id",
    )
    .bind(owner.brand)
    .fetch_one(db)
    .await
    .unwrap();
    let orders = [
        ("fulfilled", "card", "EUR", 2_000, "2025-03-02T09:00:00Z"),
        ("fulfilled", "eth", "EUR", 1_800, "2025-03-02T23:59:59Z"),
        ("pending", "card", "EUR", 2_000, "2025-03-02T10:00:00Z"),
        ("fulfilled", "card", "USD", 2_500, "2025-03-03T00:00:00Z"),
        // Outside the period.
        ("fulfilled", "card", "EUR", 9_900, "2025-03-04T00:00:00Z"),
    ];
    for (state, method, currency, total, at) in orders {
        sqlx::query(
            "INSERT INTO orders (state, brand_id, campaign_id, item_id, quantity, method, currency, subtotal_minor,
                 total_minor, buyer_email, wallet_address, created_at)
             VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $7, 'a@example.com',
                     '\\xf39fd6e51aad88f6f4ce6ab8827279cfffb92266', $8::timestamptz)",
        )
        .bind(state)
        .bind(owner.brand)
        .bind(campaign)
        .bind(item)
        .bind(method)
        .bind(currency)
        .bind(total)
        .bind(at)
        .execute(db)
        .await
        .unwrap();
    }
    let eth = "\\x0000000000000000000000000000000000000000";
    let token = "\\x00000000000000000000000000000000000000aa";
    let ledger = [
        ("opensea", eth, "1000000000000000000", "50000000000000000", "40000000000000000"),
        ("seaport", eth, "500000000000000000", "25000000000000000", "25000000000000000"),
        ("seaport", token, "1500000000", "75000000", "75000000"),
    ];
    for (marketplace, payment_token, volume, expected, received) in ledger {
        sqlx::query(
            "INSERT INTO royalty_ledger (brand_id, campaign_id, marketplace, payment_token, day, sales, paid_in_full,
                 volume, marketplace_fee, expected, received, shortfall)
             VALUES ($1, $2, $3, $4::bytea, '2025-03-02', 2, 1, $5::numeric, 0, $6::numeric, $7::numeric,
                     $6::numeric - $7::numeric)",
        )
        .bind(owner.brand)
        .bind(campaign)
        .bind(marketplace)
        .bind(payment_token)
        .bind(volume)
        .bind(expected)
        .bind(received)
        .execute(db)
        .await
        .unwrap();
    }
    campaign
}

impl Owner {
    /// `path` as a browser asks for it: status, media type and page.
    async fn page(&self, path: &str) -> (StatusCode, String, String) {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .bearer_auth(&self.token)
            .header(header::ACCEPT, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let media = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let media = media.to_owned();
        (status, media, response.text().await.unwrap())
    }
}

#[tokio::test]
async fn the_dashboard_is_a_page_with_charts_for_a_browser_and_json_otherwise() {
    let owner = Owner::new().await;
    let campaign = seeded(&owner).await;
    let path = format!("/brands/{}/dashboard?from=2025-03-01&to=2025-03-04&campaign_id={campaign}", owner.brand);

    let (status, media, page) = owner.page(&path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(media.starts_with("text/html"), "{media}");
    assert!(page.contains("<title>Dashboard: Spring &lt;drop&gt; · Brandmint</title>"), "the campaign's name, escaped");
    assert_eq!(page.matches("<h1").count(), 1, "one h1");
    assert!(!page.contains("style="), "the CSP allows no inline style");
    // The period's form, as sent back.
    assert!(page.contains(r#"<form method="get" action="/brands/"#), "{page}");
    assert!(page.contains(r#"name="from" value="2025-03-01""#), "{page}");
    assert!(page.contains(r#"name="to" value="2025-03-04""#), "{page}");
    assert!(page.contains(&format!(r#"<option value="{campaign}" selected>Spring &lt;drop&gt;</option>"#)), "{page}");
    // Totals, formatted from minor units.
    for shown in ["38.00 EUR", "25.00 USD", "20.00 EUR", "18.00 EUR"] {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(!page.contains("99.00 EUR"), "an order after the period is left out");
    // Charts, each an image with a title, and their figures as tables.
    assert!(page.contains(r#"<svg viewBox="0 0 640 260" role="img" aria-labelledby="sales-chart-title"#), "{page}");
    assert!(page.contains(r#"<title id="sales-chart-title">"#), "{page}");
    assert!(page.contains("Daily revenue in EUR"), "the currency with the largest total");
    assert!(page.contains(r#"<th scope="row">2025-03-02</th><td class="num">3</td><td class="num">2</td>"#), "{page}");
    assert!(!page.contains(r#"<th scope="row">2025-03-04</th>"#), "the day `to` falls on is not in the period");
    // Royalties per marketplace, in ETH from wei, and in an unknown token's base units.
    assert!(page.contains(r#"<th scope="row">opensea</th><td class="num">0.05 ETH</td><td class="num">0.04 ETH</td>"#));
    assert!(page.contains("75000000 base units"), "{page}");
    assert!(page.contains("No redemptions in this period."), "no empty axes");
    assert!(page.contains(&format!(r#"href="/brands/{}/royalties""#, owner.brand)), "the brand's navigation");

    let (status, dashboard) = owner.call(Method::GET, &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{dashboard}");
    let daily = dashboard["daily"].as_array().unwrap();
    assert_eq!(daily[1]["date"], "2025-03-02");
    assert_eq!(daily[1]["revenue"], json!([{ "currency": "EUR", "amount_minor": 3_800 }]));
    assert_eq!((daily[1]["orders"].as_i64(), daily[1]["fulfilled"].as_i64()), (Some(3), Some(2)));
    assert_eq!(daily[2]["revenue"], json!([{ "currency": "USD", "amount_minor": 2_500 }]));
    assert_eq!(daily[0]["revenue"], json!([]));
    let token = alloy::primitives::Address::with_last_byte(0xaa).to_checksum(None);
    let royalties: Vec<(&str, &str, &str, &str)> = dashboard["royalties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap();
            (text("marketplace"), text("payment_token"), text("expected"), text("received"))
        })
        .collect();
    assert_eq!(
        royalties,
        [
            ("opensea", "ETH", "50000000000000000", "40000000000000000"),
            ("seaport", "ETH", "25000000000000000", "25000000000000000"),
            ("seaport", token.as_str(), "75000000", "75000000"),
        ],
        "{dashboard}"
    );
}

#[tokio::test]
async fn a_refused_period_is_the_page_again_saying_why() {
    let owner = Owner::new().await;
    let (status, media, page) =
        owner.page(&format!("/brands/{}/dashboard?from=2025-03-04&to=2025-03-01&campaign_id=", owner.brand)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(media.starts_with("text/html"), "{media}");
    assert!(page.contains("must be before to"), "{page}");
    assert!(page.contains(r#"name="from""#), "the form, to try again");
    // The same query as JSON: the problem document, and a blank campaign is every campaign.
    let (status, _) = owner
        .call(Method::GET, &format!("/brands/{}/dashboard?from=2025-03-04&to=2025-03-01", owner.brand), Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, dashboard) = owner
        .call(Method::GET, &format!("/brands/{}/dashboard?from=&to=&campaign_id=", owner.brand), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{dashboard}");
}

#[tokio::test]
async fn the_royalty_report_is_a_page_with_its_table_and_the_exports() {
    let owner = Owner::new().await;
    let campaign = seeded(&owner).await;
    let path = format!("/brands/{}/royalties?from=2025-03-01&to=2025-03-04&campaign_id={campaign}", owner.brand);
    let (status, media, page) = owner.page(&path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(media.starts_with("text/html"), "{media}");
    assert_eq!(page.matches("<h1").count(), 1, "one h1");
    assert!(page.contains(r#"<th scope="row">seaport</th>"#), "{page}");
    assert!(page.contains("0.01 ETH"), "opensea's shortfall: {page}");
    assert!(page.contains("80.00 %"), "received of expected on opensea: {page}");
    for kind in ["orders", "sales", "redemptions"] {
        for format in ["csv", "xlsx"] {
            let link = format!("/brands/{}/exports/{kind}?format={format}&amp;campaign_id={campaign}", owner.brand);
            assert!(page.contains(&link), "{link} in {page}");
        }
    }
    assert!(!page.contains("Holders' share"), "no holders' share without a royalty-share reward: {page}");
    // The JSON is unchanged.
    let (status, report) = owner.call(Method::GET, &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["rows"][0]["marketplace"], "opensea");
    assert_eq!(report["rows"][0]["shortfall"], "10000000000000000");
    assert_eq!(report["holders_shares"], serde_json::json!([]));
}

#[tokio::test]
async fn the_royalty_report_shows_the_holders_share_paid_waiting_and_reversed() {
    let owner = Owner::new().await;
    let campaign = seeded(&owner).await;
    let db = owner.app.resources.db();
    // Half of every royalty to holders: two sales' shares in the period (one paid in a batch,
    // one waiting), one reversed by a reorg; a share accrued after the period.
    let reward: i64 = sqlx::query_scalar(
        "INSERT INTO campaign_rewards (brand_id, campaign_id, kind, name, share_bps)
         VALUES ($1, $2, 'royalty_share', 'Holders', 5000) RETURNING id",
    )
    .bind(owner.brand)
    .bind(campaign)
    .fetch_one(db)
    .await
    .unwrap();
    let batch: i64 = sqlx::query_scalar(
        "INSERT INTO royalty_batches (brand_id, campaign_id, payment_token, total, recipients, state)
         VALUES ($1, $2, '\\x0000000000000000000000000000000000000000', 300, 2, 'paid') RETURNING id",
    )
    .bind(owner.brand)
    .bind(campaign)
    .fetch_one(db)
    .await
    .unwrap();
    let accruals = [
        (1, "\\x00000000000000000000000000000000000000a1", 200, "paid", Some(batch), "2025-03-02T10:00:00Z"),
        (1, "\\x00000000000000000000000000000000000000a2", 100, "paid", Some(batch), "2025-03-02T10:00:00Z"),
        (2, "\\x00000000000000000000000000000000000000a1", 40, "accrued", None, "2025-03-03T23:00:00Z"),
        (3, "\\x00000000000000000000000000000000000000a1", 7, "reversed", None, "2025-03-03T01:00:00Z"),
        (4, "\\x00000000000000000000000000000000000000a1", 1_000, "accrued", None, "2025-03-04T00:00:00Z"),
    ];
    for (sale, holder, amount, state, batch, at) in accruals {
        sqlx::query(
            "INSERT INTO royalty_accruals (brand_id, campaign_id, reward_id, sale_id, sale_block, holder,
                 payment_token, amount, state, batch_id, created_at)
             VALUES ($1, $2, $3, $4, 10, $5::bytea, '\\x0000000000000000000000000000000000000000', $6, $7, $8,
                     $9::timestamptz)",
        )
        .bind(owner.brand)
        .bind(campaign)
        .bind(reward)
        .bind(sale)
        .bind(holder)
        .bind(amount)
        .bind(state)
        .bind(batch)
        .bind(at)
        .execute(db)
        .await
        .unwrap();
    }
    let path = format!("/brands/{}/royalties?from=2025-03-01&to=2025-03-04", owner.brand);
    let (status, report) = owner.call(Method::GET, &path, Value::Null).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["holders_shares"],
        serde_json::json!([{ "campaign_id": campaign, "currency": "ETH", "sales": 3, "holders": 2, "paid": "300",
                             "pending": "40", "reversed": "7", "batches_paid": 1, "last_tx_hash": null }]),
        "the share accrued on 4 March is outside the period"
    );
    let (status, _, page) = owner.page(&path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Holders&#39; share") || page.contains("Holders' share"), "{page}");
    assert!(page.contains(r#"<th scope="row">Spring &lt;drop&gt;</th>"#), "the campaign named, escaped: {page}");
}
