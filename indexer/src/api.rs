//! What the indexer answers: sync status per chain, a campaign's holders, a token's owner and
//! history. Chain data is public, so are these routes.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::public,
    chain::checksummed,
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Path},
    },
};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(public(routes!(status))).routes(public(routes!(holders))).routes(public(routes!(token)))
}

/// How far a chain is indexed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncStatus {
    chain_id: i64,
    /// The node's head when the indexer last looked.
    head_block: Option<i64>,
    indexed_block: i64,
    /// Facts at or below this block are confirmed.
    confirmed_block: Option<i64>,
    /// Blocks between the head and what is indexed.
    lag_blocks: Option<i64>,
    reorgs: i64,
    last_reorg_at: Option<DateTime<Utc>>,
    last_reorg_depth: Option<i32>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChainPath {
    chain_id: i64,
}

/// The indexer's progress on a chain.
#[utoipa::path(get, path = "/chains/{chain_id}/status", tag = "indexer", params(("chain_id" = i64, Path)),
    responses((status = 200, body = SyncStatus), (status = 404, description = "Not indexed", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn status(
    State(state): State<AppState>,
    Path(ChainPath { chain_id }): Path<ChainPath>,
) -> ApiResult<Json<SyncStatus>> {
    let row = sqlx::query(
        "SELECT head_block, indexed_block, confirmed_block, reorgs, last_reorg_at, last_reorg_depth, updated_at
         FROM indexer_chains WHERE chain_id = $1",
    )
    .bind(chain_id)
    .fetch_optional(state.db())
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("chain {chain_id} is not indexed")))?;
    let head: Option<i64> = row.get(0);
    let indexed: i64 = row.get(1);
    Ok(Json(SyncStatus {
        chain_id,
        head_block: head,
        indexed_block: indexed,
        confirmed_block: row.get(2),
        lag_blocks: head.map(|head| (head - indexed).max(0)),
        reorgs: row.get(3),
        last_reorg_at: row.get(4),
        last_reorg_depth: row.get(5),
        updated_at: row.get(6),
    }))
}

/// One holder of a campaign's tokens.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Holder {
    /// EIP-55.
    address: String,
    tokens: i64,
}

/// A campaign's holders, most tokens first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Holders {
    campaign_id: i64,
    chain_id: i64,
    collection: String,
    holders: Vec<Holder>,
    /// Tokens that exist (minted, not burnt).
    tokens: i64,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CampaignPath {
    campaign_id: i64,
}

/// Who holds a deployed campaign's tokens.
#[utoipa::path(get, path = "/campaigns/{campaign_id}/holders", tag = "indexer", params(("campaign_id" = i64, Path)),
    responses((status = 200, body = Holders), (status = 404, description = "No such deployed campaign", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn holders(
    State(state): State<AppState>,
    Path(CampaignPath { campaign_id }): Path<CampaignPath>,
) -> ApiResult<Json<Holders>> {
    let mut conn = state.db().acquire().await?;
    let campaign = sqlx::query(
        "SELECT chain_id, collection_address FROM campaigns WHERE id = $1 AND collection_address IS NOT NULL",
    )
    .bind(campaign_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no deployed campaign {campaign_id}")))?;
    let (chain_id, collection): (Option<i64>, Vec<u8>) = (campaign.get(0), campaign.get(1));
    let chain_id = chain_id.unwrap_or_default();
    let holders = sqlx::query(
        "SELECT holder, tokens FROM collection_holders WHERE chain_id = $1 AND collection = $2
         ORDER BY tokens DESC, holder LIMIT 10000",
    )
    .bind(chain_id)
    .bind(&collection)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Holder { address: checksummed(&r.get::<Vec<u8>, _>(0)), tokens: r.get(1) })
    .collect::<Vec<_>>();
    Ok(Json(Holders {
        campaign_id,
        chain_id,
        collection: checksummed(&collection),
        tokens: holders.iter().map(|h| h.tokens).sum(),
        holders,
    }))
}

/// A token's owner now and every transfer it went through.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    collection: String,
    /// Decimal.
    token_id: String,
    /// None once burnt (or never minted).
    owner: Option<String>,
    history: Vec<TransferView>,
}

/// One transfer of a token (from the zero address: its mint; to it: its burn).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TransferView {
    block_number: i64,
    tx_hash: String,
    from: String,
    to: String,
    confirmed: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TokenPath {
    collection: String,
    token_id: String,
}

/// A token's owner and history.
#[utoipa::path(get, path = "/collections/{collection}/tokens/{token_id}", tag = "indexer",
    params(("collection" = String, Path, description = "EIP-55 address"), ("token_id" = String, Path, description = "decimal")),
    responses((status = 200, body = TokenView), (status = 404, description = "Never seen", body = Problem)))]
#[tracing::instrument(skip_all)]
async fn token(
    State(state): State<AppState>,
    Path(TokenPath { collection, token_id }): Path<TokenPath>,
) -> ApiResult<Json<TokenView>> {
    let not_found = || {
        ApiError::NotFound(format!(
            "no token {} of {}",
            token_id.chars().take(80).collect::<String>(),
            collection.chars().take(42).collect::<String>()
        ))
    };
    let address = shared::chain::parse_address(&collection).map_err(|_| not_found())?;
    // Decimal digits only (`U256` alone would also take hex).
    let id = token_id.parse::<shared::money::Wei>().map_err(|_| not_found())?.get();
    let mut conn = state.db().acquire().await?;
    let history = sqlx::query(
        "SELECT block_number, tx_hash, from_address, to_address, confirmed FROM token_transfers
         WHERE collection = $1 AND token_id = $2::numeric ORDER BY block_number, log_index",
    )
    .bind(address.as_slice())
    .bind(id.to_string())
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| TransferView {
        block_number: r.get(0),
        tx_hash: format!("0x{}", alloy::hex::encode(r.get::<Vec<u8>, _>(1))),
        from: checksummed(&r.get::<Vec<u8>, _>(2)),
        to: checksummed(&r.get::<Vec<u8>, _>(3)),
        confirmed: r.get(4),
    })
    .collect::<Vec<_>>();
    if history.is_empty() {
        return Err(not_found());
    }
    let owner: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT owner FROM token_owners WHERE collection = $1 AND token_id = $2::numeric")
            .bind(address.as_slice())
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(Json(TokenView {
        collection: address.to_checksum(None),
        token_id: id.to_string(),
        owner: owner.as_deref().map(checksummed),
        history,
    }))
}

/// How far behind the node's head the indexer may be and still take traffic.
pub(crate) const READY_LAG_BLOCKS: u64 = 64;

/// Readiness: down while the indexer is more than [`READY_LAG_BLOCKS`] behind the node's head
/// (a backfill, an RPC outage, a stopped indexer), naming how far.
pub(crate) fn sync_check(state: &AppState) -> shared::workflow::BoxFuture<'_, Option<shared::http::health::Check>> {
    use shared::http::health::{Check, CheckStatus};
    Box::pin(async move {
        let started = std::time::Instant::now();
        let check = |status, detail: String| Check {
            status,
            detail,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        let chain = state.chain();
        let (Ok(chain_id), Ok(head)) = (chain.chain_id().await, chain.block_number().await) else {
            return Some(check(CheckStatus::Down, "the node does not answer: the indexer cannot follow it".into()));
        };
        let indexed: Option<i64> =
            match sqlx::query_scalar("SELECT indexed_block FROM indexer_chains WHERE chain_id = $1")
                .bind(i64::try_from(chain_id).unwrap_or(i64::MAX))
                .fetch_optional(state.db())
                .await
            {
                Ok(indexed) => indexed,
                Err(e) => return Some(check(CheckStatus::Down, format!("cannot read the checkpoint: {e}"))),
            };
        let lag = indexed.map(|indexed| i64::try_from(head).unwrap_or(i64::MAX).saturating_sub(indexed));
        Some(match lag {
            None => check(CheckStatus::Down, format!("chain {chain_id} is not indexed yet (head {head})")),
            Some(lag) if lag > READY_LAG_BLOCKS as i64 => {
                check(CheckStatus::Down, format!("the indexer is {lag} blocks behind the head ({head})"))
            }
            Some(lag) => check(CheckStatus::Up, format!("chain {chain_id}: {lag} blocks behind the head ({head})")),
        })
    })
}
