//! Reading logs: `eth_getLogs` over block ranges that adapt to the node and to the chain's density
//! — a range is resized toward [`TARGET_LOGS`] logs (×2 at most, up to [`MAX_RANGE`] blocks); one
//! the node refuses shrinks to the range the node suggests ("try with this block range [0x…,
//! 0x…]", as Alchemy, Infura and QuickNode answer) or to half.
//! Addresses are sent in chunks of [`ADDRESS_CHUNK`], fetched concurrently; beyond
//! [`TOPIC_MODE_ADDRESSES`] the addresses are dropped from the filter and matched in process.

use std::time::Duration;

use alloy::{
    primitives::{Address, B256},
    providers::{DynProvider, Provider},
    rpc::types::{Filter, Log},
};
use anyhow::Context;

/// The first range tried, in blocks: small, so a dense history starts with a batch the writer
/// takes quickly (reading the next one meanwhile); a sparse one doubles it every request.
pub const START_RANGE: u64 = 16;
/// The largest range asked for at once.
pub const MAX_RANGE: u64 = 100_000;
/// Addresses per `eth_getLogs` (providers cap the filter's size).
pub const ADDRESS_CHUNK: usize = 1_000;
/// Above this many addresses, logs are filtered by topic only and matched to addresses here.
pub const TOPIC_MODE_ADDRESSES: usize = 10_000;
/// The logs one range should hold: enough for bulk writes, few enough that reading the next
/// range overlaps writing this one (ranges are resized toward it).
pub const TARGET_LOGS: usize = 5_000;
/// Consecutive refusals of a one-block range before giving up (the node is down, not picky).
const MAX_FAILURES: u32 = 6;

/// Fetches logs with a range that adapts to what the node accepts.
#[derive(Debug)]
pub struct Fetcher {
    provider: DynProvider,
    topics: Vec<B256>,
    range: u64,
}

impl Fetcher {
    pub fn new(provider: DynProvider, topics: Vec<B256>) -> Self {
        Self { provider, topics, range: START_RANGE }
    }

    /// Logs of `addresses` in `from..=up_to` or a prefix of it: returns the last block covered.
    pub async fn next(&mut self, from: u64, up_to: u64, addresses: &[Address]) -> anyhow::Result<(u64, Vec<Log>)> {
        let mut failures = 0;
        loop {
            let to = up_to.min(from.saturating_add(self.range - 1));
            match self.range_logs(from, to, addresses).await {
                Ok(logs) => {
                    let span = to - from + 1;
                    self.range = if logs.len() > 2 * TARGET_LOGS {
                        (span * TARGET_LOGS as u64 / logs.len() as u64).max(1)
                    } else if logs.len() < TARGET_LOGS / 2 {
                        (span * 2).min(MAX_RANGE)
                    } else {
                        span
                    };
                    return Ok((to, logs));
                }
                Err(e) => {
                    failures += 1;
                    let message = format!("{e:#}");
                    self.range = match suggested_range(&message) {
                        Some((start, end)) if start == from && end >= start => end - start + 1,
                        _ => (self.range / 2).max(1),
                    };
                    if self.range == 1 && failures >= MAX_FAILURES {
                        return Err(e).context(format!("eth_getLogs from block {from}"));
                    }
                    tracing::debug!(from, to, range = self.range, error = %message, "eth_getLogs refused; narrowing");
                    if failures > 2 {
                        tokio::time::sleep(Duration::from_millis(100 << failures.min(6))).await;
                    }
                }
            }
        }
    }

    /// Logs of `addresses` in exactly `from..=to`.
    pub async fn range_logs(&self, from: u64, to: u64, addresses: &[Address]) -> anyhow::Result<Vec<Log>> {
        if addresses.len() > TOPIC_MODE_ADDRESSES {
            return self.topic_logs(from, to).await;
        }
        let base = Filter::new().from_block(from).to_block(to).event_signature(self.topics.clone());
        let requests = addresses.chunks(ADDRESS_CHUNK).map(|chunk| {
            let filter = base.clone().address(chunk.to_vec());
            let provider = self.provider.clone();
            async move { provider.get_logs(&filter).await }
        });
        let mut logs = Vec::new();
        for chunk in futures_util::future::try_join_all(requests).await? {
            logs.extend(chunk);
        }
        Ok(logs)
    }

    /// Logs of `addresses` in the block `hash` (exact even if the chain moves meanwhile).
    /// Every log of `from..=to` with one of the indexer's signatures, whatever its address (the
    /// caller keeps those of its addresses).
    pub async fn topic_logs(&self, from: u64, to: u64) -> anyhow::Result<Vec<Log>> {
        let filter = Filter::new().from_block(from).to_block(to).event_signature(self.topics.clone());
        Ok(self.provider.get_logs(&filter).await?)
    }

    pub async fn block_logs(&self, hash: B256, addresses: &[Address]) -> anyhow::Result<Vec<Log>> {
        let base = Filter::new().at_block_hash(hash).event_signature(self.topics.clone());
        if addresses.len() > TOPIC_MODE_ADDRESSES {
            return Ok(self.provider.get_logs(&base).await?);
        }
        let mut logs = Vec::new();
        for chunk in addresses.chunks(ADDRESS_CHUNK) {
            logs.extend(self.provider.get_logs(&base.clone().address(chunk.to_vec())).await?);
        }
        Ok(logs)
    }
}

/// The block range a provider's refusal suggests, e.g. Alchemy's "this block range should work:
/// [0x10, 0x20]" or Infura's "Try with this block range [0x10, 0x20]".
pub fn suggested_range(message: &str) -> Option<(u64, u64)> {
    let open = message.rfind('[')?;
    let close = open + message[open..].find(']')?;
    let (start, end) = message[open + 1..close].split_once(',')?;
    let number = |text: &str| {
        let text = text.trim();
        match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => text.parse().ok(),
        }
    };
    Some((number(start)?, number(end)?))
}

#[cfg(test)]
mod tests {
    use super::suggested_range;

    #[test]
    fn providers_range_hints_are_read() {
        let infura = "query returned more than 10000 results. Try with this block range [0x10, 0x20].";
        assert_eq!(suggested_range(infura), Some((16, 32)));
        let alchemy = "Log response size exceeded. this block range should work: [0x1e8480, 0x1e84ff]";
        assert_eq!(suggested_range(alchemy), Some((2_000_000, 2_000_127)));
        assert_eq!(suggested_range("block range [100, 200] too wide"), Some((100, 200)));
        assert_eq!(suggested_range("rate limited"), None);
        assert_eq!(suggested_range("[0xzz, 1]"), None);
    }
}
