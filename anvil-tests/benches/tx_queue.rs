//! `cargo xtask bench tx-queue`: throughput of the persisted transaction queue from one
//! signer. Requests are enqueued concurrently (each in its own database transaction, as
//! requesters do) while one `TxSender` signs, broadcasts and confirms them against an anvil
//! of the bench's own. Prints, per chain mode, how fast requests were submitted to the node
//! and confirmed, and checks the result: nonce gaps and duplicates (there must be none).
//!
//! Needs `DATABASE_URL` (a server where it may create a database) and `ANVIL_BIN`.
//! `TX_QUEUE_BENCH_REQUESTS` overrides the number of requests (default 1,000).

#![allow(clippy::print_stdout)] // a benchmark reports on stdout

use std::time::{Duration, Instant};

use alloy::{
    node_bindings::Anvil,
    primitives::{Bytes, U256},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    signers::local::PrivateKeySigner,
};
use anyhow::{Context, Result, bail};
use shared::{
    chain::txqueue::{self, IdempotencyKey, SenderConfig, TxRequest, TxSender},
    db,
    money::Wei,
};
use sqlx::{PgPool, postgres::PgPoolOptions};
use testkit::{TestDb, required_env};
use tokio_util::sync::CancellationToken;

/// Concurrent requesters.
const REQUESTERS: u32 = 16;

/// How the bench's anvil makes blocks.
struct Mode {
    name: &'static str,
    args: &'static [&'static str],
}

const MODES: &[Mode] = &[
    Mode { name: "anvil, a block per transaction", args: &[] },
    Mode { name: "anvil, a block per second", args: &["--block-time", "1"] },
];

struct Figures {
    requests: usize,
    submitted_per_sec: f64,
    confirmed_per_sec: f64,
    nonce_gaps: usize,
    duplicates: usize,
    on_chain: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let requests: usize = match std::env::var("TX_QUEUE_BENCH_REQUESTS") {
        Ok(n) => n.parse().context("TX_QUEUE_BENCH_REQUESTS")?,
        Err(_) => 1_000,
    };
    shared::chain::install_crypto_provider();
    println!("tx-queue: {requests} requests from one signer through the persisted transaction queue");
    println!();
    println!(
        "| {:<32} | {:>8} | {:>15} | {:>15} | {:>10} | {:>10} | {:>8} |",
        "chain", "requests", "submitted tx/s", "confirmed tx/s", "nonce gaps", "duplicates", "on chain"
    );
    println!("|{:-<34}|{:->10}|{:->17}|{:->17}|{:->12}|{:->12}|{:->10}|", "", "", "", "", "", "", "");
    let mut clean = true;
    for mode in MODES {
        let f = run(mode, requests).await.with_context(|| mode.name)?;
        clean &= f.nonce_gaps == 0 && f.duplicates == 0 && f.on_chain == u64::try_from(f.requests)?;
        println!(
            "| {:<32} | {:>8} | {:>15.1} | {:>15.1} | {:>10} | {:>10} | {:>8} |",
            mode.name, f.requests, f.submitted_per_sec, f.confirmed_per_sec, f.nonce_gaps, f.duplicates, f.on_chain
        );
    }
    println!();
    println!(
        "submitted: enqueued until accepted by the node; confirmed: enqueued until `tx.confirmed` (1 confirmation)"
    );
    if !clean {
        bail!("nonce gaps, duplicates or missing transactions: see the table");
    }
    Ok(())
}

async fn run(mode: &Mode, requests: usize) -> Result<Figures> {
    let test_db = TestDb::create().await;
    let pool = PgPoolOptions::new().max_connections(REQUESTERS + 8).connect(&test_db.url).await?;
    db::migrate(&pool).await?;
    let anvil = Anvil::at(required_env("ANVIL_BIN")).args(mode.args.iter().copied()).try_spawn()?;
    let chain: DynProvider = ProviderBuilder::new().connect_http(anvil.endpoint_url()).erased();
    let chain_id = chain.get_chain_id().await?;
    let signer = PrivateKeySigner::random();
    let from = signer.address();
    chain.anvil_set_balance(from, U256::from(10_u128.pow(24))).await?;

    let shutdown = CancellationToken::new();
    let config = SenderConfig { poll_interval: Duration::from_millis(100), ..SenderConfig::default() };
    let sender = tokio::spawn(TxSender::new(pool.clone(), chain.clone(), signer, config).run(shutdown.clone()));

    let recipient = PrivateKeySigner::random().address();
    let started = Instant::now();
    let requesters: Vec<_> = (0..REQUESTERS as usize)
        .map(|r| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in (r..requests).step_by(REQUESTERS as usize) {
                    let key = IdempotencyKey::new(format!("bench:transfer:{i}"))?;
                    let request =
                        TxRequest::call(key, chain_id, from, recipient, Bytes::new()).with_value(Wei::from_u128(1));
                    let mut tx = pool.begin().await?;
                    txqueue::enqueue(&mut tx, &request).await?;
                    tx.commit().await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for requester in requesters {
        requester.await??;
    }

    let total = i64::try_from(requests)?;
    let mut submitted_at = None;
    let confirmed_at = loop {
        let (broadcast, confirmed, failed): (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE broadcast_at IS NOT NULL),
                    count(*) FILTER (WHERE state = 'confirmed'),
                    count(*) FILTER (WHERE state = 'failed')
             FROM chain_transactions",
        )
        .fetch_one(&pool)
        .await?;
        if failed > 0 {
            bail!("{failed} transactions failed");
        }
        if broadcast == total && submitted_at.is_none() {
            submitted_at = Some(started.elapsed());
        }
        if confirmed == total {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("not done after 5 minutes ({confirmed} of {total} confirmed)");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let submitted_at = submitted_at.unwrap_or(confirmed_at);
    shutdown.cancel();
    sender.await??;

    let (nonce_gaps, duplicates) = check(&pool, requests).await?;
    let on_chain = chain.get_transaction_count(from).await?;
    let received = chain.get_balance(recipient).await?;
    if received != U256::from(requests) {
        bail!("the recipient received {received} wei, expected {requests}");
    }
    drop(anvil);
    pool.close().await;
    Ok(Figures {
        requests,
        submitted_per_sec: per_second(requests, submitted_at),
        confirmed_per_sec: per_second(requests, confirmed_at),
        nonce_gaps,
        duplicates,
        on_chain,
    })
}

/// Nonces missing from `0..requests`, and nonces or hashes used more than once.
async fn check(pool: &PgPool, requests: usize) -> Result<(usize, usize)> {
    let rows: Vec<(Option<i64>, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT nonce, tx_hash FROM chain_transactions ORDER BY nonce").fetch_all(pool).await?;
    let mut nonces: Vec<i64> = rows.iter().filter_map(|(n, _)| *n).collect();
    let mut hashes: Vec<&Vec<u8>> = rows.iter().filter_map(|(_, h)| h.as_ref()).collect();
    let (all_nonces, all_hashes) = (nonces.len(), hashes.len());
    nonces.dedup();
    hashes.sort();
    hashes.dedup();
    let duplicates = (all_nonces - nonces.len()) + (all_hashes - hashes.len());
    let expected = i64::try_from(requests)?;
    let gaps = (0..expected).filter(|n| nonces.binary_search(n).is_err()).count();
    Ok((gaps, duplicates))
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    #[allow(clippy::float_arithmetic, clippy::cast_precision_loss)] // a rate for display
    let rate = count as f64 / elapsed.as_secs_f64();
    rate
}
