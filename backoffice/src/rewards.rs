//! Rewards of a campaign: on-chain token amounts paid from the RewardVault (funded through the
//! transaction queue, balance read from the vault), off-chain perks with codes imported from
//! CSV or XLSX, and the royalty-share rule.
//!
//! Amounts and shares move money, so they are editable only while no money can have accrued
//! against them: before the campaign's collection is deployed (sales and royalties start then).

use alloy::{
    primitives::{Address, U256},
    sol_types::SolCall,
};
use axum::{
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
};
use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    chain::txqueue::{self, IdempotencyKey, TxRequest},
    contracts::{ETH, RewardVault, TestStablecoin},
    http::OnConstraint,
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Body, Json, Path},
    },
    money::Wei,
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::campaigns::{self, CampaignPath, Errors, before_deployment};

/// Largest accepted code file.
const MAX_IMPORT_BYTES: usize = 5 * 1024 * 1024;
/// Gas for the vault's `fund` after an `approve` queued just before it (it cannot be estimated
/// until the approval is mined).
const FUND_GAS_LIMIT: u64 = 150_000;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    let import = OpenApiRouter::new()
        .routes(require(Permission::CampaignsManage, routes!(import_codes)))
        .layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES + 1));
    OpenApiRouter::new()
        .routes(require(Permission::CampaignsManage, routes!(create_reward)))
        .routes(require(Permission::CampaignsRead, routes!(list_rewards)))
        .routes(require(Permission::CampaignsManage, routes!(update_reward)))
        .routes(require(Permission::CampaignsManage, routes!(fund_reward)))
        .merge(import)
}

/// A reward.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Reward {
    id: i64,
    campaign_id: i64,
    /// token, perk or royalty_share.
    kind: String,
    name: String,
    description: String,
    /// token: eth or stablecoin.
    token: Option<String>,
    /// token: paid per NFT and redemption, in wei / the token's base units (decimal string).
    amount_per_redemption: Option<String>,
    redemptions_per_nft: Option<i32>,
    /// token and perk: once, day, week or month.
    period: String,
    /// token: claims worth at least this wait for approved KYC.
    kyc_threshold: Option<String>,
    /// royalty_share: the holders' share of received royalties.
    share_bps: Option<i32>,
    /// perk: codes imported and still unassigned.
    codes_available: i64,
    codes_total: i64,
    /// token: the campaign's balance of the reward token in the vault (base units), when the
    /// campaign is deployed and the chain answers.
    vault_balance: Option<String>,
    /// token: amounts sent to the vault through the transaction queue.
    fundings: Vec<Funding>,
    updated_at: DateTime<Utc>,
}

/// One funding of a token reward.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Funding {
    id: i64,
    amount: String,
    chain_tx_id: i64,
    /// The queue's state of the fund transaction.
    state: String,
    created_at: DateTime<Utc>,
}

/// A new reward.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewReward {
    /// token, perk or royalty_share.
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    /// token: eth or stablecoin.
    token: Option<String>,
    /// token: decimal string in wei / base units, per NFT and redemption.
    amount_per_redemption: Option<String>,
    /// token: how often each NFT can redeem (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    redemptions_per_nft: Option<i64>,
    /// royalty_share: 1–10,000.
    #[schema(minimum = 1, maximum = 10_000)]
    share_bps: Option<i64>,
    /// token and perk: how often each NFT's uses come back: once (default), day, week or month.
    period: Option<String>,
    /// token: claims worth at least this (decimal string, wei / base units) wait for the
    /// customer's approved KYC; absent: never.
    kyc_threshold: Option<String>,
}

/// Changes to a reward: name and description always; amounts and shares before deployment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RewardChanges {
    name: Option<String>,
    description: Option<String>,
    amount_per_redemption: Option<String>,
    #[schema(minimum = 1, maximum = 1000)]
    redemptions_per_nft: Option<i64>,
    #[schema(minimum = 1, maximum = 10_000)]
    share_bps: Option<i64>,
}

/// An amount to put into the vault.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FundRequest {
    /// Decimal string in wei / the token's base units.
    amount: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct RewardPath {
    campaign_id: i64,
    reward_id: i64,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ImportReport {
    imported: usize,
    import_id: uuid::Uuid,
}

fn amount(errors: &mut Errors, field: &str, text: &str) -> Option<BigDecimal> {
    match text.trim().parse::<Wei>() {
        Ok(wei) if wei.get() > U256::ZERO => wei.to_string().parse().ok(),
        _ => {
            errors.add(field, "must be a positive whole number of base units (wei), as a decimal string");
            None
        }
    }
}

fn positive_i32(errors: &mut Errors, field: &str, value: i64, max: i32) -> i32 {
    match i32::try_from(value) {
        Ok(value) if (1..=max).contains(&value) => value,
        _ => {
            errors.add(field, format!("must be between 1 and {max}"));
            1
        }
    }
}

async fn load(conn: &mut PgConnection, state: &AppState, brand: i64, campaign: i64, id: i64) -> ApiResult<Reward> {
    let row = sqlx::query!(
        "SELECT r.id, r.campaign_id, r.kind, r.name, r.description, r.token, r.amount_per_redemption,
                r.redemptions_per_nft, r.share_bps, r.period, r.kyc_threshold, r.updated_at, c.collection_address,
                (SELECT count(*) FROM reward_codes k WHERE k.reward_id = r.id AND k.assigned_at IS NULL) AS \"available!\",
                (SELECT count(*) FROM reward_codes k WHERE k.reward_id = r.id) AS \"total!\"
         FROM campaign_rewards r JOIN campaigns c ON c.id = r.campaign_id
         WHERE r.brand_id = $1 AND r.campaign_id = $2 AND r.id = $3",
        brand,
        campaign,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no reward {id} in campaign {campaign}")))?;
    let fundings = sqlx::query_as!(
        Funding,
        "SELECT f.id, f.amount::text AS \"amount!\", f.chain_tx_id, t.state, f.created_at
         FROM reward_fundings f JOIN chain_transactions t ON t.id = f.chain_tx_id
         WHERE f.brand_id = $1 AND f.reward_id = $2 ORDER BY f.id",
        brand,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let vault_balance = match (row.token.as_deref(), row.collection_address.is_some()) {
        (Some(token), true) => vault_balance(state, campaign, token).await,
        _ => None,
    };
    Ok(Reward {
        id: row.id,
        campaign_id: row.campaign_id,
        kind: row.kind,
        name: row.name,
        description: row.description,
        token: row.token,
        amount_per_redemption: row.amount_per_redemption.map(|a| a.to_string()),
        redemptions_per_nft: row.redemptions_per_nft,
        period: row.period,
        kyc_threshold: row.kyc_threshold.map(|a| a.to_string()),
        share_bps: row.share_bps,
        codes_available: row.available,
        codes_total: row.total,
        vault_balance,
        fundings,
        updated_at: row.updated_at,
    })
}

/// The address of a reward token (`eth` is the zero address).
fn token_address(state: &AppState, token: &str) -> Option<Address> {
    match token {
        "eth" => Some(ETH),
        "stablecoin" => state.config().chain.contracts.stablecoin,
        _ => None,
    }
}

async fn vault_balance(state: &AppState, campaign: i64, token: &str) -> Option<String> {
    let vault = state.config().chain.contracts.reward_vault?;
    let token = token_address(state, token)?;
    let vault = RewardVault::new(vault, state.chain().provider());
    match vault.campaignBalance(U256::from(campaign), token).call().await {
        Ok(balance) => Some(balance.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, campaign, "cannot read the vault balance");
            None
        }
    }
}

/// Adds a reward to a campaign (amount-bearing rewards before deployment only).
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/rewards", tag = "rewards",
    request_body = NewReward, params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses(
        (status = 201, body = Reward),
        (status = 409, body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_reward(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id }): Path<CampaignPath>,
    Json(body): Json<NewReward>,
) -> ApiResult<(StatusCode, Json<Reward>)> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errors.add("name", "must be 1 to 100 characters");
    }
    let (mut token, mut amount_per, mut per_nft, mut share) = (None, None, None, None);
    match body.kind.as_str() {
        "token" => {
            match body.token.as_deref() {
                Some(t @ ("eth" | "stablecoin")) => token = Some(t.to_owned()),
                _ => errors.add("token", "must be eth or stablecoin"),
            }
            match body.amount_per_redemption.as_deref() {
                Some(text) => amount_per = amount(&mut errors, "amount_per_redemption", text),
                None => errors.add("amount_per_redemption", "is required for a token reward"),
            }
            per_nft =
                Some(positive_i32(&mut errors, "redemptions_per_nft", body.redemptions_per_nft.unwrap_or(1), 1000));
        }
        "royalty_share" => match body.share_bps {
            Some(bps) => share = Some(positive_i32(&mut errors, "share_bps", bps, 10_000)),
            None => errors.add("share_bps", "is required for a royalty share"),
        },
        "perk" => {}
        _ => errors.add("kind", "must be token, perk or royalty_share"),
    }
    let period = body.period.clone().unwrap_or_else(|| "once".into());
    if !["once", "day", "week", "month"].contains(&period.as_str()) {
        errors.add("period", "must be once, day, week or month");
    } else if body.kind == "royalty_share" && body.period.is_some() {
        errors.add("period", "belongs to a token or perk reward, not a royalty_share");
    }
    let kyc_threshold = body.kyc_threshold.as_deref().and_then(|text| amount(&mut errors, "kyc_threshold", text));
    // Fields of another kind of reward are refused, not silently dropped.
    let given = [
        ("token", body.token.is_some(), "token"),
        ("amount_per_redemption", body.amount_per_redemption.is_some(), "token"),
        ("redemptions_per_nft", body.redemptions_per_nft.is_some(), "token"),
        ("share_bps", body.share_bps.is_some(), "royalty_share"),
        ("kyc_threshold", body.kyc_threshold.is_some(), "token"),
    ];
    if ["token", "perk", "royalty_share"].contains(&body.kind.as_str()) {
        for (field, _, kind) in given.iter().filter(|(_, present, kind)| *present && *kind != body.kind) {
            errors.add(*field, format!("belongs to a {kind} reward, not a {}", body.kind));
        }
    }
    errors.finish()?;
    let mut tx = state.db().begin().await?;
    let campaign_state = campaigns::lock(&mut tx, brand.get(), campaign_id).await?;
    if body.kind != "perk" && !before_deployment(campaign_state) {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::CampaignDeployed,
            detail: "token and royalty-share rewards are set before the campaign is deployed".into(),
        });
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO campaign_rewards (brand_id, campaign_id, kind, name, description, token, amount_per_redemption,
             redemptions_per_nft, share_bps, period, kyc_threshold)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        brand.get(),
        campaign_id,
        body.kind,
        name,
        body.description.trim(),
        token,
        amount_per,
        per_nft,
        share,
        period,
        kyc_threshold
    )
    .fetch_one(&mut *tx)
    .await
    .on_constraint("campaign_rewards_one_share_idx", || {
        ApiError::validation("kind", "the campaign already has a royalty-share rule")
    })?;
    let reward = load(&mut tx, &state, brand.get(), campaign_id, id).await?;
    audit::record(&mut tx, &caller, Entry::new("reward.created", format!("reward:{id}")).after(&reward)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(reward)))
}

/// The campaign's rewards, with vault balances and code stock.
#[utoipa::path(get, path = "/brands/{brand_id}/campaigns/{campaign_id}/rewards", tag = "rewards",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses((status = 200, body = Vec<Reward>)))]
#[tracing::instrument(skip_all)]
async fn list_rewards(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id }): Path<CampaignPath>,
) -> ApiResult<Json<Vec<Reward>>> {
    let brand = caller.brand()?.id;
    let mut conn = state.db().acquire().await?;
    // Another brand's campaign, or none: 404 like every other route, not an empty list.
    sqlx::query_scalar!("SELECT id FROM campaigns WHERE brand_id = $1 AND id = $2", brand.get(), campaign_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no campaign {campaign_id}")))?;
    let ids = sqlx::query_scalar!(
        "SELECT id FROM campaign_rewards WHERE brand_id = $1 AND campaign_id = $2 ORDER BY id",
        brand.get(),
        campaign_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut rewards = Vec::with_capacity(ids.len());
    for id in ids {
        rewards.push(load(&mut conn, &state, brand.get(), campaign_id, id).await?);
    }
    Ok(Json(rewards))
}

/// Changes a reward; amounts and shares only before the campaign is deployed.
#[utoipa::path(patch, path = "/brands/{brand_id}/campaigns/{campaign_id}/rewards/{reward_id}", tag = "rewards",
    request_body = RewardChanges,
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("reward_id" = i64, Path)),
    responses(
        (status = 200, body = Reward),
        (status = 409, description = "Money may have accrued", body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_reward(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RewardPath>,
    Json(body): Json<RewardChanges>,
) -> ApiResult<Json<Reward>> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    if body.name.as_ref().is_some_and(|n| n.trim().is_empty() || n.chars().count() > 100) {
        errors.add("name", "must be 1 to 100 characters");
    }
    let amount_per =
        body.amount_per_redemption.as_deref().and_then(|t| amount(&mut errors, "amount_per_redemption", t));
    let per_nft = body.redemptions_per_nft.map(|n| positive_i32(&mut errors, "redemptions_per_nft", n, 1000));
    let share = body.share_bps.map(|bps| positive_i32(&mut errors, "share_bps", bps, 10_000));
    errors.finish()?;
    let mut tx = state.db().begin().await?;
    let campaign_state = campaigns::lock(&mut tx, brand.get(), path.campaign_id).await?;
    let before = load(&mut tx, &state, brand.get(), path.campaign_id, path.reward_id).await?;
    let money = [
        (amount_per.is_some(), "amount_per_redemption"),
        (per_nft.is_some(), "redemptions_per_nft"),
        (share.is_some(), "share_bps"),
    ];
    // Every field given is checked (each against the reward's kind), so no combination reaches
    // the database's constraints.
    let given: Vec<&str> = money.iter().filter(|(given, _)| *given).map(|(_, field)| *field).collect();
    if let Some(field) = given.first()
        && !before_deployment(campaign_state)
    {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::RewardAccruing,
            detail: format!("`{field}` cannot change once the campaign is deployed: money may have accrued against it"),
        });
    }
    let mut errors = Errors::default();
    for field in given {
        let applies = match field {
            "share_bps" => before.kind == "royalty_share",
            _ => before.kind == "token",
        };
        if !applies {
            errors.add(field, format!("does not apply to a {} reward", before.kind));
        }
    }
    errors.finish()?;
    sqlx::query!(
        "UPDATE campaign_rewards SET name = COALESCE($3, name), description = COALESCE($4, description),
             amount_per_redemption = COALESCE($5, amount_per_redemption),
             redemptions_per_nft = COALESCE($6, redemptions_per_nft), share_bps = COALESCE($7, share_bps),
             updated_at = now()
         WHERE brand_id = $1 AND id = $2",
        brand.get(),
        path.reward_id,
        body.name.as_deref().map(str::trim),
        body.description.as_deref().map(str::trim),
        amount_per,
        per_nft,
        share
    )
    .execute(&mut *tx)
    .await?;
    let after = load(&mut tx, &state, brand.get(), path.campaign_id, path.reward_id).await?;
    let entry = Entry::new("reward.updated", format!("reward:{}", path.reward_id)).before(&before).after(&after);
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// Funds a token reward: the platform's relayer sends `amount` into the vault for this
/// campaign (ETH as value; the stablecoin approved, then transferred), through the queue.
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/rewards/{reward_id}/fund", tag = "rewards",
    request_body = FundRequest,
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("reward_id" = i64, Path)),
    responses(
        (status = 202, body = Reward),
        (status = 409, description = "Not deployed, not a token reward, or no vault", body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn fund_reward(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RewardPath>,
    headers: HeaderMap,
    Json(body): Json<FundRequest>,
) -> ApiResult<(StatusCode, Json<Reward>)> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let value = amount(&mut errors, "amount", &body.amount);
    errors.finish()?;
    let wei: Wei = body.amount.trim().parse().map_err(|_| ApiError::BadRequest("amount".into()))?;
    let conflict =
        |detail: &str| ApiError::Conflict { code: shared::http::ConflictCode::CannotFund, detail: detail.to_owned() };
    let vault = state.config().chain.contracts.reward_vault.ok_or_else(|| conflict("no RewardVault is configured"))?;
    let relayer =
        shared::chain::relayer(&state.config().chain).ok_or_else(|| conflict("no transaction signer is configured"))?;
    let mut tx = state.db().begin().await?;
    campaigns::lock(&mut tx, brand.get(), path.campaign_id).await?;
    let reward = load(&mut tx, &state, brand.get(), path.campaign_id, path.reward_id).await?;
    let token = reward.token.as_deref().ok_or_else(|| conflict("only token rewards are funded in the vault"))?;
    let chain_id = sqlx::query_scalar!(
        "SELECT chain_id FROM campaigns WHERE id = $1 AND collection_address IS NOT NULL",
        path.campaign_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .flatten()
    .and_then(|id| u64::try_from(id).ok())
    .ok_or_else(|| conflict("deploy the campaign first: the vault funds deployed campaigns"))?;
    let token_address = token_address(&state, token).ok_or_else(|| conflict("no stablecoin is configured"))?;
    // A client retrying with the same Idempotency-Key gets the same funding.
    let request_key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let key = |what: &str| {
        IdempotencyKey::new(format!("reward-fund:{}:{request_key}:{what}", path.reward_id))
            .map_err(|e| ApiError::Validation(vec![FieldError::new("Idempotency-Key", e.to_string())]))
    };
    let context = json!({ "brand_id": brand, "campaign_id": path.campaign_id, "reward_id": path.reward_id });
    let fund =
        RewardVault::fundCall { campaignId: U256::from(path.campaign_id), token: token_address, amount: wei.get() };
    let request = if token_address == ETH {
        TxRequest::call(key("fund")?, chain_id, relayer, vault, fund.abi_encode().into()).with_value(wei)
    } else {
        let approve = TestStablecoin::approveCall { spender: vault, value: wei.get() };
        let approval = TxRequest::call(key("approve")?, chain_id, relayer, token_address, approve.abi_encode().into())
            .requested_by(txqueue::Requester::RewardFunding)
            .with_context(context.clone());
        txqueue::enqueue(&mut tx, &approval).await?;
        TxRequest::call(key("fund")?, chain_id, relayer, vault, fund.abi_encode().into()).with_gas_limit(FUND_GAS_LIMIT)
    };
    let request = request.requested_by(txqueue::Requester::RewardFunding).with_context(context);
    let queued = txqueue::enqueue(&mut tx, &request).await.map_err(|e| match e {
        txqueue::TxQueueError::KeyReused(_) => ApiError::Conflict {
            code: shared::http::ConflictCode::IdempotencyKeyReused,
            detail: "this Idempotency-Key was used for another amount".into(),
        },
        other => ApiError::Internal(other.into()),
    })?;
    if queued.created {
        sqlx::query!(
            "INSERT INTO reward_fundings (brand_id, reward_id, amount, chain_tx_id) VALUES ($1, $2, $3, $4)",
            brand.get(),
            path.reward_id,
            value,
            queued.id.get()
        )
        .execute(&mut *tx)
        .await?;
        let entry = Entry::new("reward.funding_requested", format!("reward:{}", path.reward_id))
            .after(json!({ "amount": body.amount.trim(), "token": token, "chain_tx_id": queued.id.get() }));
        audit::record(&mut tx, &caller, entry).await?;
    }
    let reward = load(&mut tx, &state, brand.get(), path.campaign_id, path.reward_id).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(reward)))
}

/// Imports perk codes from CSV (one code per row, in the first column; a header row `code` is
/// skipped) or XLSX (the first sheet, same layout). Every row is checked first: with any bad
/// row nothing is imported and the answer lists each bad row.
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/rewards/{reward_id}/codes", tag = "rewards",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path), ("reward_id" = i64, Path)),
    request_body(content = Vec<u8>, content_type = "text/csv"),
    responses(
        (status = 201, body = ImportReport),
        (status = 409, description = "The reward is not a perk: codes belong to perk rewards", body = Problem),
        (status = 415, body = Problem),
        (status = 422, description = "Bad rows, each named (rows[N])", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn import_codes(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RewardPath>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<ImportReport>)> {
    let brand = caller.brand()?.id;
    if body.len() > MAX_IMPORT_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let rows = crate::tables::read_rows(content_type, &body)?;
    let codes = check_codes(&rows)?;
    let mut tx = state.db().begin().await?;
    campaigns::lock(&mut tx, brand.get(), path.campaign_id).await?;
    let reward = load(&mut tx, &state, brand.get(), path.campaign_id, path.reward_id).await?;
    if reward.kind != "perk" {
        return Err(ApiError::Conflict {
            code: shared::http::ConflictCode::NotAPerk,
            detail: "codes belong to perk rewards".into(),
        });
    }
    let existing: Vec<String> = sqlx::query_scalar!(
        "SELECT code FROM reward_codes WHERE reward_id = $1 AND code = ANY($2)",
        path.reward_id,
        &codes.iter().map(|(_, code)| code.clone()).collect::<Vec<_>>()
    )
    .fetch_all(&mut *tx)
    .await?;
    if !existing.is_empty() {
        let errors = codes
            .iter()
            .filter(|(_, code)| existing.contains(code))
            .map(|(row, code)| FieldError::new(format!("rows[{row}]"), format!("code `{code}` was imported before")))
            .collect();
        return Err(ApiError::Validation(errors));
    }
    let import_id = uuid::Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO reward_codes (brand_id, reward_id, code, import_id) SELECT $1, $2, code, $4 FROM unnest($3::text[]) AS code",
        brand.get(),
        path.reward_id,
        &codes.iter().map(|(_, code)| code.clone()).collect::<Vec<_>>(),
        import_id
    )
    .execute(&mut *tx)
    .await?;
    let entry = Entry::new("reward.codes_imported", format!("reward:{}", path.reward_id))
        .after(json!({ "import_id": import_id, "count": codes.len() }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(ImportReport { imported: codes.len(), import_id })))
}

/// The codes of an import with their 1-based row numbers, or every bad row.
fn check_codes(rows: &[Vec<String>]) -> ApiResult<Vec<(usize, String)>> {
    let mut errors = Vec::new();
    let mut codes: Vec<(usize, String)> = Vec::new();
    // Each code's row, to name the first occurrence of a repeat (a 5 MiB file holds ~700k codes).
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (index, row) in rows.iter().enumerate() {
        let number = index + 1;
        let first = row.first().map(|c| c.trim()).unwrap_or_default();
        if index == 0 && first.eq_ignore_ascii_case("code") {
            continue;
        }
        if row.iter().skip(1).any(|cell| !cell.trim().is_empty()) {
            errors.push(FieldError::new(format!("rows[{number}]"), "has more than one column: one code per row"));
        } else if first.is_empty() {
            errors.push(FieldError::new(format!("rows[{number}]"), "is empty"));
        } else if first.chars().count() > 128 || first.chars().any(char::is_control) {
            errors.push(FieldError::new(format!("rows[{number}]"), "must be 1 to 128 printable characters"));
        } else if let Some(earlier) = seen.get(first) {
            errors.push(FieldError::new(format!("rows[{number}]"), format!("repeats row {earlier}")));
        } else {
            seen.insert(first.to_owned(), number);
            codes.push((number, first.to_owned()));
        }
    }
    if codes.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("body", "contains no codes"));
    }
    if errors.is_empty() { Ok(codes) } else { Err(ApiError::Validation(errors)) }
}

/// The campaign page's rewards section: each reward, and forms to add one and to fund a token
/// reward's vault balance for those who may.
pub(crate) async fn section(state: &AppState, caller: &Caller, campaign_id: i64) -> ApiResult<maud::Markup> {
    let path = Path(CampaignPath { campaign_id });
    let rewards = list_rewards(State(state.clone()), caller.clone(), path).await?.0;
    let brand = caller.brand()?.id.get();
    let base = format!("/brands/{brand}/campaigns/{campaign_id}/rewards");
    let manage = caller.holds(shared::auth::Permission::CampaignsManage);
    Ok(maud::html! {
        section.card aria-labelledby="rewards-title" {
            h2 #rewards-title { "Rewards" }
            @if rewards.is_empty() { p.muted { "No rewards yet." } }
            @for reward in &rewards {
                article.reward aria-labelledby=(format!("reward-{}", reward.id)) {
                    h3 id=(format!("reward-{}", reward.id)) { (reward.name) " " span.muted { "(" (reward.kind.replace('_', " ")) ")" } }
                    @if !reward.description.is_empty() { p { (reward.description) } }
                    dl.facts {
                        @if let Some(amount) = &reward.amount_per_redemption {
                            dt { "Per redemption" } dd { (crate::campaigns::token_amount(amount, reward.token.as_deref())) }
                            dt { "Period" } dd { (reward.period) }
                        }
                        @if let Some(balance) = &reward.vault_balance {
                            dt { "In the vault" } dd { (crate::campaigns::token_amount(balance, reward.token.as_deref())) }
                        }
                        @if let Some(share) = reward.share_bps {
                            dt { "Holders' share" } dd { (crate::pages::percent(share)) " of received royalties" }
                        }
                        @if reward.kind == "perk" { dt { "Codes left" } dd { (reward.codes_available) " of " (reward.codes_total) } }
                    }
                    @if manage && reward.kind == "token" {
                        form data-api=(format!("{base}/{}/fund", reward.id)) {
                            label for=(format!("fund-{}", reward.id)) { "Fund the vault, in base units (wei for ETH; 1000000 = 1.00 stablecoin)" }
                            input id=(format!("fund-{}", reward.id)) type="text" name="amount" inputmode="numeric" pattern="[0-9]+" required;
                            button.small type="submit" { "Fund" }
                            p.status role="status" aria-live="polite" {}
                        }
                    }
                }
            }
            @if manage {
                h3 { "New reward" }
                form #new-reward data-api=(base) {
                    label for="reward-kind" { "Kind" }
                    select #reward-kind name="kind" {
                        option value="token" { "Token: paid from the vault to the holder" }
                        option value="perk" { "Perk: a code or a hand-over at a store" }
                        option value="royalty_share" { "Royalty share: part of received royalties to holders" }
                    }
                    label for="reward-name" { "Name" }
                    input #reward-name type="text" name="name" required maxlength="100";
                    label for="reward-description" { "Description" }
                    input #reward-description type="text" name="description" maxlength="1000";
                    label for="reward-token" { "Token (token rewards)" }
                    select #reward-token name="token" {
                        option value="" { "—" }
                        option value="stablecoin" { "the USD stablecoin" }
                        option value="eth" { "ETH" }
                    }
                    label for="reward-amount" { "Amount per redemption in base units (token rewards; 5000000 = 5.00 stablecoin)" }
                    input #reward-amount type="text" name="amount_per_redemption" inputmode="numeric" pattern="[0-9]+";
                    label for="reward-share" { "Holders' share in basis points (royalty shares; 2500 = 25 %)" }
                    input #reward-share type="number" name="share_bps" data-type="number" min="1" max="10000";
                    button type="submit" { "Add the reward" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    fn rows(lines: &[&[&str]]) -> Vec<Vec<String>> {
        lines.iter().map(|l| l.iter().map(|c| (*c).to_owned()).collect()).collect()
    }

    #[test]
    fn every_bad_row_is_named_and_nothing_passes() {
        assert_eq!(super::check_codes(&rows(&[&["code"], &["A1"], &["B2"]])).unwrap().len(), 2);
        let Err(shared::http::ApiError::Validation(errors)) =
            super::check_codes(&rows(&[&["A1"], &[""], &["A1"], &["B2", "extra"]]))
        else {
            panic!("accepted");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.clone()).collect();
        assert_eq!(fields, ["rows[2]", "rows[3]", "rows[4]"]);
    }
}
