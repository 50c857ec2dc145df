//! A brand's own orders, for its staff and its servers: a filtered, paginated list (newest first)
//! and one order by its public id. Another brand's order answers 404, like a missing one.
//!
//! The same access as refunds (permission `refunds-issue`: owners, support, admins, and API keys
//! that carry it): whoever may refund an order may find it; staff and managers see totals on the
//! dashboard instead.

use axum::extract::State;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Caller, Permission, require},
    chain::checksummed,
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Path, Query},
    },
    ids::{BrandId, CampaignId, ItemId},
    orders::{OrderState, PaymentMethod},
};
use sqlx::PgConnection;
use strum::VariantArray;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::new_order::BrandOrderPath;

/// The most orders one page holds.
const MAX_LIMIT: i64 = 200;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::RefundsIssue, routes!(list_orders)))
        .routes(require(Permission::RefundsIssue, routes!(get_brand_order)))
}

/// Which orders, and which page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OrderFilter {
    /// Only this campaign's orders.
    campaign_id: Option<i64>,
    /// pending, authorized, minting, minted, fulfilled, expired, failed or refunded.
    state: Option<String>,
    /// card, eth or stablecoin.
    method: Option<String>,
    /// Created at or after.
    from: Option<DateTime<Utc>>,
    /// Created before.
    to: Option<DateTime<Utc>>,
    /// Orders per page, 1–200 (default 50).
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An order as the brand sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BrandOrder {
    /// The order's public id (as in the buyer's API, webhooks and exports).
    id: Uuid,
    state: OrderState,
    campaign_id: CampaignId,
    item_id: ItemId,
    quantity: i32,
    method: PaymentMethod,
    currency: String,
    subtotal_minor: i64,
    discount_minor: i64,
    total_minor: i64,
    buyer_email: String,
    wallet_address: String,
    voucher_code: Option<String>,
    /// Card orders: the PaymentIntent the order is paid with.
    payment_intent_id: Option<String>,
    /// The first token minted for it (the batch is consecutive), decimal.
    first_token_id: Option<String>,
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    fulfilled_at: Option<DateTime<Utc>>,
}

/// One page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderPage {
    orders: Vec<BrandOrder>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<String>,
}

/// Where a page ends: the last order's creation time and id (orders are listed newest first).
fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (at, id) = raw.split_once('|')?;
    Some((DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc), id.parse().ok()?))
}

/// The brand's orders, newest first.
#[utoipa::path(get, path = "/brands/{brand_id}/orders", tag = "orders",
    params(("brand_id" = i64, Path), OrderFilter),
    responses((status = 200, body = OrderPage), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    Query(filter): Query<OrderFilter>,
) -> ApiResult<Json<OrderPage>> {
    let brand = caller.brand()?.id;
    let mut errors = shared::http::FieldErrors::default();
    if let Some(s) = filter.state.as_deref().filter(|s| s.parse::<OrderState>().is_err()) {
        let states = OrderState::names(OrderState::VARIANTS).join(", ");
        errors.add("state", format!("`{}` is not one of {states}", s.chars().take(32).collect::<String>()));
    }
    if let Some(Err(e)) = filter.method.as_deref().map(str::parse::<PaymentMethod>) {
        errors.add("method", e.to_string());
    }
    let limit = filter.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.add("limit", format!("must be between 1 and {MAX_LIMIT}"));
    }
    let cursor = filter.cursor.as_deref().map(|c| decode_cursor(c).ok_or(()));
    if let Some(Err(())) = cursor {
        errors.add("cursor", "is not a cursor this API gave out");
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from >= to
    {
        errors.add("from", "must be before to");
    }
    errors.finish()?;
    let query = Filter {
        campaign: filter.campaign_id,
        state: filter.state,
        method: filter.method,
        from: filter.from,
        to: filter.to,
        after: cursor.and_then(Result::ok),
        order: None,
        limit: limit + 1,
    };
    let mut orders = fetch(&mut *state.db().acquire().await?, brand, query).await?;
    let more = orders.len() as i64 > limit;
    orders.truncate(limit as usize);
    let next_cursor = more.then(|| orders.last().map(|o| encode_cursor(o.created_at, o.id))).flatten();
    Ok(Json(OrderPage { orders, next_cursor }))
}

/// One of the brand's orders.
#[utoipa::path(get, path = "/brands/{brand_id}/orders/{order_id}", tag = "orders",
    params(("brand_id" = i64, Path), ("order_id" = Uuid, Path)),
    responses((status = 200, body = BrandOrder), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_brand_order(
    State(state): State<AppState>,
    caller: Caller,
    Path(BrandOrderPath { order_id }): Path<BrandOrderPath>,
) -> ApiResult<Json<BrandOrder>> {
    let brand = caller.brand()?.id;
    let mut conn = state.db().acquire().await?;
    Ok(Json(load(&mut conn, brand, order_id).await?))
}

async fn load(conn: &mut PgConnection, brand: BrandId, order_id: Uuid) -> ApiResult<BrandOrder> {
    let query = Filter { order: Some(order_id), limit: 1, ..Filter::default() };
    fetch(conn, brand, query).await?.pop().ok_or_else(|| ApiError::NotFound(format!("no order {order_id}")))
}

/// What [`fetch`] selects, beyond the brand.
#[derive(Debug, Default)]
struct Filter {
    campaign: Option<i64>,
    state: Option<String>,
    method: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// Orders older than this (creation time, id): the page after a cursor.
    after: Option<(DateTime<Utc>, Uuid)>,
    order: Option<Uuid>,
    limit: i64,
}

/// The brand's orders that match, newest first.
async fn fetch(conn: &mut PgConnection, brand: BrandId, f: Filter) -> ApiResult<Vec<BrandOrder>> {
    let (after_at, after_id) = f.after.unzip();
    let rows = sqlx::query!(
        r#"SELECT o.public_id, o.state AS "state: OrderState", o.campaign_id AS "campaign_id: CampaignId",
                o.item_id AS "item_id: ItemId", o.quantity, o.method AS "method: PaymentMethod", o.currency,
                o.subtotal_minor, o.discount_minor, o.total_minor, o.buyer_email, o.wallet_address,
                v.code AS "voucher_code?", o.payment_intent_id, o.first_token_id::text, o.failure_reason,
                o.created_at, o.fulfilled_at
         FROM orders o LEFT JOIN vouchers v ON v.id = o.voucher_id
         WHERE o.brand_id = $1 AND ($2::bigint IS NULL OR o.campaign_id = $2) AND ($3::text IS NULL OR o.state = $3)
           AND ($4::text IS NULL OR o.method = $4) AND ($5::timestamptz IS NULL OR o.created_at >= $5)
           AND ($6::timestamptz IS NULL OR o.created_at < $6)
           AND ($7::timestamptz IS NULL OR (o.created_at, o.public_id) < ($7, $8))
           AND ($9::uuid IS NULL OR o.public_id = $9)
         ORDER BY o.created_at DESC, o.public_id DESC LIMIT $10"#,
        brand.get(),
        f.campaign,
        f.state,
        f.method,
        f.from,
        f.to,
        after_at,
        after_id,
        f.order,
        f.limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| BrandOrder {
            id: r.public_id,
            state: r.state,
            campaign_id: r.campaign_id,
            item_id: r.item_id,
            quantity: r.quantity,
            method: r.method,
            currency: r.currency,
            subtotal_minor: r.subtotal_minor,
            discount_minor: r.discount_minor,
            total_minor: r.total_minor,
            buyer_email: r.buyer_email,
            wallet_address: checksummed(&r.wallet_address),
            voucher_code: r.voucher_code,
            payment_intent_id: r.payment_intent_id,
            first_token_id: r.first_token_id,
            failure_reason: r.failure_reason,
            created_at: r.created_at,
            fulfilled_at: r.fulfilled_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = chrono::Utc::now();
        let id = uuid::Uuid::new_v4();
        let (back_at, back_id) = super::decode_cursor(&super::encode_cursor(at, id)).unwrap_or_default();
        assert_eq!((back_at.timestamp_micros(), back_id), (at.timestamp_micros(), id));
        assert!(super::decode_cursor("not a cursor").is_none());
        assert!(super::decode_cursor("").is_none());
    }
}
