//! The signer's balance, watched before the node starts refusing its transactions: each check
//! compares it with the threshold ([`LowBalance`]) and, when it crosses it, records the new
//! judgement in `signer_balances` and raises `signer.balance_low` (or, refilled,
//! `signer.balance_ok`) in the outbox — once per crossing, not on every check.

use alloy::primitives::U256;
use serde_json::json;
use sqlx::{Acquire, Row};

use super::{Result, sender::LowBalance, sender::Worker, store::to_i64};
use crate::{
    money::Wei,
    workflow::{NewEvent, outbox},
};

/// The outbox events of a crossing.
pub const BALANCE_LOW: &str = "signer.balance_low";
pub const BALANCE_OK: &str = "signer.balance_ok";

impl Worker {
    /// What the threshold is now (a number of transactions is priced at the current fees).
    async fn low_balance_threshold(&self) -> Result<U256> {
        Ok(match self.config.low_balance {
            LowBalance::Wei(wei) => U256::from(wei),
            LowBalance::Transactions(n) => {
                let fees = self.rpc.fees(self.config.max_fee_per_gas).await?;
                U256::from(fees.max_fee_per_gas)
                    .saturating_mul(U256::from(LowBalance::GAS_PER_TRANSACTION))
                    .saturating_mul(U256::from(n))
            }
        })
    }

    /// Reads the signer's balance and records a crossing of the threshold; returns whether the
    /// balance is low.
    pub(crate) async fn check_balance(&self) -> Result<bool> {
        let balance = self.rpc.balance(self.lane.signer).await?;
        let threshold = self.low_balance_threshold().await?;
        let low = balance < threshold;
        let (chain_id, signer) = (to_i64(self.lane.chain_id, "chain id")?, self.lane.signer.as_slice());

        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        // A signer starts out fine: its first check alerts only when it is low already.
        sqlx::query(
            "INSERT INTO signer_balances (chain_id, address, low, balance, threshold) VALUES ($1, $2, false, $3, $4)
             ON CONFLICT (chain_id, address) DO NOTHING",
        )
        .bind(chain_id)
        .bind(signer)
        .bind(Wei::new(balance))
        .bind(Wei::new(threshold))
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT id, low FROM signer_balances WHERE chain_id = $1 AND address = $2 FOR UPDATE")
            .bind(chain_id)
            .bind(signer)
            .fetch_one(&mut *tx)
            .await?;
        let (id, was_low): (i64, bool) = (row.try_get("id")?, row.try_get("low")?);
        sqlx::query(
            "UPDATE signer_balances
             SET low = $2, balance = $3, threshold = $4, checked_at = now(),
                 changed_at = CASE WHEN low <> $2 THEN now() ELSE changed_at END
             WHERE id = $1",
        )
        .bind(id)
        .bind(low)
        .bind(Wei::new(balance))
        .bind(Wei::new(threshold))
        .execute(&mut *tx)
        .await?;
        if low != was_low {
            let event_type = if low { BALANCE_LOW } else { BALANCE_OK };
            outbox::append(
                &mut tx,
                NewEvent {
                    event_type: event_type.to_owned(),
                    aggregate_type: "signer",
                    aggregate_id: id,
                    payload: json!({
                        "chain_id": self.lane.chain_id,
                        "signer": self.lane.signer,
                        "balance": Wei::new(balance),
                        "threshold": Wei::new(threshold),
                        "low": low,
                    }),
                    correlation_id: None,
                },
            )
            .await?;
            if low {
                tracing::warn!(signer = %self.lane.signer, %balance, %threshold, "signer balance low");
            } else {
                tracing::info!(signer = %self.lane.signer, %balance, %threshold, "signer balance back above its threshold");
            }
        }
        tx.commit().await?;
        Ok(low)
    }
}
