//! Redeeming rewards with a wallet: which rewards a signed-in customer's tokens give
//! (eligibility), and claiming one for a token they hold.
//!
//! A claim is checked at the edge (the reward, the token, the recipient, the denylist, the
//! claim limits), then against the chain: the indexer's ownership tables must name the wallet,
//! and so must the collection's live `ownerOf`. It then takes the next free use of the token in
//! the reward's period (`redemptions_once_idx`, the database's half of "exactly once"; the
//! vault's replay bitmap over the redemption id is the chain's). A token reward gets a signed
//! `RewardVault` voucher, sent by the platform through the transaction queue (gasless, the
//! default) or handed to the customer to send; a perk gets the next unused code, shown in this
//! answer only. Above the reward's KYC threshold the claim waits for the customer's approved
//! KYC ([`crate::payouts`] carries it on).

use alloy::{
    primitives::{Address, U256},
    sol_types::SolCall,
};
use axum::{extract::State, http::StatusCode};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    AppState,
    auth::{Caller, Permission, RequestMeta, require},
    chain::txqueue::{self, IdempotencyKey, Requester, TxRequest},
    contracts::{CampaignNFT, RewardVault, VoucherSigner},
    http::{
        ApiError, ApiResult, ConflictCode, FieldErrors, Problem,
        extract::{Json, Path},
        ratelimit,
    },
    money::Wei,
    service::Resources,
    workflow::{
        Transition, apply,
        machines::{Redemption as Machine, RedemptionEvent, RedemptionState},
    },
};
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::config::RedemptionConfig;

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
    reward_id: i64,
    campaign_id: i64,
    campaign: String,
    /// token or perk.
    kind: String,
    name: String,
    description: String,
    /// Decimal string.
    token_id: String,
    /// token: eth or stablecoin, and the amount per redemption in wei / base units.
    token: Option<String>,
    amount: Option<String>,
    /// once, day, week or month: how often `per_period` uses come back.
    period: String,
    per_period: i32,
    /// Uses left for this token in the current period.
    left: i64,
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

/// A redemption, as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RedemptionView {
    id: i64,
    reward_id: i64,
    campaign_id: i64,
    token_id: String,
    /// claimed, awaiting_kyc, submitted, voucher_issued, completed, failed, refused or expired.
    state: String,
    /// platform or customer.
    submitted_by: String,
    recipient: String,
    /// Token rewards: what is paid, in wei / base units, and in which token (zero address: ETH).
    amount: Option<String>,
    payout_token: Option<String>,
    /// The payout transaction, once sent by the platform.
    tx_hash: Option<String>,
    /// Why it waits, failed or was refused.
    reason: Option<String>,
    /// `submitted_by = customer`: the signed voucher to send to `RewardVault.redeem`.
    voucher: Option<Voucher>,
    /// Perks: the code, in the claim's answer only (it is not shown again).
    code: Option<String>,
    created_at: DateTime<Utc>,
}

/// A signed `RewardVault` voucher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Voucher {
    vault: String,
    chain_id: u64,
    redemption_id: String,
    campaign_id: String,
    token_id: String,
    recipient: String,
    token: String,
    amount: String,
    deadline: u64,
    /// 65-byte r‖s‖v, 0x-hex.
    signature: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RedemptionPath {
    redemption_id: i64,
}

fn conflict(code: ConflictCode, detail: impl Into<String>) -> ApiError {
    ApiError::Conflict { code, detail: detail.into() }
}

/// The rewards the signed-in wallet's tokens give, by the indexer's ownership tables, with the
/// uses left in the current period.
#[utoipa::path(get, path = "/customers/me/rewards", tag = "redemptions",
    responses((status = 200, body = Vec<Eligible>)))]
#[tracing::instrument(skip_all)]
async fn my_rewards(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Eligible>>> {
    let (customer, wallet) = caller.customer()?;
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
    Ok(Json(rewards))
}

/// The period a use counts in: `''` for once ever, else the UTC day, ISO week or month.
pub(crate) fn period_key(period: &str, at: DateTime<Utc>) -> String {
    match period {
        "day" => at.format("%Y-%m-%d").to_string(),
        "week" => {
            let week = at.iso_week();
            format!("{}-W{:02}", week.year(), week.week())
        }
        "month" => at.format("%Y-%m").to_string(),
        _ => String::new(),
    }
}

async fn kyc_approved(conn: &mut PgConnection, customer: i64) -> ApiResult<bool> {
    let latest = shared::kyc::submission::latest_of(conn, customer).await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(latest.is_some_and(|s| s.state == shared::kyc::submission::KycState::Approved))
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
    let token_text = body.token_id.trim();
    let token_id = match token_text.parse::<Wei>() {
        Ok(id) if token_text.len() <= 78 => id.get(),
        _ => {
            errors.add("token_id", "must be a token id in decimal digits");
            U256::ZERO
        }
    };
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

    let reward = sqlx::query(
        "SELECT r.brand_id, r.campaign_id, r.kind, r.period, COALESCE(r.redemptions_per_nft, 1) AS per,
                r.kyc_threshold IS NOT NULL AND r.amount_per_redemption >= r.kyc_threshold AS kyc,
                c.state AS campaign_state, c.chain_id, c.collection_address
         FROM campaign_rewards r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = $1",
    )
    .bind(body.reward_id)
    .fetch_optional(state.db())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no reward {}", body.reward_id)))?;
    let kind: String = reward.get("kind");
    let campaign_state: String = reward.get("campaign_state");
    let collection: Option<Vec<u8>> = reward.get("collection_address");
    let chain_id: Option<i64> = reward.get("chain_id");
    let (Some(collection), Some(chain_id), true) =
        (collection, chain_id, ["live", "paused", "ended"].contains(&campaign_state.as_str()))
    else {
        return Err(conflict(ConflictCode::RewardUnavailable, "this campaign's collection is not live yet"));
    };
    if kind == "royalty_share" {
        return Err(conflict(
            ConflictCode::RewardUnavailable,
            "a royalty share is paid to holders by itself, not claimed",
        ));
    }
    let collection = Address::try_from(collection.as_slice()).map_err(|e| ApiError::Internal(e.into()))?;
    denied(&state, &settings, &[wallet, recipient]).await?;
    holds(&state, chain_id, collection, token_id, wallet).await?;

    let mut tx = state.db().begin().await?;
    let period: String = reward.get("period");
    let period_key = period_key(&period, Utc::now());
    expire_stale_vouchers(&mut tx, body.reward_id, token_id, &period_key).await?;
    let per: i32 = reward.get("per");
    let brand: i64 = reward.get("brand_id");
    let campaign: i64 = reward.get("campaign_id");
    let released = RedemptionState::released_names();
    let mut taken = None;
    // Each round takes the lowest free use; losing a race for it tries the next one while the
    // token has uses left.
    for _ in 0..=per {
        taken = sqlx::query_scalar::<_, i64>(
            "INSERT INTO redemptions (brand_id, campaign_id, reward_id, token_id, customer_id, claimant, recipient,
                                      period_key, slot, submitted_by)
             SELECT $1, $2, $3, $4::numeric, $5, $6, $7, $8, s.slot, $10
             FROM generate_series(1, $9) AS s (slot)
             WHERE NOT EXISTS (SELECT 1 FROM redemptions x
                               WHERE x.reward_id = $3 AND x.token_id = $4::numeric AND x.period_key = $8
                                 AND x.slot = s.slot AND x.state <> ALL($11))
             ORDER BY s.slot LIMIT 1
             ON CONFLICT DO NOTHING
             RETURNING id",
        )
        .bind(brand)
        .bind(campaign)
        .bind(body.reward_id)
        .bind(token_id.to_string())
        .bind(customer)
        .bind(wallet.as_slice())
        .bind(recipient.as_slice())
        .bind(&period_key)
        .bind(per)
        .bind(submitted_by)
        .bind(&released)
        .fetch_optional(&mut *tx)
        .await?;
        if taken.is_some() {
            break;
        }
        let left: bool = sqlx::query_scalar(
            "SELECT count(*) < $4 FROM redemptions WHERE reward_id = $1 AND token_id = $2::numeric AND period_key = $3
                AND state <> ALL($5)",
        )
        .bind(body.reward_id)
        .bind(token_id.to_string())
        .bind(&period_key)
        .bind(i64::from(per))
        .bind(&released)
        .fetch_one(&mut *tx)
        .await?;
        if !left {
            break;
        }
    }
    let Some(id) = taken else {
        let when = match period.as_str() {
            "once" => String::new(),
            other => format!(" this {other}"),
        };
        return Err(conflict(
            ConflictCode::AlreadyRedeemed,
            format!("token {token_id} has already redeemed this reward{when} ({per} time(s) allowed)"),
        ));
    };
    let actor = caller.principal.actor();
    let needs_kyc: bool = reward.get::<Option<bool>, _>("kyc").unwrap_or(false);
    let mut code = None;
    if kind == "perk" {
        code = Some(hand_out_code(&mut tx, id, body.reward_id, brand, &actor).await?);
    } else if needs_kyc && !kyc_approved(&mut tx, customer).await? {
        let reason = "this reward needs your identity verified (KYC): submit it, and the claim proceeds once approved";
        sqlx::query("UPDATE redemptions SET reason = $2 WHERE id = $1").bind(id).bind(reason).execute(&mut *tx).await?;
        let transition = Transition::<Machine>::new(id, RedemptionEvent::HoldForKyc, "claim", &actor)
            .with_payload(json!({ "brand_id": brand, "campaign_id": campaign, "reward_id": body.reward_id }));
        apply(&mut tx, transition).await?;
    } else {
        pay(&mut tx, state.resources(), &settings, id, "claim", &actor).await.map_err(claim_error)?;
    }
    let mut view = load(&mut tx, &state, customer, id).await?;
    view.code = code;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A payout that cannot be prepared is the customer's to hear about in words, the rest a 500.
fn claim_error(e: anyhow::Error) -> ApiError {
    match e.downcast::<Unavailable>() {
        Ok(Unavailable(detail)) => conflict(ConflictCode::RewardUnavailable, detail),
        Err(e) => ApiError::Internal(e),
    }
}

/// Why a token reward cannot be paid now (the platform's set-up, not the customer's claim).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Unavailable(pub(crate) String);

/// Refuses addresses on the denylist (configuration or `denied_addresses`).
async fn denied(state: &AppState, settings: &RedemptionConfig, addresses: &[Address]) -> ApiResult<()> {
    let listed = addresses.iter().any(|a| settings.denylist.contains(a));
    let stored: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM denied_addresses WHERE address = ANY($1))")
        .bind(addresses.iter().map(|a| a.to_vec()).collect::<Vec<_>>())
        .fetch_one(state.db())
        .await?;
    if listed || stored {
        return Err(conflict(
            ConflictCode::AddressDenied,
            "this address cannot receive rewards on this platform; contact the brand if you think this is a mistake",
        ));
    }
    Ok(())
}

/// The wallet must hold the token by the indexer's tables and by the collection's live
/// `ownerOf` (the indexer may be a few blocks behind; the chain decides).
async fn holds(state: &AppState, chain_id: i64, collection: Address, token: U256, wallet: Address) -> ApiResult<()> {
    let indexed: Option<Vec<u8>> = sqlx::query_scalar(
        "SELECT owner FROM token_owners WHERE chain_id = $1 AND collection = $2 AND token_id = $3::numeric",
    )
    .bind(chain_id)
    .bind(collection.as_slice())
    .bind(token.to_string())
    .fetch_optional(state.db())
    .await?;
    let nft = CampaignNFT::new(collection, state.chain().provider().clone());
    let live = match nft.ownerOf(token).call().await {
        Ok(owner) => Some(owner),
        // A revert: no such token (never minted, or burnt).
        Err(e) if e.as_revert_data().is_some() => None,
        Err(e) => {
            return Err(ApiError::Unavailable { detail: format!("the chain cannot be reached: {e}"), checks: None });
        }
    };
    match (indexed.as_deref() == Some(wallet.as_slice()), live == Some(wallet)) {
        (true, true) => Ok(()),
        (false, true) => Err(conflict(
            ConflictCode::NotTheHolder,
            format!("token {token} came to this wallet moments ago and is not indexed yet: try again in a minute"),
        )),
        _ if live.is_none() => Err(ApiError::NotFound(format!("token {token} does not exist in this collection"))),
        _ => Err(conflict(ConflictCode::NotTheHolder, format!("token {token} is held by another wallet"))),
    }
}

/// A customer-sent voucher past its deadline can no longer be paid: its use is given back.
async fn expire_stale_vouchers(conn: &mut PgConnection, reward: i64, token: U256, period: &str) -> ApiResult<()> {
    let stale: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, brand_id FROM redemptions
         WHERE reward_id = $1 AND token_id = $2::numeric AND period_key = $3 AND state = 'voucher_issued'
           AND deadline < now() - interval '5 minutes'",
    )
    .bind(reward)
    .bind(token.to_string())
    .bind(period)
    .fetch_all(&mut *conn)
    .await?;
    for (id, brand) in stale {
        let transition = Transition::<Machine>::new(id, RedemptionEvent::Expire, "voucher-deadline", "redemption")
            .with_payload(json!({ "brand_id": brand }));
        apply(conn, transition).await?;
    }
    Ok(())
}

/// Hands out the reward's next unused code to redemption `id` (completed at once).
async fn hand_out_code(conn: &mut PgConnection, id: i64, reward: i64, brand: i64, actor: &str) -> ApiResult<String> {
    let code: Option<(i64, String)> = sqlx::query_as(
        "UPDATE reward_codes SET assigned_at = now()
         WHERE id = (SELECT id FROM reward_codes WHERE reward_id = $1 AND assigned_at IS NULL
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id, code",
    )
    .bind(reward)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((code_id, code)) = code else {
        return Err(conflict(ConflictCode::RewardUnavailable, "every code of this perk has been handed out"));
    };
    sqlx::query("UPDATE redemptions SET reward_code_id = $2 WHERE id = $1")
        .bind(id)
        .bind(code_id)
        .execute(&mut *conn)
        .await?;
    let transition = Transition::<Machine>::new(id, RedemptionEvent::Deliver, "claim", actor)
        .with_payload(json!({ "brand_id": brand, "reward_id": reward, "kind": "perk" }));
    apply(conn, transition).await?;
    Ok(code)
}

/// Signs redemption `id`'s voucher and either queues `RewardVault.redeem` (the platform pays)
/// or issues it to the customer; `cause` makes a replay a no-op.
pub(crate) async fn pay(
    conn: &mut PgConnection,
    resources: &Resources,
    settings: &RedemptionConfig,
    id: i64,
    cause: &str,
    actor: &str,
) -> anyhow::Result<()> {
    let row = sqlx::query(
        "SELECT x.brand_id, x.campaign_id, x.reward_id, x.token_id::text AS token_id, x.recipient, x.submitted_by,
                r.token, r.amount_per_redemption::text AS amount, c.chain_id
         FROM redemptions x JOIN campaign_rewards r ON r.id = x.reward_id JOIN campaigns c ON c.id = x.campaign_id
         WHERE x.id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    let contracts = &resources.config().chain.contracts;
    let vault =
        contracts.reward_vault.ok_or_else(|| Unavailable("token rewards are not paid on this platform".into()))?;
    let signer = settings
        .voucher_signer
        .clone()
        .ok_or_else(|| Unavailable("token rewards cannot be signed for now: no voucher signer is set up".into()))?;
    let payout_token = match row.get::<Option<String>, _>("token").as_deref() {
        Some("stablecoin") => {
            contracts.stablecoin.ok_or_else(|| Unavailable("this platform has no stablecoin configured".into()))?
        }
        _ => Address::ZERO,
    };
    let chain_id = u64::try_from(row.get::<i64, _>("chain_id"))?;
    let amount: U256 = row.get::<String, _>("amount").parse()?;
    let token_id: U256 = row.get::<String, _>("token_id").parse()?;
    let recipient = Address::try_from(row.get::<Vec<u8>, _>("recipient").as_slice())?;
    let ttl = settings.voucher_ttl;
    let deadline = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(1));
    let voucher = RewardVault::Voucher {
        redemptionId: U256::from(u64::try_from(id)?),
        campaignId: U256::from(u64::try_from(row.get::<i64, _>("campaign_id"))?),
        tokenId: token_id,
        recipient,
        token: payout_token,
        amount,
        deadline: U256::from(u64::try_from(deadline.timestamp())?),
    };
    let signature = VoucherSigner::new(signer, chain_id, vault).sign(&voucher).await?.as_bytes().to_vec();
    sqlx::query(
        "UPDATE redemptions SET payout_token = $2, amount = $3::numeric, deadline = $4, signature = $5, reason = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(payout_token.as_slice())
    .bind(amount.to_string())
    .bind(deadline)
    .bind(&signature)
    .execute(&mut *conn)
    .await?;
    let brand: i64 = row.get("brand_id");
    let payload = json!({ "brand_id": brand, "campaign_id": row.get::<i64, _>("campaign_id"),
                          "reward_id": row.get::<i64, _>("reward_id"), "token_id": token_id.to_string() });
    if row.get::<String, _>("submitted_by") == "customer" {
        let transition =
            Transition::<Machine>::new(id, RedemptionEvent::IssueVoucher, cause, actor).with_payload(payload);
        apply(conn, transition).await?;
        return Ok(());
    }
    let relayer = shared::chain::relayer(&resources.config().chain)
        .ok_or_else(|| Unavailable("rewards cannot be sent for now: no transaction signer is set up".into()))?;
    let call = RewardVault::redeemCall { voucher, signature: signature.into() };
    let request = TxRequest::call(
        IdempotencyKey::new(format!("redemption:{id}"))?,
        chain_id,
        relayer,
        vault,
        call.abi_encode().into(),
    )
    .requested_by(Requester::RedemptionPayout)
    .with_context(json!({ "redemption_id": id, "brand_id": brand }));
    let queued = txqueue::enqueue(conn, &request).await?;
    sqlx::query("UPDATE redemptions SET chain_tx_id = $2 WHERE id = $1")
        .bind(id)
        .bind(queued.id.get())
        .execute(&mut *conn)
        .await?;
    let transition = Transition::<Machine>::new(id, RedemptionEvent::Submit, cause, actor).with_payload(payload);
    apply(conn, transition).await?;
    Ok(())
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
        all.push(load(&mut conn, &state, customer, id).await?);
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
    Ok(Json(load(&mut conn, &state, customer, redemption_id).await?))
}

/// Redemption `id` of `customer` (404 for anyone else's).
async fn load(conn: &mut PgConnection, state: &AppState, customer: i64, id: i64) -> ApiResult<RedemptionView> {
    let row = sqlx::query(
        "SELECT x.id, x.reward_id, x.campaign_id, x.token_id::text AS token_id, x.state, x.submitted_by, x.recipient,
                x.amount::text AS amount, x.payout_token, x.reason, x.signature, x.deadline, x.created_at,
                t.tx_hash, c.chain_id
         FROM redemptions x JOIN campaigns c ON c.id = x.campaign_id
         LEFT JOIN chain_transactions t ON t.id = x.chain_tx_id
         WHERE x.id = $1 AND x.customer_id = $2",
    )
    .bind(id)
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no redemption {id}")))?;
    let hex = |bytes: Vec<u8>| format!("0x{}", alloy::hex::encode(bytes));
    let address = |bytes: Vec<u8>| shared::chain::checksummed(&bytes);
    let state_name: String = row.get("state");
    let recipient = address(row.get("recipient"));
    let payout_token: Option<Vec<u8>> = row.get("payout_token");
    let amount: Option<String> = row.get("amount");
    let signature: Option<Vec<u8>> = row.get("signature");
    let deadline: Option<DateTime<Utc>> = row.get("deadline");
    let voucher = match (state_name == RedemptionState::VoucherIssued.as_str(), &payout_token, &amount, signature) {
        (true, Some(token), Some(amount), Some(signature)) => {
            let vault = state.config().chain.contracts.reward_vault.map(|v| v.to_checksum(None)).unwrap_or_default();
            Some(Voucher {
                vault,
                chain_id: u64::try_from(row.get::<Option<i64>, _>("chain_id").unwrap_or(0)).unwrap_or(0),
                redemption_id: id.to_string(),
                campaign_id: row.get::<i64, _>("campaign_id").to_string(),
                token_id: row.get("token_id"),
                recipient: recipient.clone(),
                token: address(token.clone()),
                amount: amount.clone(),
                deadline: deadline.map_or(0, |d| u64::try_from(d.timestamp()).unwrap_or(0)),
                signature: hex(signature),
            })
        }
        _ => None,
    };
    Ok(RedemptionView {
        id,
        reward_id: row.get("reward_id"),
        campaign_id: row.get("campaign_id"),
        token_id: row.get("token_id"),
        state: state_name,
        submitted_by: row.get("submitted_by"),
        recipient,
        amount,
        payout_token: payout_token.map(address),
        tx_hash: row.get::<Option<Vec<u8>>, _>("tx_hash").map(hex),
        reason: row.get("reason"),
        voucher,
        code: None,
        created_at: row.get("created_at"),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn periods_are_utc_days_iso_weeks_and_months() {
        let at = Utc.with_ymd_and_hms(2027, 1, 1, 23, 59, 59).single().unwrap_or_default();
        assert_eq!(period_key("once", at), "");
        assert_eq!(period_key("day", at), "2027-01-01");
        // 1 January 2027 is a Friday of ISO week 53 of 2026.
        assert_eq!(period_key("week", at), "2026-W53");
        assert_eq!(period_key("month", at), "2027-01");
    }
}
