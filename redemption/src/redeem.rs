//! Redeeming rewards with a wallet: which rewards a signed-in customer's tokens give
//! (eligibility), and claiming one for a token they hold.
//!
//! A claim is checked at the edge (the reward, the token, the recipient, the denylist, the
//! claim limits), then against the chain: the indexer's ownership tables must name the wallet,
//! and so must the collection's live `ownerOf`. It then takes the next free use of the token in
//! the reward's period and is fulfilled as [`crate::claims`] describes.

use alloy::primitives::{Address, U256};
use axum::{extract::State, http::StatusCode};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Caller, Permission, RequestMeta, require},
    http::{
        ApiResult, FieldErrors, Problem,
        extract::{Json, Path},
        ratelimit,
    },
    workflow::machines::RedemptionState,
};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    claims::{self, Claim, RedemptionView, denied, holds, kyc_approved, load, period_key},
    config::RedemptionConfig,
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::Customer, routes!(my_rewards)))
        .routes(require(Permission::Customer, routes!(claim)))
        .routes(require(Permission::Customer, routes!(my_redemptions)))
        .routes(require(Permission::Customer, routes!(my_redemption)))
}

/// A reward one of the customer's tokens gives.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Eligible {
    pub(crate) reward_id: i64,
    campaign_id: i64,
    pub(crate) campaign: String,
    /// token or perk.
    pub(crate) kind: String,
    pub(crate) name: String,
    description: String,
    /// Decimal string.
    pub(crate) token_id: String,
    /// token: eth or stablecoin, and the amount per redemption in wei / base units.
    token: Option<String>,
    amount: Option<String>,
    /// once, day, week or month: how often `per_period` uses come back.
    period: String,
    per_period: i32,
    /// Uses left for this token in the current period.
    pub(crate) left: i64,
    /// Whether claiming waits for the customer's approved KYC.
    needs_kyc: bool,
}

/// A claim.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewClaim {
    #[schema(minimum = 1)]
    reward_id: i64,
    /// The token held, a decimal string.
    #[schema(example = "1")]
    token_id: String,
    /// Where a token reward goes (EIP-55); the signed-in wallet if absent.
    recipient: Option<String>,
    /// `platform` (default: the platform sends the voucher, no gas for the customer) or
    /// `customer` (the answer carries the signed voucher to send to the vault yourself).
    submitted_by: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RedemptionPath {
    redemption_id: i64,
}

/// The rewards the signed-in wallet's tokens give, by the indexer's ownership tables, with the
/// uses left in the current period.
#[utoipa::path(get, path = "/customers/me/rewards", tag = "redemptions",
    responses((status = 200, body = Vec<Eligible>)))]
#[tracing::instrument(skip_all)]
async fn my_rewards(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Eligible>>> {
    let (customer, wallet) = caller.customer()?;
    Ok(Json(eligible(&state, customer, wallet).await?))
}

/// What `wallet`'s tokens give `customer`, with the uses left in the current period.
pub(crate) async fn eligible(state: &AppState, customer: i64, wallet: Address) -> ApiResult<Vec<Eligible>> {
    let now = Utc::now();
    let rows = sqlx::query(
        "SELECT r.id, r.campaign_id, c.name AS campaign, r.kind, r.name, r.description, o.token_id::text AS token_id,
                r.token, r.amount_per_redemption::text AS amount, r.period, COALESCE(r.redemptions_per_nft, 1) AS per,
                r.kyc_threshold IS NOT NULL AND r.amount_per_redemption >= r.kyc_threshold AS kyc,
                (SELECT count(*) FROM redemptions x
                 WHERE x.reward_id = r.id AND x.token_id = o.token_id AND x.state <> ALL($5)
                   AND x.period_key = CASE r.period WHEN 'once' THEN '' WHEN 'day' THEN $2
                                                    WHEN 'week' THEN $3 ELSE $4 END) AS used
         FROM token_owners o
         JOIN campaigns c ON c.chain_id = o.chain_id AND c.collection_address = o.collection
         JOIN campaign_rewards r ON r.campaign_id = c.id AND r.kind IN ('token', 'perk')
         WHERE o.owner = $1 AND c.state IN ('live', 'paused', 'ended')
         ORDER BY c.id, o.token_id, r.id
         LIMIT 1000",
    )
    .bind(wallet.as_slice())
    .bind(period_key("day", now))
    .bind(period_key("week", now))
    .bind(period_key("month", now))
    .bind(RedemptionState::released_names())
    .fetch_all(state.db())
    .await?;
    let approved = kyc_approved(&mut *state.db().acquire().await?, customer).await?;
    let rewards = rows
        .into_iter()
        .map(|row| {
            let per: i32 = row.get("per");
            let used: i64 = row.get("used");
            Eligible {
                reward_id: row.get("id"),
                campaign_id: row.get("campaign_id"),
                campaign: row.get("campaign"),
                kind: row.get("kind"),
                name: row.get("name"),
                description: row.get("description"),
                token_id: row.get("token_id"),
                token: row.get("token"),
                amount: row.get("amount"),
                period: row.get("period"),
                per_period: per,
                left: (i64::from(per) - used).max(0),
                needs_kyc: row.get::<Option<bool>, _>("kyc").unwrap_or(false) && !approved,
            }
        })
        .collect();
    Ok(rewards)
}

/// Claims a reward for a token the signed-in wallet holds. Answers 201 with the redemption:
/// `submitted` (the platform pays it), `voucher_issued` (send the voucher yourself),
/// `completed` (a perk, with its code shown this once) or `awaiting_kyc`.
#[utoipa::path(post, path = "/customers/me/redemptions", tag = "redemptions", request_body = NewClaim,
    responses(
        (status = 201, body = RedemptionView),
        (status = 404, description = "No such reward", body = Problem),
        (status = 409, description = "Already redeemed, not the holder, a denied address, or the reward cannot be \
            paid now (no codes left, no voucher signer)", body = Problem),
        (status = 422, body = Problem),
        (status = 429, body = Problem),
        (status = 503, description = "The chain cannot be reached to check the holder", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Json(body): Json<NewClaim>,
) -> ApiResult<(StatusCode, Json<RedemptionView>)> {
    let (customer, wallet) = caller.customer()?;
    let settings = state.part::<RedemptionConfig>()?;
    let mut errors = FieldErrors::default();
    if body.reward_id < 1 {
        errors.add("reward_id", "must be a reward's id (a positive number)");
    }
    let token_id = claims::parse_token_id(&body.token_id).unwrap_or_else(|reason| {
        errors.add("token_id", reason);
        U256::ZERO
    });
    let recipient = match body.recipient.as_deref() {
        None => wallet,
        Some(text) => shared::address::parse_address(text).unwrap_or_else(|reason| {
            errors.add("recipient", reason);
            Address::ZERO
        }),
    };
    let submitted_by = match body.submitted_by.as_deref().unwrap_or("platform") {
        by @ ("platform" | "customer") => by,
        _ => {
            errors.add("submitted_by", "must be platform or customer");
            "platform"
        }
    };
    errors.finish()?;
    let buckets = [
        format!("redeem:ip:{}", meta.ip_key()),
        format!("redeem:wallet:{}", alloy::hex::encode(wallet)),
        format!("redeem:reward:{}:{token_id}", body.reward_id),
    ];
    ratelimit::check(state.db(), &settings.claim_limits, &buckets).await?;

    let reward = claims::reward(&state, body.reward_id).await?;
    denied(&state, &settings, &[wallet, recipient]).await?;
    holds(&state, reward.chain_id, reward.collection, token_id, wallet).await?;
    let actor = caller.principal.actor();
    let claim = Claim {
        brand: reward.brand,
        campaign: reward.campaign,
        reward: body.reward_id,
        kind: &reward.kind,
        needs_kyc: reward.needs_kyc,
        customer: Some(customer),
        claimant: wallet,
        recipient,
        submitted_by,
        store: None,
        actor: &actor,
    };
    let mut tx = state.db().begin().await?;
    let id = claims::take_token_use(&mut tx, &claim, token_id, &reward.period, reward.per).await?;
    let code = claims::fulfil(&mut tx, &state, &settings, &claim, id).await?;
    let mut view = load(&mut tx, &state, Some(customer), id).await?;
    view.code = code;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The customer's redemptions, newest first.
#[utoipa::path(get, path = "/customers/me/redemptions", tag = "redemptions",
    responses((status = 200, body = Vec<RedemptionView>)))]
#[tracing::instrument(skip_all)]
async fn my_redemptions(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<RedemptionView>>> {
    let (customer, _) = caller.customer()?;
    let mut conn = state.db().acquire().await?;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM redemptions WHERE customer_id = $1 ORDER BY id DESC LIMIT 200")
            .bind(customer)
            .fetch_all(&mut *conn)
            .await?;
    let mut all = Vec::with_capacity(ids.len());
    for id in ids {
        all.push(load(&mut conn, &state, Some(customer), id).await?);
    }
    Ok(Json(all))
}

/// One of the customer's redemptions: where it is, with the payout's transaction once sent.
#[utoipa::path(get, path = "/customers/me/redemptions/{redemption_id}", tag = "redemptions",
    params(("redemption_id" = i64, Path)),
    responses((status = 200, body = RedemptionView), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn my_redemption(
    State(state): State<AppState>,
    caller: Caller,
    Path(RedemptionPath { redemption_id }): Path<RedemptionPath>,
) -> ApiResult<Json<RedemptionView>> {
    let (customer, _) = caller.customer()?;
    let mut conn = state.db().acquire().await?;
    Ok(Json(load(&mut conn, &state, Some(customer), redemption_id).await?))
}
