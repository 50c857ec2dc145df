//! Discount codes (vouchers): a percentage or a fixed amount off, with a minimum order, a
//! validity window, total and per-buyer caps, for the whole brand or one campaign. Checkout
//! applies them and counts uses (payment service); here they are managed.

use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    http::OnConstraint,
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Path},
    },
    money::Currency,
    orders::MAX_ORDER_TOTAL_MINOR,
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::campaigns::Errors;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::CampaignsManage, routes!(create_voucher)))
        .routes(require(Permission::CampaignsRead, routes!(list_vouchers)))
        .routes(require(Permission::CampaignsManage, routes!(update_voucher)))
}

/// A voucher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Voucher {
    id: i64,
    /// Upper-case; what buyers type.
    code: String,
    /// Only this campaign's items; the whole brand when absent.
    campaign_id: Option<i64>,
    /// percent or fixed.
    kind: String,
    percent_bps: Option<i32>,
    amount_minor: Option<i64>,
    currency: Option<String>,
    min_order_minor: i64,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    max_uses: Option<i32>,
    max_uses_per_buyer: Option<i32>,
    uses: i32,
    active: bool,
    created_at: DateTime<Utc>,
}

/// A new voucher.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewVoucher {
    /// 3–32 of A–Z, 0–9, `-`, `_` (case-insensitive).
    code: String,
    campaign_id: Option<i64>,
    /// percent or fixed.
    kind: String,
    /// percent: 1–10,000 basis points off.
    #[schema(minimum = 1, maximum = 10_000)]
    percent_bps: Option<i64>,
    /// fixed: minor units off, in `currency` (at most the largest order total).
    #[schema(minimum = 1, maximum = 9_999_999_900_i64)]
    amount_minor: Option<i64>,
    /// Required for fixed vouchers and for a minimum order.
    currency: Option<String>,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9_999_999_900_i64)]
    min_order_minor: i64,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    max_uses: Option<i64>,
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    max_uses_per_buyer: Option<i64>,
}

/// Changes to a voucher: its window, caps and whether it is active.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VoucherChanges {
    active: Option<bool>,
    ends_at: Option<DateTime<Utc>>,
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    max_uses: Option<i64>,
    #[schema(minimum = 1, maximum = 2_147_483_647)]
    max_uses_per_buyer: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct VoucherPath {
    voucher_id: i64,
}

fn cap(errors: &mut Errors, field: &str, value: Option<i64>) -> Option<i32> {
    value.and_then(|v| match i32::try_from(v) {
        Ok(v) if v >= 1 => Some(v),
        _ => {
            errors.add(field, "must be at least 1");
            None
        }
    })
}

async fn load(conn: &mut PgConnection, brand: i64, id: i64) -> ApiResult<Voucher> {
    sqlx::query_as!(
        Voucher,
        "SELECT id, code, campaign_id, kind, percent_bps, amount_minor, currency, min_order_minor, starts_at, ends_at,
                max_uses, max_uses_per_buyer, uses, active, created_at
         FROM vouchers WHERE brand_id = $1 AND id = $2",
        brand,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no voucher {id}")))
}

/// Creates a voucher.
#[utoipa::path(post, path = "/brands/{brand_id}/vouchers", tag = "vouchers", request_body = NewVoucher,
    params(("brand_id" = i64, Path)),
    responses((status = 201, body = Voucher), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn create_voucher(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewVoucher>,
) -> ApiResult<(StatusCode, Json<Voucher>)> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let code = body.code.trim().to_ascii_uppercase();
    if !(3..=32).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        errors.add("code", "must be 3 to 32 characters of A–Z, 0–9, - and _");
    }
    let currency = body.currency.as_deref().and_then(|c| match c.trim().to_ascii_uppercase().parse::<Currency>() {
        Ok(currency) => Some(currency.code().to_owned()),
        Err(_) => {
            errors.add("currency", "must be an ISO 4217 currency code");
            None
        }
    });
    let (mut percent, mut amount) = (None, None);
    match body.kind.as_str() {
        "percent" => match body.percent_bps.map(i32::try_from) {
            Some(Ok(bps)) if (1..=10_000).contains(&bps) => percent = Some(bps),
            _ => errors.add("percent_bps", "must be between 1 and 10000 basis points"),
        },
        "fixed" => {
            match body.amount_minor {
                Some(minor) if (1..=MAX_ORDER_TOTAL_MINOR).contains(&minor) => amount = Some(minor),
                _ => errors.add(
                    "amount_minor",
                    format!("must be a positive amount in minor units, at most {MAX_ORDER_TOTAL_MINOR}"),
                ),
            }
            if body.currency.is_none() {
                errors.add("currency", "is required for a fixed amount");
            }
        }
        _ => errors.add("kind", "must be percent or fixed"),
    }
    // The other kind's amount is refused, not silently dropped.
    match body.kind.as_str() {
        "percent" if body.amount_minor.is_some() => errors.add("amount_minor", "belongs to a fixed voucher"),
        "fixed" if body.percent_bps.is_some() => errors.add("percent_bps", "belongs to a percent voucher"),
        _ => {}
    }
    if !(0..=MAX_ORDER_TOTAL_MINOR).contains(&body.min_order_minor) {
        errors.add("min_order_minor", format!("must be between 0 and {MAX_ORDER_TOTAL_MINOR}"));
    } else if body.min_order_minor > 0 && body.currency.is_none() {
        errors.add("currency", "is required with a minimum order");
    }
    if let (Some(starts), Some(ends)) = (body.starts_at, body.ends_at)
        && ends <= starts
    {
        errors.add("ends_at", "must be after starts_at");
    }
    let max_uses = cap(&mut errors, "max_uses", body.max_uses);
    let per_buyer = cap(&mut errors, "max_uses_per_buyer", body.max_uses_per_buyer);
    errors.finish()?;
    let mut tx = state.db().begin().await?;
    if let Some(campaign) = body.campaign_id {
        crate::campaigns::lock(&mut tx, brand.get(), campaign).await.map_err(|_| {
            ApiError::Validation(vec![FieldError::new("campaign_id", "no such campaign in this brand")])
        })?;
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO vouchers (brand_id, campaign_id, code, kind, percent_bps, amount_minor, currency, min_order_minor,
             starts_at, ends_at, max_uses, max_uses_per_buyer)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        brand.get(),
        body.campaign_id,
        code,
        body.kind,
        percent,
        amount,
        currency,
        body.min_order_minor,
        body.starts_at,
        body.ends_at,
        max_uses,
        per_buyer
    )
    .fetch_one(&mut *tx)
    .await
    .on_constraint("vouchers_code_key", || ApiError::validation("code", "is already a voucher of this brand"))?;
    let voucher = load(&mut tx, brand.get(), id).await?;
    audit::record(&mut tx, &caller, Entry::new("voucher.created", format!("voucher:{id}")).after(&voucher)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(voucher)))
}

/// The brand's vouchers with their use counts.
#[utoipa::path(get, path = "/brands/{brand_id}/vouchers", tag = "vouchers", params(("brand_id" = i64, Path)),
    responses((status = 200, body = Vec<Voucher>)))]
#[tracing::instrument(skip_all)]
async fn list_vouchers(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Voucher>>> {
    let brand = caller.brand()?.id;
    let vouchers = sqlx::query_as!(
        Voucher,
        "SELECT id, code, campaign_id, kind, percent_bps, amount_minor, currency, min_order_minor, starts_at, ends_at,
                max_uses, max_uses_per_buyer, uses, active, created_at
         FROM vouchers WHERE brand_id = $1 ORDER BY id",
        brand.get()
    )
    .fetch_all(state.db())
    .await?;
    Ok(Json(vouchers))
}

/// Deactivates, re-activates, shortens or re-caps a voucher (never below its current uses).
#[utoipa::path(patch, path = "/brands/{brand_id}/vouchers/{voucher_id}", tag = "vouchers", request_body = VoucherChanges,
    params(("brand_id" = i64, Path), ("voucher_id" = i64, Path)),
    responses(
        (status = 200, body = Voucher),
        (status = 404, body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_voucher(
    State(state): State<AppState>,
    caller: Caller,
    Path(VoucherPath { voucher_id }): Path<VoucherPath>,
    Json(body): Json<VoucherChanges>,
) -> ApiResult<Json<Voucher>> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let max_uses = cap(&mut errors, "max_uses", body.max_uses);
    let per_buyer = cap(&mut errors, "max_uses_per_buyer", body.max_uses_per_buyer);
    errors.finish()?;
    let mut tx = state.db().begin().await?;
    sqlx::query!("SELECT id FROM vouchers WHERE brand_id = $1 AND id = $2 FOR UPDATE", brand.get(), voucher_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no voucher {voucher_id}")))?;
    let before = load(&mut tx, brand.get(), voucher_id).await?;
    let mut errors = Errors::default();
    if max_uses.is_some_and(|max| max < before.uses) {
        errors.add("max_uses", format!("must be at least the {} uses already made", before.uses));
    }
    if let (Some(ends), Some(starts)) = (body.ends_at, before.starts_at)
        && ends <= starts
    {
        errors.add("ends_at", "must be after starts_at");
    }
    errors.finish()?;
    sqlx::query!(
        "UPDATE vouchers SET active = COALESCE($3, active), ends_at = COALESCE($4, ends_at),
             max_uses = COALESCE($5, max_uses), max_uses_per_buyer = COALESCE($6, max_uses_per_buyer), updated_at = now()
         WHERE brand_id = $1 AND id = $2",
        brand.get(),
        voucher_id,
        body.active,
        body.ends_at,
        max_uses,
        per_buyer
    )
    .execute(&mut *tx)
    .await?;
    let after = load(&mut tx, brand.get(), voucher_id).await?;
    let entry = Entry::new("voucher.updated", format!("voucher:{voucher_id}")).before(&before).after(&after);
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(after))
}
