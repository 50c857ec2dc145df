//! Royalty-share rewards, paid by contract: a campaign's `royalty_share` reward gives its holders
//! `share_bps` of every royalty the campaign receives on a secondary sale.
//!
//! - **Accrual** (on `sale.recorded`): the share of the royalty received is split over the
//!   holders of the collection at the end of the sale's block (from the indexed transfers), by
//!   tokens held, rounded down with the remainder to the first holder (by address), one row per
//!   sale and holder — a redelivered event adds nothing.
//! - **Batches** (a leased daemon): a campaign's accrued amounts in one currency whose sales are
//!   confirmed (never a share of a sale a reorg could still take back), summed per holder, become one `royalty_batches` row whose id is the vault's `batchId`, and one
//!   `RewardVault.distribute` through the transaction queue. The vault refuses a batch id twice,
//!   so a batch can never pay twice; a failed transaction puts its accruals back for a new batch.
//! - **Outcome**: the queue's confirmation marks the batch and its accruals paid.
//! - **Reorgs** (on `sale.reverted`): accruals of the sale not yet in a batch are reversed.

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, U256},
    sol_types::SolCall,
};
use anyhow::Context;
use serde_json::json;
use shared::{
    chain::txqueue::{self, IdempotencyKey, Requester, TxRequest},
    contracts::RewardVault,
    daemon::{Daemon, RunContext, Schedule},
    money::{Bps, Rounding, Wei},
    service::Resources,
    workflow::{
        BoxFuture,
        outbox::{self, NewEvent, OutboxEvent, Subscriber},
    },
};
use sqlx::{PgConnection, Row};

/// Recipients per `distribute` call.
const MAX_RECIPIENTS: i64 = 200;
/// Gas for a batch of [`MAX_RECIPIENTS`] (a transfer each).
const DISTRIBUTE_GAS_LIMIT: u64 = 8_000_000;

fn zero() -> Vec<u8> {
    Address::ZERO.to_vec()
}

/// `pool` split over `holders` (address, tokens held) by tokens, rounded down, the remainder to
/// the first; zero parts dropped.
pub fn split(pool: U256, holders: &[(Address, u64)]) -> Vec<(Address, U256)> {
    let total: u64 = holders.iter().map(|(_, n)| *n).sum();
    if total == 0 || pool.is_zero() {
        return Vec::new();
    }
    let mut parts: Vec<(Address, U256)> =
        holders.iter().map(|(a, n)| (*a, pool.saturating_mul(U256::from(*n)) / U256::from(total))).collect();
    let given = parts.iter().fold(U256::ZERO, |sum, (_, p)| sum.saturating_add(*p));
    if let Some((_, first)) = parts.first_mut() {
        *first = first.saturating_add(pool.saturating_sub(given));
    }
    parts.retain(|(_, p)| !p.is_zero());
    parts
}

/// Reacts to sales, their reverts and the distributions' outcomes.
#[derive(Debug)]
pub(crate) struct RoyaltyShares;

const EVENTS: &[&str] =
    &["sale.recorded", "sale.reverted", "tx.confirmed.royalty-distribution", "tx.failed.royalty-distribution"];

impl Subscriber for RoyaltyShares {
    fn name(&self) -> &'static str {
        "redemption.royalty-shares"
    }

    fn event_types(&self) -> &'static [&'static str] {
        debug_assert_eq!(&EVENTS[2..], Requester::RoyaltyDistribution.outcomes());
        EVENTS
    }

    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            match event.event_type.as_str() {
                "sale.recorded" => accrue(conn, &event.payload).await,
                "sale.reverted" => reverse(conn, &event.payload).await,
                other => {
                    let batch = event.payload["context"]["batch_id"]
                        .as_i64()
                        .with_context(|| format!("{other} of transaction {} without its batch", event.aggregate_id))?;
                    settle(conn, batch, Requester::is_confirmed(other)).await
                }
            }
        })
    }
}

async fn accrue(conn: &mut PgConnection, sale: &serde_json::Value) -> anyhow::Result<()> {
    let id = sale["sale_id"].as_i64().context("sale.recorded without sale_id")?;
    let campaign = sale["campaign_id"].as_i64().context("sale.recorded without campaign_id")?;
    let rule = sqlx::query(
        "SELECT id, brand_id, share_bps FROM campaign_rewards WHERE campaign_id = $1 AND kind = 'royalty_share'",
    )
    .bind(campaign)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(rule) = rule else { return Ok(()) };
    let (reward, brand, share_bps): (i64, i64, i32) = (rule.get(0), rule.get(1), rule.get(2));
    let received: U256 = sale["royalty_received"].as_str().context("without royalty_received")?.parse()?;
    // 1 to 10,000 by the table's CHECK.
    let share = u32::try_from(share_bps).ok().and_then(|b| Bps::new(b).ok()).unwrap_or(Bps::ZERO);
    let pool = Wei::new(received).share(share, Rounding::Floor).get();
    let collection: Address = sale["collection"].as_str().context("without collection")?.parse()?;
    let currency: Address = sale["currency"].as_str().context("without currency")?.parse()?;
    // Who held the collection at the end of the sale's block.
    let rows = sqlx::query(
        "SELECT owner, count(*) FROM (
             SELECT DISTINCT ON (token_id) to_address AS owner FROM token_transfers
             WHERE chain_id = $1 AND collection = $2 AND block_number <= $3
             ORDER BY token_id, block_number DESC, log_index DESC) t
         WHERE owner <> $4 GROUP BY owner ORDER BY owner",
    )
    .bind(sale["chain_id"].as_i64().context("without chain_id")?)
    .bind(collection.to_vec())
    .bind(sale["block_number"].as_i64().context("without block_number")?)
    .bind(zero())
    .fetch_all(&mut *conn)
    .await?;
    let holders: Vec<(Address, u64)> = rows
        .iter()
        .map(|r| (Address::from_slice(&r.get::<Vec<u8>, _>(0)), u64::try_from(r.get::<i64, _>(1)).unwrap_or(0)))
        .collect();
    let parts = split(pool, &holders);
    if parts.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO royalty_accruals (brand_id, campaign_id, reward_id, sale_id, sale_block, holder, payment_token,
                                       amount)
         SELECT $1, $2, $3, $4, $8, h, $5, a::numeric FROM UNNEST($6::bytea[], $7::text[]) AS u(h, a)
         ON CONFLICT (sale_id, holder) DO NOTHING",
    )
    .bind(brand)
    .bind(campaign)
    .bind(reward)
    .bind(id)
    .bind(currency.to_vec())
    .bind(parts.iter().map(|(a, _)| a.to_vec()).collect::<Vec<_>>())
    .bind(parts.iter().map(|(_, p)| p.to_string()).collect::<Vec<_>>())
    .bind(sale["block_number"].as_i64())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn reverse(conn: &mut PgConnection, sale: &serde_json::Value) -> anyhow::Result<()> {
    let id = sale["sale_id"].as_i64().context("sale.reverted without sale_id")?;
    let reversed = sqlx::query(
        "UPDATE royalty_accruals SET state = 'reversed', updated_at = now() WHERE sale_id = $1 AND state = 'accrued'",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if reversed.rows_affected() > 0 {
        tracing::info!(
            sale = id,
            accruals = reversed.rows_affected(),
            "royalty-share accruals of a reverted sale reversed"
        );
    }
    Ok(())
}

async fn settle(conn: &mut PgConnection, batch: i64, confirmed: bool) -> anyhow::Result<()> {
    let state = if confirmed { "paid" } else { "failed" };
    let moved =
        sqlx::query("UPDATE royalty_batches SET state = $2, updated_at = now() WHERE id = $1 AND state = 'submitted'")
            .bind(batch)
            .bind(state)
            .execute(&mut *conn)
            .await?;
    if moved.rows_affected() == 0 {
        return Ok(()); // already settled: a redelivery
    }
    if confirmed {
        sqlx::query("UPDATE royalty_accruals SET state = 'paid', updated_at = now() WHERE batch_id = $1")
            .bind(batch)
            .execute(&mut *conn)
            .await?;
    } else {
        // Nothing was paid: the accruals wait for a new batch (a new id).
        sqlx::query(
            "UPDATE royalty_accruals SET state = 'accrued', batch_id = NULL, updated_at = now() WHERE batch_id = $1",
        )
        .bind(batch)
        .execute(&mut *conn)
        .await?;
    }
    outbox::append(
        conn,
        NewEvent {
            event_type: format!("royalty_share.batch_{state}"),
            aggregate_type: "royalty_batch",
            aggregate_id: batch,
            payload: json!({ "batch_id": batch }),
            correlation_id: None,
        },
    )
    .await?;
    Ok(())
}

/// Batches accrued shares into `RewardVault.distribute` calls.
#[derive(Debug)]
pub(crate) struct Distribution {
    resources: Resources,
}

impl Distribution {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    /// Submits a batch per campaign and currency with accrued shares; returns how many.
    pub(crate) async fn distribute(&self, pool: &sqlx::PgPool) -> anyhow::Result<u64> {
        let chain = &self.resources.config().chain;
        let (Some(vault), Some(relayer)) = (chain.contracts.reward_vault, shared::chain::relayer(chain)) else {
            return Ok(0);
        };
        let pending = sqlx::query(
            "SELECT DISTINCT a.campaign_id, a.payment_token, c.chain_id, i.confirmed_block FROM royalty_accruals a
             JOIN campaigns c ON c.id = a.campaign_id JOIN indexer_chains i ON i.chain_id = c.chain_id
             WHERE a.state = 'accrued' AND a.sale_block <= i.confirmed_block",
        )
        .fetch_all(pool)
        .await?;
        let mut submitted = 0;
        for row in &pending {
            let (campaign, token, chain_id, confirmed): (i64, Vec<u8>, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            let mut tx = pool.begin().await?;
            let accruals = sqlx::query(
                "SELECT id, brand_id, holder, amount::text FROM royalty_accruals
                 WHERE campaign_id = $1 AND payment_token = $2 AND state = 'accrued' AND sale_block <= $4
                 ORDER BY holder, id LIMIT $3 FOR UPDATE SKIP LOCKED",
            )
            .bind(campaign)
            .bind(&token)
            .bind(MAX_RECIPIENTS * 10)
            .bind(confirmed)
            .fetch_all(&mut *tx)
            .await?;
            let mut per_holder: BTreeMap<Address, U256> = BTreeMap::new();
            let mut ids = Vec::new();
            for a in &accruals {
                let holder = Address::from_slice(&a.get::<Vec<u8>, _>(2));
                if per_holder.len() as i64 >= MAX_RECIPIENTS && !per_holder.contains_key(&holder) {
                    break;
                }
                let amount: U256 = a.get::<String, _>(3).parse()?;
                *per_holder.entry(holder).or_default() += amount;
                ids.push(a.get::<i64, _>(0));
            }
            let Some(brand) = accruals.first().map(|a| a.get::<i64, _>(1)) else { continue };
            let total = per_holder.values().fold(U256::ZERO, |s, a| s.saturating_add(*a));
            let batch: i64 = sqlx::query_scalar(
                "INSERT INTO royalty_batches (brand_id, campaign_id, payment_token, total, recipients)
                 VALUES ($1, $2, $3, $4::numeric, $5) RETURNING id",
            )
            .bind(brand)
            .bind(campaign)
            .bind(&token)
            .bind(total.to_string())
            .bind(i32::try_from(per_holder.len()).unwrap_or(i32::MAX))
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE royalty_accruals SET state = 'batched', batch_id = $2, updated_at = now() WHERE id = ANY($1)",
            )
            .bind(&ids)
            .bind(batch)
            .execute(&mut *tx)
            .await?;
            let call = RewardVault::distributeCall {
                campaignId: U256::from(u64::try_from(campaign).unwrap_or(0)),
                token: Address::from_slice(&token),
                recipients: per_holder.keys().copied().collect(),
                amounts: per_holder.values().copied().collect(),
                batchId: U256::from(u64::try_from(batch).unwrap_or(0)),
            };
            let request = TxRequest::call(
                IdempotencyKey::new(format!("royalty-batch:{batch}"))?,
                u64::try_from(chain_id).unwrap_or(0),
                relayer,
                vault,
                call.abi_encode().into(),
            )
            .with_gas_limit(DISTRIBUTE_GAS_LIMIT)
            .requested_by(Requester::RoyaltyDistribution)
            .with_context(json!({ "batch_id": batch, "campaign_id": campaign }));
            let queued = txqueue::enqueue(&mut tx, &request).await?;
            sqlx::query("UPDATE royalty_batches SET chain_tx_id = $2 WHERE id = $1")
                .bind(batch)
                .bind(queued.id.get())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            submitted += 1;
        }
        Ok(submitted)
    }
}

impl Daemon for Distribution {
    fn name(&self) -> &'static str {
        "redemption.royalty-distribution"
    }

    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(5))
    }

    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(self.distribute(&ctx.pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_is_split_by_tokens_held_and_adds_up() {
        let (a, b, c) = (Address::repeat_byte(1), Address::repeat_byte(2), Address::repeat_byte(3));
        let parts = split(U256::from(1_000), &[(a, 2), (b, 1), (c, 0)]);
        assert_eq!(parts, vec![(a, U256::from(667)), (b, U256::from(333))]);
        assert!(split(U256::from(5), &[]).is_empty());
        assert!(split(U256::ZERO, &[(a, 1)]).is_empty());
        let parts = split(U256::from(10), &[(a, 1), (b, 1), (c, 1)]);
        assert_eq!(parts.iter().fold(U256::ZERO, |s, (_, p)| s + *p), U256::from(10));
    }
}
