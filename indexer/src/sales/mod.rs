//! Secondary sales of campaign tokens, from the Seaport logs the indexer keeps raw, and the
//! royalty ledger kept from them.
//!
//! A leased daemon reads the undecoded `OrderFulfilled` logs a few blocks at a time (whole
//! blocks, so a transaction's orders are read together), derives the sales ([`derive`]), keeps
//! those of campaign collections and, per sale, asks the collection for its EIP-2981
//! `royaltyInfo(tokenId, price)` at the sale's block (the campaign's bps if the call fails).
//! Sales, ledger entries, `sale.recorded` events and the logs' `decoded` mark are written in one
//! transaction. A reorg takes sales back with their blocks ([`revert`], called by the indexer's
//! own revert in its transaction): the ledger is debited and `sale.reverted` announced.

pub(crate) mod api;
pub mod derive;

use std::collections::HashMap;

use alloy::{
    eips::BlockId,
    primitives::{Address, B256, U256},
    providers::{DynProvider, Provider},
    sol_types::SolEvent as _,
};
use anyhow::Context;
use serde_json::json;
use shared::{
    contracts::CampaignNFT,
    daemon::{Daemon, RunContext, Schedule},
    money::{Bps, Rounding, Wei},
    workflow::{
        BoxFuture,
        outbox::{self, NewEvent},
    },
};
use sqlx::{PgConnection, PgPool, Row};

use crate::{decode::OrderFulfilled, store::int};
use derive::{Fulfilment, Sale};

/// Blocks of Seaport logs decoded per transaction.
const BLOCKS_PER_STEP: i64 = 50;

/// A campaign collection as the ledger needs it.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: i64,
    pub brand_id: i64,
    pub royalty_bps: Bps,
    pub royalty_receiver: Address,
}

/// What the ledger records of one sale: the sale, its campaign, the marketplace it went
/// through, the royalty receiver, and the royalty expected and received, the marketplace's fee
/// and the seller's proceeds (base units of the sale's currency).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub sale: Sale,
    pub campaign: Campaign,
    pub marketplace: String,
    pub receiver: Address,
    pub expected: U256,
    pub received: U256,
    pub fee: U256,
    pub proceeds: U256,
}

/// Decodes sales from the kept Seaport logs.
pub struct SalesDecoder {
    provider: DynProvider,
    marketplaces: Vec<(String, Address)>,
}

impl std::fmt::Debug for SalesDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesDecoder").field("marketplaces", &self.marketplaces).finish_non_exhaustive()
    }
}

impl SalesDecoder {
    pub fn new(provider: DynProvider, marketplaces: Vec<(String, Address)>) -> Self {
        Self { provider, marketplaces }
    }

    /// Decodes every undecoded log; returns how many sales were recorded.
    pub async fn catch_up(&self, pool: &PgPool) -> anyhow::Result<u64> {
        let chain_id = self.provider.get_chain_id().await.context("eth_chainId")?;
        let mut total = 0;
        while let Some(recorded) = self.step(pool, chain_id).await? {
            total += recorded;
        }
        Ok(total)
    }

    /// One transaction's worth: `None` when nothing was left to decode.
    async fn step(&self, pool: &PgPool, chain_id: u64) -> anyhow::Result<Option<u64>> {
        let mut tx = pool.begin().await?;
        // The last of the next BLOCKS_PER_STEP blocks with undecoded logs, then every undecoded log
        // up to it (two plain queries: a fresh table's missing statistics cannot turn them into a
        // nested loop).
        let Some(last): Option<i64> = sqlx::query_scalar(
            "SELECT max(block_number) FROM (SELECT DISTINCT block_number FROM chain_events
                                           WHERE chain_id = $1 AND NOT decoded AND kind = 'seaport_order_fulfilled'
                                           ORDER BY block_number LIMIT $2) b",
        )
        .bind(int(chain_id))
        .bind(BLOCKS_PER_STEP)
        .fetch_one(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT block_number, block_hash, log_index, tx_hash, topics, data FROM chain_events
             WHERE chain_id = $1 AND NOT decoded AND kind = 'seaport_order_fulfilled' AND block_number <= $2
             ORDER BY block_number, log_index
             FOR UPDATE SKIP LOCKED",
        )
        .bind(int(chain_id))
        .bind(last)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        // Per transaction, its fulfilments in log order.
        let mut txs: Vec<(u64, B256, B256, Vec<Fulfilment>)> = Vec::new();
        let mut keys: (Vec<Vec<u8>>, Vec<i32>) = (Vec::new(), Vec::new());
        for row in &rows {
            let (block_hash, log_index): (Vec<u8>, i32) = (row.get(1), row.get(2));
            keys.0.push(block_hash.clone());
            keys.1.push(log_index);
            let topics: Vec<Vec<u8>> = row.get(4);
            let topics: Vec<B256> = topics.iter().filter_map(|t| B256::try_from(t.as_slice()).ok()).collect();
            let data: Vec<u8> = row.get(5);
            let Ok(event) = OrderFulfilled::decode_raw_log(topics, &data) else { continue };
            let block = u64::try_from(row.get::<i64, _>(0)).unwrap_or(0);
            let (block_hash, tx_hash) = (B256::from_slice(&block_hash), B256::from_slice(&row.get::<Vec<u8>, _>(3)));
            let fulfilment = Fulfilment {
                log_index: u64::try_from(log_index).unwrap_or(0),
                order_hash: event.orderHash,
                offerer: event.offerer,
                zone: event.zone,
                recipient: event.recipient,
                offer: event.offer,
                consideration: event.consideration,
            };
            match txs.last_mut() {
                Some((_, _, hash, fulfilments)) if *hash == tx_hash => fulfilments.push(fulfilment),
                _ => txs.push((block, block_hash, tx_hash, vec![fulfilment])),
            }
        }
        let sales: Vec<(u64, B256, B256, Sale)> = txs
            .iter()
            .flat_map(|(block, block_hash, tx_hash, fulfilments)| {
                derive::sales(fulfilments).into_iter().map(move |s| (*block, *block_hash, *tx_hash, s))
            })
            .collect();
        let campaigns = campaigns(&mut tx, chain_id, &sales).await?;
        let mut recorded = 0;
        let mut times: HashMap<B256, i64> = HashMap::new();
        for (block, block_hash, tx_hash, sale) in sales {
            let Some(campaign) = campaigns.get(&sale.collection) else { continue };
            let sold_at = match times.get(&block_hash) {
                Some(t) => *t,
                None => {
                    let header = self
                        .provider
                        .get_block_by_hash(block_hash)
                        .await
                        .context("eth_getBlockByHash")?
                        .with_context(|| format!("block {block_hash} is gone (a reorg under way)"))?;
                    let t = i64::try_from(header.header.timestamp).unwrap_or(i64::MAX);
                    times.insert(block_hash, t);
                    t
                }
            };
            let entry = self.price(campaign, sale, block_hash).await;
            record(&mut tx, chain_id, block, block_hash, tx_hash, sold_at, &entry).await?;
            recorded += 1;
        }
        sqlx::query(
            "UPDATE chain_events SET decoded = true
             FROM UNNEST($2::bytea[], $3::int[]) AS u(h, i)
             WHERE chain_id = $1 AND block_hash = u.h AND log_index = u.i",
        )
        .bind(int(chain_id))
        .bind(&keys.0)
        .bind(&keys.1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(recorded))
    }

    /// The royalty owed on `sale` (EIP-2981 at its block, else the campaign's bps) and how
    /// its payments split into royalty, marketplace fee and the seller's proceeds.
    async fn price(&self, campaign: &Campaign, sale: Sale, block_hash: B256) -> Recorded {
        let nft = CampaignNFT::new(sale.collection, self.provider.clone());
        let onchain = nft.royaltyInfo(sale.token_id, sale.price).block(BlockId::hash(block_hash)).call().await;
        let (receiver, expected) = match onchain {
            Ok(info) => (info.receiver, info.amount),
            Err(e) => {
                tracing::warn!(collection = %sale.collection, error = %e, "royaltyInfo failed; using the campaign's bps");
                (campaign.royalty_receiver, Wei::new(sale.price).share(campaign.royalty_bps, Rounding::Floor).get())
            }
        };
        let (mut received, mut fee, mut proceeds) = (U256::ZERO, U256::ZERO, U256::ZERO);
        for (to, amount) in &sale.payments {
            if *to == sale.seller {
                proceeds = proceeds.saturating_add(*amount);
            } else if *to == receiver {
                received = received.saturating_add(*amount);
            } else {
                fee = fee.saturating_add(*amount);
            }
        }
        let marketplace = self
            .marketplaces
            .iter()
            .find(|(_, address)| *address == sale.zone || sale.payments.iter().any(|(to, _)| to == address))
            .map_or_else(|| "seaport".to_owned(), |(name, _)| name.clone());
        Recorded { sale, campaign: campaign.clone(), marketplace, receiver, expected, received, fee, proceeds }
    }
}

/// The campaigns whose collections were sold in `sales`, by collection.
async fn campaigns(
    conn: &mut PgConnection,
    chain_id: u64,
    sales: &[(u64, B256, B256, Sale)],
) -> sqlx::Result<HashMap<Address, Campaign>> {
    let collections: Vec<Vec<u8>> = sales.iter().map(|(.., s)| s.collection.to_vec()).collect();
    if collections.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query(
        "SELECT id, brand_id, collection_address, royalty_bps, royalty_receiver FROM campaigns
         WHERE chain_id = $1 AND collection_address = ANY($2)",
    )
    .bind(int(chain_id))
    .bind(&collections)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let receiver: Option<Vec<u8>> = r.get(4);
            (
                Address::from_slice(&r.get::<Vec<u8>, _>(2)),
                Campaign {
                    id: r.get(0),
                    brand_id: r.get(1),
                    // 0 to 10,000 by the table's CHECK.
                    royalty_bps: u32::try_from(r.get::<i32, _>(3))
                        .ok()
                        .and_then(|b| Bps::new(b).ok())
                        .unwrap_or(Bps::ZERO),
                    royalty_receiver: receiver.as_deref().map(Address::from_slice).unwrap_or_default(),
                },
            )
        })
        .collect())
}

/// Inserts one sale, credits the ledger and announces `sale.recorded` (once: a sale already
/// recorded is left alone). `sold_at` is the block's time in Unix seconds.
pub async fn record(
    conn: &mut PgConnection,
    chain_id: u64,
    block: u64,
    block_hash: B256,
    tx_hash: B256,
    sold_at: i64,
    r: &Recorded,
) -> sqlx::Result<()> {
    let s = &r.sale;
    let bps = if s.price.is_zero() {
        0
    } else {
        i32::try_from(r.received.saturating_mul(U256::from(Bps::DENOMINATOR)) / s.price).unwrap_or(i32::MAX)
    };
    let currency = (!s.currency.is_zero()).then(|| s.currency.to_vec());
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO secondary_sales (chain_id, brand_id, campaign_id, collection, token_id, quantity, block_number,
             block_hash, tx_hash, log_index, order_hash, side, marketplace, seller, buyer, payment_token, price,
             marketplace_fee, seller_proceeds, royalty_receiver, royalty_expected, royalty_received, royalty_bps_paid,
             sold_at)
         VALUES ($1, $2, $3, $4, $5::numeric, $6::numeric, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17::numeric,
                 $18::numeric, $19::numeric, $20, $21::numeric, $22::numeric, $23, to_timestamp($24))
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(int(chain_id))
    .bind(r.campaign.brand_id)
    .bind(r.campaign.id)
    .bind(s.collection.to_vec())
    .bind(s.token_id.to_string())
    .bind(s.quantity.max(U256::from(1)).to_string())
    .bind(int(block))
    .bind(block_hash.to_vec())
    .bind(tx_hash.to_vec())
    .bind(i32::try_from(s.log_index).unwrap_or(i32::MAX))
    .bind(s.order_hash.to_vec())
    .bind(s.side.as_str())
    .bind(&r.marketplace)
    .bind(s.seller.to_vec())
    .bind(s.buyer.to_vec())
    .bind(currency)
    .bind(s.price.to_string())
    .bind(r.fee.to_string())
    .bind(r.proceeds.to_string())
    .bind(r.receiver.to_vec())
    .bind(r.expected.to_string())
    .bind(r.received.to_string())
    .bind(bps)
    .bind(sold_at)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else { return Ok(()) };
    credit(conn, &[id]).await?;
    let payload = json!({
        "sale_id": id, "chain_id": chain_id, "brand_id": r.campaign.brand_id, "campaign_id": r.campaign.id,
        "collection": s.collection, "token_id": s.token_id.to_string(), "block_number": block,
        "block_hash": block_hash, "tx_hash": tx_hash, "log_index": s.log_index, "marketplace": r.marketplace,
        "seller": s.seller, "buyer": s.buyer, "currency": s.currency, "price": s.price.to_string(),
        "royalty_expected": r.expected.to_string(), "royalty_received": r.received.to_string(),
    });
    announce(conn, "sale.recorded", id, tx_hash, payload).await
}

async fn announce(
    conn: &mut PgConnection,
    event_type: &str,
    id: i64,
    tx_hash: B256,
    payload: serde_json::Value,
) -> sqlx::Result<()> {
    let event = NewEvent {
        event_type: event_type.to_owned(),
        aggregate_type: "sale",
        aggregate_id: id,
        payload,
        correlation_id: Some(tx_hash.to_string()),
    };
    outbox::append(conn, event).await.map(drop)
}

/// The ledger's entries of the sales `ids`, aggregated per key.
const LEDGER_ENTRIES: &str = "SELECT brand_id, campaign_id, marketplace,
        COALESCE(payment_token, '\\x0000000000000000000000000000000000000000') AS payment_token,
        (sold_at AT TIME ZONE 'UTC')::date AS day, count(*) AS sales,
        count(*) FILTER (WHERE royalty_received >= royalty_expected) AS paid_in_full, sum(price) AS volume,
        sum(marketplace_fee) AS marketplace_fee, sum(royalty_expected) AS expected,
        sum(royalty_received) AS received, sum(royalty_shortfall) AS shortfall
    FROM secondary_sales WHERE id = ANY($1) GROUP BY 1, 2, 3, 4, 5";

/// Credits the ledger with the sales `ids`.
async fn credit(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "INSERT INTO royalty_ledger AS l (brand_id, campaign_id, marketplace, payment_token, day, sales, paid_in_full,
                                          volume, marketplace_fee, expected, received, shortfall)
         {LEDGER_ENTRIES}
         ON CONFLICT (campaign_id, day, marketplace, payment_token) DO UPDATE SET
             sales = l.sales + EXCLUDED.sales, paid_in_full = l.paid_in_full + EXCLUDED.paid_in_full,
             volume = l.volume + EXCLUDED.volume, marketplace_fee = l.marketplace_fee + EXCLUDED.marketplace_fee,
             expected = l.expected + EXCLUDED.expected, received = l.received + EXCLUDED.received,
             shortfall = l.shortfall + EXCLUDED.shortfall"
    ))
    .bind(ids)
    .execute(conn)
    .await
    .map(drop)
}

/// Debits the ledger of the sales `ids` (credited when they were recorded). A day's entry can
/// reach zero; it stays, with zero counts.
async fn debit(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "UPDATE royalty_ledger l SET
             sales = l.sales - e.sales, paid_in_full = l.paid_in_full - e.paid_in_full, volume = l.volume - e.volume,
             marketplace_fee = l.marketplace_fee - e.marketplace_fee, expected = l.expected - e.expected,
             received = l.received - e.received, shortfall = l.shortfall - e.shortfall
         FROM ({LEDGER_ENTRIES}) e
         WHERE l.campaign_id = e.campaign_id AND l.day = e.day AND l.marketplace = e.marketplace
           AND l.payment_token = e.payment_token"
    ))
    .bind(ids)
    .execute(conn)
    .await
    .map(drop)
}

/// Takes back the sales of the blocks `dropped` (a reorg): the ledger is debited, each sale is
/// announced `sale.reverted` once and deleted. Runs in the indexer's revert transaction.
pub async fn revert(conn: &mut PgConnection, chain_id: u64, dropped: &[Vec<u8>]) -> sqlx::Result<u64> {
    let rows = sqlx::query(
        "SELECT id, tx_hash, brand_id, campaign_id, collection, token_id::text, price::text, royalty_received::text
         FROM secondary_sales WHERE chain_id = $1 AND block_hash = ANY($2) ORDER BY id FOR UPDATE",
    )
    .bind(int(chain_id))
    .bind(dropped)
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    debit(conn, &ids).await?;
    for row in &rows {
        let id: i64 = row.get(0);
        let tx_hash = B256::try_from(row.get::<Vec<u8>, _>(1).as_slice()).unwrap_or_default();
        let payload = json!({
            "sale_id": id, "chain_id": chain_id, "brand_id": row.get::<i64, _>(2), "campaign_id": row.get::<i64, _>(3),
            "collection": Address::from_slice(&row.get::<Vec<u8>, _>(4)), "token_id": row.get::<String, _>(5),
            "tx_hash": tx_hash, "price": row.get::<String, _>(6), "royalty_received": row.get::<String, _>(7),
        });
        announce(conn, "sale.reverted", id, tx_hash, payload).await?;
    }
    sqlx::query("DELETE FROM secondary_sales WHERE id = ANY($1)").bind(&ids).execute(&mut *conn).await?;
    Ok(ids.len() as u64)
}

/// The daemon around [`SalesDecoder`].
#[derive(Debug)]
pub struct SalesDecoding(pub SalesDecoder);

impl Daemon for SalesDecoding {
    fn name(&self) -> &'static str {
        "indexer.sales"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(1))
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(self.0.catch_up(&ctx.pool))
    }
}
