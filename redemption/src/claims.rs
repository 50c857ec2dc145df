//! A claim of a reward, whichever way it came (a wallet's token, a printed QR code, a counter
//! scan at a store): one use of the reward taken in the database, then fulfilled.
//!
//! - **Taking a use.** A token's uses per period are slots `1..=redemptions_per_nft`
//!   (`redemptions_once_idx`); a printed code's are slots `1..=uses_per_code`
//!   (`redemptions_code_use_idx`). Each claim takes the lowest free slot; the unique index is
//!   the database's half of "exactly once", the vault's replay bitmap over the redemption id the
//!   chain's. A failed, refused or expired claim gives its slot back.
//! - **Fulfilling it.** A token reward gets a signed `RewardVault` voucher, sent by the platform
//!   through the transaction queue (gasless, the default) or handed to the customer to send;
//!   above the reward's KYC threshold it first waits for the customer's approved KYC. A perk
//!   gets the next unused code, shown in the claim's answer only; at a store's counter it is
//!   simply marked used.
//! - **Moving it.** Every transition goes through [`advance`], which also keeps a printed code's
//!   state (issued → claimed → paid) in step with its uses.

use alloy::{
    primitives::{Address, U256},
    sol_types::SolCall,
};
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use serde_json::json;
use shared::{
    AppState,
    chain::txqueue::{self, IdempotencyKey, Requester, TxRequest},
    contracts::{CampaignNFT, RewardVault, VoucherSigner},
    http::{ApiError, ApiResult, ConflictCode},
    service::Resources,
    workflow::{
        Applied, Transition, WorkflowError, apply,
        machines::{Redemption as Machine, RedemptionEvent, RedemptionState},
    },
};
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;

use crate::config::RedemptionConfig;

/// A redemption, as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RedemptionView {
    id: i64,
    reward_id: i64,
    campaign_id: i64,
    /// The token that redeemed (none for a printed code's claim).
    token_id: Option<String>,
    /// The store whose counter it was redeemed at.
    store_id: Option<i64>,
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
    pub(crate) code: Option<String>,
    created_at: DateTime<Utc>,
}

impl RedemptionView {
    /// Where it is: claimed, awaiting_kyc, submitted, …
    pub(crate) fn state(&self) -> &str {
        &self.state
    }
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

pub(crate) fn conflict(code: ConflictCode, detail: impl Into<String>) -> ApiError {
    ApiError::Conflict { code, detail: detail.into() }
}

/// A token id written as a customer sends it: decimal digits (at most 78, a `uint256`).
pub(crate) fn parse_token_id(text: &str) -> Result<U256, &'static str> {
    let text = text.trim();
    match text.parse::<shared::money::Wei>() {
        Ok(id) if text.len() <= 78 => Ok(id.get()),
        _ => Err("must be a token id in decimal digits"),
    }
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

pub(crate) async fn kyc_approved(conn: &mut PgConnection, customer: i64) -> ApiResult<bool> {
    let latest = shared::kyc::submission::latest_of(conn, customer).await.map_err(|e| ApiError::Internal(e.into()))?;
    Ok(latest.is_some_and(|s| s.state == shared::kyc::submission::KycState::Approved))
}

/// A token or perk reward whose campaign is live, as claims need it.
#[derive(Debug)]
pub(crate) struct Reward {
    pub(crate) brand: i64,
    pub(crate) campaign: i64,
    /// token or perk.
    pub(crate) kind: String,
    pub(crate) period: String,
    /// Uses per token and period.
    pub(crate) per: i32,
    /// Whether its amount is at or above its KYC threshold.
    pub(crate) needs_kyc: bool,
    pub(crate) chain_id: i64,
    pub(crate) collection: Address,
}

/// Reward `id`: 404 if there is none, 409 while its campaign is not live or for a royalty
/// share (paid to holders by itself).
pub(crate) async fn reward(state: &AppState, id: i64) -> ApiResult<Reward> {
    let row = sqlx::query(
        "SELECT r.brand_id, r.campaign_id, r.kind, r.period, COALESCE(r.redemptions_per_nft, 1) AS per,
                r.kyc_threshold IS NOT NULL AND r.amount_per_redemption >= r.kyc_threshold AS kyc,
                c.state AS campaign_state, c.chain_id, c.collection_address
         FROM campaign_rewards r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = $1",
    )
    .bind(id)
    .fetch_optional(state.db())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no reward {id}")))?;
    let kind: String = row.get("kind");
    let campaign_state: String = row.get("campaign_state");
    let collection: Option<Vec<u8>> = row.get("collection_address");
    let chain_id: Option<i64> = row.get("chain_id");
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
    Ok(Reward {
        brand: row.get("brand_id"),
        campaign: row.get("campaign_id"),
        kind,
        period: row.get("period"),
        per: row.get("per"),
        needs_kyc: row.get::<Option<bool>, _>("kyc").unwrap_or(false),
        chain_id,
        collection: Address::try_from(collection.as_slice()).map_err(|e| ApiError::Internal(e.into()))?,
    })
}

/// Who claims, for which reward, and where the reward goes.
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    pub(crate) brand: i64,
    pub(crate) campaign: i64,
    pub(crate) reward: i64,
    /// token or perk.
    pub(crate) kind: &'a str,
    /// Whether the reward's amount is at or above its KYC threshold.
    pub(crate) needs_kyc: bool,
    /// The signed-in customer (none for an address typed on a printed code's page).
    pub(crate) customer: Option<i64>,
    /// The wallet that proved it holds the token (or the typed address).
    pub(crate) claimant: Address,
    pub(crate) recipient: Address,
    /// platform or customer.
    pub(crate) submitted_by: &'a str,
    /// The store whose verifier scanned the customer's counter code.
    pub(crate) store: Option<i64>,
    /// Who did it, for the history (`customer:7`, `account:3`, `code`).
    pub(crate) actor: &'a str,
}

/// What a use is counted against: a token in a period, or a printed code.
enum Use<'a> {
    Token { id: U256, period_key: &'a str },
    Code(i64),
}

/// Inserts the lowest of `slots` uses that no live redemption holds; `None` when every one is
/// held (or the one found was taken concurrently: the unique index refuses it).
async fn insert_use(conn: &mut PgConnection, claim: &Claim<'_>, of: &Use<'_>, slots: i32) -> sqlx::Result<Option<i64>> {
    let (free, token, period_key, code) = match of {
        Use::Token { id, period_key } => (
            "x.reward_id = $3 AND x.token_id = $4::numeric AND x.period_key = $5",
            Some(id.to_string()),
            *period_key,
            None,
        ),
        Use::Code(code) => ("x.qr_code_id = $6", None, "", Some(*code)),
    };
    sqlx::query_scalar(&format!(
        "INSERT INTO redemptions (brand_id, campaign_id, reward_id, token_id, period_key, qr_code_id, customer_id,
                                  claimant, recipient, submitted_by, store_id, slot)
         SELECT $1, $2, $3, $4::numeric, $5, $6, $7, $8, $9, $10, $11, s.slot
         FROM generate_series(1, $12) AS s (slot)
         WHERE NOT EXISTS (SELECT 1 FROM redemptions x WHERE {free} AND x.slot = s.slot AND x.state <> ALL($13))
         ORDER BY s.slot LIMIT 1
         ON CONFLICT DO NOTHING
         RETURNING id"
    ))
    .bind(claim.brand)
    .bind(claim.campaign)
    .bind(claim.reward)
    .bind(token)
    .bind(period_key)
    .bind(code)
    .bind(claim.customer)
    .bind(claim.claimant.as_slice())
    .bind(claim.recipient.as_slice())
    .bind(claim.submitted_by)
    .bind(claim.store)
    .bind(slots)
    .bind(RedemptionState::released_names())
    .fetch_optional(&mut *conn)
    .await
}

/// Takes the lowest free use of `token_id` in the period (`per` uses each); a race lost for a
/// use tries the next while the token has uses left. 409 `already-redeemed` when none is left.
pub(crate) async fn take_token_use(
    conn: &mut PgConnection,
    claim: &Claim<'_>,
    token_id: U256,
    period: &str,
    per: i32,
) -> ApiResult<i64> {
    let period_key = period_key(period, Utc::now());
    expire_stale_vouchers(conn, claim.reward, token_id, &period_key).await?;
    let of = Use::Token { id: token_id, period_key: &period_key };
    for _ in 0..=per {
        if let Some(id) = insert_use(conn, claim, &of, per).await? {
            return Ok(id);
        }
        let left: bool = sqlx::query_scalar(
            "SELECT count(*) < $4 FROM redemptions WHERE reward_id = $1 AND token_id = $2::numeric AND period_key = $3
                AND state <> ALL($5)",
        )
        .bind(claim.reward)
        .bind(token_id.to_string())
        .bind(&period_key)
        .bind(i64::from(per))
        .bind(RedemptionState::released_names())
        .fetch_one(&mut *conn)
        .await?;
        if !left {
            break;
        }
    }
    let when = match period {
        "once" => String::new(),
        other => format!(" this {other}"),
    };
    Err(conflict(
        ConflictCode::AlreadyRedeemed,
        format!("token {token_id} has already redeemed this reward{when} ({per} time(s) allowed)"),
    ))
}

/// Takes the lowest free use of printed code `code` (`uses` each), whose row the caller has
/// locked. 409 `already-redeemed` when every use is taken.
pub(crate) async fn take_code_use(conn: &mut PgConnection, claim: &Claim<'_>, code: i64, uses: i32) -> ApiResult<i64> {
    let Some(id) = insert_use(conn, claim, &Use::Code(code), uses).await? else {
        return Err(conflict(ConflictCode::AlreadyRedeemed, "this code has already been redeemed"));
    };
    sync_code(conn, id).await?;
    Ok(id)
}

/// Fulfils use `id` of `claim`: a perk's next code (returned, to be shown once) or, at a
/// counter, the perk marked used; a token reward paid, or held for KYC.
pub(crate) async fn fulfil(
    conn: &mut PgConnection,
    state: &AppState,
    settings: &RedemptionConfig,
    claim: &Claim<'_>,
    id: i64,
) -> ApiResult<Option<String>> {
    let payload = json!({ "brand_id": claim.brand, "campaign_id": claim.campaign, "reward_id": claim.reward,
                          "kind": claim.kind, "store_id": claim.store });
    if claim.kind == "perk" {
        if claim.store.is_some() {
            let transition =
                Transition::<Machine>::new(id, RedemptionEvent::Deliver, "counter", claim.actor).with_payload(payload);
            advance(conn, transition).await?;
            return Ok(None);
        }
        return hand_out_code(conn, id, claim.reward, claim.brand, claim.actor).await.map(Some);
    }
    if claim.needs_kyc {
        let Some(customer) = claim.customer else {
            return Err(conflict(
                ConflictCode::RewardUnavailable,
                "this reward needs your identity verified (KYC): sign in with your wallet to claim it",
            ));
        };
        if !kyc_approved(conn, customer).await? {
            let reason =
                "this reward needs your identity verified (KYC): submit it, and the claim proceeds once approved";
            sqlx::query("UPDATE redemptions SET reason = $2 WHERE id = $1")
                .bind(id)
                .bind(reason)
                .execute(&mut *conn)
                .await?;
            let transition =
                Transition::<Machine>::new(id, RedemptionEvent::HoldForKyc, "claim", claim.actor).with_payload(payload);
            advance(conn, transition).await?;
            return Ok(None);
        }
    }
    pay(conn, state.resources(), settings, id, "claim", claim.actor).await.map_err(claim_error)?;
    Ok(None)
}

/// Applies a redemption's transition, and brings its printed code's state (if it came from
/// one) in line with the code's uses: every use taken → claimed, every use paid → paid, a use
/// given back → issued again.
pub(crate) async fn advance(
    conn: &mut PgConnection,
    transition: Transition<'_, Machine>,
) -> Result<Applied<RedemptionState>, WorkflowError> {
    let id = transition.id;
    let applied = apply(conn, transition).await?;
    sync_code(conn, id).await?;
    Ok(applied)
}

async fn sync_code(conn: &mut PgConnection, redemption: i64) -> sqlx::Result<()> {
    sqlx::query(
        "WITH code AS (SELECT qr_code_id AS id FROM redemptions WHERE id = $1 AND qr_code_id IS NOT NULL),
              uses AS (SELECT count(*) FILTER (WHERE x.state <> ALL($2)) AS taken,
                              count(*) FILTER (WHERE x.state = 'completed') AS paid
                       FROM redemptions x, code WHERE x.qr_code_id = code.id)
         UPDATE qr_codes q
         SET state = CASE WHEN uses.paid >= b.uses_per_code THEN 'paid'
                          WHEN uses.taken >= b.uses_per_code THEN 'claimed' ELSE 'issued' END,
             updated_at = now()
         FROM code, uses, qr_batches b
         WHERE q.id = code.id AND b.id = q.batch_id AND q.state IN ('issued', 'claimed', 'paid')",
    )
    .bind(redemption)
    .bind(RedemptionState::released_names())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A payout that cannot be prepared is the customer's to hear about in words, the rest a 500.
pub(crate) fn claim_error(e: anyhow::Error) -> ApiError {
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
pub(crate) async fn denied(state: &AppState, settings: &RedemptionConfig, addresses: &[Address]) -> ApiResult<()> {
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
pub(crate) async fn holds(
    state: &AppState,
    chain_id: i64,
    collection: Address,
    token: U256,
    wallet: Address,
) -> ApiResult<()> {
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
pub(crate) async fn expire_stale_vouchers(
    conn: &mut PgConnection,
    reward: i64,
    token: U256,
    period: &str,
) -> ApiResult<()> {
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
        advance(conn, transition).await?;
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
    advance(conn, transition).await?;
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
        "SELECT x.brand_id, x.campaign_id, x.reward_id, COALESCE(x.token_id, 0)::text AS token_id, x.qr_code_id,
                x.recipient, x.submitted_by, r.token, r.amount_per_redemption::text AS amount, c.chain_id
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
    let code: Option<i64> = row.get("qr_code_id");
    let payload = json!({ "brand_id": brand, "campaign_id": row.get::<i64, _>("campaign_id"),
                          "reward_id": row.get::<i64, _>("reward_id"),
                          "token_id": code.is_none().then(|| token_id.to_string()), "qr_code_id": code });
    if row.get::<String, _>("submitted_by") == "customer" {
        let transition =
            Transition::<Machine>::new(id, RedemptionEvent::IssueVoucher, cause, actor).with_payload(payload);
        advance(conn, transition).await?;
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
    advance(conn, transition).await?;
    Ok(())
}

/// Redemption `id`; of `customer` only when given (404 for anyone else's).
pub(crate) async fn load(
    conn: &mut PgConnection,
    state: &AppState,
    customer: Option<i64>,
    id: i64,
) -> ApiResult<RedemptionView> {
    let row = sqlx::query(
        "SELECT x.id, x.reward_id, x.campaign_id, x.token_id::text AS token_id, x.state, x.submitted_by, x.recipient,
                x.amount::text AS amount, x.payout_token, x.reason, x.signature, x.deadline, x.created_at,
                x.store_id, t.tx_hash, c.chain_id
         FROM redemptions x JOIN campaigns c ON c.id = x.campaign_id
         LEFT JOIN chain_transactions t ON t.id = x.chain_tx_id
         WHERE x.id = $1 AND ($2::bigint IS NULL OR x.customer_id = $2)",
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
                token_id: row.get::<Option<String>, _>("token_id").unwrap_or_else(|| "0".into()),
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
        store_id: row.get("store_id"),
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
