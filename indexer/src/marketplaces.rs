//! The marketplaces' own accounts of the sales: OpenSea API v2 collection events
//! (`event_type=sale`) and Rarible activities (`SELL`) per campaign collection, one leased
//! daemon each.
//!
//! - **Cursors** persist per source and campaign: OpenSea's watermark (the newest sale time read;
//!   the next poll asks `after` it and pages through `next`), Rarible's continuation (oldest
//!   first, so a poll resumes where the last one stopped, page by page).
//! - **Rate limits**: a 429 is waited out for its `Retry-After` (at most a minute), five times
//!   in a run at most; `X-RateLimit-Remaining` is logged.
//! - **Normalised** into `marketplace_reports` in base units (Rarible's decimal prices are
//!   scaled by the currency's decimals), one row per source and sale, updated in place (Rarible's
//!   `reverted` included). Reports never enter the royalty ledger, which the chain alone feeds;
//!   a report and a chain sale with the same transaction and token are one sale with two
//!   sources.
//! - **Gaps** both ways, once the chain is confirmed past the sale: a chain sale a polled source
//!   never reported, a report with no chain sale ([`crate::api`]'s `/campaigns/{id}/sales/gaps`).

use std::{collections::HashMap, time::Duration};

use alloy::{
    primitives::{Address, B256, U256, utils::parse_units},
    providers::{DynProvider, Provider},
};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use shared::{
    daemon::{Daemon, RunContext, Schedule},
    workflow::BoxFuture,
};
use sqlx::{PgConnection, PgPool, Row};
use url::Url;

/// Sales asked for per page.
const PAGE: usize = 50;
/// 429s waited out per run before the run gives up (and the next one tries again).
const MAX_THROTTLES: u32 = 5;
/// The longest `Retry-After` honoured within a run.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A marketplace whose API is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    OpenSea,
    Rarible,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::OpenSea => "opensea",
            Source::Rarible => "rarible",
        }
    }
}

/// Where a source's API is and its key.
#[derive(Debug, Clone)]
pub struct Api {
    pub base: Url,
    pub key: SecretString,
}

/// One sale as a source reported it, in base units.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Report {
    external_id: String,
    tx_hash: Option<B256>,
    order_hash: Option<B256>,
    block_number: Option<u64>,
    token_id: U256,
    seller: Address,
    buyer: Address,
    currency: Address,
    price: U256,
    sold_at: DateTime<Utc>,
    reverted: bool,
}

/// A campaign collection that is polled.
#[derive(Debug, Clone)]
struct Polled {
    campaign_id: i64,
    brand_id: i64,
    slug: String,
    collection: Address,
}

/// Reads one source for every deployed campaign.
pub struct Poller {
    source: Source,
    api: Api,
    http: reqwest::Client,
    chain: DynProvider,
    interval: Duration,
}

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("source", &self.source).field("base", &self.api.base.as_str()).finish()
    }
}

impl Poller {
    pub fn new(source: Source, api: Api, chain: DynProvider, interval: Duration) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap_or_default();
        Self { source, api, http, chain, interval }
    }

    /// Polls every deployed campaign once; returns how many reports were new or changed.
    pub async fn poll(&self, pool: &PgPool) -> anyhow::Result<u64> {
        let chain_id = self.chain.get_chain_id().await.context("eth_chainId")?;
        let campaigns = sqlx::query(
            "SELECT id, brand_id, slug, collection_address FROM campaigns
             WHERE chain_id = $1 AND collection_address IS NOT NULL ORDER BY id",
        )
        .bind(i64::try_from(chain_id).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
        let mut changed = 0;
        let mut throttles = 0;
        let mut decimals: HashMap<Address, u8> = HashMap::new();
        for row in &campaigns {
            let polled = Polled {
                campaign_id: row.get(0),
                brand_id: row.get(1),
                slug: row.get(2),
                collection: Address::from_slice(&row.get::<Vec<u8>, _>(3)),
            };
            changed += self.poll_campaign(pool, chain_id, &polled, &mut throttles, &mut decimals).await?;
        }
        Ok(changed)
    }

    async fn poll_campaign(
        &self,
        pool: &PgPool,
        chain_id: u64,
        polled: &Polled,
        throttles: &mut u32,
        decimals: &mut HashMap<Address, u8>,
    ) -> anyhow::Result<u64> {
        let (mut cursor, watermark): (Option<String>, Option<i64>) =
            sqlx::query_as("SELECT cursor, watermark FROM marketplace_cursors WHERE source = $1 AND campaign_id = $2")
                .bind(self.source.as_str())
                .bind(polled.campaign_id)
                .fetch_optional(pool)
                .await?
                .unwrap_or((None, None));
        let started = Utc::now();
        let mut newest = watermark;
        let mut changed = 0;
        // OpenSea pages from the newest down to the watermark; a poll always starts at the top.
        if self.source == Source::OpenSea {
            cursor = None;
        }
        loop {
            let page = self.page(polled, cursor.as_deref(), watermark, throttles).await?;
            let (reports, next) = match self.source {
                Source::OpenSea => opensea_page(&page)?,
                Source::Rarible => rarible_page(&page, &self.chain, decimals).await?,
            };
            let head = self.chain.get_block_number().await.context("eth_blockNumber")?;
            let mut tx = pool.begin().await?;
            for report in &reports {
                let mut report = report.clone();
                if report.block_number.is_none()
                    && let Some(hash) = report.tx_hash
                {
                    report.block_number =
                        self.chain.get_transaction_receipt(hash).await.ok().flatten().and_then(|r| r.block_number);
                }
                changed += store(&mut tx, self.source, chain_id, polled, &report, head).await?;
                let t = report.sold_at.timestamp();
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
            // Rarible: the continuation (or the last activity's cursor) is where the next poll resumes.
            let resume = match self.source {
                Source::Rarible => next.clone().or_else(|| last_cursor(&page)).or(cursor.clone()),
                Source::OpenSea => None,
            };
            let done = next.is_none();
            sqlx::query(
                "INSERT INTO marketplace_cursors (source, campaign_id, cursor, watermark, polled_until, polled_at)
                 VALUES ($1, $2, $3, $4, $5, now())
                 ON CONFLICT (source, campaign_id) DO UPDATE SET cursor = EXCLUDED.cursor,
                     watermark = EXCLUDED.watermark,
                     polled_until = COALESCE(EXCLUDED.polled_until, marketplace_cursors.polled_until),
                     polled_at = now()",
            )
            .bind(self.source.as_str())
            .bind(polled.campaign_id)
            .bind(resume)
            // OpenSea's watermark moves only once every page down to it was read.
            .bind(if done || self.source == Source::Rarible { newest } else { watermark })
            // Everything up to the poll's start, or to the newest sale read if the source's clock
            // (the chain's block times) runs ahead, has been read.
            .bind(done.then(|| newest.and_then(|n| DateTime::from_timestamp(n, 0)).map_or(started, |t| t.max(started))))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            if done {
                return Ok(changed);
            }
            cursor = next;
        }
    }

    /// One page of the source's feed for `polled`, 429s waited out.
    async fn page(
        &self,
        polled: &Polled,
        cursor: Option<&str>,
        watermark: Option<i64>,
        throttles: &mut u32,
    ) -> anyhow::Result<Value> {
        loop {
            let request = match self.source {
                Source::OpenSea => {
                    let mut url = self.api.base.join(&format!("api/v2/events/collection/{}", polled.slug))?;
                    {
                        let mut query = url.query_pairs_mut();
                        query.append_pair("event_type", "sale").append_pair("limit", &PAGE.to_string());
                        if let Some(after) = watermark {
                            // The watermark's second again: sales sharing it are upserted, not lost.
                            query.append_pair("after", &(after - 1).to_string());
                        }
                        if let Some(next) = cursor {
                            query.append_pair("next", next);
                        }
                    }
                    self.http.get(url)
                }
                Source::Rarible => {
                    let mut url = self.api.base.join("v0.1/activities/byCollection")?;
                    {
                        let mut query = url.query_pairs_mut();
                        query
                            .append_pair("type", "SELL")
                            .append_pair("collection", &format!("ETHEREUM:{:#x}", polled.collection))
                            .append_pair("size", &PAGE.to_string())
                            .append_pair("sort", "EARLIEST_FIRST");
                        if let Some(continuation) = cursor {
                            query.append_pair("continuation", continuation);
                        }
                    }
                    self.http.get(url)
                }
            };
            let response = request
                .header("x-api-key", self.api.key.expose_secret())
                .header("accept", "application/json")
                .send()
                .await
                .with_context(|| format!("{} did not answer", self.source.as_str()))?;
            let status = response.status();
            let remaining =
                response.headers().get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()).map(str::to_owned);
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                *throttles += 1;
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(Duration::from_secs(1), Duration::from_secs)
                    .min(MAX_RETRY_AFTER);
                if *throttles > MAX_THROTTLES {
                    bail!("{} kept answering 429; the next run tries again", self.source.as_str());
                }
                tracing::info!(source = self.source.as_str(), wait_ms = wait.as_millis(), "rate limited; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            if status == reqwest::StatusCode::NOT_FOUND && self.source == Source::OpenSea {
                // OpenSea does not know the collection (not listed there, or under another
                // slug): nothing to read, nothing failed.
                tracing::debug!(slug = polled.slug, "OpenSea does not know this collection");
                return Ok(serde_json::json!({ "asset_events": [] }));
            }
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                bail!("{} answered {status}: {}", self.source.as_str(), body.chars().take(300).collect::<String>());
            }
            if let Some(remaining) = remaining {
                tracing::debug!(source = self.source.as_str(), remaining, "rate limit");
            }
            return response.json().await.with_context(|| format!("{}'s answer is not JSON", self.source.as_str()));
        }
    }
}

fn last_cursor(page: &Value) -> Option<String> {
    page["activities"].as_array()?.last()?["cursor"].as_str().map(str::to_owned)
}

fn address(value: &Value) -> Option<Address> {
    let text = value.as_str()?;
    text.strip_prefix("ETHEREUM:").unwrap_or(text).parse().ok()
}

fn hash(value: &Value) -> Option<B256> {
    value.as_str()?.parse().ok()
}

/// OpenSea's `asset_events` (sales only) and its `next` cursor.
fn opensea_page(page: &Value) -> anyhow::Result<(Vec<Report>, Option<String>)> {
    let events = page["asset_events"].as_array().context("OpenSea's answer has no asset_events")?;
    let mut reports = Vec::new();
    for e in events.iter().filter(|e| e["event_type"] == "sale") {
        let tx_hash = hash(&e["transaction"]);
        let token_id: U256 = e["nft"]["identifier"].as_str().context("a sale without nft.identifier")?.parse()?;
        let price: U256 = e["payment"]["quantity"].as_str().context("a sale without payment.quantity")?.parse()?;
        let time = e["event_timestamp"].as_i64().context("a sale without event_timestamp")?;
        reports.push(Report {
            external_id: format!("{}:{token_id}", e["transaction"].as_str().unwrap_or_default()),
            tx_hash,
            order_hash: hash(&e["order_hash"]),
            block_number: None,
            token_id,
            seller: address(&e["seller"]).unwrap_or_default(),
            buyer: address(&e["buyer"]).unwrap_or_default(),
            currency: address(&e["payment"]["token_address"]).unwrap_or_default(),
            price,
            sold_at: DateTime::from_timestamp(time, 0).context("event_timestamp out of range")?,
            reverted: false,
        });
    }
    Ok((reports, page["next"].as_str().filter(|n| !n.is_empty()).map(str::to_owned)))
}

/// Rarible's SELL activities, prices scaled to base units, and its continuation.
async fn rarible_page(
    page: &Value,
    chain: &DynProvider,
    decimals: &mut HashMap<Address, u8>,
) -> anyhow::Result<(Vec<Report>, Option<String>)> {
    let activities = page["activities"].as_array().context("Rarible's answer has no activities")?;
    let mut reports = Vec::new();
    for a in activities.iter().filter(|a| a["@type"] == "SELL" || a["type"] == "SELL") {
        let currency = match a["payment"]["type"]["@type"].as_str() {
            Some("ETH" | "CURRENCY_NATIVE") => Address::ZERO,
            _ => address(&a["payment"]["type"]["contract"]).context("an ERC-20 payment without its contract")?,
        };
        let places = if currency.is_zero() {
            18
        } else if let Some(places) = decimals.get(&currency) {
            *places
        } else {
            let token = shared::contracts::TestStablecoin::new(currency, chain.clone());
            let places = token.decimals().call().await.with_context(|| format!("decimals() of {currency}"))?;
            decimals.insert(currency, places);
            places
        };
        let value = a["payment"]["value"].as_str().context("a sale without payment.value")?;
        let price = parse_units(value, places).with_context(|| format!("payment value {value}"))?.get_absolute();
        let info = &a["blockchainInfo"];
        let date = a["date"].as_str().context("a sale without date")?;
        reports.push(Report {
            external_id: a["id"].as_str().context("an activity without id")?.to_owned(),
            tx_hash: hash(&a["transactionHash"]).or_else(|| hash(&info["transactionHash"])),
            order_hash: hash(&a["sellerOrderHash"]),
            block_number: info["blockNumber"].as_u64(),
            token_id: a["nft"]["type"]["tokenId"].as_str().context("a sale without nft tokenId")?.parse()?,
            seller: address(&a["seller"]).unwrap_or_default(),
            buyer: address(&a["buyer"]).unwrap_or_default(),
            currency,
            price,
            sold_at: DateTime::parse_from_rfc3339(date)?.with_timezone(&Utc),
            reverted: a["reverted"].as_bool().unwrap_or(false),
        });
    }
    Ok((reports, page["continuation"].as_str().filter(|c| !c.is_empty()).map(str::to_owned)))
}

/// Upserts one report; returns 1 when it is new or changed.
async fn store(
    conn: &mut PgConnection,
    source: Source,
    chain_id: u64,
    polled: &Polled,
    r: &Report,
    head: u64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "INSERT INTO marketplace_reports (source, external_id, chain_id, brand_id, campaign_id, collection, token_id,
             tx_hash, order_hash, block_number, seller, buyer, payment_token, price, sold_at, reverted, seen_head)
         VALUES ($1, $2, $3, $4, $5, $6, $7::numeric, $8, $9, $10, $11, $12, $13, $14::numeric, $15, $16, $17)
         ON CONFLICT (source, external_id) DO UPDATE SET reverted = EXCLUDED.reverted,
             block_number = COALESCE(EXCLUDED.block_number, marketplace_reports.block_number), updated_at = now()
         WHERE marketplace_reports.reverted IS DISTINCT FROM EXCLUDED.reverted
            OR marketplace_reports.block_number IS DISTINCT FROM COALESCE(EXCLUDED.block_number, marketplace_reports.block_number)",
    )
    .bind(source.as_str())
    .bind(&r.external_id)
    .bind(i64::try_from(chain_id).unwrap_or(i64::MAX))
    .bind(polled.brand_id)
    .bind(polled.campaign_id)
    .bind(polled.collection.to_vec())
    .bind(r.token_id.to_string())
    .bind(r.tx_hash.map(|h| h.to_vec()))
    .bind(r.order_hash.map(|h| h.to_vec()))
    .bind(r.block_number.and_then(|b| i64::try_from(b).ok()))
    .bind(r.seller.to_vec())
    .bind(r.buyer.to_vec())
    .bind((!r.currency.is_zero()).then(|| r.currency.to_vec()))
    .bind(r.price.to_string())
    .bind(r.sold_at)
    .bind(r.reverted)
    .bind(i64::try_from(head).unwrap_or(i64::MAX))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The daemon around one [`Poller`].
#[derive(Debug)]
pub struct Polling(pub Poller);

impl Daemon for Polling {
    fn name(&self) -> &'static str {
        match self.0.source {
            Source::OpenSea => "indexer.opensea",
            Source::Rarible => "indexer.rarible",
        }
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(self.0.interval)
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(self.0.poll(&ctx.pool))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn an_opensea_sale_is_read_in_base_units() {
        let page = json!({ "asset_events": [{ "event_type": "sale", "event_timestamp": 1_700_000_000,
            "transaction": format!("{:#x}", B256::repeat_byte(1)), "order_hash": format!("{:#x}", B256::repeat_byte(2)),
            "seller": "0x1111111111111111111111111111111111111111", "buyer": "0x2222222222222222222222222222222222222222",
            "quantity": 1, "payment": { "quantity": "1000000000000000000", "token_address": "0x0000000000000000000000000000000000000000",
            "decimals": 18, "symbol": "ETH" }, "nft": { "identifier": "115792089237316195423570985008687907853269984665640564039457584007913129639935" } },
            { "event_type": "transfer" }], "next": "abc" });
        let (reports, next) = opensea_page(&page).unwrap();
        assert_eq!(next.as_deref(), Some("abc"));
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].token_id, U256::MAX);
        assert_eq!(reports[0].price, U256::from(10u64.pow(18)));
        assert_eq!(reports[0].order_hash, Some(B256::repeat_byte(2)));
    }

    #[test]
    fn a_page_without_its_list_is_an_error_not_an_empty_feed() {
        assert!(opensea_page(&json!({ "detail": "oops" })).is_err());
    }
}
