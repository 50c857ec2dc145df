//! `cargo xtask bench qr`: printed QR codes.
//!
//! - PNG codes drawn per second on one core (`shared::qr::png` of a real code URL, what every
//!   printable file holds), and SVGs for comparison;
//! - a 10,000-code batch through the back office's API: generated (the request's first step and
//!   the daemon's), then its printable ZIP (manifest and 10,000 PNGs) downloaded end to end;
//! - claims per second through the redemption service's API, each of a distinct code to a
//!   typed address, 16 in flight, each taking its use, signing its voucher and queueing its
//!   `RewardVault.redeem` payout (no sender runs: the payouts stay queued).
//!
//! Targets: ≥ 2,000 PNG/s per core; the 10,000-code batch in < 10 s. Needs `DATABASE_URL` and
//! `RPC_URL`.

#![allow(clippy::print_stdout, clippy::float_arithmetic)] // a benchmark reports rates on stdout

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::auth::BrandRole;
use testkit::{TestApp, TestDb, required_env};
use tokio_util::sync::CancellationToken;

const DRAWN: u32 = 5_000;
const BATCH: i64 = 10_000;
const CLAIMS: usize = 2_000;
const IN_FLIGHT: usize = 16;

#[tokio::main]
async fn main() -> Result<()> {
    shared::chain::install_crypto_provider();
    let key = shared::qr::CodeKey::new([7; 32]);
    let url = format!("https://nft.brandmint.example/r/{}", key.new_brand_code().1);

    // One core: PNGs, then SVGs.
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..DRAWN {
        bytes += shared::qr::png(&url)?.len();
    }
    let png_rate = f64::from(DRAWN) / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..DRAWN {
        shared::qr::svg(&url)?;
    }
    let svg_rate = f64::from(DRAWN) / started.elapsed().as_secs_f64();
    println!("qr: one core, a {}-character URL", url.len());
    println!("  PNG  {png_rate:>8.0} codes/s per core  ({} bytes each)   target ≥ 2,000", bytes / DRAWN as usize);
    println!("  SVG  {svg_rate:>8.0} codes/s per core");

    // The platform: a live campaign with a token reward (vault and voucher signer configured;
    // the queue's sender does not run, so payouts stay queued).
    let db = TestDb::create().await;
    let relayer = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let common = [
        ("DATABASE_MAX_CONNECTIONS", "20"),
        ("PUBLIC_BASE_URL", "https://nft.brandmint.example"),
        ("REWARD_VAULT_ADDRESS", "0x5FbDB2315678afecb367f032d93F642f64180aa3"),
        ("STABLECOIN_ADDRESS", "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"),
        ("VOUCHER_SIGNER_PRIVATE_KEY", "0x5de4111afa1a4b94908f83103e29f0502e07e17ba31d7b643d5d5f24e5b6d1ca"),
        ("REDEMPTION_CLAIMS_PER_HOUR", "1000000"),
        // One client sends every claim: no per-IP budget.
        ("RATE_LIMIT_IP_PER_MINUTE", "0"),
    ];
    let config = |more: &[(&str, &str)]| testkit::config(&db.url, &required_env("RPC_URL"), &[&common, more].concat());
    // Only the redemption service (which runs no sender here) knows the relayer's key.
    let backoffice = TestApp::spawn_with(backoffice::SERVICE, config(&[])).await;
    let redemption = TestApp::spawn_with(redemption::SERVICE, config(&[("TX_SIGNER_PRIVATE_KEYS", relayer)])).await;
    let pool = backoffice.resources.db().clone();
    let brand = backoffice.brand("Bench").await;
    let (owner, token) = backoffice.account("owner@bench.example", None).await;
    backoffice.member(brand, owner, BrandRole::Owner, &[]).await;
    let campaign: i64 = sqlx::query_scalar(
        "INSERT INTO campaigns (brand_id, state, name, slug, symbol, royalty_bps, royalty_receiver)
         VALUES ($1, 'draft', 'Bench', 'bench', 'B', 0, decode(repeat('55', 20), 'hex')) RETURNING id",
    )
    .bind(brand)
    .fetch_one(&pool)
    .await?;
    let rewards = format!("/brands/{brand}/campaigns/{campaign}/rewards");
    let body = json!({ "kind": "token", "name": "Five", "token": "stablecoin", "amount_per_redemption": "5000000" });
    let (status, reward) = backoffice.call(Method::POST, &rewards, &token, Some(body)).await;
    ensure!(status == StatusCode::CREATED, "reward: {status} {reward}");
    let reward = reward["id"].as_i64().context("reward id")?;
    // Deployed (as far as claims can tell: a chain and a collection).
    sqlx::query(
        "UPDATE campaigns SET state = 'live', chain_id = 31337, collection_address = decode(repeat('66', 20), 'hex')
         WHERE id = $1",
    )
    .bind(campaign)
    .execute(&pool)
    .await?;

    // The back office's daemons generate what the request leaves.
    let shutdown = CancellationToken::new();
    let background = tokio::spawn({
        let (resources, shutdown) = (backoffice.resources.clone(), shutdown.clone());
        async move { shared::service::background(&resources, &[backoffice::SERVICE], shutdown).await }
    });
    let batches = format!("/brands/{brand}/campaigns/{campaign}/qr-batches");
    let body = json!({ "reward_id": reward, "label": "Bench run", "size": BATCH, "typed_addresses": true });
    let started = Instant::now();
    let (status, batch) = backoffice.call(Method::POST, &batches, &token, Some(body)).await;
    ensure!(status.is_success(), "batch: {status} {batch}");
    let path = format!("{batches}/{}", batch["id"]);
    loop {
        let (_, batch) = backoffice.call(Method::GET, &path, &token, None).await;
        if batch["state"] == "ready" {
            break;
        }
        ensure!(started.elapsed() < Duration::from_secs(120), "the batch was never generated: {batch}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let generated = started.elapsed();
    let started = Instant::now();
    let zip = backoffice
        .client
        .get(backoffice.url(&format!("{path}/printable")))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    let downloaded = started.elapsed();
    let files = zip::ZipArchive::new(std::io::Cursor::new(zip.as_ref()))?.len();
    ensure!(files == usize::try_from(BATCH)? + 1, "{files} files in the ZIP");
    println!("  batch of {BATCH} codes:");
    println!("    generated (POST → ready)        {:>7.2} s", generated.as_secs_f64());
    println!(
        "    printable ZIP streamed          {:>7.2} s   ({:.1} MB, {files} files)   target < 10 s",
        downloaded.as_secs_f64(),
        zip.len() as f64 / 1e6
    );
    println!("    together                        {:>7.2} s", (generated + downloaded).as_secs_f64());

    // Claims of distinct codes, 16 in flight.
    let nonces: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT nonce FROM qr_codes WHERE batch_id = $1 ORDER BY seq LIMIT $2")
            .bind(batch["id"].as_i64())
            .bind(i64::try_from(CLAIMS)?)
            .fetch_all(&pool)
            .await?;
    let key = &backoffice.resources.config().qr_code_key;
    let codes = nonces.iter().map(|n| Ok(key.brand_code(n.as_slice().try_into()?))).collect::<Result<Vec<String>>>()?;
    let client = &redemption;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(CLAIMS);
    let mut claims = futures_util::stream::iter(codes.iter().enumerate().map(|(i, code)| async move {
        let address = alloy::primitives::Address::left_padding_from(&(i as u64 + 1).to_be_bytes()).to_checksum(None);
        let at = Instant::now();
        let answer = client
            .client
            .post(client.url(&format!("/r/{code}/claims")))
            .json(&json!({ "address": address }))
            .send()
            .await;
        (answer, at.elapsed())
    }))
    .buffer_unordered(IN_FLIGHT);
    use futures_util::StreamExt;
    while let Some((answer, latency)) = claims.next().await {
        let answer = answer?;
        let status = answer.status();
        ensure!(status == StatusCode::CREATED, "claim: {status} {}", answer.json::<Value>().await.unwrap_or_default());
        latencies.push(latency);
    }
    let elapsed = started.elapsed();
    drop(claims);
    latencies.sort();
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_transactions WHERE idempotency_key LIKE 'redemption:%'")
            .fetch_one(&pool)
            .await?;
    ensure!(queued == i64::try_from(CLAIMS)?, "{queued} payouts queued");
    println!(
        "  claims of distinct codes ({IN_FLIGHT} in flight): {:.0} claims/s, p50 {:.1} ms, p99 {:.1} ms, {queued} payouts queued",
        CLAIMS as f64 / elapsed.as_secs_f64(),
        latencies[CLAIMS / 2].as_secs_f64() * 1e3,
        latencies[CLAIMS * 99 / 100].as_secs_f64() * 1e3,
    );

    shutdown.cancel();
    background.await??;
    redemption.stop().await?;
    backoffice.stop().await?;
    Ok(())
}
