-- What the marketplaces' APIs say was sold (OpenSea collection events, Rarible activities), in
-- base units, one row per source and sale. The royalty ledger is fed by the chain alone; a report
-- and a chain sale with the same transaction and token are one sale with two sources, and what
-- one has without the other (after the chain is confirmed past it) is a gap.
CREATE TABLE marketplace_reports (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source        TEXT           NOT NULL CHECK (source IN ('opensea', 'rarible')),
    -- The source's own id (Rarible's activity id; OpenSea has none: transaction and token).
    external_id   TEXT           NOT NULL,
    chain_id      BIGINT         NOT NULL,
    brand_id      BIGINT         NOT NULL,
    campaign_id   BIGINT         NOT NULL,
    collection    BYTEA          NOT NULL CHECK (octet_length(collection) = 20),
    token_id      NUMERIC(78, 0) NOT NULL,
    tx_hash       BYTEA          CHECK (octet_length(tx_hash) = 32),
    order_hash    BYTEA          CHECK (octet_length(order_hash) = 32),
    -- The transaction's block, as the source or the node says (NULL: the node does not know it).
    block_number  BIGINT,
    seller        BYTEA          NOT NULL CHECK (octet_length(seller) = 20),
    buyer         BYTEA          NOT NULL CHECK (octet_length(buyer) = 20),
    payment_token BYTEA          CHECK (octet_length(payment_token) = 20),
    price         NUMERIC(78, 0) NOT NULL CHECK (price >= 0),
    sold_at       TIMESTAMPTZ    NOT NULL,
    -- Rarible's `reverted`: the sale was undone by a reorg; it no longer counts as reported.
    reverted      BOOLEAN        NOT NULL DEFAULT false,
    -- The chain's head when the report was first read: one that matches no chain sale is a gap
    -- once the chain is confirmed past its block (or past this head when its block is unknown).
    seen_head     BIGINT         NOT NULL,
    created_at    TIMESTAMPTZ    NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ    NOT NULL DEFAULT now(),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    UNIQUE (source, external_id)
);
CREATE INDEX marketplace_reports_sale_idx ON marketplace_reports (tx_hash, token_id);
CREATE INDEX marketplace_reports_campaign_idx ON marketplace_reports (campaign_id, sold_at);
CREATE INDEX secondary_sales_tx_token_idx ON secondary_sales (tx_hash, token_id);

-- Where each source's poll of each campaign stands: OpenSea's watermark (the newest sale time
-- read), Rarible's continuation, and the time up to which every sale has been read.
CREATE TABLE marketplace_cursors (
    source       TEXT        NOT NULL CHECK (source IN ('opensea', 'rarible')),
    campaign_id  BIGINT      NOT NULL REFERENCES campaigns (id),
    cursor       TEXT,
    watermark    BIGINT,
    polled_until TIMESTAMPTZ,
    polled_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (source, campaign_id)
);
