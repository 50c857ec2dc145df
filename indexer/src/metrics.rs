//! The indexer's Prometheus series: lag behind the head, facts written, reorgs.

/// The head and how far the chain is indexed.
pub(crate) fn progress(chain_id: u64, head: u64, indexed: Option<u64>) {
    let chain = chain_id.to_string();
    metrics::gauge!("indexer_head_block", "chain_id" => chain.clone()).set(head as f64);
    let lag = indexed.map_or(head + 1, |indexed| head.saturating_sub(indexed));
    metrics::gauge!("indexer_lag_blocks", "chain_id" => chain).set(lag as f64);
}

/// Facts written.
pub(crate) fn written(chain_id: u64, facts: u64) {
    metrics::counter!("indexer_events_total", "chain_id" => chain_id.to_string()).increment(facts);
}

/// A reorg walked back.
pub(crate) fn reorg(chain_id: u64) {
    metrics::counter!("indexer_reorgs_total", "chain_id" => chain_id.to_string()).increment(1);
}
