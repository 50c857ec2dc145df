//! Dashboards: a brand's (or one campaign's) orders, revenue by currency and method, items sold
//! against supply, royalties expected against received, redemptions, and a daily series.
//! Amounts are integers in minor units (fiat) or base units (tokens, as decimal strings).
//!
//! A browser asking for the same URL gets the dashboard's page: the period's form, cards of
//! totals and bar charts drawn on the server (see [`crate::charts`]), each followed by its
//! figures as a table.

use std::collections::{BTreeMap, HashMap};

use crate::pages::{
    Column::{Numbers, Words},
    figures,
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use maud::{Markup, html};
use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use shared::{
    AppState,
    address::checksummed,
    auth::{Caller, Permission, require},
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Query},
    },
    money::{Currency, Money},
    orders::OrderState,
    pages,
    workflow::machines::RedemptionState,
};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::charts::{Bar, BarChart, Group, Magnitude};

/// The longest range one request covers.
const MAX_DAYS: i64 = 366;
/// The years a date in a query may name (as for timestamps, see `shared::http::extract`).
const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(require(Permission::FinanceRead, routes!(dashboard)))
}

/// Which period and campaign.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DashboardQuery {
    /// Start of the period (default: 30 days before `to`); a date (`2024-05-01`) is that day's
    /// start, UTC.
    #[serde(default, deserialize_with = "moment")]
    from: Option<DateTime<Utc>>,
    /// End of the period, excluded (default: now); a date is that day's start, UTC.
    #[serde(default, deserialize_with = "moment")]
    to: Option<DateTime<Utc>>,
    /// Only this campaign (empty: every campaign).
    #[serde(default, deserialize_with = "optional")]
    campaign_id: Option<i64>,
}

/// A query parameter that may be left empty (as a page's form sends a field left blank): empty
/// is none, anything else must parse.
pub(crate) fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    match text.as_str() {
        "" => Ok(None),
        text => text.parse().map(Some).map_err(D::Error::custom),
    }
}

/// A moment in a query: an RFC 3339 timestamp, or a date (what a page's date field sends) for
/// that day's start, UTC; empty is none.
fn moment<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = text.parse::<DateTime<Utc>>() {
        return Ok(Some(at));
    }
    let day = text
        .parse::<NaiveDate>()
        .map_err(|_| D::Error::custom("must be a date (YYYY-MM-DD) or an RFC 3339 timestamp"))?;
    if !YEARS.contains(&day.year()) {
        return Err(D::Error::custom(format!("must be between the years {} and {}", YEARS.start(), YEARS.end())));
    }
    Ok(Some(day.and_time(NaiveTime::MIN).and_utc()))
}

/// The dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Dashboard {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    campaign_id: Option<i64>,
    orders: Vec<StateCount>,
    /// Fulfilled orders' totals.
    revenue: Vec<Revenue>,
    items: Vec<ItemSales>,
    royalties: Vec<Royalties>,
    redemptions: Vec<StateCount>,
    /// Redemptions of each reward in the period, by how they came and how they ended.
    rewards: Vec<RewardRedemptions>,
    daily: Vec<Day>,
}

/// One reward's redemptions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RewardRedemptions {
    campaign_id: i64,
    reward_id: i64,
    name: String,
    /// token or perk.
    kind: String,
    /// Claims made (every state).
    claims: i64,
    /// Paid, or the perk handed over.
    completed: i64,
    /// On their way: waiting for KYC, the payout, or the customer's own voucher.
    pending: i64,
    /// Failed, refused or expired (their use was given back).
    released: i64,
    /// How they came: with a wallet's token online, a printed code, a counter scan.
    by_wallet: i64,
    by_code: i64,
    at_counter: i64,
    /// Token rewards: paid out, in wei / base units (decimal string).
    paid_amount: String,
}

/// How many are in one state.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StateCount {
    state: String,
    count: i64,
}

/// Revenue in one currency through one payment method.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Revenue {
    currency: String,
    method: String,
    orders: i64,
    amount_minor: i64,
}

/// An item's sales against its supply (all time).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ItemSales {
    item_id: i64,
    campaign_id: i64,
    name: String,
    supply: i32,
    /// Held by pending and paid orders (refunded ones included: their tokens exist).
    reserved: i32,
    /// Minted to buyers and paid for.
    sold: i64,
    /// Minted to buyers whose orders were refunded afterwards: the tokens stay with those buyers
    /// (a refund does not take an NFT back), so they are out of supply but not sold.
    refunded: i64,
}

/// Royalties of secondary sales on one marketplace in one payment token (`ETH` or its address).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Royalties {
    marketplace: String,
    payment_token: String,
    sales: i64,
    expected: String,
    received: String,
}

/// One day of the period (UTC).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Day {
    date: NaiveDate,
    orders: i64,
    fulfilled: i64,
    redemptions: i64,
    /// The revenue of the day's fulfilled orders, per currency.
    revenue: Vec<DayRevenue>,
}

/// One day's revenue in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayRevenue {
    currency: String,
    amount_minor: i64,
}

/// The brand's dashboard, or one campaign's; its page for a browser.
#[utoipa::path(get, path = "/brands/{brand_id}/dashboard", tag = "dashboards",
    params(("brand_id" = i64, Path), DashboardQuery),
    responses(
        (status = 200, description = "The dashboard (a page for a client preferring text/html)", body = Dashboard),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<DashboardQuery>, ApiError>,
) -> ApiResult<Response> {
    let brand = caller.brand()?.id.get();
    if !pages::wants_html(&headers) {
        let Query(query) = query?;
        return Ok(Json(load(&state, brand, &query).await?).into_response());
    }
    // A period refused is the page again, saying why; any other failure is the service's error
    // (a page too, for a browser: see `shared::pages`).
    let campaigns = campaigns(&state, brand).await?;
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return Ok(refused(&state, brand, &DashboardQuery::default(), &campaigns, &e)),
    };
    match load(&state, brand, &query).await {
        Ok(dashboard) => Ok(page(&state, brand, &dashboard, &campaigns)),
        Err(e @ ApiError::Validation(_)) => Ok(refused(&state, brand, &query, &campaigns, &e)),
        Err(e) => Err(e),
    }
}

/// The period a query asks for: `[from, to)`, at most [`MAX_DAYS`] long.
fn period(query: &DashboardQuery) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = query.to.unwrap_or_else(Utc::now);
    let from = match query.from {
        Some(from) => from,
        None => to
            .checked_sub_signed(Duration::days(30))
            .ok_or_else(|| ApiError::validation("to", "is too far in the past"))?,
    };
    if from >= to {
        return Err(ApiError::Validation(vec![FieldError::new("from", "must be before to")]));
    }
    if to - from > Duration::days(MAX_DAYS) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "from",
            format!("the period is at most {MAX_DAYS} days"),
        )]));
    }
    Ok((from, to))
}

/// Everything the dashboard shows.
async fn load(state: &AppState, brand: i64, query: &DashboardQuery) -> ApiResult<Dashboard> {
    let (from, to) = period(query)?;
    let campaign = query.campaign_id;
    let mut conn = state.db().acquire().await?;
    // What counts as revenue and as sold is the order domain's rule, not this query's.
    let revenue_states = OrderState::names(&OrderState::REVENUE);
    let sold_states = OrderState::names(&OrderState::SOLD);
    let orders = sqlx::query_as!(
        StateCount,
        "SELECT state, count(*) AS \"count!\" FROM orders
         WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2) AND created_at >= $3 AND created_at < $4
         GROUP BY state ORDER BY state",
        brand,
        campaign,
        from,
        to
    )
    .fetch_all(&mut *conn)
    .await?;
    let revenue = sqlx::query_as!(
        Revenue,
        "SELECT currency, method, count(*) AS \"orders!\", sum(total_minor)::bigint AS \"amount_minor!\" FROM orders
         WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2) AND created_at >= $3 AND created_at < $4
           AND state = ANY($5)
         GROUP BY currency, method ORDER BY currency, method",
        brand,
        campaign,
        from,
        to,
        &revenue_states as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    let items = sqlx::query_as!(
        ItemSales,
        "SELECT i.id AS item_id, i.campaign_id, i.name, i.supply, i.reserved,
                COALESCE(sum(o.quantity) FILTER (WHERE o.state = ANY($3)), 0)::bigint AS \"sold!\",
                COALESCE(sum(o.quantity) FILTER (WHERE o.state = $4), 0)::bigint AS \"refunded!\"
         FROM campaign_items i LEFT JOIN orders o ON o.item_id = i.id
         WHERE i.brand_id = $1 AND ($2::bigint IS NULL OR i.campaign_id = $2)
         GROUP BY i.id ORDER BY i.id",
        brand,
        campaign,
        &sold_states as &[&str],
        OrderState::Refunded.as_str()
    )
    .fetch_all(&mut *conn)
    .await?;
    // From the royalty ledger, kept with every sale (never summed from sales here): the UTC days
    // the period touches, per marketplace and payment token.
    let royalties = sqlx::query(
        r"SELECT marketplace, NULLIF(payment_token, '\x0000000000000000000000000000000000000000'::bytea) AS payment_token,
                 sum(sales)::bigint AS sales, sum(expected)::text AS expected, sum(received)::text AS received
          FROM royalty_ledger
          WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2)
            AND day >= ($3::timestamptz AT TIME ZONE 'UTC')::date
            AND day <= (($4::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC')::date
          GROUP BY 1, 2 HAVING sum(sales) > 0 ORDER BY 1, 2 NULLS FIRST",
    )
    .bind(brand)
    .bind(campaign)
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| {
        Ok(Royalties {
            marketplace: row.try_get("marketplace")?,
            payment_token: row
                .try_get::<Option<Vec<u8>>, _>("payment_token")?
                .as_deref()
                .map_or_else(|| "ETH".to_owned(), checksummed),
            sales: row.try_get("sales")?,
            expected: row.try_get("expected")?,
            received: row.try_get("received")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let redemptions = sqlx::query_as!(
        StateCount,
        "SELECT state, count(*) AS \"count!\" FROM redemptions
         WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2) AND created_at >= $3 AND created_at < $4
         GROUP BY state ORDER BY state",
        brand,
        campaign,
        from,
        to
    )
    .fetch_all(&mut *conn)
    .await?;
    let rewards = sqlx::query(
        "SELECT r.campaign_id, r.id, r.name, r.kind, count(x.id) AS claims,
                count(x.id) FILTER (WHERE x.state = 'completed') AS completed,
                count(x.id) FILTER (WHERE x.state <> ALL($5) AND x.state <> 'completed') AS pending,
                count(x.id) FILTER (WHERE x.state = ANY($5)) AS released,
                count(x.id) FILTER (WHERE x.qr_code_id IS NULL AND x.store_id IS NULL) AS by_wallet,
                count(x.id) FILTER (WHERE x.qr_code_id IS NOT NULL) AS by_code,
                count(x.id) FILTER (WHERE x.store_id IS NOT NULL) AS at_counter,
                COALESCE(sum(x.amount) FILTER (WHERE x.state = 'completed'), 0)::text AS paid
         FROM campaign_rewards r
         LEFT JOIN redemptions x ON x.reward_id = r.id AND x.created_at >= $3 AND x.created_at < $4
         WHERE r.brand_id = $1 AND ($2::bigint IS NULL OR r.campaign_id = $2) AND r.kind IN ('token', 'perk')
         GROUP BY r.id ORDER BY r.campaign_id, r.id LIMIT 1000",
    )
    .bind(brand)
    .bind(campaign)
    .bind(from)
    .bind(to)
    .bind(RedemptionState::released_names())
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| RewardRedemptions {
        campaign_id: row.get("campaign_id"),
        reward_id: row.get("id"),
        name: row.get("name"),
        kind: row.get("kind"),
        claims: row.get("claims"),
        completed: row.get("completed"),
        pending: row.get("pending"),
        released: row.get("released"),
        by_wallet: row.get("by_wallet"),
        by_code: row.get("by_code"),
        at_counter: row.get("at_counter"),
        paid_amount: row.get("paid"),
    })
    .collect();
    // Each day's revenue, per currency, by the same rule as the period's.
    let mut daily_revenue: HashMap<NaiveDate, Vec<DayRevenue>> = HashMap::new();
    for row in sqlx::query(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS date, currency, sum(total_minor)::bigint AS amount_minor
         FROM orders
         WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2) AND created_at >= $3 AND created_at < $4
           AND state = ANY($5)
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(brand)
    .bind(campaign)
    .bind(from)
    .bind(to)
    .bind(&revenue_states)
    .fetch_all(&mut *conn)
    .await?
    {
        daily_revenue
            .entry(row.try_get("date")?)
            .or_default()
            .push(DayRevenue { currency: row.try_get("currency")?, amount_minor: row.try_get("amount_minor")? });
    }
    let daily = sqlx::query!(
        "WITH days AS (
             SELECT d::date AS date FROM generate_series(($3::timestamptz AT TIME ZONE 'UTC')::date,
                                                        ($4::timestamptz AT TIME ZONE 'UTC')::date, interval '1 day') d)
         SELECT days.date AS \"date!\",
                (SELECT count(*) FROM orders o WHERE o.brand_id = $1 AND ($2::bigint IS NULL OR o.campaign_id = $2)
                   AND (o.created_at AT TIME ZONE 'UTC')::date = days.date
                   AND o.created_at >= $3 AND o.created_at < $4) AS \"orders!\",
                (SELECT count(*) FROM orders o WHERE o.brand_id = $1 AND ($2::bigint IS NULL OR o.campaign_id = $2)
                   AND (o.created_at AT TIME ZONE 'UTC')::date = days.date AND o.state = ANY($5)
                   AND o.created_at >= $3 AND o.created_at < $4) AS \"fulfilled!\",
                (SELECT count(*) FROM redemptions r WHERE r.brand_id = $1 AND ($2::bigint IS NULL OR r.campaign_id = $2)
                   AND (r.created_at AT TIME ZONE 'UTC')::date = days.date
                   AND r.created_at >= $3 AND r.created_at < $4) AS \"redemptions!\"
         FROM days ORDER BY days.date",
        brand,
        campaign,
        from,
        to,
        &revenue_states as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Day {
        revenue: daily_revenue.remove(&r.date).unwrap_or_default(),
        date: r.date,
        orders: r.orders,
        fulfilled: r.fulfilled,
        redemptions: r.redemptions,
    })
    .collect();
    Ok(Dashboard { from, to, campaign_id: campaign, orders, revenue, items, royalties, redemptions, rewards, daily })
}

/// The brand's campaigns (id, name), for the pages' campaign choice.
pub(crate) async fn campaigns(state: &AppState, brand: i64) -> ApiResult<Vec<(i64, String)>> {
    Ok(sqlx::query_as("SELECT id, name FROM campaigns WHERE brand_id = $1 ORDER BY id LIMIT 1000")
        .bind(brand)
        .fetch_all(state.db())
        .await?)
}

/// What a report page's period form shows and sends back to `action` (its own URL): whole UTC
/// days from `from` to `to` (excluded), and the campaign, if one is chosen.
#[derive(Debug)]
pub(crate) struct PeriodForm<'a> {
    pub(crate) action: String,
    pub(crate) from: NaiveDate,
    pub(crate) to: NaiveDate,
    pub(crate) campaigns: &'a [(i64, String)],
    pub(crate) campaign: Option<i64>,
    /// Why the period asked for was refused.
    pub(crate) error: Option<String>,
}

impl<'a> PeriodForm<'a> {
    /// The form of a page whose period was refused: the last 30 days again, saying why.
    pub(crate) fn refused(
        action: String,
        campaigns: &'a [(i64, String)],
        campaign: Option<i64>,
        error: &ApiError,
    ) -> Self {
        let today = Utc::now().date_naive();
        PeriodForm {
            action,
            from: today.checked_sub_days(chrono::Days::new(30)).unwrap_or(today),
            to: today.succ_opt().unwrap_or(today),
            campaigns,
            campaign,
            error: Some(pages::refusal(error)),
        }
    }

    /// A plain GET form: sending it reloads the page with the period in its query.
    pub(crate) fn render(&self) -> Markup {
        html! {
            section.card aria-labelledby="period-title" {
                h2 #period-title { "Period" }
                form method="get" action=(self.action) {
                    p.muted #period-help { "Whole days, UTC. The last day is not included." }
                    label for="period-from" { "From" }
                    input #period-from type="date" name="from" value=(self.from) min="1970-01-01" max="9999-12-31"
                        required aria-describedby="period-help";
                    label for="period-to" { "To (not included)" }
                    input #period-to type="date" name="to" value=(self.to) min="1970-01-01" max="9999-12-31"
                        required aria-describedby="period-help";
                    label for="period-campaign" { "Campaign" }
                    select #period-campaign name="campaign_id" {
                        option value="" selected[self.campaign.is_none()] { "All campaigns" }
                        @for (id, name) in self.campaigns {
                            option value=(id) selected[self.campaign == Some(*id)] { (name) }
                        }
                    }
                    button type="submit" { "Show" }
                    @if let Some(error) = &self.error {
                        p.status data-kind="bad" role="alert" { (error) }
                    }
                }
            }
        }
    }
}

/// How amounts of a payment token read: ETH with 18 decimals, the platform's stablecoin with 6
/// (in USD), any other token in its base units.
#[derive(Debug)]
pub(crate) struct TokenUnit {
    /// What the token is called in headings.
    pub(crate) name: String,
    symbol: &'static str,
    decimals: Option<usize>,
}

impl TokenUnit {
    /// `token` as the reports name it: `ETH` or the ERC-20's EIP-55 address.
    pub(crate) fn of(state: &AppState, token: &str) -> Self {
        let stablecoin = state.config().chain.contracts.stablecoin;
        if token == "ETH" {
            Self { name: "ETH".to_owned(), symbol: "ETH", decimals: Some(18) }
        } else if stablecoin.is_some_and(|a| checksummed(a.as_slice()).eq_ignore_ascii_case(token)) {
            Self { name: "USD stablecoin".to_owned(), symbol: "USD", decimals: Some(6) }
        } else {
            Self { name: token.to_owned(), symbol: "base units", decimals: None }
        }
    }

    /// An amount of base units (a decimal string) as a person reads it, with its unit.
    pub(crate) fn show(&self, base_units: &str) -> String {
        match self.decimals {
            Some(decimals) => format!("{} {}", pages::amount(base_units, decimals), self.symbol),
            None => format!("{base_units} {}", self.symbol),
        }
    }
}

/// An amount of minor units in `currency` (`12.34 EUR`).
fn money(minor: i64, currency: &str) -> String {
    currency.parse::<Currency>().map_or_else(|_| format!("{minor} {currency}"), |c| Money::new(minor, c).to_string())
}

/// The dates a period form shows for `[from, to)`: the first day, and the first day not included.
fn form_days(from: DateTime<Utc>, to: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let last = to.date_naive();
    let after = if to.time() == NaiveTime::MIN { last } else { last.succ_opt().unwrap_or(last) };
    (from.date_naive(), after)
}

/// The page's title: the campaign's name, when one is chosen.
fn title(campaigns: &[(i64, String)], campaign: Option<i64>) -> String {
    match campaigns.iter().find(|(id, _)| Some(*id) == campaign) {
        Some((_, name)) => format!("Dashboard: {name}"),
        None => "Dashboard".to_owned(),
    }
}

/// The page for a period that was refused: the form, saying why (422).
fn refused(
    state: &AppState,
    brand: i64,
    query: &DashboardQuery,
    campaigns: &[(i64, String)],
    error: &ApiError,
) -> Response {
    let form = PeriodForm::refused(format!("/brands/{brand}/dashboard"), campaigns, query.campaign_id, error);
    let title = title(campaigns, query.campaign_id);
    let body = html! { h1 { (title) } (form.render()) };
    let mut response = crate::pages::brand_page(state, brand, &title, body);
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// The dashboard's page.
fn page(state: &AppState, brand: i64, dashboard: &Dashboard, campaigns: &[(i64, String)]) -> Response {
    let (from, to) = form_days(dashboard.from, dashboard.to);
    let form = PeriodForm {
        action: format!("/brands/{brand}/dashboard"),
        from,
        to,
        campaigns,
        campaign: dashboard.campaign_id,
        error: None,
    };
    let title = title(campaigns, dashboard.campaign_id);
    // The days whose start is in the period (the series also has the day `to` falls on).
    let days: Vec<&Day> =
        dashboard.daily.iter().filter(|d| d.date.and_time(NaiveTime::MIN).and_utc() < dashboard.to).collect();
    let last_day = days.last().map_or(from, |d| d.date);
    let body = html! {
        h1 { (title) }
        p.muted { (from) " to " (last_day) " (UTC)" }
        (form.render())
        section aria-labelledby="totals-title" {
            h2 #totals-title { "Totals" }
            div.grid {
                (state_totals("orders-title", "Orders by state", "No orders in this period.", &dashboard.orders))
                (totals_revenue(dashboard))
                (state_totals("redemptions-total-title", "Redemptions by state", "No redemptions in this period.", &dashboard.redemptions))
            }
        }
        section.card aria-labelledby="sales-title" {
            h2 #sales-title { "Daily sales" }
            (sales_chart(&days).render())
        }
        (revenue_section(dashboard, &days))
        (royalties_section(state, dashboard))
        (redemptions_section(dashboard, &days))
        (items_section(dashboard))
    };
    crate::pages::brand_page(state, brand, &title, body)
}

/// Counts by state, as a total and a list of badges (`empty` when there are none).
fn state_totals(id: &str, title: &str, empty: &str, counts: &[StateCount]) -> Markup {
    let total: i64 = counts.iter().map(|s| s.count).sum();
    html! {
        section.card aria-labelledby=(id) {
            h3 id=(id) { (title) }
            @if counts.is_empty() {
                p.muted { (empty) }
            } @else {
                p.amount { (total) }
                dl.facts {
                    @for state in counts {
                        dt { span.badge data-state=(state.state) { (state.state.replace('_', " ")) } }
                        dd { (state.count) }
                    }
                }
            }
        }
    }
}

/// Each currency's total, in order of the currencies' codes.
fn currency_totals(revenue: &[Revenue]) -> BTreeMap<&str, i64> {
    let mut totals = BTreeMap::new();
    for row in revenue {
        let total: &mut i64 = totals.entry(row.currency.as_str()).or_default();
        *total = total.saturating_add(row.amount_minor);
    }
    totals
}

fn totals_revenue(dashboard: &Dashboard) -> Markup {
    let totals = currency_totals(&dashboard.revenue);
    html! {
        section.card aria-labelledby="revenue-title" {
            h3 #revenue-title { "Revenue" }
            @if dashboard.revenue.is_empty() {
                p.muted { "No fulfilled orders in this period." }
            } @else {
                @for (currency, minor) in &totals { p.amount { (money(*minor, currency)) } }
                (figures("Fulfilled orders by currency and payment method", &[Words("Currency"), Words("Method"), Numbers("Orders"), Numbers("Amount")], html! {
                    @for row in &dashboard.revenue {
                        tr {
                            th scope="row" { (row.currency) }
                            td { (row.method) }
                            td.num { (row.orders) }
                            td.num { (money(row.amount_minor, &row.currency)) }
                        }
                    }

                }))
            }
        }
    }
}

/// A day as a chart's category: the whole date in the table, the month and day under the axis.
fn day_group(day: &Day, bars: Vec<Bar>) -> Group {
    Group::new(day.date.to_string(), bars).tick(day.date.format("%m-%d").to_string())
}

fn sales_chart<'a>(days: &[&Day]) -> BarChart<'a> {
    BarChart {
        id: "sales-chart",
        title: "Orders and fulfilled orders per day",
        category: "Day",
        series: &["Orders", "Fulfilled"],
        groups: days.iter().map(|d| day_group(d, vec![Bar::count(d.orders), Bar::count(d.fulfilled)])).collect(),
        empty: "No sales in this period.",
    }
}

/// The daily revenue in the main currency: the one with the largest total.
fn revenue_section(dashboard: &Dashboard, days: &[&Day]) -> Markup {
    let totals = currency_totals(&dashboard.revenue);
    // The largest total; of equal ones, the first code.
    let main = totals.iter().max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0))).map(|(c, _)| *c);
    let others: Vec<&str> = totals.keys().copied().filter(|c| Some(*c) != main).collect();
    let heading = main.map_or_else(|| "Daily revenue".to_owned(), |c| format!("Daily revenue in {c}"));
    let groups = main.map_or_else(Vec::new, |currency| {
        days.iter()
            .map(|day| {
                let minor = day.revenue.iter().find(|r| r.currency == currency).map_or(0, |r| r.amount_minor);
                day_group(day, vec![Bar::amount(Magnitude::count(minor), money(minor, currency))])
            })
            .collect()
    });
    let chart = BarChart {
        id: "revenue-chart",
        title: &heading,
        category: "Day",
        series: &["Revenue"],
        groups,
        empty: "No sales in this period.",
    };
    html! {
        section.card aria-labelledby="revenue-chart-heading" {
            h2 #revenue-chart-heading { (heading) }
            @if !others.is_empty() {
                p.muted { "The currency with the largest total. Also sold in " (others.join(", ")) ": see the totals." }
            }
            (chart.render())
        }
    }
}

/// Royalties expected against received per marketplace: one chart per payment token (amounts of
/// different tokens share no scale).
fn royalties_section(state: &AppState, dashboard: &Dashboard) -> Markup {
    let mut tokens: Vec<&str> = Vec::new();
    for row in &dashboard.royalties {
        if !tokens.contains(&row.payment_token.as_str()) {
            tokens.push(&row.payment_token);
        }
    }
    html! {
        section.card aria-labelledby="royalties-title" {
            h2 #royalties-title { "Royalties expected and received" }
            @if tokens.is_empty() {
                p.muted { "No secondary sales in this period." }
            }
            @for (n, token) in tokens.iter().enumerate() {
                (royalty_chart(state, dashboard, n, token))
            }
        }
    }
}

/// One payment token's royalties per marketplace, under its heading.
fn royalty_chart(state: &AppState, dashboard: &Dashboard, n: usize, token: &str) -> Markup {
    let unit = TokenUnit::of(state, token);
    let heading = format!("Royalties in {}, per marketplace", unit.name);
    let id = format!("royalties-chart-{n}");
    let groups = dashboard
        .royalties
        .iter()
        .filter(|r| r.payment_token == token)
        .map(|r| {
            let bar = |amount: &str| Bar::amount(Magnitude::decimal(amount), unit.show(amount));
            Group::new(r.marketplace.clone(), vec![bar(&r.expected), bar(&r.received)])
        })
        .collect();
    let chart = BarChart {
        id: &id,
        title: &heading,
        category: "Marketplace",
        series: &["Expected", "Received"],
        groups,
        empty: "No royalty was due on these sales.",
    };
    html! {
        h3 { (heading) }
        (chart.render())
    }
}

fn redemptions_section(dashboard: &Dashboard, days: &[&Day]) -> Markup {
    let per_day = BarChart {
        id: "redemptions-chart",
        title: "Redemptions per day",
        category: "Day",
        series: &["Redemptions"],
        groups: days.iter().map(|d| day_group(d, vec![Bar::count(d.redemptions)])).collect(),
        empty: "No redemptions in this period.",
    };
    let per_reward = BarChart {
        id: "rewards-chart",
        title: "Redemptions per reward, by outcome",
        category: "Reward",
        series: &["Completed", "Pending", "Released"],
        groups: dashboard
            .rewards
            .iter()
            .map(|r| {
                Group::new(r.name.clone(), vec![Bar::count(r.completed), Bar::count(r.pending), Bar::count(r.released)])
            })
            .collect(),
        empty: "No redemptions in this period.",
    };
    html! {
        section.card aria-labelledby="redemptions-title" {
            h2 #redemptions-title { "Redemptions" }
            h3 { "Per day" }
            (per_day.render())
            h3 { "Per reward" }
            @if dashboard.rewards.iter().any(|r| r.claims > 0) {
                p.muted { "Pending: waiting for KYC, the payout or the customer's voucher. Released: failed, refused or expired." }
            }
            (per_reward.render())
        }
    }
}

fn items_section(dashboard: &Dashboard) -> Markup {
    html! {
        section.card aria-labelledby="items-title" {
            h2 #items-title { "Items sold against supply" }
            @if dashboard.items.is_empty() {
                p.muted { "No items yet." }
            } @else {
                (figures("Every item, all time", &[Words("Item"), Numbers("Sold"), Numbers("Refunded"), Numbers("Reserved"), Numbers("Supply")], html! {
                    @for item in &dashboard.items {
                        tr {
                            th scope="row" { (item.name) }
                            td.num { (item.sold) }
                            td.num { (item.refunded) }
                            td.num { (item.reserved) }
                            td.num { (item.supply) }
                        }
                    }

                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Form {
        #[serde(default, deserialize_with = "moment")]
        at: Option<DateTime<Utc>>,
        #[serde(default, deserialize_with = "optional")]
        id: Option<i64>,
    }

    /// What a query string of `at` and `id` reads as (each value a string, as in a query).
    fn form(query: &str) -> Result<Form, String> {
        let fields: serde_json::Map<String, serde_json::Value> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect();
        serde_json::from_value(serde_json::Value::Object(fields)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_form_sends_dates_and_blank_fields_which_read_as_the_api_reads_them() {
        let day = form("at=2024-05-01&id=").unwrap();
        assert_eq!(day.at.map(|at| at.to_rfc3339()).as_deref(), Some("2024-05-01T00:00:00+00:00"));
        assert_eq!(day.id, None);
        let exact = form("at=2024-05-01T12:30:00Z&id=7").unwrap();
        assert_eq!(exact.at.map(|at| at.to_rfc3339()).as_deref(), Some("2024-05-01T12:30:00+00:00"));
        assert_eq!(exact.id, Some(7));
        assert!(form("at=").unwrap().at.is_none());
        assert!(form("id=1e400").is_err());
        assert!(form("at=yesterday").is_err());
        assert!(form("at=0900-01-01").is_err(), "dates are refused outside the years timestamps may name");
    }

    #[test]
    fn the_form_shows_the_first_day_and_the_first_day_left_out() {
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            form_days(at("2024-05-01T00:00:00Z"), at("2024-05-31T00:00:00Z")),
            (day("2024-05-01"), day("2024-05-31"))
        );
        assert_eq!(
            form_days(at("2024-05-01T15:00:00Z"), at("2024-05-31T15:00:00Z")),
            (day("2024-05-01"), day("2024-06-01")),
            "a period ending today shows today in"
        );
    }
}
