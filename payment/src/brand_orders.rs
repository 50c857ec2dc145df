//! A brand's own orders, for its staff and its servers: a filtered, paginated list (newest first)
//! and one order by its public id. Another brand's order answers 404, like a missing one.
//!
//! The same access as refunds (permission `refunds-issue`: owners, support, admins, and API keys
//! that carry it): whoever may refund an order may find it; staff and managers see totals on the
//! dashboard instead.
//!
//! Browsers (`Accept: text/html`) get the same resources as staff pages: the list as a table
//! linking to each order, and an order's page with a form that refunds it (through
//! `POST /brands/{brand_id}/orders/{order_id}/refund`) when the refund route would take it.

use std::collections::HashMap;

use alloy::primitives::U256;
use axum::{
    extract::State,
    http::{HeaderMap, Uri},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Caller, Permission, require},
    chain::checksummed,
    config::Site,
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Path, Query},
    },
    ids::{BrandId, CampaignId, ItemId},
    orders::{OrderState, PaymentMethod},
    pages,
};
use sqlx::{PgConnection, Row};
use strum::VariantArray;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{new_order::BrandOrderPath, shop::price};

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

/// The brand's orders, newest first. A browser gets the staff page listing them.
#[utoipa::path(get, path = "/brands/{brand_id}/orders", tag = "orders",
    params(("brand_id" = i64, Path), OrderFilter),
    responses((status = 200, body = OrderPage), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    Query(filter): Query<OrderFilter>,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id;
    let page = list(&state, brand, filter).await?;
    if !pages::wants_html(&headers) {
        return Ok(Json(page).into_response());
    }
    let mut conn = state.db().acquire().await?;
    let names = Names::load(&mut conn, brand, page.orders.iter().map(|o| o.item_id)).await?;
    Ok(list_page(&state, brand, &uri, &page, &names))
}

/// The page of orders `filter` asks for.
async fn list(state: &AppState, brand: BrandId, filter: OrderFilter) -> ApiResult<OrderPage> {
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
    Ok(OrderPage { orders, next_cursor })
}

/// One of the brand's orders. A browser gets the order's staff page (with a refund form when
/// the order can be refunded).
#[utoipa::path(get, path = "/brands/{brand_id}/orders/{order_id}", tag = "orders",
    params(("brand_id" = i64, Path), ("order_id" = Uuid, Path)),
    responses((status = 200, body = BrandOrder), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_brand_order(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(BrandOrderPath { order_id }): Path<BrandOrderPath>,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id;
    let mut conn = state.db().acquire().await?;
    let order = load(&mut conn, brand, order_id).await?;
    if !pages::wants_html(&headers) {
        return Ok(Json(order).into_response());
    }
    let names = Names::load(&mut conn, brand, [order.item_id]).await?;
    Ok(order_page(&state, brand, &order, &names))
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

impl BrandOrder {
    /// Whether the refund route would take it (`POST …/refund`): a fulfilled card order paid
    /// with a PaymentIntent.
    fn refundable(&self) -> bool {
        self.state == OrderState::Fulfilled && self.method == PaymentMethod::Card && self.payment_intent_id.is_some()
    }

    /// The tokens minted for it: the first, or `first–last` (the batch is consecutive).
    fn tokens(&self) -> Option<String> {
        let first = self.first_token_id.as_deref()?;
        let more = u64::try_from(self.quantity).unwrap_or(1).saturating_sub(1);
        Some(match U256::from_str_radix(first, 10) {
            Ok(start) if more > 0 => format!("{first}–{}", start.saturating_add(U256::from(more))),
            _ => first.to_owned(),
        })
    }
}

/// What the pages call the brand and its orders' items, instead of their ids.
#[derive(Debug, Default)]
struct Names {
    brand: Option<String>,
    /// By item: its campaign's name and its own.
    items: HashMap<ItemId, (String, String)>,
}

impl Names {
    async fn load(conn: &mut PgConnection, brand: BrandId, items: impl IntoIterator<Item = ItemId>) -> ApiResult<Self> {
        let ids: Vec<i64> = items.into_iter().map(ItemId::get).collect();
        let name = sqlx::query_scalar("SELECT name FROM brands WHERE id = $1")
            .bind(brand.get())
            .fetch_optional(&mut *conn)
            .await?;
        let rows = sqlx::query(
            "SELECT i.id, i.name, c.name AS campaign FROM campaign_items i JOIN campaigns c ON c.id = i.campaign_id
             WHERE i.brand_id = $1 AND i.id = ANY($2)",
        )
        .bind(brand.get())
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        let items = rows
            .iter()
            .map(|row| Ok((ItemId::new(row.try_get("id")?), (row.try_get("campaign")?, row.try_get("name")?))))
            .collect::<sqlx::Result<_>>()?;
        Ok(Self { brand: name, items })
    }

    /// The order's campaign and item, by name when they have one here.
    fn of(&self, order: &BrandOrder) -> Markup {
        match self.items.get(&order.item_id) {
            Some((campaign, item)) => html! { (campaign) br; span.muted { (item) } },
            None => html! { "campaign " (order.campaign_id) ", item " (order.item_id) },
        }
    }
}

/// The staff pages' links: the brand's pages in the back office, and its orders here.
fn nav(state: &AppState, brand: BrandId) -> [(&'static str, String); 4] {
    let public = &state.config().http.public;
    let backoffice = |path: &str| public.link(Site::Backoffice, &format!("/brands/{brand}{path}"));
    [
        ("Brand", backoffice("")),
        ("Campaigns", backoffice("/campaigns")),
        ("Dashboard", backoffice("/dashboard")),
        ("Orders", format!("/brands/{brand}/orders")),
    ]
}

/// A moment as staff read it: `2025-01-31 14:05` (UTC), machine-readable in `datetime`.
fn when(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (at.format("%Y-%m-%d %H:%M")) } }
}

/// An order's state as a badge the stylesheet colours by `data-state`.
fn badge(state: OrderState) -> Markup {
    html! { span.badge data-state=(state.as_str()) { (state) } }
}

/// The list's query string with `cursor` in place of the one it has (none: the newest page),
/// its filters kept.
fn paged(query: Option<&str>, cursor: Option<&str>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "cursor" {
            out.append_pair(&name, &value);
        }
    }
    if let Some(cursor) = cursor {
        out.append_pair("cursor", cursor);
    }
    out.finish()
}

/// The brand's orders page: one page of the list (as the query asks, the newest by default),
/// each order linking to its own page, and links to the older orders and back to the newest.
fn list_page(state: &AppState, brand: BrandId, uri: &Uri, page: &OrderPage, names: &Names) -> Response {
    let here = format!("/brands/{brand}/orders");
    let link = |query: String| if query.is_empty() { here.clone() } else { format!("{here}?{query}") };
    let older = page.next_cursor.as_deref().map(|cursor| link(paged(uri.query(), Some(cursor))));
    let paging =
        uri.query().is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(name, _)| name == "cursor"));
    let newest = paging.then(|| link(paged(uri.query(), None)));
    let body = html! {
        section.card aria-labelledby="orders-title" {
            @if let Some(brand) = &names.brand { p.muted { (brand) } }
            h1 #orders-title { "Orders" }
            @if page.orders.is_empty() {
                p { "No orders here." }
            } @else {
                div.table {
                    table aria-labelledby="orders-title" {
                        thead {
                            tr {
                                th scope="col" { "Order" }
                                th scope="col" { "Created (UTC)" }
                                th scope="col" { "Campaign and item" }
                                th.num scope="col" { "Quantity" }
                                th.num scope="col" { "Total" }
                                th scope="col" { "Method" }
                                th scope="col" { "State" }
                                th scope="col" { "Buyer" }
                                th scope="col" { "Tokens" }
                            }
                        }
                        tbody {
                            @for order in &page.orders {
                                tr {
                                    td { a.hash href=(format!("{here}/{}", order.id)) { (order.id) } }
                                    td { (when(order.created_at)) }
                                    td { (names.of(order)) }
                                    td.num { (order.quantity) }
                                    td.num { (price(order.total_minor, &order.currency)) }
                                    td { (order.method) }
                                    td { (badge(order.state)) }
                                    td { (order.buyer_email) }
                                    td { @match order.tokens() { Some(tokens) => (tokens), None => span.muted { "not minted" } } }
                                }
                            }
                        }
                    }
                }
            }
            @if newest.is_some() || older.is_some() {
                nav aria-label="Pages of orders" {
                    p {
                        @if let Some(newest) = &newest { a href=(newest) { "Newest orders" } " " }
                        @if let Some(older) = &older { a href=(older) { "Older orders" } }
                    }
                }
            }
        }
    };
    pages::staff_page("Orders", &[], &nav(state, brand), body)
}

/// An order's page: everything its JSON shows, and a form refunding it when it can be refunded
/// (whoever sees the page may: the page needs the refund's permission).
fn order_page(state: &AppState, brand: BrandId, order: &BrandOrder, names: &Names) -> Response {
    let total = price(order.total_minor, &order.currency);
    let item = names.items.get(&order.item_id);
    let body = html! {
        section.card aria-labelledby="order-title" {
            p { a href=(format!("/brands/{brand}/orders")) { "All orders" } }
            h1 #order-title { "Order" }
            p.amount { (total) }
            dl.facts {
                dt { "Order" } dd.hash { (order.id) }
                dt { "State" } dd { (badge(order.state)) }
                dt { "Created (UTC)" } dd { (when(order.created_at)) }
                @if let Some(at) = order.fulfilled_at { dt { "Fulfilled (UTC)" } dd { (when(at)) } }
                dt { "Campaign" }
                dd { @if let Some((campaign, _)) = item { (campaign) " " } span.muted { "#" (order.campaign_id) } }
                dt { "Item" }
                dd { @if let Some((_, name)) = item { (name) " " } span.muted { "#" (order.item_id) } }
                dt { "Quantity" } dd { (order.quantity) }
                dt { "Subtotal" } dd { (price(order.subtotal_minor, &order.currency)) }
                dt { "Discount" } dd { (price(order.discount_minor, &order.currency)) }
                @if let Some(code) = &order.voucher_code { dt { "Voucher" } dd { (code) } }
                dt { "Total" } dd { (total) }
                dt { "Method" } dd { (order.method) }
                @if let Some(intent) = &order.payment_intent_id { dt { "Payment intent" } dd.hash { (intent) } }
                dt { "Buyer" } dd { (order.buyer_email) }
                dt { "Wallet" } dd.hash { (order.wallet_address) }
                dt { "Tokens" }
                dd { @match order.tokens() { Some(tokens) => (tokens), None => span.muted { "not minted" } } }
                @if let Some(reason) = &order.failure_reason { dt { "Why it failed" } dd { (reason) } }
            }
        }
        @if order.refundable() {
            section.card aria-labelledby="refund-title" {
                h2 #refund-title { "Refund" }
                p { "Gives the buyer the whole total, " (total) ", back on their card. A refund cannot be undone." }
                form data-api=(format!("/brands/{brand}/orders/{}/refund", order.id)) data-method="POST" {
                    label for="refund-confirm" {
                        input #refund-confirm type="checkbox" required;
                        " Yes, refund this order in full"
                    }
                    button.small type="submit" { "Refund" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
    };
    pages::staff_page(&format!("Order {}", order.id), &[], &nav(state, brand), body)
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

    #[test]
    fn a_state_is_a_badge_the_stylesheet_colours_and_tokens_read_as_a_range() {
        let badge = super::badge(shared::orders::OrderState::Fulfilled).into_string();
        assert_eq!(badge, r#"<span class="badge" data-state="fulfilled">fulfilled</span>"#);
        let mut order = super::BrandOrder {
            id: uuid::Uuid::nil(),
            state: shared::orders::OrderState::Fulfilled,
            campaign_id: shared::ids::CampaignId::new(1),
            item_id: shared::ids::ItemId::new(2),
            quantity: 3,
            method: shared::orders::PaymentMethod::Card,
            currency: "EUR".into(),
            subtotal_minor: 7500,
            discount_minor: 0,
            total_minor: 7500,
            buyer_email: "buyer@example.com".into(),
            wallet_address: String::new(),
            voucher_code: None,
            payment_intent_id: Some("pi_1".into()),
            first_token_id: Some(
                "115792089237316195423570985008687907853269984665640564039457584007913129639934".into(),
            ),
            failure_reason: None,
            created_at: chrono::Utc::now(),
            fulfilled_at: None,
        };
        // The range stops at the largest token id rather than wrapping.
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(
            order.tokens().as_deref(),
            Some(format!("{}–{max}", order.first_token_id.clone().unwrap_or_default()).as_str())
        );
        assert!(order.refundable());
        order.quantity = 1;
        order.first_token_id = Some("7".into());
        assert_eq!(order.tokens().as_deref(), Some("7"));
        order.first_token_id = None;
        order.state = shared::orders::OrderState::Minted;
        assert_eq!((order.tokens(), order.refundable()), (None, false));
    }

    #[test]
    fn paging_links_keep_the_filters_and_replace_the_cursor() {
        assert_eq!(super::paged(None, Some("abc")), "cursor=abc");
        assert_eq!(
            super::paged(Some("state=fulfilled&cursor=old&limit=2"), Some("new")),
            "state=fulfilled&limit=2&cursor=new"
        );
        assert_eq!(super::paged(Some("cursor=old"), None), "");
        assert_eq!(
            super::paged(Some("from=2025-01-01T00%3A00%3A00%2B00%3A00"), None),
            "from=2025-01-01T00%3A00%3A00%2B00%3A00"
        );
    }
}
