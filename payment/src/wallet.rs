//! Wallet payments: the buyer's wallet sends the platform-signed quote to the Checkout contract,
//! which takes the payment and mints in one transaction; [`WalletPayments`] reads the contract's
//! `OrderPaid` events and fulfils the orders they name.
//!
//! An order's on-chain id is its public UUID, right-aligned in the `bytes32`.

use alloy::{
    primitives::B256,
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use serde_json::json;
use shared::{
    contracts::Checkout::OrderPaid,
    daemon::{Daemon, RunContext, Schedule},
    service::Resources,
    workflow::{
        BoxFuture, Transition, WorkflowError, apply,
        machines::{Order, OrderEvent},
    },
};
use uuid::Uuid;

/// Blocks read per run at most.
const MAX_RANGE: u64 = 2_000;
/// Where a chain without a cursor starts: this many blocks back from the head.
const START_BACK: u64 = 1_000;

/// The `bytes32` order id of the Checkout contract for an order.
pub(crate) fn chain_order_id(order: Uuid) -> B256 {
    let mut id = [0u8; 32];
    id[16..].copy_from_slice(order.as_bytes());
    B256::from(id)
}

/// The order a Checkout `orderId` names, if it is one of ours.
pub(crate) fn order_of(id: B256) -> Option<Uuid> {
    id[..16].iter().all(|b| *b == 0).then(|| Uuid::from_slice(&id[16..]).ok()).flatten()
}

/// Follows the Checkout contract's `OrderPaid` events.
pub(crate) struct WalletPayments {
    resources: Resources,
}

impl WalletPayments {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    /// Reads the next range of blocks; returns how many payments it recorded.
    pub(crate) async fn poll(&self) -> anyhow::Result<u64> {
        let Some(checkout) = self.resources.config().chain.contracts.checkout else { return Ok(0) };
        let provider = self.resources.chain().provider();
        let chain_id = provider.get_chain_id().await?;
        let head = provider.get_block_number().await?;
        let cursor_name = format!("checkout:{chain_id}:{checkout}");
        let mut tx = self.resources.db().begin().await?;
        // The cursor row is the lock: one reader at a time, whatever the replicas.
        sqlx::query!(
            "INSERT INTO chain_cursors (name, block) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            cursor_name,
            i64::try_from(head.saturating_sub(START_BACK)).unwrap_or(0)
        )
        .execute(&mut *tx)
        .await?;
        let cursor = sqlx::query_scalar!("SELECT block FROM chain_cursors WHERE name = $1 FOR UPDATE", cursor_name)
            .fetch_one(&mut *tx)
            .await?;
        let from = u64::try_from(cursor).unwrap_or(0);
        if from > head {
            return Ok(0);
        }
        let to = head.min(from + MAX_RANGE - 1);
        let filter = Filter::new().address(checkout).event_signature(OrderPaid::SIGNATURE_HASH).from_block(from).to_block(to);
        let mut recorded = 0;
        for log in provider.get_logs(&filter).await? {
            let paid = OrderPaid::decode_log(&log.inner)?;
            let Some(order) = order_of(paid.orderId) else { continue };
            let cause = format!("log:{}:{}", log.transaction_hash.unwrap_or_default(), log.log_index.unwrap_or_default());
            if record(&mut tx, order, &paid.data, &cause).await? {
                recorded += 1;
            }
        }
        sqlx::query!(
            "UPDATE chain_cursors SET block = $2, updated_at = now() WHERE name = $1",
            cursor_name,
            i64::try_from(to + 1).unwrap_or(i64::MAX)
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(recorded)
    }
}

/// Fulfils `order` paid by `paid`; `false` when already recorded or not ours to record.
async fn record(conn: &mut sqlx::PgConnection, order: Uuid, paid: &OrderPaid, cause: &str) -> anyhow::Result<bool> {
    let row = sqlx::query!(
        "SELECT o.id, o.brand_id, o.quantity, q.amount::text AS \"amount?\", q.pay_token AS \"pay_token?\"
         FROM orders o LEFT JOIN fx_quotes q ON q.order_id = o.id WHERE o.public_id = $1",
        order
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        tracing::warn!(%order, "OrderPaid for an unknown order");
        return Ok(false);
    };
    // The contract only accepts our signed quote; a mismatch means the quote table and the
    // chain disagree, which an operator must look at.
    let expected = (row.amount.as_deref(), row.pay_token.as_deref(), i64::from(row.quantity));
    let seen = (Some(paid.amount.to_string()), Some(paid.payToken.as_slice()), i64::try_from(paid.quantity).unwrap_or(-1));
    if expected != (seen.0.as_deref(), seen.1, seen.2) {
        anyhow::bail!("order {order}: OrderPaid {paid:?} does not match its quote {expected:?}");
    }
    let payload = json!({ "brand_id": row.brand_id, "order": order, "first_token_id": paid.firstTokenId.to_string(),
                          "buyer": paid.buyer, "amount": paid.amount.to_string(), "pay_token": paid.payToken });
    let transition = Transition::<Order>::new(row.id, OrderEvent::PaidOnChain, cause, "payment.wallet").with_payload(payload);
    match apply(&mut *conn, transition).await {
        Ok(applied) => {
            let first: bigdecimal::BigDecimal = paid.firstTokenId.to_string().parse()?;
            sqlx::query!(
                "UPDATE orders SET first_token_id = $2, fulfilled_at = COALESCE(fulfilled_at, now()) WHERE id = $1",
                row.id,
                first
            )
            .execute(&mut *conn)
            .await?;
            Ok(matches!(applied, shared::workflow::Applied::Moved { .. }))
        }
        Err(WorkflowError::InvalidTransition { from, .. }) => {
            // Paid on chain after we expired it: the buyer holds the NFT and we hold the money.
            tracing::error!(%order, from, "OrderPaid for an order that is no longer pending: reconcile by hand");
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

impl Daemon for WalletPayments {
    fn name(&self) -> &'static str {
        "payment.wallet-payments"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(2))
    }

    fn run<'a>(&'a self, _: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(self.poll())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_ids_round_trip_through_bytes32() {
        let order = uuid::Uuid::new_v4();
        assert_eq!(super::order_of(super::chain_order_id(order)), Some(order));
        assert_eq!(super::order_of(alloy::primitives::B256::repeat_byte(1)), None);
    }
}
