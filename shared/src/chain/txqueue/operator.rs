//! An operator's hand on a transaction that is stuck: cancel it or replace it.
//!
//! [`request`] only records what was asked (on the row, in the caller's transaction, and wakes
//! the signer's sender); the sender does it on its next pass ([`Worker::operator_actions`]), so
//! the signing key, the nonce and every change of the row stay with the one sender that holds
//! the signer's lock.
//!
//! * **cancel**: a request not signed yet fails at once (`cancel`, its nonce, if it holds one,
//!   handed on). A signed one gets a 0-value self-transfer at its nonce with both fee fields
//!   raised (at least `fee_bump_percent`, ≥ 10 %: what nodes require of a replacement); when
//!   that self-transfer is mined and confirmed the request fails (`cancel`, error `cancelled by
//!   an operator`), so its requester hears `tx.failed.<kind>`. Should the original be mined
//!   first, it confirms as usual: a cancellation is a race, and the chain decides. Once asked,
//!   a cancellation stays asked: fee bumps of a stuck cancellation re-sign the self-transfer.
//! * **replace**: the same call at the same nonce, re-signed with both fees raised, or with the
//!   operator's `max_fee_per_gas` when that is higher.
//!
//! Both are for transactions not mined yet; asking again while the first is not done answers
//! the same (nothing new is sent).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{Acquire, PgConnection, Row};

use super::{
    CHANNEL, ChainTxId, ChainTxView, Result, TxQueueError,
    sender::Worker,
    sign::Fees,
    store::{self, CANCELLED, Call, Head, Lane},
    submit::{ViewRow, get, notify_payload},
};
use crate::{
    money::Wei,
    workflow::machines::{TxEvent, TxState},
};

/// What an operator can ask of a transaction that is not mined yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorAction {
    /// Use its nonce for a 0-value self-transfer; the request fails when that is mined.
    Cancel,
    /// Send the same call again at the same nonce with higher fees (at least this max fee).
    Replace { max_fee_per_gas: Option<Wei> },
}

impl OperatorAction {
    fn name(self) -> &'static str {
        match self {
            OperatorAction::Cancel => "cancel",
            OperatorAction::Replace { .. } => "replace",
        }
    }
}

/// One signed version of a request, as operators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptView {
    pub nonce: u64,
    pub tx_hash: alloy::primitives::B256,
    pub max_fee_per_gas: Wei,
    pub max_priority_fee_per_gas: Wei,
    /// `send` (the request's call) or `cancel` (the self-transfer cancelling it).
    pub purpose: String,
    pub created_at: DateTime<Utc>,
}

/// A queued transaction with what operators asked of it and every attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperatorView {
    #[serde(flatten)]
    pub tx: ChainTxView,
    /// `cancel` or `replace`, the last thing asked.
    pub operator_action: Option<String>,
    pub operator_action_by: Option<String>,
    pub operator_action_at: Option<DateTime<Utc>>,
    /// The sender has not done it yet.
    pub operator_action_pending: bool,
    /// Failed because its cancellation was mined.
    pub cancelled: bool,
    /// Its block is at or below the chain's finalized block: never re-checked again.
    pub finalized: bool,
    /// How often a reorg deeper than its confirmations removed it.
    pub deep_reorgs: i32,
    pub attempts: Vec<AttemptView>,
}

/// What [`request`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Requested {
    pub view: OperatorView,
    /// `false`: the same action was already asked and not done yet; nothing new was recorded.
    pub created: bool,
}

/// The fee a replacement must at least offer over `fee`: nodes want 10 % more (plus a wei
/// against rounding).
fn min_replacement(fee: Wei) -> Wei {
    let fee = fee.get();
    Wei::new(
        fee.saturating_add(fee / alloy::primitives::U256::from(10)).saturating_add(alloy::primitives::U256::from(1)),
    )
}

/// Records `action` on the request `id` for its sender, in the caller's transaction (commit it
/// with the caller's audit entry); `actor` is who asked. Refused ([`TxQueueError::Refused`])
/// once the transaction is mined or final, a replacement of one not signed yet or being
/// cancelled, and ([`TxQueueError::InvalidRequest`]) a `max_fee_per_gas` under what a node
/// accepts as a replacement.
pub async fn request(conn: &mut PgConnection, id: ChainTxId, action: OperatorAction, actor: &str) -> Result<Requested> {
    let mut tx = conn.begin().await?;
    let row = sqlx::query(
        "SELECT state, chain_id, signer, operator_action, operator_action_pending,
                operator_max_fee_per_gas::numeric AS operator_max_fee, max_fee_per_gas::numeric AS max_fee
         FROM chain_transactions WHERE id = $1 FOR UPDATE",
    )
    .bind(id.get())
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(TxQueueError::NotFound(id))?;
    let state = store::state(id.get(), row.try_get("state")?)?;
    let chain_id = store::to_u64(id.get(), row.try_get("chain_id")?)?;
    let signer = store::address(id.get(), row.try_get::<&[u8], _>("signer")?)?;
    let asked: Option<String> = row.try_get("operator_action")?;
    let pending: bool = row.try_get("operator_action_pending")?;
    let asked_max_fee: Option<Wei> = row.try_get("operator_max_fee")?;
    let max_fee: Option<Wei> = row.try_get("max_fee")?;
    let unmined = matches!(state, TxState::Queued | TxState::Signed | TxState::Broadcast);

    let created = match action {
        // A cancellation, once asked, stays: asking again answers the same.
        OperatorAction::Cancel if asked.as_deref() == Some("cancel") => false,
        OperatorAction::Cancel if !unmined => {
            return Err(TxQueueError::Refused(format!(
                "it is {state}: only a transaction not mined yet can be cancelled"
            )));
        }
        OperatorAction::Cancel => true,
        OperatorAction::Replace { .. } if asked.as_deref() == Some("cancel") => {
            return Err(TxQueueError::Refused("it is being cancelled".into()));
        }
        OperatorAction::Replace { .. } if state == TxState::Queued => {
            return Err(TxQueueError::Refused("it is not signed yet: it will be signed with current fees".into()));
        }
        OperatorAction::Replace { .. } if !unmined => {
            return Err(TxQueueError::Refused(format!(
                "it is {state}: only a transaction not mined yet can be replaced"
            )));
        }
        OperatorAction::Replace { max_fee_per_gas } => {
            if let (Some(asked_fee), Some(current)) = (max_fee_per_gas, max_fee) {
                let least = min_replacement(current);
                if asked_fee < least {
                    return Err(TxQueueError::InvalidRequest(format!(
                        "max_fee_per_gas must be at least {least} wei (10 % above the current {current})"
                    )));
                }
            }
            // The same replacement asked again before the sender did it: the same answer.
            !(pending && asked.as_deref() == Some("replace") && asked_max_fee == max_fee_per_gas)
        }
    };
    if created {
        let max_fee = match action {
            OperatorAction::Replace { max_fee_per_gas } => max_fee_per_gas,
            OperatorAction::Cancel => None,
        };
        sqlx::query(
            "UPDATE chain_transactions
             SET operator_action = $2, operator_action_by = $3, operator_action_at = now(),
                 operator_max_fee_per_gas = $4, operator_action_pending = true, updated_at = now()
             WHERE id = $1",
        )
        .bind(id.get())
        .bind(action.name())
        .bind(actor)
        .bind(max_fee)
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(notify_payload(chain_id, signer))
            .execute(&mut *tx)
            .await?;
    }
    let view = view(&mut tx, id).await?.ok_or(TxQueueError::NotFound(id))?;
    tx.commit().await?;
    Ok(Requested { view, created })
}

/// The request with what operators asked of it and every attempt.
pub async fn view(conn: &mut PgConnection, id: ChainTxId) -> Result<Option<OperatorView>> {
    let Some(tx) = get(&mut *conn, id).await? else { return Ok(None) };
    let row = sqlx::query(
        "SELECT operator_action, operator_action_by, operator_action_at, operator_action_pending,
                finalized_at IS NOT NULL AS finalized, deep_reorgs
         FROM chain_transactions WHERE id = $1",
    )
    .bind(id.get())
    .fetch_one(&mut *conn)
    .await?;
    type AttemptRow = (i64, Vec<u8>, Wei, Wei, String, DateTime<Utc>);
    let attempts: Vec<AttemptRow> = sqlx::query_as(
        "SELECT nonce, tx_hash, max_fee_per_gas::numeric, max_priority_fee_per_gas::numeric, purpose, created_at
         FROM chain_transaction_attempts WHERE chain_transaction_id = $1 ORDER BY id",
    )
    .bind(id.get())
    .fetch_all(&mut *conn)
    .await?;
    let attempts = attempts
        .into_iter()
        .map(|(nonce, hash, max_fee, priority, purpose, created_at)| {
            Ok(AttemptView {
                nonce: store::to_u64(id.get(), nonce)?,
                tx_hash: store::b256(id.get(), &hash)?,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: priority,
                purpose,
                created_at,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let operator_action: Option<String> = row.try_get("operator_action")?;
    let cancelled = tx.state == TxState::Failed && tx.error.as_deref() == Some(CANCELLED);
    Ok(Some(OperatorView {
        operator_action,
        operator_action_by: row.try_get("operator_action_by")?,
        operator_action_at: row.try_get("operator_action_at")?,
        operator_action_pending: row.try_get("operator_action_pending")?,
        cancelled,
        finalized: row.try_get("finalized")?,
        deep_reorgs: row.try_get("deep_reorgs")?,
        attempts,
        tx,
    }))
}

/// The newest requests (in `state`, if given), newest first: what operators look through.
pub async fn recent(
    conn: &mut PgConnection,
    state: Option<TxState>,
    before: Option<ChainTxId>,
    limit: i64,
) -> Result<Vec<ChainTxView>> {
    let rows: Vec<ViewRow> = sqlx::query_as(
        "SELECT id, idempotency_key, kind, state, chain_id, signer, to_address, value::numeric AS value,
                context, nonce, tx_hash, max_fee_per_gas::numeric AS max_fee_per_gas,
                max_priority_fee_per_gas::numeric AS max_priority_fee_per_gas, block_number, block_hash,
                gas_used, receipt_status, error, revert_reason
         FROM chain_transactions
         WHERE ($1::text IS NULL OR state = $1) AND ($2::bigint IS NULL OR id < $2)
         ORDER BY id DESC LIMIT $3",
    )
    .bind(state.map(TxState::as_str))
    .bind(before.map(ChainTxId::get))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(ChainTxView::try_from).collect()
}

// --- the sender's side ----------------------------------------------------------------------

/// A request an operator acted on, as its sender reads it.
struct Pending {
    head: Head,
    state: TxState,
    cancel: bool,
    /// The operator's max fee for a replacement.
    max_fee: Option<Wei>,
    fees: Option<Fees>,
    call: Call,
}

async fn pending(conn: &mut PgConnection, lane: &Lane) -> Result<Vec<Pending>> {
    let rows = sqlx::query(
        "SELECT id, revision, idempotency_key, kind, requester, context, nonce, state,
                operator_action IS NOT DISTINCT FROM 'cancel' AS cancel,
                operator_max_fee_per_gas::numeric AS operator_max_fee,
                max_fee_per_gas::numeric AS max_fee, max_priority_fee_per_gas::numeric AS priority_fee,
                to_address, value::numeric AS value, calldata, gas_limit
         FROM chain_transactions
         WHERE chain_id = $1 AND signer = $2
           AND (operator_action_pending OR (operator_action = 'cancel' AND state = 'queued'))
         ORDER BY nonce NULLS LAST, id",
    )
    .bind(store::to_i64(lane.chain_id, "chain id")?)
    .bind(lane.signer.as_slice())
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let head = Head::from_row(&r)?;
            let id = head.id;
            let max_fee: Option<Wei> = r.try_get("max_fee")?;
            let priority: Option<Wei> = r.try_get("priority_fee")?;
            let gas_limit: Option<i64> = r.try_get("gas_limit")?;
            Ok(Pending {
                head,
                state: store::state(id, r.try_get("state")?)?,
                cancel: r.try_get("cancel")?,
                max_fee: r.try_get("operator_max_fee")?,
                fees: match (max_fee, priority) {
                    (Some(_), Some(_)) => Some(store::fees(id, max_fee, priority)?),
                    _ => None,
                },
                call: Call {
                    to: store::opt_address(id, r.try_get::<Option<&[u8]>, _>("to_address")?)?,
                    value: r.try_get("value")?,
                    data: alloy::primitives::Bytes::from(r.try_get::<Vec<u8>, _>("calldata")?),
                    gas_limit: gas_limit.map(|g| store::to_u64(id, g)).transpose()?,
                    cancel: false,
                },
            })
        })
        .collect()
}

async fn done(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query("UPDATE chain_transactions SET operator_action_pending = false WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A cancelled request that never got a signature: `queued → failed` (`cancel`), its nonce (a
/// handed-over one) passed on.
async fn cancel_unsigned(conn: &mut PgConnection, lane: &Lane, head: &Head) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query(
        "UPDATE chain_transactions
         SET nonce = NULL, error = $3, finished_at = now(), operator_action_pending = false,
             revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state = 'queued'",
    )
    .bind(head.id)
    .bind(head.revision)
    .bind(CANCELLED)
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    let mut extra = json!({ "error": CANCELLED, "revert_reason": null, "cancelled": true });
    if let Some(nonce) = head.nonce {
        extra["nonce_handed_to"] = json!(store::hand_over_nonce(&mut sp, lane, nonce).await?);
    }
    store::transition(&mut sp, lane, head, TxEvent::Cancel, head.payload(lane, None, extra)).await?;
    sp.commit().await?;
    Ok(true)
}

impl Worker {
    /// Does what operators asked of this signer's requests; returns how many moved.
    pub(crate) async fn operator_actions(&self) -> Result<usize> {
        let mut conn = self.pool.acquire().await?;
        let rows = pending(&mut conn, &self.lane).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // An operator's action is not held under the automatic fee cap: they asked for it.
        let fresh = self.rpc.fees(None).await?;
        let mut tx = conn.begin().await?;
        let mut moved = 0;
        for row in &rows {
            let acted = match row.state {
                TxState::Queued if row.cancel => cancel_unsigned(&mut tx, &self.lane, &row.head).await?,
                TxState::Signed | TxState::Broadcast => self.resign_for_operator(&mut tx, row, fresh).await?,
                // Mined or final meanwhile, or a replacement of one not signed yet: nothing to do.
                _ => {
                    done(&mut tx, row.head.id).await?;
                    false
                }
            };
            if acted {
                moved += 1;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }

    /// Signs the cancellation or the replacement at the request's nonce and makes it the
    /// current attempt (broadcast by the send loop next).
    async fn resign_for_operator(&self, conn: &mut PgConnection, row: &Pending, fresh: Fees) -> Result<bool> {
        let (Some(nonce), Some(fees)) = (row.head.nonce, row.fees) else {
            done(conn, row.head.id).await?;
            return Ok(false);
        };
        let call = if row.cancel { Call::cancellation(self.lane.signer) } else { row.call.clone() };
        let (Some(gas_limit), Some(mut new)) = (call.gas_limit, fees.bumped(self.config.fee_bump_percent, fresh, None))
        else {
            done(conn, row.head.id).await?;
            return Ok(false);
        };
        if let Some(asked) = row.max_fee.and_then(|fee| u128::try_from(fee.get()).ok()) {
            new.max_fee_per_gas = new.max_fee_per_gas.max(asked);
        }
        let signed = self.sign_call(&call, nonce, gas_limit, new)?;
        let event = (row.state == TxState::Broadcast).then_some(TxEvent::Bump);
        if !store::record_resigned(conn, &self.lane, &row.head, nonce, new, &signed, call.purpose(), event).await? {
            return Ok(false);
        }
        done(conn, row.head.id).await?;
        tracing::info!(
            tx.key = %row.head.key, nonce, max_fee = new.max_fee_per_gas, cancel = row.cancel,
            "operator's {} signed", if row.cancel { "cancellation" } else { "replacement" }
        );
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_offers_at_least_ten_percent_more() {
        assert_eq!(min_replacement(Wei::from_u128(1_000)), Wei::from_u128(1_101));
        assert_eq!(min_replacement(Wei::from_u128(9)), Wei::from_u128(10));
    }
}
