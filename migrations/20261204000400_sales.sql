-- Secondary sales of campaign tokens, decoded from Seaport's raw logs (and later confirmed or
-- completed by the marketplaces' APIs), and the royalty ledger kept from them.
--
-- The table of the same name from the campaigns migration was never written to; it is replaced
-- by one row per token sold, keyed by the log that carries the sale.
DROP TABLE secondary_sales;

CREATE TABLE secondary_sales (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id          BIGINT         NOT NULL,
    brand_id          BIGINT         NOT NULL,
    campaign_id       BIGINT         NOT NULL,
    collection        BYTEA          NOT NULL CHECK (octet_length(collection) = 20),
    token_id          NUMERIC(78, 0) NOT NULL,
    quantity          NUMERIC(78, 0) NOT NULL CHECK (quantity > 0),
    block_number      BIGINT         NOT NULL,
    block_hash        BYTEA          NOT NULL CHECK (octet_length(block_hash) = 32),
    tx_hash           BYTEA          NOT NULL CHECK (octet_length(tx_hash) = 32),
    log_index         INT            NOT NULL,
    order_hash        BYTEA          NOT NULL CHECK (octet_length(order_hash) = 32),
    side              TEXT           NOT NULL CHECK (side IN ('listing', 'offer')),
    marketplace       TEXT           NOT NULL,
    seller            BYTEA          NOT NULL CHECK (octet_length(seller) = 20),
    buyer             BYTEA          NOT NULL CHECK (octet_length(buyer) = 20),
    -- NULL: ETH; else the ERC-20 paid with. Every amount below is in its base units.
    payment_token     BYTEA          CHECK (octet_length(payment_token) = 20),
    price             NUMERIC(78, 0) NOT NULL CHECK (price >= 0),
    marketplace_fee   NUMERIC(78, 0) NOT NULL CHECK (marketplace_fee >= 0),
    seller_proceeds   NUMERIC(78, 0) NOT NULL CHECK (seller_proceeds >= 0),
    royalty_receiver  BYTEA          NOT NULL CHECK (octet_length(royalty_receiver) = 20),
    -- EIP-2981 royaltyInfo(token, price) at the sale's block (the campaign's bps if it fails).
    royalty_expected  NUMERIC(78, 0) NOT NULL CHECK (royalty_expected >= 0),
    royalty_received  NUMERIC(78, 0) NOT NULL CHECK (royalty_received >= 0),
    royalty_shortfall NUMERIC(78, 0) GENERATED ALWAYS AS (GREATEST(royalty_expected - royalty_received, 0)) STORED,
    -- floor(received × 10,000 / price)
    royalty_bps_paid  INT            NOT NULL CHECK (royalty_bps_paid >= 0),
    sold_at           TIMESTAMPTZ    NOT NULL,
    recorded_at       TIMESTAMPTZ    NOT NULL DEFAULT now(),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    CONSTRAINT secondary_sales_log_token_key UNIQUE (chain_id, block_hash, log_index, collection, token_id)
);
CREATE INDEX secondary_sales_campaign_sold_idx ON secondary_sales (campaign_id, sold_at);
CREATE INDEX secondary_sales_brand_sold_idx ON secondary_sales (brand_id, sold_at);
CREATE INDEX secondary_sales_token_idx ON secondary_sales (collection, token_id, sold_at);
CREATE INDEX secondary_sales_order_idx ON secondary_sales (order_hash);

-- Seaport logs the sales decoder has read (a log is read once; a reorg deletes it with its sales).
ALTER TABLE chain_events ADD COLUMN decoded BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX chain_events_undecoded_idx ON chain_events (chain_id, block_number, log_index)
    WHERE NOT decoded AND kind = 'seaport_order_fulfilled';

-- The royalty ledger: per campaign, marketplace, currency and UTC day, maintained with every sale
-- recorded or reverted (never recomputed for a report), so a report over any window of days
-- reads a few rows per day.
CREATE TABLE royalty_ledger (
    brand_id        BIGINT         NOT NULL,
    campaign_id     BIGINT         NOT NULL,
    marketplace     TEXT           NOT NULL,
    -- the zero address for ETH (a key cannot be NULL)
    payment_token   BYTEA          NOT NULL CHECK (octet_length(payment_token) = 20),
    day             DATE           NOT NULL,
    sales           BIGINT         NOT NULL CHECK (sales >= 0),
    paid_in_full    BIGINT         NOT NULL CHECK (paid_in_full >= 0),
    volume          NUMERIC(78, 0) NOT NULL CHECK (volume >= 0),
    marketplace_fee NUMERIC(78, 0) NOT NULL CHECK (marketplace_fee >= 0),
    expected        NUMERIC(78, 0) NOT NULL CHECK (expected >= 0),
    received        NUMERIC(78, 0) NOT NULL CHECK (received >= 0),
    shortfall       NUMERIC(78, 0) NOT NULL CHECK (shortfall >= 0),
    PRIMARY KEY (campaign_id, day, marketplace, payment_token),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id)
);
CREATE INDEX royalty_ledger_brand_day_idx ON royalty_ledger (brand_id, day);
CREATE INDEX royalty_ledger_day_idx ON royalty_ledger (day);
