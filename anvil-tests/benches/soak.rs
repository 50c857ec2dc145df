//! `cargo xtask bench soak`: mixed journeys for ten minutes (`SOAK_MINUTES`) at half the measured
//! capacity, on the platform as separate processes (`testkit::cluster`): card orders paid at the
//! Stripe emulator, and printed codes claimed (a fifth as many). First the capacity: orders/s
//! with 16 in flight for 20 s, counted end to end: the burst's orders over the time until the last
//! is fulfilled (minted). Then every minute: orders and claims done, p50/p99 of placing an
//! order, and every process's resident memory; at the end, each process's memory at the start and
//! the end. Nothing is asserted about speed; the figures are printed.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)] // a benchmark: fails loudly, prints rates

// The cluster set-up and the journeys are the chaos tests' own.
#[path = "../tests/e2e/chaos.rs"]
#[allow(dead_code)]
mod chaos;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::json;

#[tokio::main]
async fn main() {
    let minutes: u64 = std::env::var("SOAK_MINUTES").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let world = Arc::new(chaos::set_up(1).await);
    let (base, item, reward) = chaos::open_campaign(&world, "soak", 1_000_000).await;
    let batch = json!({ "reward_id": reward, "label": "Soak", "size": 20_000, "typed_addresses": true });
    let (_, batch) = world.call("backoffice", Method::POST, &format!("{base}/qr-batches"), Some(batch), false).await;
    let batch = batch["id"].as_i64().unwrap();
    world.wait_for("backoffice", &format!("{base}/qr-batches/{batch}"), |b| b["state"] == "ready").await;
    let nonces: Vec<Vec<u8>> = sqlx::query_scalar("SELECT nonce FROM qr_codes WHERE batch_id = $1 ORDER BY seq")
        .bind(batch)
        .fetch_all(&world.db)
        .await
        .unwrap();
    let key = testkit::config(&world.db_url, "http://127.0.0.1:1", &[]).qr_code_key;
    let codes: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(nonces.iter().map(|n| key.brand_code(n.as_slice().try_into().unwrap())).collect()));

    // Capacity: orders placed and paid per second with 16 in flight, for 20 s.
    // Placing and paying is only the start of an order: its webhook, then its mint through the
    // transaction queue, come after. The capacity is the burst's orders over the time until
    // the last is fulfilled (an open-loop load above it only grows a backlog, and memory).
    let fulfilled = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM orders WHERE state = 'fulfilled'")
            .fetch_one(&world.db)
            .await
            .unwrap()
    };
    let (before, started) = (fulfilled().await, Instant::now());
    let placed = chaos::capacity(&world, item, 16, Duration::from_secs(20)).await;
    let drained = Instant::now();
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM orders WHERE state NOT IN ('fulfilled', 'expired', 'failed', 'refunded')",
    )
    .fetch_one(&world.db)
    .await
    .unwrap()
        > 0
        && drained.elapsed() < Duration::from_secs(600)
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let capacity = (fulfilled().await - before) as f64 / started.elapsed().as_secs_f64();
    let rate = capacity / 2.0;
    println!(
        "capacity: {placed:.1} orders/s placed and paid for 20 s (16 in flight), all fulfilled {:.0} s later: \
         {capacity:.1} orders/s end to end; soaking at {rate:.1}/s for {minutes} min",
        drained.elapsed().as_secs_f64()
    );

    let memory = |world: &chaos::World| -> Vec<(String, u64)> {
        world
            .cluster
            .as_ref()
            .map(|c| {
                c.processes.iter().map(|p| (format!("{}-{}", p.service, p.replica), p.rss_kb().unwrap_or(0))).collect()
            })
            .unwrap_or_default()
    };
    let at_start = memory(&world);
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let claims = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let soak_started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut n = 0u64;
    let mut minute = 1;
    println!(
        "{:>6} {:>8} {:>7} {:>9} {:>9}  memory (MB) per process",
        "minute", "orders", "claims", "p50 ms", "p99 ms"
    );
    while soak_started.elapsed() < Duration::from_secs(minutes * 60) {
        tick.tick().await;
        n += 1;
        let (journey_world, journey_latencies, journey_claims, codes) =
            (world.clone(), latencies.clone(), claims.clone(), codes.clone());
        tokio::spawn(async move {
            let (world, latencies, claims) = (journey_world, journey_latencies, journey_claims);
            let placed = Instant::now();
            let (status, _) = chaos::buy(&world, item, wallet(n as usize), format!("soak-{n}")).await;
            if status.is_success() {
                latencies.lock().unwrap().push(placed.elapsed());
            }
            if n.is_multiple_of(5) {
                let code = codes.lock().unwrap().pop();
                if let Some(code) = code {
                    let claim = Some(json!({ "address": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955" }));
                    let path = format!("/r/{code}/claims");
                    let (status, _) =
                        world.call_with("redemption", Method::POST, &path, claim, false, chaos::Caller::Anyone).await;
                    if status.is_success() {
                        claims.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        });
        if soak_started.elapsed() >= Duration::from_secs(minute * 60) {
            let mut done = std::mem::take(&mut *latencies.lock().unwrap());
            done.sort();
            let pick = |q: f64| done.get(((done.len() as f64 * q) as usize).min(done.len().saturating_sub(1)));
            let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let rss: Vec<String> = memory(&world).iter().map(|(name, kb)| format!("{name} {}", kb / 1024)).collect();
            println!(
                "{minute:>6} {:>8} {:>7} {:>9.1} {:>9.1}  {}",
                done.len(),
                claims.swap(0, std::sync::atomic::Ordering::Relaxed),
                ms(pick(0.5)),
                ms(pick(0.99)),
                rss.join(", ")
            );
            minute += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("\nresident memory, start → end (MB):");
    for ((name, start), (_, end)) in at_start.iter().zip(memory(&world)) {
        println!("  {name:<14} {:>6} → {:>6}", start / 1024, end / 1024);
    }
}

/// One of anvil's accounts 3–8 as a buyer's wallet.
fn wallet(n: usize) -> String {
    let keys = [
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
        "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    ];
    keys[n % keys.len()].to_owned()
}
