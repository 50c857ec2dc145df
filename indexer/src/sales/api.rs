//! What the indexer answers about secondary sales: a campaign's sales (by token, marketplace and
//! time window) with the sources that reported each, and the gaps between the chain and the
//! marketplaces' APIs. Sales are public on chain and on the marketplaces, so are these routes.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::public,
    chain::checksummed,
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Path, Query},
    },
};
use sqlx::{Row, postgres::PgRow};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(public(routes!(sales))).routes(public(routes!(gaps)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CampaignPath {
    campaign_id: i64,
}

/// Which sales.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SalesQuery {
    /// Only this token (decimal).
    token_id: Option<String>,
    /// Only this marketplace (`opensea`, `seaport`, …).
    marketplace: Option<String>,
    /// Sold at or after.
    from: Option<DateTime<Utc>>,
    /// Sold before.
    to: Option<DateTime<Utc>>,
    /// At most this many, newest first (1 to 1,000; default 100).
    limit: Option<i64>,
}

/// One token sold, with what the royalty should have been and what it was.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SaleView {
    id: i64,
    token_id: String,
    block_number: i64,
    tx_hash: String,
    log_index: i32,
    order_hash: String,
    sold_at: DateTime<Utc>,
    /// `listing` (a listing filled) or `offer` (an offer accepted).
    side: String,
    marketplace: String,
    seller: String,
    buyer: String,
    /// `ETH`, or the ERC-20's EIP-55 address. Amounts are in its base units (wei for ETH).
    currency: String,
    price: String,
    marketplace_fee: String,
    seller_proceeds: String,
    royalty_receiver: String,
    royalty_expected: String,
    royalty_received: String,
    royalty_shortfall: String,
    royalty_bps_paid: i32,
    /// `chain`, and each marketplace API that reported the same transaction and token.
    sources: Vec<String>,
}

/// A campaign's sales, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Sales {
    campaign_id: i64,
    sales: Vec<SaleView>,
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![shared::http::FieldError::new(field, message)])
}

fn hex(bytes: &[u8]) -> String {
    format!("0x{}", alloy::hex::encode(bytes))
}

fn currency(token: Option<Vec<u8>>) -> String {
    token.as_deref().map_or_else(|| "ETH".to_owned(), checksummed)
}

fn sale(r: &PgRow) -> SaleView {
    SaleView {
        id: r.get("id"),
        token_id: r.get("token_id"),
        block_number: r.get("block_number"),
        tx_hash: hex(&r.get::<Vec<u8>, _>("tx_hash")),
        log_index: r.get("log_index"),
        order_hash: hex(&r.get::<Vec<u8>, _>("order_hash")),
        sold_at: r.get("sold_at"),
        side: r.get("side"),
        marketplace: r.get("marketplace"),
        seller: checksummed(&r.get::<Vec<u8>, _>("seller")),
        buyer: checksummed(&r.get::<Vec<u8>, _>("buyer")),
        currency: currency(r.get("payment_token")),
        price: r.get("price"),
        marketplace_fee: r.get("marketplace_fee"),
        seller_proceeds: r.get("seller_proceeds"),
        royalty_receiver: checksummed(&r.get::<Vec<u8>, _>("royalty_receiver")),
        royalty_expected: r.get("royalty_expected"),
        royalty_received: r.get("royalty_received"),
        royalty_shortfall: r.get("royalty_shortfall"),
        royalty_bps_paid: r.get("royalty_bps_paid"),
        sources: r.get("sources"),
    }
}

const SALE_COLUMNS: &str = "s.id, s.token_id::text AS token_id, s.block_number, s.tx_hash, s.log_index, s.order_hash,
    s.sold_at, s.side, s.marketplace, s.seller, s.buyer, s.payment_token, s.price::text AS price,
    s.marketplace_fee::text AS marketplace_fee, s.seller_proceeds::text AS seller_proceeds, s.royalty_receiver,
    s.royalty_expected::text AS royalty_expected, s.royalty_received::text AS royalty_received,
    s.royalty_shortfall::text AS royalty_shortfall, s.royalty_bps_paid,
    ARRAY['chain'] || ARRAY(SELECT DISTINCT r.source FROM marketplace_reports r
                            WHERE r.tx_hash = s.tx_hash AND r.token_id = s.token_id AND NOT r.reverted
                            ORDER BY r.source) AS sources";

async fn deployed(conn: &mut sqlx::PgConnection, campaign_id: i64) -> ApiResult<()> {
    sqlx::query("SELECT 1 FROM campaigns WHERE id = $1 AND collection_address IS NOT NULL")
        .bind(campaign_id)
        .fetch_optional(conn)
        .await?
        .map(drop)
        .ok_or_else(|| ApiError::NotFound(format!("no deployed campaign {campaign_id}")))
}

/// A campaign's secondary sales.
#[utoipa::path(get, path = "/campaigns/{campaign_id}/sales", tag = "indexer",
    params(("campaign_id" = i64, Path), SalesQuery),
    responses((status = 200, body = Sales), (status = 400, description = "A filter is malformed", body = Problem),
              (status = 404, description = "No such deployed campaign", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn sales(
    State(state): State<AppState>,
    Path(CampaignPath { campaign_id }): Path<CampaignPath>,
    Query(query): Query<SalesQuery>,
) -> ApiResult<Json<Sales>> {
    let token = match query.token_id.as_deref() {
        Some(t) if t.is_empty() || t.len() > 78 || !t.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(invalid("token_id", "must be a decimal number of at most 78 digits"));
        }
        t => t.map(str::to_owned),
    };
    if query.marketplace.as_deref().is_some_and(|m| m.is_empty() || m.len() > 40) {
        return Err(invalid("marketplace", "must be 1 to 40 characters"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(invalid("limit", "must be between 1 and 1000"));
    }
    let mut conn = state.db().acquire().await?;
    deployed(&mut conn, campaign_id).await?;
    let rows = sqlx::query(&format!(
        "SELECT {SALE_COLUMNS} FROM secondary_sales s
         WHERE s.campaign_id = $1 AND ($2::text IS NULL OR s.token_id = $2::numeric)
           AND ($3::text IS NULL OR s.marketplace = $3) AND ($4::timestamptz IS NULL OR s.sold_at >= $4)
           AND ($5::timestamptz IS NULL OR s.sold_at < $5)
         ORDER BY s.sold_at DESC, s.id DESC LIMIT $6"
    ))
    .bind(campaign_id)
    .bind(token)
    .bind(query.marketplace)
    .bind(query.from)
    .bind(query.to)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(Sales { campaign_id, sales: rows.iter().map(sale).collect() }))
}

/// A sale a marketplace's API reported that the chain does not have.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReportView {
    source: String,
    external_id: String,
    token_id: String,
    tx_hash: Option<String>,
    block_number: Option<i64>,
    sold_at: DateTime<Utc>,
    seller: String,
    buyer: String,
    currency: String,
    price: String,
}

/// A chain sale one polled source never reported.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Unreported {
    source: String,
    sale: SaleView,
}

/// The differences between the chain and the marketplaces' APIs, counted once the chain is
/// confirmed past the sale.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Gaps {
    campaign_id: i64,
    /// Facts at or below this block are confirmed.
    confirmed_block: Option<i64>,
    /// Chain sales a source that polled past their time never reported.
    unreported: Vec<Unreported>,
    /// Reports (not reverted) with no chain sale of the same transaction and token.
    unmatched: Vec<ReportView>,
}

/// Where the chain and the marketplaces disagree.
#[utoipa::path(get, path = "/campaigns/{campaign_id}/sales/gaps", tag = "indexer", params(("campaign_id" = i64, Path)),
    responses((status = 200, body = Gaps), (status = 404, description = "No such deployed campaign", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn gaps(
    State(state): State<AppState>,
    Path(CampaignPath { campaign_id }): Path<CampaignPath>,
) -> ApiResult<Json<Gaps>> {
    let mut conn = state.db().acquire().await?;
    deployed(&mut conn, campaign_id).await?;
    let confirmed: Option<i64> = sqlx::query_scalar(
        "SELECT i.confirmed_block FROM indexer_chains i JOIN campaigns c ON c.chain_id = i.chain_id WHERE c.id = $1",
    )
    .bind(campaign_id)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    let confirmed_block = confirmed.unwrap_or(-1);
    let unreported = sqlx::query(&format!(
        "SELECT c.source, {SALE_COLUMNS} FROM secondary_sales s
         JOIN marketplace_cursors c ON c.campaign_id = s.campaign_id AND c.polled_until >= s.sold_at
         WHERE s.campaign_id = $1 AND s.block_number <= $2
           AND NOT EXISTS (SELECT 1 FROM marketplace_reports r WHERE r.source = c.source AND r.tx_hash = s.tx_hash
                           AND r.token_id = s.token_id AND NOT r.reverted)
         ORDER BY s.sold_at, s.id, c.source LIMIT 1000"
    ))
    .bind(campaign_id)
    .bind(confirmed_block)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Unreported { source: r.get("source"), sale: sale(r) })
    .collect();
    let unmatched = sqlx::query(
        "SELECT r.source, r.external_id, r.token_id::text, r.tx_hash, r.block_number, r.sold_at, r.seller, r.buyer,
                r.payment_token, r.price::text
         FROM marketplace_reports r
         WHERE r.campaign_id = $1 AND NOT r.reverted AND COALESCE(r.block_number, r.seen_head) <= $2
           AND NOT EXISTS (SELECT 1 FROM secondary_sales s WHERE s.tx_hash = r.tx_hash AND s.token_id = r.token_id)
         ORDER BY r.sold_at, r.id LIMIT 1000",
    )
    .bind(campaign_id)
    .bind(confirmed_block)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| ReportView {
        source: r.get(0),
        external_id: r.get(1),
        token_id: r.get(2),
        tx_hash: r.get::<Option<Vec<u8>>, _>(3).as_deref().map(hex),
        block_number: r.get(4),
        sold_at: r.get(5),
        seller: checksummed(&r.get::<Vec<u8>, _>(6)),
        buyer: checksummed(&r.get::<Vec<u8>, _>(7)),
        currency: currency(r.get(8)),
        price: r.get(9),
    })
    .collect();
    Ok(Json(Gaps { campaign_id, confirmed_block: confirmed, unreported, unmatched }))
}
