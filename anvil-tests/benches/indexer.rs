//! `cargo xtask bench indexer`: the chain indexer from genesis into PostgreSQL, end to end.
//!
//! A fresh anvil of the bench's own gets the platform, then per row:
//! - **one collection**: ≥ 100,000 `Transfer`s (ERC721A batch mints of 500 tokens, one block
//!   each) and ≥ 10,000 Seaport `OrderFulfilled` logs (a log emitter installed at Seaport's
//!   canonical address, 50 logs a block);
//! - **1,000 collections** deployed through the factory, 100 tokens minted in each.
//!
//! Printed per row: events/s end to end (RPC → decode → PostgreSQL with owners and holders), the
//! raw `eth_getLogs` + decode rate of the same node in the same run, the tail latency of a new
//! block's transfer (to its row in PostgreSQL), and the process's peak RSS.
//!
//! Needs `DATABASE_URL` (a server where it may create a database) and `ANVIL_BIN`.

#![allow(clippy::print_stdout, clippy::float_arithmetic)] // a benchmark reports rates on stdout

use std::time::{Duration, Instant};

use alloy::{
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, Bytes, U256, address},
    providers::{Provider, ext::AnvilApi},
    rpc::types::TransactionRequest,
    sol_types::SolEvent,
};
use anyhow::{Context, Result};
use indexer::decode::{OrderFulfilled, ReceivedItem, SpentItem};
use shared::contracts::Platform;
use testkit::{TestApp, TestDb, required_env};

/// Seaport 1.6's canonical address.
const SEAPORT: Address = address!("0x0000000000000068F116a894984e2DB1123eB395");
const TOKENS_PER_MINT: u64 = 500;
const SEAPORT_LOGS_PER_BLOCK: usize = 50;

/// Runtime code that emits `repeat` LOG3s whose three topics are calldata[0..96] and whose data
/// is the rest of the calldata.
fn emitter_code(repeat: usize) -> Bytes {
    let one = [
        0x60, 0x40, 0x51, // topic2 = mload(0x40)
        0x60, 0x20, 0x51, // topic1 = mload(0x20)
        0x60, 0x00, 0x51, // topic0 = mload(0x00)
        0x60, 0x60, 0x36, 0x03, // size = calldatasize - 0x60
        0x60, 0x60, // offset = 0x60
        0xa3, // LOG3
    ];
    let mut code = vec![0x36, 0x60, 0x00, 0x60, 0x00, 0x37]; // calldatacopy(0, 0, calldatasize)
    for _ in 0..repeat {
        code.extend_from_slice(&one);
    }
    code.push(0x00);
    code.into()
}

struct Row {
    name: &'static str,
    events: i64,
    end_to_end: f64,
    raw: f64,
    /// The same read with no address filter, matched in process.
    raw_topics: f64,
    tail_p50_ms: f64,
    tail_max_ms: f64,
}

#[tokio::main]
async fn main() -> Result<()> {
    shared::chain::install_crypto_provider();
    println!("indexer: from genesis into PostgreSQL, end to end, on a fresh anvil per row");
    let rows = vec![one_collection().await?, many_collections().await?];
    println!();
    println!(
        "{:<44} {:>9} {:>14} {:>18} {:>18} {:>10} {:>10}",
        "row", "events", "indexed ev/s", "raw by address", "raw by topic", "tail p50", "tail max"
    );
    for r in &rows {
        println!(
            "{:<44} {:>9} {:>14.0} {:>18.0} {:>18.0} {:>8.0}ms {:>8.0}ms",
            r.name, r.events, r.end_to_end, r.raw, r.raw_topics, r.tail_p50_ms, r.tail_max_ms
        );
    }
    println!("raw: eth_getLogs + decode of the same logs, nothing written; by address: the address set in");
    println!("chunks of 1,000 (what the indexer does up to 10,000 addresses); by topic: no address filter,");
    println!("addresses matched in process (what it does above).");
    println!("peak RSS of this process (indexer, decoder, bench driver): {} MiB", peak_rss_mib());
    println!("target: ≥ 37,000 events/s end to end (10× Ponder 0.16.10's 3,692 on this machine)");
    Ok(())
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024)
}

struct Chain {
    anvil: AnvilInstance,
    platform: Platform,
}

async fn chain() -> Result<Chain> {
    let anvil = Anvil::at(required_env("ANVIL_BIN")).arg("--gas-limit").arg("300000000").try_spawn()?;
    let platform = testkit::platform(&anvil).await;
    Ok(Chain { anvil, platform })
}

/// Mints `total` tokens of `collection` in batches, to rotating holders.
async fn mint(chain: &Chain, collection: Address, total: u64) -> Result<()> {
    let nft = chain.platform.collection(collection);
    let mut minted = 0;
    let mut n = 0u64;
    while minted < total {
        let quantity = TOKENS_PER_MINT.min(total - minted);
        let mut holder = [0x11u8; 20];
        holder[12..].copy_from_slice(&(n % 97 + 1).to_be_bytes());
        nft.mint(Address::from(holder), U256::from(quantity)).send().await?.get_receipt().await?;
        minted += quantity;
        n += 1;
    }
    Ok(())
}

/// `blocks` blocks of Seaport `OrderFulfilled` logs at Seaport's address.
async fn seaport_logs(chain: &Chain, collection: Address, blocks: usize) -> Result<()> {
    let provider = testkit::wallet(&chain.anvil, 0);
    provider.anvil_set_code(SEAPORT, emitter_code(SEAPORT_LOGS_PER_BLOCK)).await?;
    let event = OrderFulfilled {
        orderHash: [7u8; 32].into(),
        offerer: chain.anvil.addresses()[3],
        zone: Address::ZERO,
        recipient: chain.anvil.addresses()[4],
        offer: vec![SpentItem { itemType: 2, token: collection, identifier: U256::from(1), amount: U256::from(1) }],
        consideration: vec![
            ReceivedItem {
                itemType: 0,
                token: Address::ZERO,
                identifier: U256::ZERO,
                amount: U256::from(95u64),
                recipient: chain.anvil.addresses()[3],
            },
            ReceivedItem {
                itemType: 0,
                token: Address::ZERO,
                identifier: U256::ZERO,
                amount: U256::from(5u64),
                recipient: chain.anvil.addresses()[0],
            },
        ],
    };
    let topics = event.encode_topics();
    let mut calldata = Vec::new();
    for topic in topics.iter() {
        calldata.extend_from_slice(topic.0.as_slice());
    }
    calldata.extend_from_slice(&event.encode_data());
    for _ in 0..blocks {
        let tx = TransactionRequest::default().to(SEAPORT).input(calldata.clone().into());
        provider.send_transaction(tx).await?.get_receipt().await?;
    }
    Ok(())
}

/// Indexes the chain from genesis; measures both rates and the tail latency.
async fn measure(name: &'static str, chain: &Chain, collections: &[Address]) -> Result<Row> {
    let head = testkit::wallet(&chain.anvil, 0).get_block_number().await?;
    // The raw read rate: the same logs, read and decoded, nothing written.
    let platform = indexer::decode::Platform {
        factory: Some(*chain.platform.factory.address()),
        checkout: Some(*chain.platform.checkout.address()),
        vault: Some(*chain.platform.vault.address()),
        seaport: SEAPORT,
    };
    let mut addresses = platform.addresses();
    addresses.extend_from_slice(collections);
    let known: std::collections::HashSet<Address> = collections.iter().copied().collect();
    let fetcher = indexer::fetch::Fetcher::new(testkit::wallet(&chain.anvil, 0), indexer::decode::signatures());
    let wanted: std::collections::HashSet<Address> = addresses.iter().copied().collect();
    let mut rates = Vec::new();
    for by_topic in [false, true] {
        let started = Instant::now();
        let mut raw_events = 0u64;
        let mut from = 0;
        while from <= head {
            let to = head.min(from + 9_999);
            let logs = if by_topic {
                fetcher.topic_logs(from, to).await?
            } else {
                fetcher.range_logs(from, to, &addresses).await?
            };
            raw_events += logs
                .iter()
                .filter(|l| !by_topic || wanted.contains(&l.address()))
                .filter_map(|l| indexer::decode::decode(l, &platform, |a| known.contains(a)))
                .count() as u64;
            from = to + 1;
        }
        rates.push((raw_events, raw_events as f64 / started.elapsed().as_secs_f64()));
    }
    let [(raw_events, raw), (_, raw_topics)] = [rates[0], rates[1]];

    let db = TestDb::create().await;
    let checksum = |a: &Address| a.to_checksum(None);
    let config = testkit::config(
        &db.url,
        &chain.anvil.endpoint(),
        &[
            ("CHAIN_ID", &chain.anvil.chain_id().to_string()),
            ("CAMPAIGN_FACTORY_ADDRESS", &checksum(chain.platform.factory.address())),
            ("CHECKOUT_ADDRESS", &checksum(chain.platform.checkout.address())),
            ("REWARD_VAULT_ADDRESS", &checksum(chain.platform.vault.address())),
            ("DATABASE_MAX_CONNECTIONS", "8"),
            // This anvil never reorganises and its whole history is a few hundred blocks: a window of
            // 16 keeps the measure on the backfill path, as a real chain's history is (only its last
            // INDEXER_REORG_WINDOW blocks are indexed block by block).
            ("INDEXER_REORG_WINDOW", "16"),
        ],
    );
    let app = TestApp::spawn_with(indexer::SERVICE, config).await;
    let started = Instant::now();
    indexer::index(&app.resources).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let started = Instant::now();
    indexer::decode_sales(&app.resources).await?;
    let decoding = started.elapsed().as_secs_f64();
    let pool = app.resources.db().clone();
    let events: i64 =
        sqlx::query_scalar("SELECT (SELECT count(*) FROM token_transfers) + (SELECT count(*) FROM chain_events)")
            .fetch_one(&pool)
            .await?;
    println!("{name}: {events} events ({raw_events} read raw) over {head} blocks indexed in {elapsed:.2} s");
    let seaport: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_events WHERE kind = 'seaport_order_fulfilled'")
        .fetch_one(&pool)
        .await?;
    if seaport > 0 {
        println!(
            "{name}: sales decoder read {seaport} OrderFulfilled logs in {decoding:.2} s ({:.0} logs/s; none of a campaign)",
            seaport as f64 / decoding
        );
    }

    // Tail: the indexer follows the head (as its daemon does, polling every 100 ms); each new
    // block's transfer is timed from the node's answer to its row in PostgreSQL.
    let following = tokio::spawn({
        let resources = app.resources.clone();
        async move {
            loop {
                let _ = indexer::catch_up(&resources).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let nft = chain.platform.collection(collections[0]);
    let mut latencies = Vec::new();
    for n in 0..20u64 {
        let mut holder = [0x22u8; 20];
        holder[12..].copy_from_slice(&n.to_be_bytes());
        let receipt = nft.mint(Address::from(holder), U256::from(1)).send().await?.get_receipt().await?;
        let sent = Instant::now();
        let tx = receipt.transaction_hash.to_vec();
        loop {
            let found: i64 = sqlx::query_scalar("SELECT count(*) FROM token_transfers WHERE tx_hash = $1")
                .bind(&tx)
                .fetch_one(&pool)
                .await?;
            if found > 0 {
                break;
            }
            anyhow::ensure!(
                sent.elapsed() < Duration::from_secs(30),
                "the tail never saw {}",
                receipt.transaction_hash
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    following.abort();
    latencies.sort_by(f64::total_cmp);
    app.stop().await.context("stopping the indexer app")?;
    Ok(Row {
        name,
        events,
        end_to_end: events as f64 / elapsed,
        raw,
        raw_topics,
        tail_p50_ms: latencies[latencies.len() / 2],
        tail_max_ms: latencies[latencies.len() - 1],
    })
}

async fn one_collection() -> Result<Row> {
    let chain = chain().await?;
    let collection = testkit::collection(&chain.platform, &chain.anvil, 1, 1_000_000).await;
    mint(&chain, collection, 100_000).await?;
    seaport_logs(&chain, collection, 10_000 / SEAPORT_LOGS_PER_BLOCK).await?;
    measure("1 collection: 100k Transfer + 10k OrderFulfilled", &chain, &[collection]).await
}

async fn many_collections() -> Result<Row> {
    let chain = chain().await?;
    let mut collections = Vec::new();
    for id in 1..=1_000 {
        let collection = testkit::collection(&chain.platform, &chain.anvil, id, 1_000).await;
        mint(&chain, collection, 100).await?;
        collections.push(collection);
    }
    measure("1,000 collections through the factory: 100k Transfer", &chain, &collections).await
}
