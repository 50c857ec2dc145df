//! `cargo xtask bench checkout`: card orders created over loopback HTTP against one hot item
//! (every order reserves units of the same row), next to pgbench's TPS for the bare
//! single-row reservation on the same server in the same run.
//!
//! Each order is complete as a buyer gets it: reserved, counted, and with its manual-capture
//! PaymentIntent created at the (local) Stripe emulator.
//!
//! Prints orders/s and p50/p99 latency of `POST /orders`, then checks there was no oversell:
//! a second round offers fewer units than buyers and counts the orders.
//!
//! Needs `DATABASE_URL` (a server where it may create a database) and `RPC_URL`; `pgbench` on
//! `PATH` for the baseline. `CHECKOUT_BENCH_SECS` (default 10) is each round's length;
//! `CHECKOUT_BENCH_CLIENTS` (default `8,16,32`) the concurrent buyers of each round: at full load a
//! closed loop's latency is its concurrency over its throughput (Little's law), so both are
//! printed; `CHECKOUT_BENCH_DB_CONNECTIONS` (default 16) the service's pool.

#![allow(clippy::print_stdout, clippy::float_arithmetic)] // a benchmark reports figures on stdout

use std::{
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde_json::json;
use testkit::{self as testing, TestApp, TestDb, required_env};
use tokio::sync::Mutex;

fn env_or(name: &str, default: u64) -> Result<u64> {
    std::env::var(name).map_or(Ok(default), |v| v.parse().with_context(|| name.to_owned()))
}

/// A live campaign with one item of `supply` units; returns the item id.
async fn hot_item(app: &TestApp, supply: i32) -> Result<i64> {
    let brand = app.brand("Bench").await;
    Ok(sqlx::query_scalar(
        "WITH c AS (INSERT INTO campaigns (brand_id, state, name, slug, symbol, royalty_bps)
                    VALUES ($1, 'live', 'Hot', 'hot-' || gen_random_uuid(), 'HOT', 0) RETURNING id)
         INSERT INTO campaign_items (brand_id, campaign_id, name, price_minor, currency, supply, payment_methods)
         SELECT $1, id, 'Hot item', 1000, 'EUR', $2, '{card}' FROM c RETURNING id",
    )
    .bind(brand)
    .bind(supply)
    .fetch_one(app.resources.db())
    .await?)
}

fn wallet(n: u64) -> String {
    let mut bytes = [0x22u8; 20];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    alloy::primitives::Address::from(bytes).to_checksum(None)
}

/// `clients` loops posting orders for `duration` (or until `limit` attempts); returns the
/// latencies of created orders and the count of sold-out answers.
async fn load(
    app: &TestApp,
    item: i64,
    clients: u64,
    duration: Duration,
    limit: u64,
) -> (Vec<Duration>, u64, Duration) {
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let sold_out = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url) = (app.client.clone(), app.url("/orders"));
            let (latencies, sold_out, next) = (latencies.clone(), sold_out.clone(), next.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while started.elapsed() < duration {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= limit {
                        break;
                    }
                    let body = json!({ "item_id": item, "quantity": 1, "email": format!("b{n}@bench.example"),
                                       "wallet_address": wallet(n), "method": "card" });
                    let sent = Instant::now();
                    let status = client.post(&url).json(&body).send().await.map(|r| r.status());
                    match status {
                        Ok(s) if s.as_u16() == 201 => mine.push(sent.elapsed()),
                        Ok(s) if s.as_u16() == 409 => drop(sold_out.fetch_add(1, std::sync::atomic::Ordering::Relaxed)),
                        other => eprintln!("unexpected answer: {other:?}"),
                    }
                }
                latencies.lock().await.extend(mine);
            })
        })
        .collect();
    for worker in workers {
        drop(worker.await);
    }
    let elapsed = started.elapsed();
    let latencies = std::mem::take(&mut *latencies.lock().await);
    (latencies, sold_out.load(std::sync::atomic::Ordering::Relaxed), elapsed)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// pgbench's TPS for the reservation alone (one conditional UPDATE of the hot row per
/// transaction) with `clients` connections for `secs` seconds.
fn pgbench(url: &str, item: i64, clients: u64, secs: u64) -> Result<String> {
    let script = std::env::temp_dir().join(format!("brandmint-reserve-{}.sql", uuid::Uuid::new_v4()));
    std::fs::write(
        &script,
        format!("UPDATE campaign_items SET reserved = reserved + 1 WHERE id = {item} AND reserved + 1 <= supply;\n"),
    )?;
    let output = Command::new("pgbench")
        .args(["-n", "-f"])
        .arg(&script)
        .args(["-c", &clients.to_string(), "-j", "2", "-T", &secs.to_string(), url])
        .output()
        .context("pgbench (from the PostgreSQL client tools) is not on PATH")?;
    drop(std::fs::remove_file(&script));
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = text.lines().find(|l| l.starts_with("tps")).map(str::to_owned);
    tps.with_context(|| format!("pgbench said: {}", String::from_utf8_lossy(&output.stderr)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let secs = env_or("CHECKOUT_BENCH_SECS", 10)?;
    let rounds: Vec<u64> = std::env::var("CHECKOUT_BENCH_CLIENTS")
        .unwrap_or_else(|_| "8,16,32".into())
        .split(',')
        .map(|n| n.trim().parse().context("CHECKOUT_BENCH_CLIENTS: comma-separated client counts"))
        .collect::<Result<_>>()?;
    let pool = env_or("CHECKOUT_BENCH_DB_CONNECTIONS", 16)?.to_string();
    let db = TestDb::create().await;
    // Card orders create their PaymentIntent at the local Stripe emulator, over loopback too.
    let stripe = fakes::stripe::StripeEmulator::start("sk_test_bench").await?;
    let config = testing::config(
        &db.url,
        &required_env("RPC_URL"),
        &[
            ("DATABASE_MAX_CONNECTIONS", &pool),
            ("RATE_LIMIT_IP_PER_MINUTE", "0"),
            ("RUST_LOG", "error"),
            ("STRIPE_SECRET_KEY", "sk_test_bench"),
            ("STRIPE_API_BASE", stripe.base_url()),
        ],
    );
    let app = TestApp::spawn_with(payment::SERVICE, config).await;
    println!("checkout: card orders of one hot item over loopback, {secs} s per round, a pool of {pool} connections");
    println!("| clients | orders | orders/s | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for &clients in &rounds {
        let item = hot_item(&app, 10_000_000).await?;
        let (mut latencies, _, elapsed) = load(&app, item, clients, Duration::from_secs(secs), u64::MAX).await;
        latencies.sort();
        let orders = latencies.len();
        println!(
            "| {clients} | {orders} | {:.0} | {:.1} ms | {:.1} ms |",
            orders as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        );
    }

    // No oversell: 2,000 buyers for 500 units.
    let scarce = hot_item(&app, 500).await?;
    let clients = rounds.iter().copied().max().unwrap_or(32);
    let (created, sold_out, _) = load(&app, scarce, clients, Duration::from_secs(600), 2_000).await;
    let (reserved, rows): (i32, i64) = sqlx::query_as(
        "SELECT i.reserved, (SELECT count(*) FROM orders o WHERE o.item_id = i.id) FROM campaign_items i WHERE i.id = $1",
    )
    .bind(scarce)
    .fetch_one(app.resources.db())
    .await?;
    println!(
        "oversell check: 2000 attempts for 500 units → {} orders, {sold_out} sold out, reserved {reserved}, rows {rows}: {}",
        created.len(),
        if created.len() == 500 && reserved == 500 && rows == 500 { "0 oversold" } else { "MISMATCH" }
    );

    let baseline = hot_item(&app, i32::MAX).await?;
    match pgbench(&db.url, baseline, 16, secs) {
        Ok(tps) => println!("pgbench, the bare reservation UPDATE on one row (16 clients): {tps}"),
        Err(e) => println!("pgbench baseline not run: {e:#}"),
    }
    app.stop().await?;
    Ok(())
}
