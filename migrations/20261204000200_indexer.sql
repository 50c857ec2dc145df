-- The chain indexer: the platform's one reader of the chain. Every fact it stores is keyed by
-- (chain_id, block_hash, log_index), so re-indexing a block is a no-op and a block that left the
-- canonical chain is removed by its hash. `confirmed` is set once the block is deeper than the
-- configured confirmation depth.

-- How far each chain is indexed (the checkpoint), and what the indexer last saw of it.
CREATE TABLE indexer_chains (
    chain_id          BIGINT PRIMARY KEY,
    indexed_block     BIGINT      NOT NULL,
    indexed_hash      BYTEA       CHECK (octet_length(indexed_hash) = 32),
    head_block        BIGINT,
    confirmed_block   BIGINT,
    last_reorg_at     TIMESTAMPTZ,
    last_reorg_depth  INT,
    reorgs            BIGINT      NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Hashes of indexed blocks near the head: what a reorg is detected and walked back with. Older
-- rows are pruned; a reorg deeper than what is kept stops the indexer.
CREATE TABLE indexed_blocks (
    chain_id    BIGINT NOT NULL,
    number      BIGINT NOT NULL,
    hash        BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    parent_hash BYTEA  NOT NULL CHECK (octet_length(parent_hash) = 32),
    PRIMARY KEY (chain_id, number)
);

-- Campaign collections, learned from the factory's CampaignDeployed (no configuration needed).
CREATE TABLE indexed_collections (
    chain_id       BIGINT  NOT NULL,
    address        BYTEA   NOT NULL CHECK (octet_length(address) = 20),
    campaign_ref   NUMERIC(78, 0) NOT NULL,
    block_number   BIGINT  NOT NULL,
    block_hash     BYTEA   NOT NULL,
    PRIMARY KEY (chain_id, address)
);

-- Every platform event but transfers (CampaignDeployed, OrderPaid, the vault's events) and
-- Seaport's raw logs, decoded into `fields` where the platform knows the ABI.
CREATE TABLE chain_events (
    chain_id     BIGINT  NOT NULL,
    block_number BIGINT  NOT NULL,
    block_hash   BYTEA   NOT NULL CHECK (octet_length(block_hash) = 32),
    log_index    INT     NOT NULL,
    tx_hash      BYTEA   NOT NULL CHECK (octet_length(tx_hash) = 32),
    address      BYTEA   NOT NULL CHECK (octet_length(address) = 20),
    kind         TEXT    NOT NULL,
    topics       BYTEA[] NOT NULL,
    data         BYTEA   NOT NULL,
    fields       JSONB   NOT NULL DEFAULT '{}',
    confirmed    BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX chain_events_block_idx ON chain_events (chain_id, block_number);
CREATE INDEX chain_events_unconfirmed_idx ON chain_events (chain_id, block_number) WHERE NOT confirmed;
CREATE INDEX chain_events_kind_idx ON chain_events (chain_id, kind, block_number);

-- Every Transfer of every campaign collection: mints (from zero), transfers, burns (to zero).
CREATE TABLE token_transfers (
    chain_id     BIGINT         NOT NULL,
    block_number BIGINT         NOT NULL,
    block_hash   BYTEA          NOT NULL CHECK (octet_length(block_hash) = 32),
    log_index    INT            NOT NULL,
    tx_hash      BYTEA          NOT NULL CHECK (octet_length(tx_hash) = 32),
    collection   BYTEA          NOT NULL CHECK (octet_length(collection) = 20),
    token_id     NUMERIC(78, 0) NOT NULL,
    from_address BYTEA          NOT NULL CHECK (octet_length(from_address) = 20),
    to_address   BYTEA          NOT NULL CHECK (octet_length(to_address) = 20),
    confirmed    BOOLEAN        NOT NULL DEFAULT false,
    PRIMARY KEY (chain_id, block_hash, log_index)
);
CREATE INDEX token_transfers_token_idx ON token_transfers (chain_id, collection, token_id, block_number, log_index);
CREATE INDEX token_transfers_block_idx ON token_transfers (chain_id, block_number);
CREATE INDEX token_transfers_unconfirmed_idx ON token_transfers (chain_id, block_number) WHERE NOT confirmed;

-- Derived, maintained in the transaction that writes the transfers: each token's owner now, and
-- how many tokens of a collection each holder has.
CREATE TABLE token_owners (
    chain_id     BIGINT         NOT NULL,
    collection   BYTEA          NOT NULL,
    token_id     NUMERIC(78, 0) NOT NULL,
    owner        BYTEA          NOT NULL CHECK (octet_length(owner) = 20),
    block_number BIGINT         NOT NULL,
    PRIMARY KEY (chain_id, collection, token_id)
);
-- A wallet's tokens (eligibility), and a holder's count in one collection.
CREATE INDEX token_owners_owner_idx ON token_owners (chain_id, owner, collection);

CREATE TABLE collection_holders (
    chain_id   BIGINT NOT NULL,
    collection BYTEA  NOT NULL,
    holder     BYTEA  NOT NULL,
    tokens     BIGINT NOT NULL CHECK (tokens >= 0),
    PRIMARY KEY (chain_id, collection, holder)
);

-- The wallet-payment watcher's cursor is retired: payment fulfils wallet orders from the
-- indexer's `chain.order_paid.confirmed` events.
DROP TABLE chain_cursors;
