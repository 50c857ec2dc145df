//! Operations on the transaction queue: platform staff list the queue's transactions and look
//! at one with its attempts (`ops-read`); a platform admin cancels or replaces a stuck one
//! (`ops-manage`, audited). The queue's sender does the cancelling and replacing
//! (`shared::chain::txqueue::request_operator_action`); these routes record the request.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    chain::txqueue::{self, ChainTxId, OperatorAction, OperatorView, TxQueueError},
    http::{
        ApiError, ApiResult, ConflictCode, FieldError, Problem,
        extract::{Json, Path, Query},
    },
    money::Wei,
    workflow::machines::TxState,
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::OpsRead, routes!(list)))
        .routes(require(Permission::OpsRead, routes!(show)))
        .routes(require(Permission::OpsManage, routes!(cancel)))
        .routes(require(Permission::OpsManage, routes!(replace)))
}

/// `{tx_id}`: a queued chain transaction.
#[derive(Debug, Deserialize)]
pub(crate) struct TxPath {
    tx_id: i64,
}

/// A queued chain transaction as operators see it: the request (key, state, nonce, current hash
/// and fees, receipt, error), what operators asked of it (`operator_action`, `cancelled`), and
/// every signed attempt with its purpose (`send` or `cancel`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct ChainTransaction(serde_json::Value);

impl ChainTransaction {
    fn of(view: &impl Serialize) -> ApiResult<Self> {
        Ok(Self(serde_json::to_value(view).map_err(|e| ApiError::Internal(e.into()))?))
    }
}

/// A page of the queue, newest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    /// Only transactions in this state (`queued`, `signed`, `broadcast`, `mined`, `confirmed`, `failed`).
    state: Option<String>,
    /// Only ids below this (the last id of the previous page).
    before: Option<i64>,
    /// At most this many (1–500, default 100).
    limit: Option<i64>,
}

fn queue_error(e: TxQueueError) -> ApiError {
    match e {
        TxQueueError::NotFound(id) => ApiError::NotFound(format!("no chain transaction {id}")),
        TxQueueError::Refused(detail) => ApiError::Conflict { code: ConflictCode::InvalidTransition, detail },
        TxQueueError::InvalidRequest(message) => {
            ApiError::Validation(vec![FieldError::new("max_fee_per_gas", message)])
        }
        other => other.into(),
    }
}

/// The queue's transactions, newest first.
#[utoipa::path(get, path = "/ops/chain-transactions", tag = "operations", params(ListParams),
    responses((status = 200, body = Vec<ChainTransaction>), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Json<Vec<ChainTransaction>>> {
    let limit = match params.limit.unwrap_or(100) {
        limit @ 1..=500 => limit,
        _ => return Err(ApiError::Validation(vec![FieldError::new("limit", "must be between 1 and 500")])),
    };
    let wanted = match params.state.as_deref() {
        None => None,
        Some(name) => Some(name.parse::<TxState>().map_err(|_| {
            ApiError::Validation(vec![FieldError::new(
                "state",
                "queued, signed, broadcast, mined, confirmed or failed",
            )])
        })?),
    };
    let mut conn = state.db().acquire().await?;
    let rows =
        txqueue::recent(&mut conn, wanted, params.before.map(ChainTxId::new), limit).await.map_err(queue_error)?;
    Ok(Json(rows.iter().map(ChainTransaction::of).collect::<ApiResult<_>>()?))
}

/// One transaction with its attempts and what operators asked of it.
#[utoipa::path(get, path = "/ops/chain-transactions/{tx_id}", tag = "operations", params(("tx_id" = i64, Path)),
    responses((status = 200, body = ChainTransaction), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all, fields(chain_tx.id = path.tx_id))]
async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(path): Path<TxPath>,
) -> ApiResult<Json<ChainTransaction>> {
    let mut conn = state.db().acquire().await?;
    let view = txqueue::operator_view(&mut conn, ChainTxId::new(path.tx_id))
        .await
        .map_err(queue_error)?
        .ok_or_else(|| ApiError::NotFound(format!("no chain transaction {}", path.tx_id)))?;
    Ok(Json(ChainTransaction::of(&view)?))
}

/// Records the action (audited when it is new) and answers the transaction as it is now.
async fn act(
    state: &AppState,
    caller: &Caller,
    id: i64,
    action: OperatorAction,
) -> ApiResult<(StatusCode, Json<ChainTransaction>)> {
    let actor = caller.principal.actor();
    let mut tx = state.db().begin().await?;
    let requested =
        txqueue::request_operator_action(&mut tx, ChainTxId::new(id), action, &actor).await.map_err(queue_error)?;
    if requested.created {
        let view: &OperatorView = &requested.view;
        let (name, after) = match action {
            OperatorAction::Cancel => ("chain-tx.cancel-requested", json!({ "operator_action": "cancel" })),
            OperatorAction::Replace { max_fee_per_gas } => (
                "chain-tx.replace-requested",
                json!({ "operator_action": "replace", "max_fee_per_gas": max_fee_per_gas }),
            ),
        };
        let before = json!({
            "state": view.tx.state.as_str(),
            "nonce": view.tx.nonce,
            "tx_hash": view.tx.tx_hash,
            "max_fee_per_gas": view.tx.max_fee_per_gas,
            "idempotency_key": view.tx.idempotency_key,
        });
        audit::record(&mut tx, caller, Entry::new(name, format!("chain-tx:{id}")).before(before).after(after)).await?;
    }
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(ChainTransaction::of(&requested.view)?)))
}

/// Cancels a transaction not mined yet: its nonce goes to a 0-value self-transfer with both fees
/// raised (by at least 10 %); when that is mined the transaction fails (`cancelled`) and its
/// requester hears `tx.failed`. Asking again while it is under way answers the same.
#[utoipa::path(post, path = "/ops/chain-transactions/{tx_id}/cancel", tag = "operations", params(("tx_id" = i64, Path)),
    responses(
        (status = 202, description = "Cancellation requested (or already under way)", body = ChainTransaction),
        (status = 404, body = Problem),
        (status = 409, description = "Already mined or final", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(chain_tx.id = path.tx_id))]
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<TxPath>,
) -> ApiResult<(StatusCode, Json<ChainTransaction>)> {
    act(&state, &caller, path.tx_id, OperatorAction::Cancel).await
}

/// What a replacement offers.
/// `{}` for the usual bump.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplaceBody {
    /// The max fee per gas, in wei, as a decimal string; at least 10 % above the current one.
    /// Omitted: both fees raised as a stuck transaction's are.
    #[schema(value_type = Option<String>)]
    max_fee_per_gas: Option<Wei>,
}

/// Sends the same call again at the same nonce with higher fees (optionally the given max fee
/// per gas). Only for a signed transaction not mined yet; asking the same again while it is
/// under way answers the same.
#[utoipa::path(post, path = "/ops/chain-transactions/{tx_id}/replace", tag = "operations", params(("tx_id" = i64, Path)),
    request_body = ReplaceBody,
    responses(
        (status = 202, description = "Replacement requested (or already under way)", body = ChainTransaction),
        (status = 404, body = Problem),
        (status = 409, description = "Not signed yet, being cancelled, or already mined", body = Problem),
        (status = 422, description = "The max fee is too low for a replacement", body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(chain_tx.id = path.tx_id))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<TxPath>,
    Json(body): Json<ReplaceBody>,
) -> ApiResult<(StatusCode, Json<ChainTransaction>)> {
    act(&state, &caller, path.tx_id, OperatorAction::Replace { max_fee_per_gas: body.max_fee_per_gas }).await
}
