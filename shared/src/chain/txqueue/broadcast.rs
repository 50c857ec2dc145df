//! The send loop's work: sign queued requests (nonces from the database, the signed bytes
//! stored before anything leaves the process), then broadcast what is signed.

use std::collections::HashMap;

use serde_json::json;
use sqlx::Connection;

use super::{
    Result,
    rpc::{CallSpec, EstimateError, SendOutcome},
    sender::Worker,
    store::{self, Unsent},
};

/// Signed rows broadcast per pass (in JSON-RPC batches).
const BROADCAST_LIMIT: usize = 1_000;

impl Worker {
    /// Signs up to a batch of queued requests in one database transaction: the signer's nonce
    /// row is locked, nonces are assigned contiguously, each signed transaction is stored with
    /// its hash and the row moves to `signed`. A call that reverts when estimated fails here,
    /// before it costs a nonce. Returns how many requests moved.
    pub(crate) async fn sign_queued(&self) -> Result<usize> {
        let mut conn = self.pool.acquire().await?;
        let rows = store::queued(&mut conn, &self.lane, self.config.batch_size).await?;
        if rows.is_empty() {
            return Ok(0);
        }

        let mut gas: Vec<Option<u64>> = rows.iter().map(|r| r.call.gas_limit).collect();
        let to_estimate: Vec<usize> = (0..rows.len()).filter(|i| gas[*i].is_none()).collect();
        let mut refused = Vec::new();
        let mut broke = None;
        if !to_estimate.is_empty() {
            let calls: Vec<CallSpec> = to_estimate.iter().map(|i| self.call_spec(&rows[*i].call, None)).collect();
            let estimates = self.rpc.estimate_gas(&calls).await?;
            for (i, estimate) in to_estimate.into_iter().zip(estimates) {
                match estimate {
                    Ok(estimate) => {
                        let margin = estimate.saturating_mul(u64::from(self.config.gas_margin_percent)) / 100;
                        gas[i] = Some(estimate.saturating_add(margin));
                    }
                    Err(EstimateError::Reverted { reason, .. }) => refused.push((i, reason)),
                    Err(EstimateError::InsufficientFunds) => {
                        broke = Some(format!("estimating {}", rows[i].head.key));
                    }
                    Err(EstimateError::Transient(e)) => {
                        tracing::debug!(tx.key = %rows[i].head.key, error = %e, "gas estimate failed; retrying later");
                    }
                }
            }
        }
        let fees = if broke.is_none() { Some(self.rpc.fees(self.config.max_fee_per_gas).await?) } else { None };

        let mut tx = conn.begin().await?;
        let mut next = store::lock_next_nonce(&mut tx, &self.lane).await?;
        let mut moved = 0;
        for (i, reason) in &refused {
            let error = format!("the call reverts: {reason}");
            if store::fail_unsent(&mut tx, &self.lane, &rows[*i].head, &error, Some(reason)).await? {
                moved += 1;
            }
        }
        if let Some(fees) = fees {
            for (row, gas) in rows.iter().zip(gas) {
                let Some(gas_limit) = gas else { continue };
                let (nonce, fresh) = match row.head.nonce {
                    Some(nonce) => (nonce, false),
                    None => (next, true),
                };
                let signed = self.sign_call(&row.call, nonce, gas_limit, fees)?;
                if store::record_signed(&mut tx, &self.lane, row, nonce, gas_limit, fees, &signed).await? {
                    moved += 1;
                    if fresh {
                        next += 1;
                    }
                }
            }
        }
        store::set_next_nonce(&mut tx, &self.lane, next).await?;
        tx.commit().await?;
        for (i, reason) in refused {
            tracing::info!(tx.key = %rows[i].head.key, %reason, "queued call reverts; failed before sending");
        }
        if let Some(detail) = broke {
            self.pause_for_funds(&detail).await;
        }
        Ok(moved)
    }

    pub(crate) fn call_spec(&self, call: &store::Call, gas_limit: Option<u64>) -> CallSpec {
        CallSpec { from: self.lane.signer, to: call.to, value: call.value.get(), data: call.data.clone(), gas_limit }
    }

    /// Broadcasts every signed row whose current attempt the node may not have, in nonce order
    /// and in batches, and records what the node said. Returns how many rows moved.
    pub(crate) async fn broadcast_unsent(&self) -> Result<usize> {
        let mut conn = self.pool.acquire().await?;
        let rows = store::unsent(&mut conn, &self.lane, BROADCAST_LIMIT).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let raws: Vec<&[u8]> = rows.iter().map(|r| r.raw_tx.as_slice()).collect();
        // An error here leaves every row signed: the next pass sends the same bytes again,
        // and the node says "already known" for those that got through.
        let outcomes = self.rpc.send_raw(&raws).await?;

        let mut tx = conn.begin().await?;
        let mut moved = 0;
        let mut broke = None;
        let mut resign = Vec::new();
        let mut rejected = Vec::new();
        for (row, outcome) in rows.iter().zip(outcomes) {
            let note = match &outcome {
                SendOutcome::Accepted | SendOutcome::AlreadyKnown => None,
                SendOutcome::NonceTooLow => Some("nonce too low: maybe mined; the receipts decide"),
                SendOutcome::ReplacementUnderpriced => {
                    Some("another transaction with this nonce is pending; bumped when stuck")
                }
                SendOutcome::Rejected(_) if row.was_broadcast => {
                    Some("this attempt was refused; an earlier one is out")
                }
                SendOutcome::InsufficientFunds => {
                    broke = Some(format!("broadcasting {}", row.head.key));
                    continue;
                }
                SendOutcome::FeeTooLow => {
                    resign.push(row.clone());
                    continue;
                }
                SendOutcome::Rejected(message) => {
                    let error = format!("refused by the node: {message}");
                    if store::fail_unsent(&mut tx, &self.lane, &row.head, &error, None).await? {
                        moved += 1;
                        rejected.push((row.head.key.clone(), error));
                    }
                    continue;
                }
                SendOutcome::Transient(message) => {
                    store::record_send_error(&mut tx, row.head.id, message).await?;
                    continue;
                }
            };
            if store::record_broadcast(&mut tx, &self.lane, row, note).await? {
                moved += 1;
            }
        }
        tx.commit().await?;
        drop(conn);

        for (key, error) in rejected {
            self.report("broadcast_rejected", &error, json!({ "idempotency_key": key })).await;
        }
        if let Some(detail) = broke {
            self.pause_for_funds(&detail).await;
        }
        if !resign.is_empty() {
            moved += self.resign_unsent(&resign).await?;
        }
        Ok(moved)
    }

    /// The node refused these fees (the base fee rose since they were signed): sign the same
    /// nonces again with fresh, bumped fees; the next pass broadcasts them.
    async fn resign_unsent(&self, rows: &[Unsent]) -> Result<usize> {
        let fresh = self.rpc.fees(self.config.max_fee_per_gas).await?;
        let mut conn = self.pool.acquire().await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.head.id).collect();
        let calls: HashMap<i64, store::Call> = store::calls(&mut conn, &ids).await?.into_iter().collect();
        let mut tx = conn.begin().await?;
        let mut moved = 0;
        for row in rows {
            let (Some(call), Some(fees)) = (
                calls.get(&row.head.id),
                row.fees.bumped(self.config.fee_bump_percent, fresh, self.config.max_fee_per_gas),
            ) else {
                continue;
            };
            let Some(gas_limit) = call.gas_limit else {
                continue;
            };
            let signed = self.sign_call(call, row.nonce, gas_limit, fees)?;
            if store::record_resigned(&mut tx, &self.lane, &row.head, row.nonce, fees, &signed, call.purpose(), None)
                .await?
            {
                moved += 1;
            }
        }
        tx.commit().await?;
        Ok(moved)
    }
}
