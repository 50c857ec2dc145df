//! Dashboards: a brand's (or one campaign's) orders, revenue by currency and method, items sold
//! against supply, royalties expected against received, redemptions, and a daily series.
//! Amounts are integers in minor units (fiat) or base units (tokens, as decimal strings).

use axum::extract::State;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Caller, Permission, require},
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Query},
    },
    orders::OrderState,
    workflow::machines::RedemptionState,
};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use shared::chain::checksummed;

/// The longest range one request covers.
const MAX_DAYS: i64 = 366;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(require(Permission::FinanceRead, routes!(dashboard)))
}

/// Which period and campaign.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DashboardQuery {
    /// Start of the period (default: 30 days before `to`).
    from: Option<DateTime<Utc>>,
    /// End of the period (default: now).
    to: Option<DateTime<Utc>>,
    /// Only this campaign.
    campaign_id: Option<i64>,
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

/// Royalties of secondary sales in one payment token (`ETH` or its address).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Royalties {
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
}

/// The brand's dashboard, or one campaign's.
#[utoipa::path(get, path = "/brands/{brand_id}/dashboard", tag = "dashboards",
    params(("brand_id" = i64, Path), DashboardQuery),
    responses((status = 200, body = Dashboard), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn dashboard(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<DashboardQuery>,
) -> ApiResult<Json<Dashboard>> {
    let brand = caller.brand()?.id;
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
        brand.get(),
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
        brand.get(),
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
        brand.get(),
        campaign,
        &sold_states as &[&str],
        OrderState::Refunded.as_str()
    )
    .fetch_all(&mut *conn)
    .await?;
    // From the royalty ledger, kept with every sale (never summed from sales here): the UTC days
    // the period touches.
    let royalties = sqlx::query!(
        "SELECT NULLIF(payment_token, '\\x0000000000000000000000000000000000000000'::bytea) AS payment_token,
                sum(sales)::bigint AS \"sales!\", sum(expected)::text AS \"expected!\", sum(received)::text AS \"received!\"
         FROM royalty_ledger
         WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2)
           AND day >= ($3::timestamptz AT TIME ZONE 'UTC')::date
           AND day <= (($4::timestamptz - interval '1 microsecond') AT TIME ZONE 'UTC')::date
         GROUP BY 1 HAVING sum(sales) > 0 ORDER BY 1 NULLS FIRST",
        brand.get(),
        campaign,
        from,
        to
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| Royalties {
        payment_token: r.payment_token.as_deref().map_or_else(|| "ETH".to_owned(), checksummed),
        sales: r.sales,
        expected: r.expected,
        received: r.received,
    })
    .collect();
    let redemptions = sqlx::query_as!(
        StateCount,
        "SELECT state, count(*) AS \"count!\" FROM redemptions
         WHERE brand_id = $1 AND ($2::bigint IS NULL OR campaign_id = $2) AND created_at >= $3 AND created_at < $4
         GROUP BY state ORDER BY state",
        brand.get(),
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
    .bind(brand.get())
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
    let daily = sqlx::query_as!(
        Day,
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
        brand.get(),
        campaign,
        from,
        to,
        &revenue_states as &[&str]
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Json(Dashboard {
        from,
        to,
        campaign_id: campaign,
        orders,
        revenue,
        items,
        royalties,
        redemptions,
        rewards,
        daily,
    }))
}
