//! The royalty report: per marketplace and currency, over whole UTC days, the secondary sales of a
//! brand's campaigns (or of every brand, for the platform's staff), their volume, the royalty
//! expected against received, the shortfall and the share of sales that paid in full. Read from
//! the royalty ledger the indexer keeps with every sale, so a report costs a few rows per day
//! whatever the number of sales.
//!
//! With it, the holders' share of those royalties where a campaign gives its holders one (a
//! `royalty_share` reward): accrued from the period's sales, paid by the reward vault in
//! distribution batches, waiting, or reversed by a reorg.
//!
//! A browser asking for a brand's report gets its page: the period's form, the report's tables
//! and the links to download the brand's exports.

use crate::pages::{
    Column::{Numbers, Words},
    figures,
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{Days, NaiveDate, NaiveTime, Utc};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Caller, Permission, require},
    chain::checksummed,
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Query},
    },
    pages,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::dashboards::{PeriodForm, TokenUnit, campaigns, optional};

/// The longest report, in days.
const MAX_DAYS: u64 = 3_660;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::FinanceRead, routes!(brand_report)))
        .routes(require(Permission::FinanceReadAll, routes!(platform_report)))
}

/// Which days (and campaign).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportQuery {
    /// First day (UTC), included (default: 30 days before `to`).
    #[serde(default, deserialize_with = "optional")]
    from: Option<NaiveDate>,
    /// Last day (UTC), excluded (default: tomorrow, so today is in).
    #[serde(default, deserialize_with = "optional")]
    to: Option<NaiveDate>,
    /// Only this campaign (empty: every campaign).
    #[serde(default, deserialize_with = "optional")]
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

/// The holders' share of one campaign's royalties in one currency, from the period's sales.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HoldersShareRow {
    campaign_id: i64,
    /// `ETH`, or the ERC-20's EIP-55 address; amounts are in its base units.
    currency: String,
    /// Sales a share was accrued from.
    sales: i64,
    /// Holders a share was accrued to.
    holders: i64,
    /// Paid to the holders by the reward vault (`RewardVault.distribute`).
    paid: String,
    /// Accrued and not paid yet: waiting for its sale's confirmation, or in a batch on its way.
    pending: String,
    /// Accrued from sales a reorg took back: never paid.
    reversed: String,
    /// Distribution batches that paid this campaign's holders in this currency.
    batches_paid: i64,
    /// The last of those batches' transaction.
    last_tx_hash: Option<String>,
}

/// The report.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoyaltyReport {
    from: NaiveDate,
    to: NaiveDate,
    brand_id: Option<i64>,
    campaign_id: Option<i64>,
    rows: Vec<RoyaltyRow>,
    /// The holders' share of the royalties, for campaigns that give one.
    holders_shares: Vec<HoldersShareRow>,
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

async fn report(state: &AppState, brand: Option<i64>, query: &ReportQuery) -> ApiResult<RoyaltyReport> {
    let (from, to) = window(query)?;
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
    let holders_shares = holders_shares(state, brand, query.campaign_id, from, to).await?;
    Ok(RoyaltyReport { from, to, brand_id: brand, campaign_id: query.campaign_id, rows, holders_shares })
}

/// The holders' shares accrued over `[from, to)` (UTC days), per campaign and currency.
async fn holders_shares(
    state: &AppState,
    brand: Option<i64>,
    campaign: Option<i64>,
    from: NaiveDate,
    to: NaiveDate,
) -> ApiResult<Vec<HoldersShareRow>> {
    type Row = (i64, Option<Vec<u8>>, i64, i64, String, String, String, i64, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        r"SELECT a.campaign_id, NULLIF(a.payment_token, '\x0000000000000000000000000000000000000000'::bytea),
                 count(DISTINCT a.sale_id), count(DISTINCT a.holder),
                 COALESCE(sum(a.amount) FILTER (WHERE a.state = 'paid'), 0)::text,
                 COALESCE(sum(a.amount) FILTER (WHERE a.state IN ('accrued', 'batched')), 0)::text,
                 COALESCE(sum(a.amount) FILTER (WHERE a.state = 'reversed'), 0)::text,
                 count(DISTINCT a.batch_id) FILTER (WHERE a.state = 'paid'),
                 (SELECT t.tx_hash FROM royalty_batches b JOIN chain_transactions t ON t.id = b.chain_tx_id
                   WHERE b.campaign_id = a.campaign_id AND b.payment_token = a.payment_token AND b.state = 'paid'
                   ORDER BY b.id DESC LIMIT 1)
          FROM royalty_accruals a
          WHERE ($1::bigint IS NULL OR a.brand_id = $1) AND ($2::bigint IS NULL OR a.campaign_id = $2)
            AND a.created_at >= $3 AND a.created_at < $4
          GROUP BY a.campaign_id, a.payment_token ORDER BY 1, 2 NULLS FIRST",
    )
    .bind(brand)
    .bind(campaign)
    .bind(from.and_time(NaiveTime::MIN).and_utc())
    .bind(to.and_time(NaiveTime::MIN).and_utc())
    .fetch_all(state.db())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(campaign_id, token, sales, holders, paid, pending, reversed, batches_paid, tx)| HoldersShareRow {
            campaign_id,
            currency: token.as_deref().map_or_else(|| "ETH".to_owned(), checksummed),
            sales,
            holders,
            paid,
            pending,
            reversed,
            batches_paid,
            last_tx_hash: tx.map(|hash| format!("0x{}", alloy::hex::encode(hash))),
        })
        .collect())
}

/// The brand's royalty report, or one campaign's; its page for a browser.
#[utoipa::path(get, path = "/brands/{brand_id}/royalties", tag = "dashboards",
    params(("brand_id" = i64, Path), ReportQuery),
    responses(
        (status = 200, description = "The report (a page for a client preferring text/html)", body = RoyaltyReport),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn brand_report(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<ReportQuery>, ApiError>,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id.get();
    if !pages::wants_html(&headers) {
        let Query(query) = query?;
        return Ok(Json(report(&state, Some(brand), &query).await?).into_response());
    }
    // A period refused is the page again, saying why.
    let campaigns = campaigns(&state, brand).await?;
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return Ok(refused(&state, brand, &ReportQuery::default(), &campaigns, &e)),
    };
    match report(&state, Some(brand), &query).await {
        Ok(report) => Ok(page(&state, brand, &report, &campaigns)),
        Err(e @ ApiError::Validation(_)) => Ok(refused(&state, brand, &query, &campaigns, &e)),
        Err(e) => Err(e),
    }
}

/// The royalty report across every brand (or one campaign).
#[utoipa::path(get, path = "/royalties", tag = "dashboards", params(ReportQuery),
    responses((status = 200, body = RoyaltyReport), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn platform_report(
    State(state): State<AppState>,
    Query(query): Query<ReportQuery>,
) -> ApiResult<Json<RoyaltyReport>> {
    Ok(Json(report(&state, None, &query).await?))
}

/// The exports (`/brands/{id}/exports/{kind}`, see `crate::exports`) and what each holds.
const EXPORTS: [(&str, &str); 3] =
    [("orders", "Orders"), ("sales", "Secondary sales, with their royalties"), ("redemptions", "Redemptions")];

/// The page for a period that was refused: the form, saying why (422).
fn refused(
    state: &AppState,
    brand: i64,
    query: &ReportQuery,
    campaigns: &[(i64, String)],
    error: &ApiError,
) -> Response {
    let form = PeriodForm::refused(format!("/brands/{brand}/royalties"), campaigns, query.campaign_id, error);
    let body = html! { h1 { "Royalties" } (form.render()) (exports(brand, query.campaign_id)) };
    let mut response = crate::pages::brand_page(state, brand, "Royalties", body);
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// A share in basis points as a percentage (`6666` → `66.66 %`).
fn percent(bps: i64) -> String {
    format!("{}.{:02} %", bps / 100, (bps % 100).abs())
}

/// The report's page.
fn page(state: &AppState, brand: i64, report: &RoyaltyReport, campaigns: &[(i64, String)]) -> Response {
    let form = PeriodForm {
        action: format!("/brands/{brand}/royalties"),
        from: report.from,
        to: report.to,
        campaigns,
        campaign: report.campaign_id,
        error: None,
    };
    let last = report.to.pred_opt().unwrap_or(report.to);
    let campaign = campaigns.iter().find(|(id, _)| Some(*id) == report.campaign_id).map(|(_, name)| name);
    let body = html! {
        h1 { "Royalties" }
        p.muted {
            @if let Some(name) = campaign { (name) ", " } @else { "Every campaign, " }
            (report.from) " to " (last) " (UTC)"
        }
        (form.render())
        section.card aria-labelledby="report-title" {
            h2 #report-title { "Royalties expected and received" }
            @if report.rows.is_empty() {
                p.muted { "No secondary sales in this period." }
            } @else {
                p.muted { "Per marketplace and payment token. Paid in full: the sales whose royalty received was at least the royalty expected." }
                (figures("Royalties per marketplace and payment token", &[Words("Marketplace"), Words("Paid in"), Numbers("Sales"), Numbers("Paid in full"), Numbers("Volume"), Numbers("Expected"), Numbers("Received"), Numbers("Shortfall"), Numbers("Received of expected")], html! {
                    @for row in &report.rows {
                        @let unit = TokenUnit::of(state, &row.currency);
                        tr {
                            th scope="row" { (row.marketplace) }
                            td { @if row.currency == "ETH" { (unit.name) } @else { span.hash { (unit.name) } } }
                            td.num { (row.sales) }
                            td.num { (row.paid_in_full) " (" (percent(row.paid_in_full_bps)) ")" }
                            td.num { (unit.show(&row.volume)) }
                            td.num { (unit.show(&row.expected)) }
                            td.num { (unit.show(&row.received)) }
                            td.num { (unit.show(&row.shortfall)) }
                            td.num { (row.received_bps.map_or_else(|| "—".to_owned(), percent)) }
                        }
                    }

                }))
            }
        }
        (holders_section(state, report, campaigns))
        (exports(brand, report.campaign_id))
    };
    crate::pages::brand_page(state, brand, "Royalties", body)
}

/// The holders' shares, where a campaign gives its holders part of its royalties.
fn holders_section(state: &AppState, report: &RoyaltyReport, campaigns: &[(i64, String)]) -> Markup {
    if report.holders_shares.is_empty() {
        return html! {};
    }
    html! {
        section.card aria-labelledby="holders-title" {
            h2 #holders-title { "Holders' share" }
            p.muted { "The part of these royalties that campaigns give their holders, split by tokens held at each sale and paid by the reward vault once the sale is confirmed." }
            (figures("Holders' share per campaign and payment token", &[Words("Campaign"), Words("Paid in"), Numbers("Sales"), Numbers("Holders"), Numbers("Paid"), Numbers("Waiting"), Numbers("Reversed"), Numbers("Batches"), Words("Last payout")], html! {
                @for row in &report.holders_shares {
                    @let unit = TokenUnit::of(state, &row.currency);
                    @let name = campaigns.iter().find(|(id, _)| *id == row.campaign_id).map(|(_, n)| n.as_str());
                    tr {
                        th scope="row" { (name.unwrap_or("—")) }
                        td { @if row.currency == "ETH" { (unit.name) } @else { span.hash { (unit.name) } } }
                        td.num { (row.sales) }
                        td.num { (row.holders) }
                        td.num { (unit.show(&row.paid)) }
                        td.num { (unit.show(&row.pending)) }
                        td.num { (unit.show(&row.reversed)) }
                        td.num { (row.batches_paid) }
                        td { @if let Some(hash) = &row.last_tx_hash { span.hash { (hash) } } @else { "—" } }
                    }
                }

            }))
        }
    }
}

/// Links to download each export as CSV and as XLSX (the campaign's rows only, when one is
/// chosen).
fn exports(brand: i64, campaign: Option<i64>) -> Markup {
    let link = |kind: &str, format: &str| {
        let campaign = campaign.map(|c| format!("&campaign_id={c}")).unwrap_or_default();
        format!("/brands/{brand}/exports/{kind}?format={format}{campaign}")
    };
    html! {
        section.card aria-labelledby="exports-title" {
            h2 #exports-title { "Downloads" }
            p.muted {
                "Every row so far, whatever the period"
                @if campaign.is_some() { ", of the chosen campaign" }
                "."
            }
            ul {
                @for (kind, name) in EXPORTS {
                    li {
                        a href=(link(kind, "csv")) { (name) " (CSV)" } " · "
                        a href=(link(kind, "xlsx")) { (name) " (XLSX)" }
                    }
                }
            }
        }
    }
}
