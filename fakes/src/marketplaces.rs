//! Local stand-ins for the marketplaces' sale feeds, in their real wire formats, on one loopback
//! port:
//!
//! - **OpenSea API v2** `GET /api/v2/events/collection/{slug}?event_type=sale&after&before&limit&next`
//!   → `{"asset_events": [SaleEvent…], "next": "<cursor>"}`, newest first, `X-API-KEY` required;
//! - **Rarible** `GET /v0.1/activities/byCollection?type=SELL&collection=ETHEREUM:0x…&continuation&size&sort`
//!   → `{"continuation": "<cursor>", "activities": [SELL…]}`, prices decimal-adjusted.
//!
//! What they report is what happened on the chain: every Seaport `OrderFulfilled` the node has,
//! read when asked (a listing's NFTs bought by the fulfiller, an offer's NFTs sold by it, a
//! matched pair once). A test can add sales that never happened, hide ones that did, mark a
//! Rarible activity reverted, and make every Nth request a 429 with `Retry-After`.

// A handler's early answer (a refusal) is a whole response, as its normal one is.
#![allow(clippy::result_large_err)]

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

use alloy::{
    primitives::{Address, B256, U256, utils::format_units},
    providers::{Provider, ProviderBuilder},
    rpc::types::Filter,
    sol_types::SolEvent,
};
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};
use url::Url;

alloy::sol! {
    struct SpentItem { uint8 itemType; address token; uint256 identifier; uint256 amount; }
    struct ReceivedItem { uint8 itemType; address token; uint256 identifier; uint256 amount; address recipient; }
    event OrderFulfilled(bytes32 orderHash, address indexed offerer, address indexed zone, address recipient,
                         SpentItem[] offer, ReceivedItem[] consideration);
}

/// One sale as a marketplace reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reported {
    pub tx_hash: B256,
    pub block_hash: B256,
    pub block_number: u64,
    pub log_index: u64,
    pub order_hash: B256,
    pub collection: Address,
    pub token_id: U256,
    pub seller: Address,
    pub buyer: Address,
    /// `Address::ZERO` for ETH.
    pub currency: Address,
    /// The total paid, in base units.
    pub price: U256,
    /// Unix seconds.
    pub timestamp: u64,
}

/// Which feed a setting is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    OpenSea,
    Rarible,
}

#[derive(Debug, Default)]
struct FeedState {
    extra: Vec<Reported>,
    hidden: HashSet<(B256, U256)>,
    reverted: HashSet<(B256, U256)>,
    /// Every Nth request is refused with 429 (0: never).
    limit_every: u64,
    retry_after_secs: u64,
    requests: u64,
    refused: u64,
}

#[derive(Debug)]
struct Inner {
    rpc: Option<Url>,
    seaport: Address,
    slugs: HashMap<String, Address>,
    decimals: HashMap<Address, u8>,
    /// The most sales a page holds, whatever the client asks (as the real APIs cap it).
    page_max: usize,
    feeds: HashMap<Feed, FeedState>,
}

type Shared = Arc<Mutex<Inner>>;

/// The running fake; stops when dropped.
#[derive(Debug)]
pub struct MarketplaceFake {
    url: Url,
    state: Shared,
    server: JoinHandle<()>,
}

impl MarketplaceFake {
    /// The API key both feeds accept (any other is refused with 401).
    pub const API_KEY: &'static str = "local-marketplace-key";

    /// Starts both feeds; sales are read from `seaport`'s logs on the node at `rpc` (none
    /// without it).
    pub async fn start(rpc: Option<Url>, seaport: Address) -> std::io::Result<Self> {
        let state: Shared = Arc::new(Mutex::new(Inner {
            rpc,
            seaport,
            slugs: HashMap::new(),
            decimals: HashMap::new(),
            page_max: PAGE_MAX,
            feeds: HashMap::from([(Feed::OpenSea, FeedState::default()), (Feed::Rarible, FeedState::default())]),
        }));
        let app = Router::new()
            .route("/api/v2/events/collection/{slug}", get(opensea_events))
            .route("/v0.1/activities/byCollection", get(rarible_activities))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "marketplace fake stopped");
            }
        });
        let url = Url::parse(&format!("http://{addr}")).map_err(std::io::Error::other)?;
        Ok(Self { url, state, server })
    }

    pub fn url(&self) -> Url {
        self.url.clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the sales from the node at `rpc` from now on.
    pub fn set_chain(&self, rpc: Url) {
        self.with(|s| s.rpc = Some(rpc));
    }

    /// Pages hold at most `max` sales (both feeds).
    pub fn set_page_max(&self, max: usize) {
        self.with(|s| s.page_max = max.max(1));
    }

    /// OpenSea knows `collection` as `slug`.
    pub fn name_collection(&self, slug: &str, collection: Address) {
        self.with(|s| s.slugs.insert(slug.to_owned(), collection));
    }

    /// An ERC-20's decimals, for Rarible's decimal-adjusted prices (ETH has 18).
    pub fn set_decimals(&self, token: Address, decimals: u8) {
        self.with(|s| s.decimals.insert(token, decimals));
    }

    /// `feed` reports a sale that is not on the chain.
    pub fn add(&self, feed: Feed, sale: Reported) {
        self.with(|s| s.feeds.entry(feed).or_default().extra.push(sale));
    }

    /// `feed` never reports the sale of `token_id` in `tx_hash`.
    pub fn hide(&self, feed: Feed, tx_hash: B256, token_id: U256) {
        self.with(|s| s.feeds.entry(feed).or_default().hidden.insert((tx_hash, token_id)));
    }

    /// Rarible reports the sale of `token_id` in `tx_hash` with `reverted: true`.
    pub fn revert(&self, tx_hash: B256, token_id: U256) {
        self.with(|s| s.feeds.entry(Feed::Rarible).or_default().reverted.insert((tx_hash, token_id)));
    }

    /// Every `every`th request to `feed` is refused with 429 and `Retry-After: <secs>`.
    pub fn rate_limit(&self, feed: Feed, every: u64, retry_after_secs: u64) {
        self.with(|s| {
            let state = s.feeds.entry(feed).or_default();
            (state.limit_every, state.retry_after_secs) = (every, retry_after_secs);
        });
    }

    /// Requests `feed` answered and refused so far.
    pub fn requests(&self, feed: Feed) -> (u64, u64) {
        self.with(|s| s.feeds.get(&feed).map_or((0, 0), |f| (f.requests, f.refused)))
    }
}

impl Drop for MarketplaceFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

const PAGE_MAX: usize = 200;

/// The sales on the chain, oldest first.
async fn chain_sales(rpc: &Url, seaport: Address) -> Result<Vec<Reported>, String> {
    let provider = ProviderBuilder::new().connect_http(rpc.clone());
    let filter = Filter::new().address(seaport).event_signature(OrderFulfilled::SIGNATURE_HASH).from_block(0);
    let logs = provider.get_logs(&filter).await.map_err(|e| e.to_string())?;
    let mut times: HashMap<B256, u64> = HashMap::new();
    let mut decoded = Vec::new();
    for log in &logs {
        let (Some(block_hash), Some(block_number), Some(tx_hash), Some(log_index)) =
            (log.block_hash, log.block_number, log.transaction_hash, log.log_index)
        else {
            continue;
        };
        let Ok(event) = OrderFulfilled::decode_log(&log.inner) else { continue };
        if let std::collections::hash_map::Entry::Vacant(entry) = times.entry(block_hash) {
            let block = provider.get_block_by_hash(block_hash).await.map_err(|e| e.to_string())?;
            entry.insert(block.map_or(0, |b| b.header.timestamp));
        }
        decoded.push((block_hash, block_number, tx_hash, log_index, event.data));
    }
    let nft = |t: u8| (2..=5).contains(&t);
    let mut out = Vec::new();
    for (block_hash, block_number, tx_hash, log_index, e) in &decoded {
        let others = || decoded.iter().filter(|o| o.2 == *tx_hash && o.3 != *log_index).map(|o| &o.4);
        let base = |collection, token_id, seller, buyer, currency, price| Reported {
            tx_hash: *tx_hash,
            block_hash: *block_hash,
            block_number: *block_number,
            log_index: *log_index,
            order_hash: e.orderHash,
            collection,
            token_id,
            seller,
            buyer,
            currency,
            price,
            timestamp: times.get(block_hash).copied().unwrap_or(0),
        };
        if let Some(item) = e.offer.iter().find(|i| nft(i.itemType)) {
            // A listing: paid with its consideration's currency; bought by whoever asked for it.
            let Some(pay) = e.consideration.iter().find(|i| i.itemType < 2) else { continue };
            let price =
                e.consideration.iter().filter(|i| i.itemType < 2 && i.token == pay.token).map(|i| i.amount).sum();
            let buyer = others()
                .find(|o| o.consideration.iter().any(|c| c.token == item.token && c.identifier == item.identifier))
                .map_or(e.recipient, |o| o.offerer);
            out.push(base(item.token, item.identifier, e.offerer, buyer, pay.token, price));
        } else if let Some(item) = e.consideration.iter().find(|i| nft(i.itemType)) {
            // An offer: the other side of a match is reported with the listing.
            if others().any(|o| o.offer.iter().any(|i| i.token == item.token && i.identifier == item.identifier)) {
                continue;
            }
            let Some(pay) = e.offer.first() else { continue };
            let price = e.offer.iter().filter(|i| i.token == pay.token).map(|i| i.amount).sum();
            out.push(base(item.token, item.identifier, e.recipient, e.offerer, pay.token, price));
        }
    }
    Ok(out)
}

/// The feed's sales of `collection`: the chain's (unless hidden) and the added ones, oldest first.
async fn sales(state: &Shared, feed: Feed, collection: Address) -> Result<Vec<(Reported, bool)>, Response> {
    let (rpc, seaport) = {
        let s = state.lock().unwrap_or_else(PoisonError::into_inner);
        (s.rpc.clone(), s.seaport)
    };
    let mut all = match rpc {
        Some(rpc) => chain_sales(&rpc, seaport).await.map_err(|e| {
            (StatusCode::BAD_GATEWAY, Json(json!({ "detail": format!("the node did not answer: {e}") })))
                .into_response()
        })?,
        None => Vec::new(),
    };
    let s = state.lock().unwrap_or_else(PoisonError::into_inner);
    let f = s.feeds.get(&feed);
    all.retain(|r| f.is_none_or(|f| !f.hidden.contains(&(r.tx_hash, r.token_id))));
    all.extend(f.map(|f| f.extra.clone()).unwrap_or_default());
    all.retain(|r| r.collection == collection);
    all.sort_by_key(|r| (r.timestamp, r.block_number, r.log_index));
    Ok(all
        .into_iter()
        .map(|r| {
            let reverted = f.is_some_and(|f| f.reverted.contains(&(r.tx_hash, r.token_id)));
            (r, reverted)
        })
        .collect())
}

/// Counts the request; a 429 (with OpenSea's and Rarible's rate-limit headers) every Nth one,
/// or a 401 without the key.
fn admit(state: &Shared, feed: Feed, headers: &HeaderMap) -> Result<(), Response> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) != Some(MarketplaceFake::API_KEY) {
        return Err((StatusCode::UNAUTHORIZED, Json(json!({ "detail": "Invalid API key" }))).into_response());
    }
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    let f = s.feeds.entry(feed).or_default();
    f.requests += 1;
    if f.limit_every > 0 && f.requests.is_multiple_of(f.limit_every) {
        f.refused += 1;
        let mut response =
            (StatusCode::TOO_MANY_REQUESTS, Json(json!({ "detail": "Request was throttled." }))).into_response();
        let headers = response.headers_mut();
        headers.insert("retry-after", HeaderValue::from(f.retry_after_secs));
        headers.insert("x-ratelimit-limit", HeaderValue::from(f.limit_every));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
        headers.insert("x-ratelimit-reset", HeaderValue::from(f.retry_after_secs));
        return Err(response);
    }
    Ok(())
}

fn cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("offset:{offset}"))
}

fn offset(cursor: Option<&str>) -> Result<usize, Response> {
    let Some(cursor) = cursor else { return Ok(0) };
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| (StatusCode::BAD_REQUEST, Json(json!({ "detail": "invalid cursor" }))).into_response())
}

#[derive(Debug, Deserialize)]
struct OpenSeaQuery {
    after: Option<i64>,
    before: Option<i64>,
    limit: Option<usize>,
    next: Option<String>,
}

fn lower(a: Address) -> String {
    format!("{a:#x}")
}

async fn opensea_events(
    State(state): State<Shared>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    raw: axum::extract::RawQuery,
    Query(q): Query<OpenSeaQuery>,
) -> Response {
    if let Err(refused) = admit(&state, Feed::OpenSea, &headers) {
        return refused;
    }
    // `event_type` may repeat; only sales are served.
    let types: Vec<String> =
        raw.0.unwrap_or_default().split('&').filter_map(|p| p.strip_prefix("event_type=")).map(str::to_owned).collect();
    if !types.is_empty() && !types.iter().any(|t| t == "sale") {
        return Json(json!({ "asset_events": [] })).into_response();
    }
    let Some(collection) = state.lock().unwrap_or_else(PoisonError::into_inner).slugs.get(&slug).copied() else {
        return (StatusCode::NOT_FOUND, Json(json!({ "errors": [format!("Collection '{slug}' not found")] })))
            .into_response();
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=PAGE_MAX).contains(&limit) {
        return (StatusCode::BAD_REQUEST, Json(json!({ "errors": ["limit must be between 1 and 200"] })))
            .into_response();
    }
    let limit = limit.min(state.lock().unwrap_or_else(PoisonError::into_inner).page_max);
    let start = match offset(q.next.as_deref()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let mut all = match sales(&state, Feed::OpenSea, collection).await {
        Ok(all) => all,
        Err(e) => return e,
    };
    all.retain(|(r, _)| {
        let t = i64::try_from(r.timestamp).unwrap_or(i64::MAX);
        q.after.is_none_or(|a| t > a) && q.before.is_none_or(|b| t < b)
    });
    all.reverse(); // newest first
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(|(r, _)| {
            json!({
                "event_type": "sale", "event_timestamp": r.timestamp, "closing_date": r.timestamp, "chain": "ethereum",
                "transaction": r.tx_hash, "order_hash": r.order_hash,
                "protocol_address": "0x0000000000000068f116a894984e2db1123eb395",
                "seller": lower(r.seller), "buyer": lower(r.buyer), "quantity": 1,
                "payment": { "quantity": r.price.to_string(), "token_address": lower(r.currency),
                             "decimals": if r.currency.is_zero() { 18 } else { 6 },
                             "symbol": if r.currency.is_zero() { "ETH" } else { "TUSD" } },
                "nft": { "identifier": r.token_id.to_string(), "collection": slug, "contract": lower(r.collection),
                         "token_standard": "erc721", "name": format!("#{}", r.token_id), "image_url": null,
                         "metadata_url": null, "opensea_url": null, "updated_at": null,
                         "is_disabled": false, "is_nsfw": false },
            })
        })
        .collect();
    let mut body = json!({ "asset_events": page });
    if start + limit < all.len() {
        body["next"] = json!(cursor(start + limit));
    }
    Json(body).into_response()
}

#[derive(Debug, Deserialize)]
struct RaribleQuery {
    collection: Option<String>,
    continuation: Option<String>,
    size: Option<usize>,
    sort: Option<String>,
}

async fn rarible_activities(
    State(state): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<RaribleQuery>,
) -> Response {
    if let Err(refused) = admit(&state, Feed::Rarible, &headers) {
        return refused;
    }
    let bad = |detail: &str| {
        (StatusCode::BAD_REQUEST, Json(json!({ "code": "VALIDATION", "message": detail }))).into_response()
    };
    let Some(collection) =
        q.collection.as_deref().and_then(|c| c.strip_prefix("ETHEREUM:")).and_then(|a| a.parse::<Address>().ok())
    else {
        return bad("collection must be ETHEREUM:0x…");
    };
    let size = q.size.unwrap_or(50);
    if !(1..=1_000).contains(&size) {
        return bad("size must be between 1 and 1000");
    }
    let size = size.min(state.lock().unwrap_or_else(PoisonError::into_inner).page_max);
    let start = match offset(q.continuation.as_deref()) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let mut all = match sales(&state, Feed::Rarible, collection).await {
        Ok(all) => all,
        Err(e) => return e,
    };
    if q.sort.as_deref() != Some("EARLIEST_FIRST") {
        all.reverse();
    }
    let decimals = state.lock().unwrap_or_else(PoisonError::into_inner).decimals.clone();
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(size)
        .enumerate()
        .map(|(n, (r, reverted))| {
            let places = if r.currency.is_zero() { 18 } else { decimals.get(&r.currency).copied().unwrap_or(18) };
            let value = format_units(r.price, places).unwrap_or_default();
            let value = value.trim_end_matches('0').trim_end_matches('.').to_owned();
            let payment_type = if r.currency.is_zero() {
                json!({ "@type": "ETH" })
            } else {
                json!({ "@type": "ERC20", "contract": format!("ETHEREUM:{}", lower(r.currency)) })
            };
            let date = chrono::DateTime::from_timestamp(i64::try_from(r.timestamp).unwrap_or(0), 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            json!({
                "@type": "SELL", "id": format!("ETHEREUM:{:x}:{}", r.tx_hash, r.token_id), "date": date,
                "lastUpdatedAt": date, "cursor": cursor(start + n + 1), "reverted": reverted, "source": "OPEN_SEA",
                "transactionHash": r.tx_hash,
                "blockchainInfo": { "transactionHash": r.tx_hash, "blockHash": r.block_hash,
                                    "blockNumber": r.block_number, "logIndex": r.log_index },
                "nft": { "type": { "@type": "ERC721", "contract": format!("ETHEREUM:{}", lower(r.collection)),
                                   "tokenId": r.token_id.to_string() }, "value": "1" },
                "payment": { "type": payment_type, "value": value },
                "buyer": format!("ETHEREUM:{}", lower(r.buyer)), "seller": format!("ETHEREUM:{}", lower(r.seller)),
                "price": value, "type": "SELL", "sellerOrderHash": r.order_hash,
            })
        })
        .collect();
    let mut body = json!({ "activities": page });
    if start + size < all.len() {
        body["continuation"] = json!(cursor(start + size));
    }
    Json(body).into_response()
}
