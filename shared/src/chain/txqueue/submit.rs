//! The requester's side: put a request in the queue, look it up.

use alloy::primitives::Address;
use sqlx::PgConnection;

use super::{
    Attempt, CHANNEL, ChainTxId, ChainTxView, Enqueued, IdempotencyKey, Result, TxQueueError, TxRequest,
    store::{address, b256, opt_address, opt_b256, state, to_i64, to_u64},
};
use crate::money::Wei;

/// Queues `request` in the caller's transaction (pass `&mut *tx` to commit it together with
/// the requester's own state change); returns the request's id. Submitting a key that is
/// already queued returns the existing id (`created: false`) when the parameters match, and
/// [`TxQueueError::KeyReused`] when they do not.
#[tracing::instrument(skip_all, fields(tx.key = %request.idempotency_key))]
pub async fn enqueue(conn: &mut PgConnection, request: &TxRequest) -> Result<Enqueued> {
    if request.confirmations == 0 {
        return Err(TxQueueError::InvalidRequest("confirmations must be at least 1".into()));
    }
    if request.gas_limit == Some(0) {
        return Err(TxQueueError::InvalidRequest("a gas limit must be positive".into()));
    }
    let chain_id = to_i64(request.chain_id, "chain id")?;
    let gas_limit = request.gas_limit.map(|g| to_i64(g, "gas limit")).transpose()?;
    let confirmations = i32::try_from(request.confirmations)
        .map_err(|_| TxQueueError::InvalidRequest("too many confirmations".into()))?;
    let to = request.to.map(|a| a.to_vec());
    let inserted = sqlx::query_scalar!(
        "INSERT INTO chain_transactions
             (idempotency_key, chain_id, signer, to_address, value, calldata, gas_limit, confirmations, context,
              requester)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING id",
        request.idempotency_key.as_str(),
        chain_id,
        request.signer.as_slice(),
        to,
        request.value as Wei,
        request.data.as_ref(),
        gas_limit,
        confirmations,
        request.context,
        request.requester.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = inserted {
        sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, notify_payload(request.chain_id, request.signer))
            .execute(&mut *conn)
            .await?;
        return Ok(Enqueued { id: ChainTxId::new(id), created: true });
    }
    // The key exists (committed, or just committed by a concurrent request we waited for).
    let existing = sqlx::query!(
        r#"SELECT id, chain_id, signer, to_address, value AS "value: Wei", calldata
           FROM chain_transactions WHERE idempotency_key = $1"#,
        request.idempotency_key.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    let same = existing.chain_id == chain_id
        && existing.signer == request.signer.as_slice()
        && existing.to_address == to
        && existing.value == request.value
        && existing.calldata == request.data.as_ref();
    if !same {
        return Err(TxQueueError::KeyReused(request.idempotency_key.as_str().to_owned()));
    }
    Ok(Enqueued { id: ChainTxId::new(existing.id), created: false })
}

pub(crate) fn notify_payload(chain_id: u64, signer: Address) -> String {
    format!("{chain_id}:{signer:#x}")
}

/// The request with this id.
pub async fn get(conn: &mut PgConnection, id: ChainTxId) -> Result<Option<ChainTxView>> {
    let row = sqlx::query_as!(
        ViewRow,
        r#"SELECT id, idempotency_key, kind, state, chain_id, signer, to_address, value AS "value: Wei",
                  context, nonce, tx_hash, max_fee_per_gas AS "max_fee_per_gas: Wei",
                  max_priority_fee_per_gas AS "max_priority_fee_per_gas: Wei", block_number, block_hash,
                  gas_used, receipt_status, error, revert_reason
           FROM chain_transactions WHERE id = $1"#,
        id.get()
    )
    .fetch_optional(conn)
    .await?;
    row.map(ChainTxView::try_from).transpose()
}

/// The request queued under this key.
pub async fn get_by_key(conn: &mut PgConnection, key: &IdempotencyKey) -> Result<Option<ChainTxView>> {
    let row = sqlx::query_as!(
        ViewRow,
        r#"SELECT id, idempotency_key, kind, state, chain_id, signer, to_address, value AS "value: Wei",
                  context, nonce, tx_hash, max_fee_per_gas AS "max_fee_per_gas: Wei",
                  max_priority_fee_per_gas AS "max_priority_fee_per_gas: Wei", block_number, block_hash,
                  gas_used, receipt_status, error, revert_reason
           FROM chain_transactions WHERE idempotency_key = $1"#,
        key.as_str()
    )
    .fetch_optional(conn)
    .await?;
    row.map(ChainTxView::try_from).transpose()
}

/// Every signed version of the request, oldest first.
pub async fn attempts(conn: &mut PgConnection, id: ChainTxId) -> Result<Vec<Attempt>> {
    let rows = sqlx::query!(
        r#"SELECT nonce, tx_hash, max_fee_per_gas AS "max_fee_per_gas: Wei",
                  max_priority_fee_per_gas AS "max_priority_fee_per_gas: Wei"
           FROM chain_transaction_attempts WHERE chain_transaction_id = $1 ORDER BY id"#,
        id.get()
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Attempt {
                nonce: to_u64(id.get(), r.nonce)?,
                tx_hash: b256(id.get(), &r.tx_hash)?,
                max_fee_per_gas: r.max_fee_per_gas,
                max_priority_fee_per_gas: r.max_priority_fee_per_gas,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct ViewRow {
    id: i64,
    idempotency_key: String,
    kind: String,
    state: String,
    chain_id: i64,
    signer: Vec<u8>,
    to_address: Option<Vec<u8>>,
    value: Wei,
    context: serde_json::Value,
    nonce: Option<i64>,
    tx_hash: Option<Vec<u8>>,
    max_fee_per_gas: Option<Wei>,
    max_priority_fee_per_gas: Option<Wei>,
    block_number: Option<i64>,
    block_hash: Option<Vec<u8>>,
    gas_used: Option<i64>,
    receipt_status: Option<bool>,
    error: Option<String>,
    revert_reason: Option<String>,
}

impl TryFrom<ViewRow> for ChainTxView {
    type Error = TxQueueError;
    fn try_from(r: ViewRow) -> Result<Self> {
        let id = r.id;
        Ok(Self {
            id: ChainTxId::new(id),
            idempotency_key: r.idempotency_key,
            kind: r.kind,
            state: state(id, &r.state)?,
            chain_id: to_u64(id, r.chain_id)?,
            signer: address(id, &r.signer)?,
            to: opt_address(id, r.to_address.as_deref())?,
            value: r.value,
            context: r.context,
            nonce: r.nonce.map(|n| to_u64(id, n)).transpose()?,
            tx_hash: opt_b256(id, r.tx_hash.as_deref())?,
            max_fee_per_gas: r.max_fee_per_gas,
            max_priority_fee_per_gas: r.max_priority_fee_per_gas,
            block_number: r.block_number.map(|n| to_u64(id, n)).transpose()?,
            block_hash: opt_b256(id, r.block_hash.as_deref())?,
            gas_used: r.gas_used.map(|n| to_u64(id, n)).transpose()?,
            success: r.receipt_status,
            error: r.error,
            revert_reason: r.revert_reason,
        })
    }
}
