//! Orders: a buyer orders an item for a wallet; inventory is reserved atomically, the per-wallet
//! limit and the voucher's caps are enforced in the same transaction; the order is pending until
//! it is paid or expires. `Idempotency-Key` makes creation safe to retry.
//!
//! Reservation is one conditional UPDATE (`reserved + n <= supply`), so no interleaving of
//! buyers can oversell; it also locks the item row, so the per-wallet count that follows sees
//! every order committed before it.

use std::time::Duration;

use alloy::primitives::Address;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::{
    AppState,
    auth::public,
    chain::parse_address,
    config::Site,
    http::OnConstraint,
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Path},
    },
    ids::{BrandId, CampaignId, ItemId, OrderId},
    money::{Bps, Currency, Money, Rounding},
    orders::{MAX_ORDER_QUANTITY as MAX_QUANTITY, OrderState, PaymentMethod, inventory},
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::new_order::{Created, OrderPath};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(public(routes!(create_order)))
        .routes(public(routes!(get_order)))
        .routes(public(routes!(order_events)))
}

/// What a buyer orders.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewOrder {
    pub(crate) item_id: ItemId,
    #[schema(minimum = 1, maximum = 100)]
    quantity: i64,
    /// Receipts go here.
    email: String,
    /// EIP-55 checksummed: where the NFTs are minted to.
    pub(crate) wallet_address: String,
    /// card, eth or stablecoin (among the item's accepted methods).
    method: String,
    /// A discount code of the brand.
    voucher_code: Option<String>,
}

/// An order as its buyer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Order {
    /// The order's reference (use it in URLs).
    pub(crate) id: Uuid,
    pub(crate) state: OrderState,
    campaign_id: CampaignId,
    pub(crate) item_id: ItemId,
    pub(crate) quantity: i32,
    method: PaymentMethod,
    pub(crate) currency: String,
    subtotal_minor: i64,
    discount_minor: i64,
    pub(crate) total_minor: i64,
    pub(crate) wallet_address: String,
    /// The buyer's e-mail, masked (`b***@example.com`): anyone holding the order's id can read
    /// this view. The brand sees it whole (`GET /brands/{brand_id}/orders/{id}`).
    email: String,
    voucher_code: Option<String>,
    /// Until then the units are held for this order.
    expires_at: Option<DateTime<Utc>>,
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
    /// Wallet orders: the signed quote to send to the Checkout contract.
    pub(crate) wallet_payment: Option<crate::wallet::WalletPayment>,
    /// Card orders: the PaymentIntent (its client secret only in the creation answer).
    card_payment: Option<crate::card::CardPayment>,
    /// Once minted: the first token's id (decimal), and its public metadata.
    first_token_id: Option<String>,
    metadata_url: Option<String>,
}

/// The order with public id `id`.
pub(crate) async fn load(conn: &mut PgConnection, id: Uuid) -> ApiResult<Order> {
    let row = sqlx::query!(
        r#"SELECT o.id AS "id: OrderId", o.public_id, o.state AS "state: OrderState",
                  o.campaign_id AS "campaign_id: CampaignId", o.item_id AS "item_id: ItemId", o.quantity,
                  o.method AS "method: PaymentMethod", o.currency, o.subtotal_minor, o.discount_minor, o.total_minor,
                  o.wallet_address, o.buyer_email, v.code AS "voucher_code?", o.expires_at, o.failure_reason,
                  o.created_at, o.payment_intent_id
           FROM orders o LEFT JOIN vouchers v ON v.id = o.voucher_id WHERE o.public_id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no order {id}")))?;
    let wallet_payment = crate::wallet::view(conn, row.id).await?;
    let first_token_id: Option<String> = sqlx::query_scalar("SELECT first_token_id::text FROM orders WHERE id = $1")
        .bind(row.id.get())
        .fetch_one(&mut *conn)
        .await?;
    Ok(Order {
        first_token_id,
        metadata_url: None,
        wallet_payment,
        card_payment: row.payment_intent_id.map(crate::card::CardPayment::of),
        id: row.public_id,
        state: row.state,
        campaign_id: row.campaign_id,
        item_id: row.item_id,
        quantity: row.quantity,
        method: row.method,
        currency: row.currency,
        subtotal_minor: row.subtotal_minor,
        discount_minor: row.discount_minor,
        total_minor: row.total_minor,
        wallet_address: shared::chain::checksummed(&row.wallet_address),
        email: masked(&row.buyer_email),
        voucher_code: row.voucher_code,
        expires_at: row.expires_at,
        failure_reason: row.failure_reason,
        created_at: row.created_at,
    })
}

impl Order {
    /// Links the minted token to its public metadata (served by the back office).
    pub(crate) fn link(mut self, state: &AppState) -> Self {
        let public = &state.config().http.public;
        self.metadata_url = self
            .first_token_id
            .as_ref()
            .map(|token| public.link(Site::Backoffice, &format!("/metadata/{}/{token}", self.campaign_id)));
        self
    }
}

/// `buyer@example.com` → `b***@example.com`: enough for the buyer to recognise, too little to
/// harvest.
fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => format!("{}***@{domain}", local.chars().next().unwrap_or('*')),
        None => "***".to_owned(),
    }
}

fn sold_out(left: i32) -> ApiError {
    let detail = if left <= 0 { "sold out".to_owned() } else { format!("only {left} left") };
    ApiError::Conflict { code: shared::http::ConflictCode::SoldOut, detail }
}

/// A validated order request.
struct Checked {
    item: ItemId,
    quantity: i32,
    email: String,
    wallet: Address,
    method: PaymentMethod,
    voucher: Option<String>,
}

fn check(body: NewOrder) -> ApiResult<Checked> {
    let mut errors = Vec::new();
    let quantity = match i32::try_from(body.quantity) {
        Ok(q) if (1..=MAX_QUANTITY).contains(&i64::from(q)) => q,
        _ => {
            errors.push(FieldError::new("quantity", format!("must be between 1 and {MAX_QUANTITY}")));
            0
        }
    };
    let email = match shared::auth::Email::parse(&body.email) {
        Ok(email) => email.as_str().to_owned(),
        Err(_) => {
            errors.push(FieldError::new("email", "must be an email address"));
            String::new()
        }
    };
    let wallet =
        parse_address(&body.wallet_address).map_err(|reason| errors.push(FieldError::new("wallet_address", reason)));
    let method =
        body.method.parse::<PaymentMethod>().map_err(|e| errors.push(FieldError::new("method", e.to_string())));
    let voucher = body.voucher_code.map(|code| code.trim().to_ascii_uppercase()).filter(|code| !code.is_empty());
    match (errors.is_empty(), wallet, method) {
        (true, Ok(wallet), Ok(method)) => Ok(Checked { item: body.item_id, quantity, email, wallet, method, voucher }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// What an order is priced from: the item as it is now (read without a lock).
struct Offer {
    brand_id: BrandId,
    campaign_id: CampaignId,
    price_minor: i64,
    currency: String,
    per_wallet_limit: Option<i32>,
}

/// The item on sale for this order, or why it is not: a precise, clear refusal.
async fn offer(conn: &mut PgConnection, order: &Checked) -> ApiResult<Offer> {
    let item = sqlx::query!(
        r#"SELECT i.brand_id AS "brand_id: BrandId", i.campaign_id AS "campaign_id: CampaignId", i.price_minor,
                  i.currency, i.per_wallet_limit, i.supply, i.reserved, i.sale_starts_at, i.sale_ends_at,
                  i.payment_methods, c.state
           FROM campaign_items i JOIN campaigns c ON c.id = i.campaign_id WHERE i.id = $1"#,
        order.item.get()
    )
    .fetch_optional(conn)
    .await?;
    let Some(item) = item else {
        return Err(ApiError::Validation(vec![FieldError::new("item_id", "no such item")]));
    };
    let now = Utc::now();
    let refusal = if item.state != "live" {
        Some(ApiError::Conflict {
            code: shared::http::ConflictCode::NotOnSale,
            detail: format!("the campaign is {}", item.state),
        })
    } else if item.sale_starts_at.is_some_and(|starts| now < starts) {
        Some(ApiError::Conflict {
            code: shared::http::ConflictCode::NotOnSale,
            detail: "the sale has not started".into(),
        })
    } else if item.sale_ends_at.is_some_and(|ends| now >= ends) {
        Some(ApiError::Conflict { code: shared::http::ConflictCode::NotOnSale, detail: "the sale has ended".into() })
    } else if !item.payment_methods.iter().any(|m| m == order.method.as_str()) {
        Some(ApiError::Validation(vec![FieldError::new(
            "method",
            format!("this item accepts {}", item.payment_methods.join(", ")),
        )]))
    } else if let Err(refusal) = item.currency.parse::<Currency>().map_err(|e| e.to_string()).and_then(|currency| {
        order.method.check_price(Money::new(item.price_minor, currency)).map_err(|e| e.to_string())
    }) {
        // An item configured before today's rules: it cannot be paid this way.
        Some(ApiError::Validation(vec![FieldError::new(
            "method",
            format!("this item cannot be paid by {}: its price {refusal}", order.method),
        )]))
    } else if item.supply - item.reserved < order.quantity {
        Some(sold_out(item.supply - item.reserved))
    } else {
        None
    };
    match refusal {
        Some(refusal) => Err(refusal),
        None => Ok(Offer {
            brand_id: item.brand_id,
            campaign_id: item.campaign_id,
            price_minor: item.price_minor,
            currency: item.currency,
            per_wallet_limit: item.per_wallet_limit,
        }),
    }
}

/// The voucher `code` applied to `subtotal`: its id and the discount, with its use counted.
async fn apply_voucher(
    conn: &mut PgConnection,
    brand: BrandId,
    campaign: CampaignId,
    email: &str,
    code: &str,
    subtotal: Money,
) -> ApiResult<(i64, i64)> {
    let invalid = |message: &str| ApiError::Validation(vec![FieldError::new("voucher_code", message)]);
    // Counting the use locks the voucher row: concurrent orders with one code queue here.
    let voucher = sqlx::query!(
        "UPDATE vouchers SET uses = uses + 1, updated_at = now()
         WHERE brand_id = $1 AND code = $2 AND active AND (campaign_id IS NULL OR campaign_id = $3)
           AND (starts_at IS NULL OR starts_at <= now()) AND (ends_at IS NULL OR now() < ends_at)
           AND (max_uses IS NULL OR uses < max_uses)
         RETURNING id, kind, percent_bps, amount_minor, currency, min_order_minor, max_uses_per_buyer",
        brand.get(),
        code,
        campaign.get()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| invalid("is not valid for this item now (unknown, inactive, outside its dates or used up)"))?;
    if let Some(cap) = voucher.max_uses_per_buyer {
        let used = sqlx::query_scalar!(
            "SELECT count(*) AS \"n!\" FROM orders
             WHERE voucher_id = $1 AND lower(buyer_email) = lower($2) AND released_at IS NULL",
            voucher.id,
            email
        )
        .fetch_one(&mut *conn)
        .await?;
        if used >= i64::from(cap) {
            return Err(invalid("has been used as often as it may be by one buyer"));
        }
    }
    if voucher.currency.as_deref().is_some_and(|c| c != subtotal.currency().code()) {
        return Err(invalid("is for another currency"));
    }
    if subtotal.minor() < voucher.min_order_minor {
        return Err(invalid("needs a larger order"));
    }
    let discount = match (voucher.percent_bps, voucher.amount_minor) {
        // Rounded down: the discount is never more than the stated percentage.
        (Some(bps), _) => {
            let bps = Bps::new(u32::try_from(bps).unwrap_or(0))?;
            subtotal.share(bps, Rounding::Floor).minor()
        }
        (None, Some(amount)) => amount.min(subtotal.minor()),
        (None, None) => 0,
    };
    Ok((voucher.id, discount))
}

fn request_hash(body: &NewOrder) -> String {
    let canonical =
        json!([body.item_id, body.quantity, body.email, body.wallet_address, body.method, body.voucher_code]);
    alloy::hex::encode(Sha256::digest(canonical.to_string()))
}

/// Creates a pending order and reserves its units (and its voucher use). With the same
/// `Idempotency-Key` and body, a retry answers with the same order.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries return the same order")),
    responses(
        (status = 201, body = Order),
        (status = 200, description = "The order this Idempotency-Key created before", body = Order),
        (status = 409, description = "Sold out, not on sale, or over the wallet's limit", body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<NewOrder>,
) -> ApiResult<Response> {
    let key = match headers.get("idempotency-key").map(|v| v.to_str().map(str::trim)) {
        None => None,
        Some(Ok(key)) if !key.is_empty() && key.len() <= 255 => Some(key.to_owned()),
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 visible characters",
            )]));
        }
    };
    let hash = request_hash(&body);
    if let Some(key) = &key
        && let Some(existing) = replay(&state, key, &hash).await?
    {
        return Ok((StatusCode::OK, Json(existing)).into_response());
    }
    let order = check(body)?;
    match insert(&state, &order, key.as_deref(), &hash).await {
        Ok((created, view)) => match pay(&state, &created, view).await {
            Ok(view) => Ok((StatusCode::CREATED, Json(view)).into_response()),
            Err(refused) => {
                // The buyer is told no: the order did not happen (no units held, nothing announced).
                let mut tx = state.db().begin().await?;
                shared::orders::withdraw(&mut tx, created.id).await?;
                tx.commit().await?;
                Err(refused)
            }
        },
        // Two retries raced: the other one created it.
        Err(ApiError::Conflict { code: shared::http::ConflictCode::IdempotencyRace, .. }) => {
            let key = key.as_deref().unwrap_or_default();
            let existing =
                replay(&state, key, &hash).await?.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("lost order")))?;
            Ok((StatusCode::OK, Json(existing)).into_response())
        }
        Err(e) => Err(e),
    }
}

/// Sets up how the new order is paid: a PaymentIntent for a card, a signed FX quote for a wallet.
async fn pay(state: &AppState, created: &Created, mut view: Order) -> ApiResult<Order> {
    match created.method {
        PaymentMethod::Card => {
            view.card_payment = Some(crate::card::start(state, created).await?);
            Ok(view)
        }
        PaymentMethod::Eth | PaymentMethod::Stablecoin => {
            crate::wallet::quote(state, created).await?;
            let mut conn = state.db().acquire().await?;
            load(&mut conn, view.id).await
        }
    }
}

async fn replay(state: &AppState, key: &str, hash: &str) -> ApiResult<Option<Order>> {
    let mut conn = state.db().acquire().await?;
    let found = sqlx::query!("SELECT public_id, request_hash FROM orders WHERE idempotency_key = $1", key)
        .fetch_optional(&mut *conn)
        .await?;
    match found {
        None => Ok(None),
        Some(row) if row.request_hash.as_deref() == Some(hash) => {
            let mut order = load(&mut conn, row.public_id).await?;
            // The same buyer retrying (their first answer was lost): a pending card order needs
            // its client secret again, or it cannot be paid. Stripe's idempotency key returns the
            // same PaymentIntent; a first creation still under way is completed here.
            if order.method == PaymentMethod::Card
                && let Some(created) = Created::pending(&mut conn, row.public_id).await?
            {
                drop(conn);
                order.card_payment = Some(crate::card::start(state, &created).await?);
            }
            Ok(Some(order))
        }
        Some(_) => Err(ApiError::Conflict {
            code: shared::http::ConflictCode::IdempotencyKeyReused,
            detail: "this Idempotency-Key was used for a different order".into(),
        }),
    }
}

/// Creates the order; returns what its payment needs and its view.
async fn insert(state: &AppState, order: &Checked, key: Option<&str>, hash: &str) -> ApiResult<(Created, Order)> {
    let mut tx = state.db().begin().await?;
    let item = offer(&mut tx, order).await?;
    let currency: Currency = item.currency.parse()?;
    let too_much = || {
        let max = Money::new(order.method.max_total_minor(), currency);
        ApiError::validation("quantity", format!("a {} payment can be at most {max}; order fewer units", order.method))
    };
    let subtotal = Money::new(item.price_minor, currency)
        .checked_mul(u32::try_from(order.quantity).unwrap_or(0))
        .map_err(|_| too_much())?;
    if subtotal.minor() > order.method.max_total_minor() {
        return Err(too_much());
    }
    let (voucher, discount) = match &order.voucher {
        Some(code) => {
            let (id, discount) =
                apply_voucher(&mut tx, item.brand_id, item.campaign_id, &order.email, code, subtotal).await?;
            (Some(id), discount)
        }
        None => (None, 0),
    };
    let total = Money::new(subtotal.minor() - discount, currency);
    let created = sqlx::query!(
        "INSERT INTO orders (brand_id, campaign_id, item_id, quantity, method, currency, subtotal_minor, discount_minor,
             total_minor, buyer_email, wallet_address, voucher_id, expires_at, idempotency_key, request_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now() + $13::interval, $14, $15)
         RETURNING id, public_id, expires_at, created_at",
        item.brand_id.get(),
        item.campaign_id.get(),
        order.item.get(),
        order.quantity,
        order.method.as_str(),
        item.currency,
        subtotal.minor(),
        discount,
        total.minor(),
        order.email,
        order.wallet.as_slice(),
        voucher,
        sqlx::postgres::types::PgInterval::try_from(state.part::<crate::Payments>()?.config.hold)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))?,
        key,
        hash
    )
    .fetch_one(&mut *tx)
    .await
    .on_constraint("orders_idempotency_key", || ApiError::Conflict {
        code: shared::http::ConflictCode::IdempotencyRace,
        detail: String::new(),
    })?;
    // The hot row last: its lock is held only from here to the commit. The conditional UPDATE
    // is what makes overselling impossible; the lock it takes serialises buyers of this item,
    // so the wallet's count below sees every order committed before this one.
    if let Err(shortage) = inventory::reserve(&mut tx, order.item, order.quantity).await? {
        return Err(sold_out(shortage.left));
    }
    if let Some(limit) = item.per_wallet_limit {
        // This order included.
        let held = inventory::held_by_wallet(&mut tx, order.item, order.wallet.as_slice()).await?;
        if held > i64::from(limit) {
            return Err(ApiError::Conflict {
                code: shared::http::ConflictCode::WalletLimit,
                detail: format!(
                    "a wallet may hold {limit} of this item; this one has {} ordered",
                    held - i64::from(order.quantity)
                ),
            });
        }
    }
    tx.commit().await?;
    // The view from what this transaction wrote: a fresh order has no payment yet.
    let view = Order {
        first_token_id: None,
        metadata_url: None,
        id: created.public_id,
        state: OrderState::Pending,
        campaign_id: item.campaign_id,
        item_id: order.item,
        quantity: order.quantity,
        method: order.method,
        currency: item.currency.clone(),
        subtotal_minor: subtotal.minor(),
        discount_minor: discount,
        total_minor: total.minor(),
        wallet_address: order.wallet.to_checksum(None),
        email: masked(&order.email),
        voucher_code: voucher.and(order.voucher.clone()),
        expires_at: created.expires_at,
        failure_reason: None,
        created_at: created.created_at,
        wallet_payment: None,
        card_payment: None,
    };
    let created = Created {
        id: OrderId::new(created.id),
        public_id: created.public_id,
        brand_id: item.brand_id,
        campaign_id: item.campaign_id,
        item_id: order.item,
        quantity: order.quantity,
        method: order.method,
        total,
    };
    Ok((created, view))
}

/// An order's status.
#[utoipa::path(get, path = "/orders/{order_id}", tag = "orders", params(("order_id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_order(
    State(state): State<AppState>,
    Path(OrderPath { order_id }): Path<OrderPath>,
    headers: axum::http::HeaderMap,
) -> ApiResult<Response> {
    let mut conn = state.db().acquire().await?;
    let order = load(&mut conn, order_id).await?.link(&state);
    Ok(match shared::pages::wants_html(&headers) {
        true => crate::shop::order_page(&order),
        false => Json(order).into_response(),
    })
}

/// Server-Sent Events of an order's status for a checkout page: an `order` event with the order
/// now and at every change, until it is final (fulfilled, expired, failed or refunded).
#[utoipa::path(get, path = "/orders/{order_id}/events", tag = "orders", params(("order_id" = Uuid, Path)),
    responses(
        (status = 200, description = "text/event-stream of `order` events", content_type = "text/event-stream"),
        (status = 404, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn order_events(
    State(state): State<AppState>,
    Path(OrderPath { order_id }): Path<OrderPath>,
) -> ApiResult<Response> {
    let first = {
        let mut conn = state.db().acquire().await?;
        load(&mut conn, order_id).await?.link(&state)
    };
    let stream =
        futures_util::stream::unfold((state, Some(first), None::<OrderState>), move |(state, next, last)| async move {
            let mut next = next;
            loop {
                let order = match next.take() {
                    Some(order) => order,
                    None => {
                        if last.is_some_and(OrderState::is_final) {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        let mut conn = state.db().acquire().await.ok()?;
                        load(&mut conn, order_id).await.ok()?.link(&state)
                    }
                };
                if last != Some(order.state) {
                    let event = Event::default().event("order").json_data(&order).ok()?;
                    let seen = Some(order.state);
                    return Some((Ok::<_, std::convert::Infallible>(event), (state, None, seen)));
                }
            }
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_order_view_shows_the_buyers_email_masked() {
        assert_eq!(super::masked("buyer@example.com"), "b***@example.com");
        assert_eq!(super::masked("é@exämple.de"), "é***@exämple.de");
        assert_eq!(super::masked("not-an-email"), "***");
    }
}
