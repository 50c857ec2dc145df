-- The indexer's backfill writes every transfer and event once, and each index on these tables
-- is paid per row. Facts are taken back by the hash of their block (every block above a reorg's
-- common ancestor is one whose hash the indexer keeps), through the primary key, so the
-- block-number indexes only cost writes. The partial indexes of unconfirmed facts stay: they
-- hold the few facts near the head.
DROP INDEX token_transfers_block_idx;
DROP INDEX chain_events_block_idx;
