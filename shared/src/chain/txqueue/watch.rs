//! The watch loop's work, one pass per poll:
//!
//! 1. The signer's mined nonce count tells which of our transactions the chain has passed;
//!    only those have receipts to look up (every attempt's hash, batched). Found: `mined`.
//!    Not found twice in a row: the nonce was used outside the queue, so the request is
//!    queued again for a fresh nonce.
//! 2. Mined transactions: when the canonical block at their height no longer has their hash,
//!    the receipt is looked up again — moved (re-included elsewhere) or gone (`reorg`: the
//!    signed bytes go out again). `confirmations` deep and still canonical: `confirmed`, or
//!    `failed` with the revert reason when the receipt's status is 0.
//! 3. When the nonce has not moved for `stuck_after`: re-sign waiting transactions with both
//!    fees bumped, and fill nonces that no request holds.
//! 4. Settled transactions (confirmed, or failed with a receipt) whose block is not finalized
//!    yet: still canonical? At or below the chain's `finalized` block: marked finalized, never
//!    looked at again. Gone (a reorg deeper than their confirmations): `deep_reorg`, and the
//!    mined attempt's signed bytes go out again.

use std::{
    collections::{BTreeSet, HashMap},
    time::Instant,
};

use alloy::{primitives::B256, rpc::types::TransactionReceipt};
use serde_json::json;
use sqlx::PgConnection;

use super::{
    Result,
    sender::Worker,
    store::{self, Head, Mined, Watched},
};
use crate::workflow::machines::{TxEvent, TxState};

/// Passes that must agree before a nonce is declared used by someone else.
const SUSPICIONS_BEFORE_REQUEUE: u32 = 2;

/// Settled transactions re-checked per pass (the oldest blocks first).
const FINALITY_BATCH: i64 = 500;

/// The finality check runs every this many polls.
const FINALITY_EVERY_POLLS: u32 = 4;

/// What the watch loop remembers between passes (a cache: losing it costs only time).
#[derive(Debug, Default)]
pub(crate) struct WatchState {
    /// The signer's mined nonce count, and since when it has had that value.
    progress: Option<(u64, Instant)>,
    /// Requests whose nonce the chain passed without a receipt of ours, and how many passes
    /// saw that.
    suspects: HashMap<i64, u32>,
    last_gap_check: Option<Instant>,
    last_finality_check: Option<Instant>,
}

fn mined_from(receipt: &TransactionReceipt) -> Option<Mined> {
    Some(Mined {
        tx_hash: receipt.transaction_hash,
        block_number: receipt.block_number?,
        block_hash: receipt.block_hash?,
        gas_used: receipt.gas_used,
        effective_gas_price: receipt.effective_gas_price,
        success: receipt.status(),
        cancellation: false,
    })
}

/// `confirmations` blocks including its own: at head `h`, a block `b` has `h - b + 1`.
fn deep_enough(head: u64, block: u64, confirmations: u64) -> bool {
    head.saturating_add(1) >= block.saturating_add(confirmations.max(1))
}

impl Worker {
    /// One pass over the signer's in-flight transactions; returns whether the send loop has
    /// something new to broadcast.
    pub(crate) async fn watch_pass(&self, state: &mut WatchState) -> Result<bool> {
        let (head, chain_nonce) = self.rpc.head_and_nonce(self.lane.signer).await?;
        let now = Instant::now();
        match state.progress {
            Some((nonce, _)) if nonce == chain_nonce => {}
            _ => state.progress = Some((chain_nonce, now)),
        }
        let stalled = state.progress.is_some_and(|(_, since)| now.duration_since(since) >= self.config.stuck_after);

        let mut conn = self.pool.acquire().await?;
        // Someone else used the account: never hand out a nonce below the chain's count.
        store::sync_next_nonce(&mut conn, &self.lane, chain_nonce).await?;
        let rows = store::watched(&mut conn, &self.lane, self.config.stuck_after).await?;
        let mut resend = false;

        let passed: Vec<&Watched> = rows
            .iter()
            .filter(|r| matches!(r.state, TxState::Signed | TxState::Broadcast))
            .filter(|r| r.nonce < chain_nonce)
            .collect();
        state.suspects.retain(|id, _| passed.iter().any(|r| r.head.id == *id));
        if !passed.is_empty() {
            resend |= self.find_receipts(&mut conn, state, head, &passed).await?;
        }

        let mined: Vec<(&Watched, &Mined)> = rows
            .iter()
            .filter(|r| r.state == TxState::Mined)
            .filter_map(|r| r.mined.as_ref().map(|m| (r, m)))
            .collect();
        if !mined.is_empty() {
            resend |= self.follow_mined(&mut conn, head, &mined).await?;
        }

        if stalled {
            let stuck: Vec<&Watched> =
                rows.iter().filter(|r| r.state == TxState::Broadcast && r.nonce >= chain_nonce && r.stale).collect();
            if !stuck.is_empty() {
                resend |= self.bump(&mut conn, &stuck).await?;
            }
            let gap_check_due = state.last_gap_check.is_none_or(|at| now.duration_since(at) >= self.config.stuck_after);
            if gap_check_due {
                state.last_gap_check = Some(now);
                resend |= self.fill_gaps(&mut conn, chain_nonce).await?;
            }
        }

        let every = self.config.poll_interval.saturating_mul(FINALITY_EVERY_POLLS);
        if state.last_finality_check.is_none_or(|at| now.duration_since(at) >= every) {
            state.last_finality_check = Some(now);
            resend |= self.recheck_settled(&mut conn).await?;
        }
        Ok(resend)
    }

    /// Step 4: settled transactions against the canonical chain and its finalized block.
    async fn recheck_settled(&self, conn: &mut PgConnection) -> Result<bool> {
        let settled = store::unfinalized(conn, &self.lane, FINALITY_BATCH).await?;
        if settled.is_empty() {
            return Ok(false);
        }
        // A node without the `finalized` tag: nothing is ever marked finalized, the re-checks go on.
        let finalized = match self.rpc.finalized_block().await {
            Ok(finalized) => finalized,
            Err(e) => {
                tracing::debug!(error = %e, "finalized block unavailable");
                None
            }
        };
        let numbers: Vec<u64> =
            settled.iter().map(|s| s.mined.block_number).collect::<BTreeSet<_>>().into_iter().collect();
        let canonical: HashMap<u64, Option<B256>> =
            numbers.iter().copied().zip(self.rpc.block_hashes(&numbers).await?).collect();
        let (kept, gone): (Vec<&store::Settled>, Vec<&store::Settled>) = settled
            .iter()
            .partition(|s| canonical.get(&s.mined.block_number).copied().flatten() == Some(s.mined.block_hash));
        let finals: Vec<i64> =
            kept.iter().filter(|s| finalized.is_some_and(|f| s.mined.block_number <= f)).map(|s| s.head.id).collect();
        if !finals.is_empty() {
            store::mark_finalized(conn, &finals).await?;
        }
        if gone.is_empty() {
            return Ok(false);
        }

        let hashes: Vec<B256> = gone.iter().map(|s| s.mined.tx_hash).collect();
        let receipts = self.rpc.receipts(&hashes).await?;
        let mut reorged = Vec::new();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for (s, receipt) in gone.into_iter().zip(receipts) {
            match receipt.as_ref().and_then(mined_from) {
                // Re-included elsewhere: the outcome stands; follow it to its new block.
                Some(moved) => {
                    store::record_settled_moved(&mut tx, &s.head, &moved).await?;
                }
                None => {
                    if store::record_deep_reorg(&mut tx, &self.lane, &s.head, &s.mined).await? {
                        reorged.push(s);
                    }
                }
            }
        }
        tx.commit().await?;
        for s in &reorged {
            self.report(
                "deep_reorg",
                "a reorg deeper than its confirmations removed a settled transaction; it is sent again",
                json!({
                    "idempotency_key": s.head.key,
                    "nonce": s.head.nonce,
                    "tx_hash": s.mined.tx_hash,
                    "orphaned_block_number": s.mined.block_number,
                    "orphaned_block_hash": s.mined.block_hash,
                }),
            )
            .await;
        }
        Ok(!reorged.is_empty())
    }

    /// Step 1: receipts of every attempt of the requests whose nonce the chain has passed.
    async fn find_receipts(
        &self,
        conn: &mut PgConnection,
        state: &mut WatchState,
        head: u64,
        passed: &[&Watched],
    ) -> Result<bool> {
        let ids: Vec<i64> = passed.iter().map(|r| r.head.id).collect();
        let attempts = store::attempt_hashes(conn, &ids).await?;
        let hashes: Vec<B256> = attempts.iter().map(|(_, hash, _)| *hash).collect();
        let receipts = self.rpc.receipts(&hashes).await?;
        let mut found: HashMap<i64, Mined> = HashMap::new();
        for ((id, _, cancellation), receipt) in attempts.iter().zip(&receipts) {
            if let Some(mined) = receipt.as_ref().and_then(mined_from) {
                found.insert(*id, Mined { cancellation: *cancellation, ..mined });
            }
        }

        let mut resend = false;
        let mut requeued = Vec::new();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for row in passed {
            let id = row.head.id;
            if let Some(mined) = found.get(&id) {
                state.suspects.remove(&id);
                let Some(moved) = store::record_mined(&mut tx, &self.lane, row, mined).await? else {
                    continue;
                };
                if deep_enough(head, mined.block_number, row.confirmations) {
                    self.finish(&mut tx, &moved, mined).await?;
                }
                continue;
            }
            let seen = state.suspects.entry(id).or_insert(0);
            *seen += 1;
            if *seen >= SUSPICIONS_BEFORE_REQUEUE && store::requeue(&mut tx, &self.lane, row).await? {
                state.suspects.remove(&id);
                requeued.push((row.head.key.clone(), row.nonce));
                resend = true;
            }
        }
        tx.commit().await?;
        for (key, nonce) in requeued {
            self.report(
                "nonce_taken",
                "a nonce of the queue was used by a transaction sent outside it; the request is queued again",
                json!({ "idempotency_key": key, "nonce": nonce }),
            )
            .await;
        }
        Ok(resend)
    }

    /// Step 2: mined transactions — still canonical? deep enough?
    async fn follow_mined(&self, conn: &mut PgConnection, head: u64, mined: &[(&Watched, &Mined)]) -> Result<bool> {
        // Which of them is an operator's cancellation mined in the request's place.
        let ids: Vec<i64> = mined.iter().map(|(r, _)| r.head.id).collect();
        let cancelled = store::cancellations(conn, &ids).await?;
        let marked: Vec<(&Watched, Mined)> = mined
            .iter()
            .map(|(r, m)| (*r, Mined { cancellation: cancelled.contains(&r.head.id), ..(*m).clone() }))
            .collect();
        let mined: Vec<(&Watched, &Mined)> = marked.iter().map(|(r, m)| (*r, m)).collect();
        let mined = mined.as_slice();
        let numbers: Vec<u64> =
            mined.iter().map(|(_, m)| m.block_number).collect::<BTreeSet<_>>().into_iter().collect();
        let canonical: HashMap<u64, Option<B256>> =
            numbers.iter().copied().zip(self.rpc.block_hashes(&numbers).await?).collect();
        let (settled, orphaned): (Vec<_>, Vec<_>) =
            mined.iter().partition(|(_, m)| canonical.get(&m.block_number).copied().flatten() == Some(m.block_hash));
        let relooked = if orphaned.is_empty() {
            Vec::new()
        } else {
            let hashes: Vec<B256> = orphaned.iter().map(|(_, m)| m.tx_hash).collect();
            self.rpc.receipts(&hashes).await?
        };

        let mut resend = false;
        let mut reorged = Vec::new();
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for (row, m) in settled {
            if deep_enough(head, m.block_number, row.confirmations) {
                self.finish(&mut tx, &row.head, m).await?;
            }
        }
        for ((row, m), receipt) in orphaned.into_iter().zip(relooked) {
            match receipt.as_ref().and_then(mined_from) {
                // Re-included in another block: follow it there and count again.
                Some(moved) => {
                    store::record_moved(&mut tx, &row.head, &moved).await?;
                }
                None => {
                    if store::record_reorg(&mut tx, &self.lane, &row.head, m).await? {
                        reorged.push((row.head.key.clone(), m.block_number, m.block_hash));
                        resend = true;
                    }
                }
            }
        }
        tx.commit().await?;
        for (key, number, hash) in reorged {
            tracing::warn!(tx.key = %key, block.number = number, block.hash = %hash, "mined transaction orphaned by a reorg; sending it again");
        }
        Ok(resend)
    }

    /// `mined → confirmed`, or `→ failed` with the revert reason (the call replayed on the
    /// state before its block).
    async fn finish(&self, conn: &mut PgConnection, head: &Head, mined: &Mined) -> Result<()> {
        if mined.success {
            store::record_final(conn, &self.lane, head, mined, None).await?;
            return Ok(());
        }
        let calls = store::calls(conn, &[head.id]).await?;
        let reason = match calls.first() {
            Some((_, call)) if !mined.cancellation => {
                let spec = self.call_spec(call, call.gas_limit);
                match self.rpc.revert_reason(&spec, mined.block_number).await {
                    Ok(reason) => reason,
                    Err(e) => {
                        tracing::debug!(error = %e, "revert reason unavailable");
                        None
                    }
                }
            }
            _ => None,
        };
        let revert = reason.as_ref().map(|(r, data)| (r.as_str(), data.as_ref()));
        store::record_final(conn, &self.lane, head, mined, revert).await?;
        Ok(())
    }

    /// Step 3a: re-sign stuck transactions with both fees bumped (or, at the fee cap, send the
    /// same bytes again: the node may have dropped them).
    async fn bump(&self, conn: &mut PgConnection, stuck: &[&Watched]) -> Result<bool> {
        let fresh = self.rpc.fees(self.config.max_fee_per_gas).await?;
        let ids: Vec<i64> = stuck.iter().map(|r| r.head.id).collect();
        let calls: HashMap<i64, store::Call> = store::calls(conn, &ids).await?.into_iter().collect();
        let mut capped = Vec::new();
        let mut bumped = 0;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for row in stuck {
            let Some(call) = calls.get(&row.head.id) else {
                continue;
            };
            let new_fees = row.fees.bumped(self.config.fee_bump_percent, fresh, self.config.max_fee_per_gas);
            let (Some(fees), Some(gas_limit)) = (new_fees, call.gas_limit) else {
                capped.push(row.head.id);
                continue;
            };
            let signed = self.sign_call(call, row.nonce, gas_limit, fees)?;
            let purpose = call.purpose();
            if store::record_resigned(
                &mut tx,
                &self.lane,
                &row.head,
                row.nonce,
                fees,
                &signed,
                purpose,
                Some(TxEvent::Bump),
            )
            .await?
            {
                bumped += 1;
                tracing::info!(tx.key = %row.head.key, nonce = row.nonce, max_fee = fees.max_fee_per_gas, "stuck transaction re-signed with higher fees");
            }
        }
        tx.commit().await?;
        if !capped.is_empty() {
            let raws = store::raw_txs(conn, &capped).await?;
            let bytes: Vec<&[u8]> = raws.iter().map(|(_, raw)| raw.as_slice()).collect();
            self.rpc.send_raw(&bytes).await?;
            for (id, _) in &raws {
                store::record_resent(conn, *id).await?;
            }
            self.report(
                "fee_cap_reached",
                "stuck transactions cannot be bumped under the fee cap; sent again as they are",
                json!({ "ids": capped }),
            )
            .await;
        }
        Ok(bumped > 0)
    }

    /// Step 3b: nonces between the chain's count and the next one to hand out that no request
    /// holds (nothing should leave one, but a manual edit can) get a 0-value self-transfer.
    async fn fill_gaps(&self, conn: &mut PgConnection, chain_nonce: u64) -> Result<bool> {
        let missing = store::missing_nonces(conn, &self.lane, chain_nonce).await?;
        if missing.is_empty() {
            return Ok(false);
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for nonce in &missing {
            store::hand_over_nonce(&mut tx, &self.lane, *nonce).await?;
        }
        tx.commit().await?;
        self.report("nonce_gap", "nonces without a request were found and filled", json!({ "nonces": missing })).await;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::deep_enough;

    #[test]
    fn a_block_counts_itself_among_its_confirmations() {
        assert!(deep_enough(10, 10, 1));
        assert!(!deep_enough(10, 10, 2));
        assert!(deep_enough(11, 10, 2));
        assert!(!deep_enough(9, 10, 1));
    }
}
