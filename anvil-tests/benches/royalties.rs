//! `cargo xtask bench royalties`: the royalty report over 10,000,000 secondary sales.
//!
//! A fresh database gets 20 brands × 5 campaigns and 10,000,000 sales spread over two years, three
//! marketplaces and two currencies (generated in the server by `INSERT … SELECT generate_series`
//! in batches of 1,000,000: the same rows as CSV through `COPY` would be ~5 GB on the socket), and
//! the royalty ledger built from them in one `GROUP BY` — exactly what crediting each sale as it
//! is recorded adds up to. Then, through the back office's HTTP API as an admin:
//!
//! - the report of one campaign over the two years (`/brands/{id}/royalties?campaign_id=…`),
//! - the platform-wide report (`/royalties`),
//!
//! each 20 times (p50 and max), next to the same totals summed from the sales table itself; and the
//! cost of recording a sale (`indexer::sales::record`: the row, the ledger credit, the outbox
//! event, one transaction each), in sales/s.
//!
//! Targets: < 100 ms for a campaign, < 1 s platform-wide. Needs `DATABASE_URL` and `RPC_URL`.

#![allow(clippy::print_stdout, clippy::float_arithmetic)] // a benchmark reports rates on stdout

use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use anyhow::{Context, Result};
use indexer::sales::{
    Campaign, Recorded,
    derive::{Sale, Side},
};
use testkit::{TestApp, TestDb, required_env};

const SALES: i64 = 10_000_000;
const BATCH: i64 = 1_000_000;
const BRANDS: i64 = 20;
const CAMPAIGNS_PER_BRAND: i64 = 5;
const DAYS: i64 = 730;
const RUNS: usize = 20;
const RECORDED: u64 = 5_000;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1_000.0
}

#[tokio::main]
async fn main() -> Result<()> {
    shared::chain::install_crypto_provider();
    let db = TestDb::create().await;
    let config = testkit::config(&db.url, &required_env("RPC_URL"), &[("DATABASE_MAX_CONNECTIONS", "8")]);
    let app = TestApp::spawn_with(backoffice::SERVICE, config).await;
    let pool = app.resources.db().clone();
    let campaigns = CAMPAIGNS_PER_BRAND * BRANDS;

    // Brands and deployed campaigns (collection i is 0x…i).
    sqlx::query("INSERT INTO brands (name) SELECT 'Brand ' || n FROM generate_series(1, $1) n")
        .bind(BRANDS)
        .execute(&pool)
        .await?;
    sqlx::query(
        "INSERT INTO campaigns (brand_id, state, name, slug, symbol, royalty_bps, royalty_receiver, chain_id,
                                collection_address)
         SELECT b.id, 'live', 'Campaign ' || n, 'campaign-' || n, 'C' || n, 500, decode(repeat('55', 20), 'hex'),
                31337, decode(lpad(to_hex(n), 40, '0'), 'hex')
         FROM generate_series(1, $1) n JOIN brands b ON b.id = 1 + (n - 1) / $2",
    )
    .bind(campaigns)
    .bind(CAMPAIGNS_PER_BRAND)
    .execute(&pool)
    .await?;

    println!("royalties: {SALES} sales, {campaigns} campaigns of {BRANDS} brands, {DAYS} days");
    let started = Instant::now();
    let mut from = 0;
    while from < SALES {
        // Sale n: campaign n % C, a day spread over the period, 3 marketplaces, ETH or the
        // stablecoin, a price of 0.01–1 unit; every seventh pays no royalty, the others the 5 %.
        sqlx::query(
            r"INSERT INTO secondary_sales (chain_id, brand_id, campaign_id, collection, token_id, quantity, block_number,
                  block_hash, tx_hash, log_index, order_hash, side, marketplace, seller, buyer, payment_token, price,
                  marketplace_fee, seller_proceeds, royalty_receiver, royalty_expected, royalty_received,
                  royalty_bps_paid, sold_at)
              SELECT 31337, c.brand_id, c.id, c.collection_address, n / $3, 1, n,
                     decode(lpad(to_hex(n), 64, '0'), 'hex'), decode(lpad(to_hex(n), 64, '1'), 'hex'), 0,
                     decode(lpad(to_hex(n), 64, '2'), 'hex'), 'listing',
                     (ARRAY['opensea', 'seaport', 'blur'])[1 + n % 3],
                     decode(repeat('51', 20), 'hex'), decode(repeat('b0', 20), 'hex'),
                     CASE WHEN n % 2 = 0 THEN NULL ELSE decode(repeat('05', 20), 'hex') END,
                     p.price, p.price / 40, p.price - p.price / 40 - p.received,
                     decode(repeat('55', 20), 'hex'), p.price / 20, p.received,
                     (p.received * 10000 / p.price)::int,
                     timestamptz '2025-01-01' + make_interval(secs => (n::double precision / $4) * $5 * 86400)
              FROM generate_series($1::bigint, $2::bigint) n
              JOIN campaigns c ON c.id = 1 + n % $3
              CROSS JOIN LATERAL (SELECT (10000000000000000 + (n % 99) * 10000000000000000)::numeric AS price) q
              CROSS JOIN LATERAL (SELECT q.price, CASE WHEN n % 7 = 0 THEN 0 ELSE q.price / 20 END AS received) p",
        )
        .bind(from)
        .bind((from + BATCH - 1).min(SALES - 1))
        .bind(campaigns)
        .bind(SALES as f64)
        .bind(DAYS as f64)
        .execute(&pool)
        .await
        .context("generating sales")?;
        from += BATCH;
    }
    let generated = started.elapsed();
    let started = Instant::now();
    sqlx::query(
        r"INSERT INTO royalty_ledger (brand_id, campaign_id, marketplace, payment_token, day, sales, paid_in_full, volume,
                                     marketplace_fee, expected, received, shortfall)
          SELECT brand_id, campaign_id, marketplace, COALESCE(payment_token, '\x0000000000000000000000000000000000000000'),
                 (sold_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER (WHERE royalty_received >= royalty_expected),
                 sum(price), sum(marketplace_fee), sum(royalty_expected), sum(royalty_received), sum(royalty_shortfall)
          FROM secondary_sales GROUP BY 1, 2, 3, 4, 5",
    )
    .execute(&pool)
    .await?;
    sqlx::query("ANALYZE").execute(&pool).await?;
    let ledger_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM royalty_ledger").fetch_one(&pool).await?;
    println!(
        "generated in {:.1} s; ledger of {ledger_rows} rows built in {:.1} s",
        generated.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // Through the API, as an admin (finance-read on every brand, finance-read-all).
    let (_, token) = app.account("admin@bench.example", Some(shared::auth::PlatformRole::Admin)).await;
    let api = app.api(&token);
    let window = "from=2025-01-01&to=2027-01-02";
    let mut reports = Vec::new();
    for (name, path) in [
        ("one campaign (API)", format!("/brands/1/royalties?campaign_id=1&{window}")),
        ("platform-wide (API)", format!("/royalties?{window}")),
    ] {
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..RUNS {
            let sent = Instant::now();
            let report: serde_json::Value = api.get(&path).await.map_err(|e| anyhow::anyhow!("{path}: {e:?}"))?;
            times.push(sent.elapsed());
            rows = report["rows"].as_array().map_or(0, Vec::len);
        }
        times.sort();
        reports.push((name, rows, percentile(&times, 0.5), percentile(&times, 1.0)));
    }
    // The same totals summed from the sales themselves: what the ledger saves.
    for (name, filter) in [("one campaign (sales table)", "WHERE campaign_id = 1"), ("platform-wide (sales table)", "")]
    {
        let sql = format!(
            "SELECT marketplace, payment_token, count(*), sum(price), sum(royalty_expected), sum(royalty_received)
             FROM secondary_sales {filter} GROUP BY 1, 2"
        );
        let mut times = Vec::new();
        let mut rows = 0;
        for _ in 0..3 {
            let sent = Instant::now();
            rows = sqlx::query(&sql).fetch_all(&pool).await?.len();
            times.push(sent.elapsed());
        }
        times.sort();
        reports.push((name, rows, percentile(&times, 0.5), percentile(&times, 1.0)));
    }

    // Recording sales one transaction each, as the decoder does.
    let campaign = Campaign {
        id: 1,
        brand_id: 1,
        royalty_bps: shared::money::Bps::new(500).expect("5 %"),
        royalty_receiver: Address::repeat_byte(0x55),
    };
    let started = Instant::now();
    for n in 0..RECORDED {
        let price = U256::from(1_000_000_000_000_000_000u128);
        let sale = Sale {
            log_index: 0,
            order_hash: B256::repeat_byte(3),
            zone: Address::ZERO,
            side: Side::Listing,
            collection: Address::from_word(B256::left_padding_from(&1u64.to_be_bytes())),
            token_id: U256::from(n),
            quantity: U256::from(1),
            seller: Address::repeat_byte(0x51),
            buyer: Address::repeat_byte(0xb0),
            currency: Address::ZERO,
            price,
            payments: vec![],
        };
        let recorded = Recorded {
            sale,
            campaign: campaign.clone(),
            marketplace: "opensea".into(),
            receiver: Address::repeat_byte(0x55),
            expected: price / U256::from(20),
            received: price / U256::from(20),
            fee: price / U256::from(40),
            proceeds: price - price / U256::from(20) - price / U256::from(40),
        };
        let mut tx = pool.begin().await?;
        let block = 100_000_000 + n;
        let hash = B256::from(U256::from(block));
        indexer::sales::record(&mut tx, 31337, block, hash, hash, 1_767_225_600, &recorded).await?;
        tx.commit().await?;
    }
    let per_second = RECORDED as f64 / started.elapsed().as_secs_f64();

    println!();
    println!("{:<32} {:>6} {:>10} {:>10}", "report (2 years)", "rows", "p50", "max");
    for (name, rows, p50, max) in &reports {
        println!("{name:<32} {rows:>6} {p50:>8.1}ms {max:>8.1}ms");
    }
    println!("recording a sale (row + ledger credit + outbox, one transaction each): {per_second:.0} sales/s");
    println!("targets: < 100 ms for a campaign, < 1 s platform-wide (API rows, end to end over loopback)");
    app.stop().await.context("stopping the back office")?;
    Ok(())
}
