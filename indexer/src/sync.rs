//! The indexing daemon: per chain, one leased run at a time (two replicas never index the same
//! chain at once). Each run catches up with the head and returns; the next run starts one poll
//! interval later, so a new block's facts are in PostgreSQL within one interval.
//!
//! - **Backfill** (further than the reorg window below the head): large adaptive ranges. A fetch
//!   task reads ranges ahead while the writer stores the previous one (a bounded channel of
//!   [`AHEAD`] batches), so neither waits on the other; each batch is one transaction.
//! - **Tail** (within the window): block by block, each block's header checked against its
//!   parent's kept hash and its logs read by block hash, so what is stored always belongs to one
//!   chain.
//! - **Reorgs**: when the checkpoint's block is no longer the chain's, kept hashes are compared
//!   newest first down to the common ancestor; everything above it is reverted (with its
//!   `….reverted` events) and indexed again. Deeper than the kept window: the run fails with an
//!   error naming the block, and readiness reports it; nothing is guessed.

use std::{collections::HashSet, sync::Arc};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    rpc::types::Log,
};
use anyhow::{Context, bail};
use shared::{
    daemon::{Daemon, RunContext, Schedule},
    service::Resources,
    workflow::BoxFuture,
};
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::{
    config::IndexerConfig,
    decode::{self, Fact, Platform},
    fetch::Fetcher,
    store::{self, Batch, BlockRef},
};

/// Batches read ahead of the writer during backfill.
pub const AHEAD: usize = 4;
/// Tail blocks written per transaction.
const TAIL_BLOCKS: u64 = 64;
/// How long one leased run follows the head before it ends (and the next run starts).
pub const RUN_FOR: std::time::Duration = std::time::Duration::from_secs(60);
/// The longest wait between two attempts while the node (or the database) does not answer.
pub const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// Indexes the chain the platform is configured for.
pub struct ChainIndexer {
    provider: DynProvider,
    config: IndexerConfig,
    platform: Platform,
}

impl std::fmt::Debug for ChainIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainIndexer").field("platform", &self.platform).finish_non_exhaustive()
    }
}

impl ChainIndexer {
    pub fn new(resources: &Resources, config: IndexerConfig) -> Self {
        let contracts = &resources.config().chain.contracts;
        let platform = Platform {
            factory: contracts.campaign_factory,
            checkout: contracts.checkout,
            vault: contracts.reward_vault,
            seaport: config.seaport,
        };
        Self { provider: resources.chain().provider().clone(), config, platform }
    }

    /// Indexes up to the head (or until cancelled); returns how many facts it wrote or reverted.
    pub async fn catch_up(
        &self,
        pool: &PgPool,
        cancelled: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<u64> {
        let chain_id = self.provider.get_chain_id().await.context("eth_chainId")?;
        let mut total = 0;
        loop {
            if cancelled.is_cancelled() {
                return Ok(total);
            }
            let head = self.provider.get_block_number().await.context("eth_blockNumber")?;
            match self.step(pool, chain_id, head, cancelled).await? {
                Some(done) => total += done,
                None => return Ok(total),
            }
        }
    }

    /// One step toward `head`: a reorg walked back, a backfill, or tail blocks. `None` when
    /// there is nothing left to do.
    async fn step(
        &self,
        pool: &PgPool,
        chain_id: u64,
        head: u64,
        cancelled: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Option<u64>> {
        let mut tx = pool.begin().await?;
        let checkpoint = store::checkpoint(&mut tx, chain_id, self.config.start_block).await?;
        let next = checkpoint.indexed_block.map_or(self.config.start_block, |b| b + 1);
        let confirmed = head.saturating_sub(self.config.confirmations);
        crate::metrics::progress(chain_id, head, checkpoint.indexed_block);
        if let (Some(block), Some(kept)) = (checkpoint.indexed_block, checkpoint.indexed_hash)
            && block + self.config.reorg_window >= head
        {
            let now = self.header(block).await?;
            if now.map(|h| h.hash) != Some(kept) {
                let reverted = self.walk_back(&mut tx, chain_id, block).await?;
                tx.commit().await?;
                return Ok(Some(reverted));
            }
        }
        if next > head {
            store::confirm(&mut tx, chain_id, confirmed).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let addresses = self.addresses(&mut tx, chain_id).await?;
        let backfill_until = head.saturating_sub(self.config.reorg_window);
        if next <= backfill_until {
            // The writer takes the checkpoint's lock per batch.
            tx.commit().await?;
            return self.backfill(pool, chain_id, next, backfill_until, head, addresses, cancelled).await.map(Some);
        }
        let batch =
            self.tail(chain_id, next, head.min(next + TAIL_BLOCKS - 1), checkpoint.indexed_hash, addresses).await?;
        let facts = batch.facts.len() as u64;
        if batch.to >= batch.from {
            store::write(&mut tx, chain_id, &batch, head, confirmed, self.config.reorg_window).await?;
        }
        store::confirm(&mut tx, chain_id, confirmed).await?;
        tx.commit().await?;
        crate::metrics::written(chain_id, facts);
        // A tail that stopped short (a parent mismatch, a block the node does not have yet) is
        // settled by the next run's reorg check.
        Ok((batch.to >= batch.from).then_some(facts))
    }

    async fn addresses(&self, conn: &mut sqlx::PgConnection, chain_id: u64) -> anyhow::Result<Vec<Address>> {
        let mut addresses = self.platform.addresses();
        addresses.extend(store::collections(conn, chain_id).await?);
        Ok(addresses)
    }

    async fn header(&self, number: u64) -> anyhow::Result<Option<BlockRef>> {
        let block = self.provider.get_block_by_number(BlockNumberOrTag::Number(number)).await?;
        Ok(block.map(|b| BlockRef { number, hash: b.header.hash, parent_hash: b.header.parent_hash }))
    }

    /// Finds the newest kept block that is still the chain's and reverts everything above it.
    async fn walk_back(&self, tx: &mut sqlx::PgConnection, chain_id: u64, from: u64) -> anyhow::Result<u64> {
        for (number, kept) in store::kept_blocks(tx, chain_id, from).await? {
            if self.header(number).await?.map(|h| h.hash) == Some(kept) {
                let depth = from - number;
                tracing::warn!(
                    chain_id,
                    ancestor = number,
                    depth,
                    "chain reorganisation: reverting the dropped blocks"
                );
                let reverted = store::revert(tx, chain_id, number, kept, depth).await?;
                crate::metrics::reorg(chain_id);
                return Ok(reverted.max(1));
            }
        }
        bail!(
            "chain {chain_id} reorganised below block {from} deeper than the {} kept block hashes \
             (INDEXER_REORG_WINDOW): the indexer stops rather than guess; re-index from an earlier block",
            self.config.reorg_window
        )
    }

    /// Tail blocks `from..=to`, each checked against its parent; stops before a block whose
    /// parent is not the previous one (a reorg under way).
    async fn tail(
        &self,
        chain_id: u64,
        from: u64,
        to: u64,
        parent: Option<B256>,
        addresses: Vec<Address>,
    ) -> anyhow::Result<Batch> {
        let fetcher = Fetcher::new(self.provider.clone(), decode::signatures());
        let mut known: HashSet<Address> = addresses.iter().copied().collect();
        let mut addresses = addresses;
        let mut batch = Batch { from, to: from - 1, ..Batch::default() };
        let mut parent = parent;
        for number in from..=to {
            let Some(block) = self.header(number).await? else { break };
            if parent.is_some_and(|p| p != block.parent_hash) {
                tracing::info!(chain_id, block = number, "parent mismatch at the tail; checking for a reorg");
                break;
            }
            let logs = fetcher.block_logs(block.hash, &addresses).await?;
            let (facts, discovered) = self.decode_all(logs, &mut known);
            batch.facts.extend(facts);
            if !discovered.is_empty() {
                // Their logs in this block (a mint in the deployment's block is possible).
                let more = fetcher.block_logs(block.hash, &discovered).await?;
                let (facts, _) = self.decode_all(more, &mut known);
                Self::merge(&mut batch.facts, facts);
                addresses.extend(discovered);
            }
            batch.blocks.push(block);
            batch.to = number;
            batch.to_hash = Some(block.hash);
            parent = Some(block.hash);
        }
        Ok(batch)
    }

    /// Decodes logs in chain order, learning collections from the factory as it goes; returns
    /// the facts and the collections first seen here.
    fn decode_all(&self, mut logs: Vec<Log>, known: &mut HashSet<Address>) -> (Vec<Fact>, Vec<Address>) {
        logs.sort_by_key(|l| (l.block_number, l.log_index));
        let mut facts = Vec::with_capacity(logs.len());
        let mut discovered = Vec::new();
        // `known` holds the platform's contracts too (they are fetched alike); they are not collections.
        let platform = self.platform.addresses();
        for log in &logs {
            let Some(fact) = decode::decode(log, &self.platform, |a| known.contains(a) && !platform.contains(a)) else {
                continue;
            };
            if let Fact::Event(e) = &fact
                && e.kind == "campaign_deployed"
                && let Some(collection) = e.fields["collection"].as_str().and_then(|a| a.parse::<Address>().ok())
                && known.insert(collection)
            {
                discovered.push(collection);
            }
            facts.push(fact);
        }
        (facts, discovered)
    }

    /// Adds the facts of newly discovered collections to `facts`, keeping chain order and each
    /// log once (a log read by both fetches).
    fn merge(facts: &mut Vec<Fact>, more: Vec<Fact>) {
        facts.extend(more);
        facts.sort_by_key(|f| (f.position().block_number, f.position().log_index));
        facts.dedup_by_key(|f| (f.position().block_hash, f.position().log_index));
    }

    /// Backfills `from..=until` in ranges: fetching runs ahead of writing.
    #[allow(clippy::too_many_arguments)]
    async fn backfill(
        &self,
        pool: &PgPool,
        chain_id: u64,
        from: u64,
        until: u64,
        head: u64,
        addresses: Vec<Address>,
        cancelled: &tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<u64> {
        let (sender, mut receiver) = mpsc::channel::<Batch>(AHEAD);
        let reader =
            Arc::new(Self { provider: self.provider.clone(), config: self.config.clone(), platform: self.platform });
        let fetching = tokio::spawn(async move { reader.read_ahead(from, until, addresses, sender).await });
        let confirmed = head.saturating_sub(self.config.confirmations);
        let mut written = 0;
        while let Some(batch) = receiver.recv().await {
            let mut tx = pool.begin().await?;
            let checkpoint = store::checkpoint(&mut tx, chain_id, self.config.start_block).await?;
            if checkpoint.indexed_block.map_or(self.config.start_block, |b| b + 1) != batch.from {
                // Another indexer (a manual catch-up next to the daemon) wrote these blocks:
                // what was read is dropped, the next step starts from the new checkpoint.
                fetching.abort();
                tracing::info!(
                    chain_id,
                    from = batch.from,
                    "the checkpoint moved under the backfill; resuming from it"
                );
                return Ok(written.max(1));
            }
            store::write(&mut tx, chain_id, &batch, head, confirmed, self.config.reorg_window).await?;
            store::confirm(&mut tx, chain_id, confirmed.min(batch.to)).await?;
            tx.commit().await?;
            written += batch.facts.len() as u64;
            crate::metrics::written(chain_id, batch.facts.len() as u64);
            crate::metrics::progress(chain_id, head, Some(batch.to));
            if cancelled.is_cancelled() {
                break;
            }
        }
        drop(receiver);
        match fetching.await {
            Ok(result) => result?,
            Err(e) if e.is_cancelled() => {}
            Err(e) => return Err(e.into()),
        }
        Ok(written.max(1))
    }

    async fn read_ahead(
        &self,
        from: u64,
        until: u64,
        addresses: Vec<Address>,
        sender: mpsc::Sender<Batch>,
    ) -> anyhow::Result<()> {
        let mut fetcher = Fetcher::new(self.provider.clone(), decode::signatures());
        let mut known: HashSet<Address> = addresses.iter().copied().collect();
        let mut addresses = addresses;
        let mut at = from;
        while at <= until {
            let (to, logs) = fetcher.next(at, until, &addresses).await?;
            let (mut facts, discovered) = self.decode_all(logs, &mut known);
            if !discovered.is_empty() {
                // The new collections' logs in this range, from the first deployment on.
                let first = facts
                    .iter()
                    .find(|f| matches!(f, Fact::Event(e) if e.kind == "campaign_deployed"))
                    .map_or(at, |f| f.position().block_number);
                let more = fetcher.range_logs(first, to, &discovered).await?;
                let (more, _) = self.decode_all(more, &mut known);
                Self::merge(&mut facts, more);
                addresses.extend(discovered);
            }
            let to_hash = self.header(to).await?.map(|h| h.hash);
            let batch = Batch { from: at, to, to_hash, facts, blocks: Vec::new() };
            if sender.send(batch).await.is_err() {
                return Ok(());
            }
            at = to + 1;
        }
        Ok(())
    }
}

/// The daemon around [`ChainIndexer`].
#[derive(Debug)]
pub struct Indexing(pub ChainIndexer);

impl Daemon for Indexing {
    fn name(&self) -> &'static str {
        "indexer.chain"
    }

    /// A killed indexer holds the chain for 10 s at most (renewed every 3 s while it runs).
    fn lease(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(10))
    }

    /// Restarted a second after a run ends (or fails); a run follows the head itself.
    fn schedule(&self) -> Schedule {
        Schedule::Every(std::time::Duration::from_secs(1))
    }

    /// Follows the head for up to [`RUN_FOR`], polling every `INDEXER_POLL_MS` while holding the
    /// lease, then returns so the run is recorded and the lease can change hands. A failed step
    /// (the node or the database away) is retried inside the run after a doubling wait, up to
    /// [`MAX_BACKOFF`]; the run fails only if its last step did.
    fn run<'a>(&'a self, ctx: &'a RunContext) -> BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let started = std::time::Instant::now();
            let (mut total, mut wait) = (0, self.0.config.poll);
            loop {
                let failing = match self.0.catch_up(&ctx.pool, &ctx.cancelled).await {
                    Ok(done) => {
                        (total, wait) = (total + done, self.0.config.poll);
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), retry_in_ms = wait.as_millis(), "indexing failed; retrying");
                        Some(e)
                    }
                };
                if ctx.cancelled.is_cancelled() || started.elapsed() >= RUN_FOR {
                    return failing.map_or(Ok(total), Err);
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = ctx.cancelled.cancelled() => return Ok(total),
                }
                if failing.is_some() {
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
            }
        })
    }
}
