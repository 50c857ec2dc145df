//! The royalty report: per marketplace and currency, over whole UTC days, the secondary sales of a
//! brand's campaigns (or of every brand, for the platform's staff), their volume, the royalty
//! expected against received, the shortfall and the share of sales that paid in full. Read from
//! the royalty ledger the indexer keeps with every sale, so a report costs a few rows per day
//! whatever the number of sales.

use axum::extract::State;
use chrono::{Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Caller, Permission, require},
    chain::checksummed,
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Query},
    },
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The longest report, in days.
const MAX_DAYS: u64 = 3_660;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::FinanceRead, routes!(brand_report)))
        .routes(require(Permission::FinanceReadAll, routes!(platform_report)))
}

/// Which days (and campaign).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportQuery {
    /// First day (UTC), included (default: 30 days before `to`).
    from: Option<NaiveDate>,
    /// Last day (UTC), excluded (default: tomorrow, so today is in).
    to: Option<NaiveDate>,
    /// Only this campaign.
    campaign_id: Option<i64>,
}

/// One marketplace in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoyaltyRow {
    marketplace: String,
    /// `ETH`, or the ERC-20's EIP-55 address; amounts are in its base units.
    currency: String,
    sales: i64,
    /// Sales whose royalty received was at least the royalty expected.
    paid_in_full: i64,
    /// `paid_in_full` out of `sales`, in basis points.
    paid_in_full_bps: i64,
    volume: String,
    marketplace_fee: String,
    expected: String,
    received: String,
    shortfall: String,
    /// Received out of expected, in basis points (none when nothing was expected).
    received_bps: Option<i64>,
}

/// The report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoyaltyReport {
    from: NaiveDate,
    to: NaiveDate,
    brand_id: Option<i64>,
    campaign_id: Option<i64>,
    rows: Vec<RoyaltyRow>,
}

fn window(query: &ReportQuery) -> ApiResult<(NaiveDate, NaiveDate)> {
    let today = Utc::now().date_naive();
    let to = match query.to {
        Some(to) => to,
        None => today.checked_add_days(Days::new(1)).unwrap_or(today),
    };
    let from = match query.from {
        Some(from) => from,
        None => {
            to.checked_sub_days(Days::new(30)).ok_or_else(|| ApiError::validation("to", "is too far in the past"))?
        }
    };
    if from >= to {
        return Err(ApiError::validation("from", "must be before to"));
    }
    if to.signed_duration_since(from).num_days() > i64::try_from(MAX_DAYS).unwrap_or(i64::MAX) {
        return Err(ApiError::validation("from", format!("a report covers at most {MAX_DAYS} days")));
    }
    Ok((from, to))
}

async fn report(state: &AppState, brand: Option<i64>, query: ReportQuery) -> ApiResult<Json<RoyaltyReport>> {
    let (from, to) = window(&query)?;
    let rows = sqlx::query!(
        r#"SELECT marketplace, NULLIF(payment_token, '\x0000000000000000000000000000000000000000'::bytea) AS payment_token,
                  sum(sales)::bigint AS "sales!", sum(paid_in_full)::bigint AS "paid_in_full!",
                  sum(volume)::text AS "volume!", sum(marketplace_fee)::text AS "marketplace_fee!",
                  sum(expected)::text AS "expected!", sum(received)::text AS "received!",
                  sum(shortfall)::text AS "shortfall!",
                  div(sum(received) * 10000, NULLIF(sum(expected), 0))::bigint AS received_bps
           FROM royalty_ledger
           WHERE ($1::bigint IS NULL OR brand_id = $1) AND ($2::bigint IS NULL OR campaign_id = $2)
             AND day >= $3 AND day < $4
           GROUP BY 1, 2 HAVING sum(sales) > 0 ORDER BY 1, 2 NULLS FIRST"#,
        brand,
        query.campaign_id,
        from,
        to
    )
    .fetch_all(state.db())
    .await?
    .into_iter()
    .map(|r| RoyaltyRow {
        marketplace: r.marketplace,
        currency: r.payment_token.as_deref().map_or_else(|| "ETH".to_owned(), checksummed),
        paid_in_full_bps: r.paid_in_full * 10_000 / r.sales.max(1),
        sales: r.sales,
        paid_in_full: r.paid_in_full,
        volume: r.volume,
        marketplace_fee: r.marketplace_fee,
        expected: r.expected,
        received: r.received,
        shortfall: r.shortfall,
        received_bps: r.received_bps,
    })
    .collect();
    Ok(Json(RoyaltyReport { from, to, brand_id: brand, campaign_id: query.campaign_id, rows }))
}

/// The brand's royalty report, or one campaign's.
#[utoipa::path(get, path = "/brands/{brand_id}/royalties", tag = "dashboards",
    params(("brand_id" = i64, Path), ReportQuery),
    responses((status = 200, body = RoyaltyReport), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn brand_report(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<RoyaltyReport>> {
    let brand = caller.brand()?.id;
    report(&state, Some(brand.get()), query).await
}

/// The royalty report across every brand (or one campaign).
#[utoipa::path(get, path = "/royalties", tag = "dashboards", params(ReportQuery),
    responses((status = 200, body = RoyaltyReport), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn platform_report(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<RoyaltyReport>> {
    report(&state, None, query).await
}
