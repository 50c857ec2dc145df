-- Back office: brand profiles, campaigns with their items (drops), deployments, rewards and
-- reward codes, vouchers; and the commerce columns of orders, redemptions and secondary sales
-- that dashboards and exports read (the payment, redemption and indexer services write them).
--
-- Every brand-owned table carries brand_id, and rows referencing each other do so through
-- (brand_id, id) pairs, so a row can never point into another brand.

ALTER TABLE brands
    ADD COLUMN description      TEXT        NOT NULL DEFAULT '',
    ADD COLUMN website          TEXT,
    ADD COLUMN treasury_address BYTEA       CHECK (octet_length(treasury_address) = 20),
    ADD COLUMN updated_at       TIMESTAMPTZ NOT NULL DEFAULT now();

-- A campaign's lifecycle is the `campaign` machine: draft → deploying → live ⇄ paused → ended
-- → archived, with deploying → deploy_failed → deploying on retry.
CREATE TABLE campaigns (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id             BIGINT      NOT NULL REFERENCES brands (id),
    state                TEXT        NOT NULL DEFAULT 'draft',
    name                 TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug                 TEXT        NOT NULL CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 64),
    symbol               TEXT        NOT NULL CHECK (symbol ~ '^[A-Z0-9]{1,11}$'),
    description          TEXT        NOT NULL DEFAULT '',
    royalty_bps          INT         NOT NULL CHECK (royalty_bps BETWEEN 0 AND 10000),
    royalty_receiver     BYTEA       CHECK (octet_length(royalty_receiver) = 20),
    artwork_key          TEXT,
    artwork_content_type TEXT,
    artwork_sha256       TEXT,
    chain_id             BIGINT,
    collection_address   BYTEA       CHECK (octet_length(collection_address) = 20),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_slug_key UNIQUE (brand_id, slug),
    UNIQUE (brand_id, id)
);
CREATE UNIQUE INDEX campaigns_collection_key ON campaigns (chain_id, collection_address);

CREATE TABLE campaign_items (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id         BIGINT      NOT NULL,
    campaign_id      BIGINT      NOT NULL,
    name             TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    price_minor      BIGINT      NOT NULL CHECK (price_minor >= 0),
    currency         CHAR(3)     NOT NULL,
    supply           INT         NOT NULL CHECK (supply > 0),
    -- Units held by pending or paid orders (the payment service reserves with a conditional
    -- UPDATE: reserved + n <= supply).
    reserved         INT         NOT NULL DEFAULT 0 CHECK (reserved BETWEEN 0 AND supply),
    per_wallet_limit INT         CHECK (per_wallet_limit > 0),
    sale_starts_at   TIMESTAMPTZ,
    sale_ends_at     TIMESTAMPTZ,
    payment_methods  TEXT[]      NOT NULL
        CHECK (cardinality(payment_methods) > 0 AND payment_methods <@ ARRAY['card', 'eth', 'stablecoin']),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (sale_ends_at IS NULL OR sale_starts_at IS NULL OR sale_ends_at > sale_starts_at),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id) ON DELETE CASCADE,
    UNIQUE (brand_id, id)
);
CREATE INDEX campaign_items_campaign_idx ON campaign_items (campaign_id, id);

-- One deployment per campaign, retried in place (`attempt` counts); its state is the
-- `deployment` machine.
ALTER TABLE contract_deployments
    ADD COLUMN brand_id           BIGINT NOT NULL,
    ADD COLUMN campaign_id        BIGINT NOT NULL,
    ADD COLUMN attempt            INT    NOT NULL DEFAULT 1,
    ADD COLUMN chain_tx_id        BIGINT REFERENCES chain_transactions (id),
    ADD COLUMN collection_address BYTEA  CHECK (octet_length(collection_address) = 20),
    ADD COLUMN error              TEXT,
    ADD CONSTRAINT contract_deployments_campaign_key UNIQUE (campaign_id),
    ADD FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id);

-- Rewards of a campaign: an on-chain token amount per NFT and redemption (paid from the
-- RewardVault), an off-chain perk (codes), or a share of received royalties paid to holders.
CREATE TABLE campaign_rewards (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id              BIGINT         NOT NULL,
    campaign_id           BIGINT         NOT NULL,
    kind                  TEXT           NOT NULL CHECK (kind IN ('token', 'perk', 'royalty_share')),
    name                  TEXT           NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description           TEXT           NOT NULL DEFAULT '',
    -- token: `eth` or `stablecoin`, in wei / the token's base units
    token                 TEXT           CHECK (token IN ('eth', 'stablecoin')),
    amount_per_redemption NUMERIC(78, 0) CHECK (amount_per_redemption > 0),
    redemptions_per_nft   INT            CHECK (redemptions_per_nft > 0),
    -- royalty_share: the holders' share of received royalties
    share_bps             INT            CHECK (share_bps BETWEEN 1 AND 10000),
    created_at            TIMESTAMPTZ    NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ    NOT NULL DEFAULT now(),
    CHECK ((kind = 'token') = (token IS NOT NULL AND amount_per_redemption IS NOT NULL AND redemptions_per_nft IS NOT NULL)),
    CHECK ((kind = 'royalty_share') = (share_bps IS NOT NULL)),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id) ON DELETE CASCADE,
    UNIQUE (brand_id, id)
);
CREATE INDEX campaign_rewards_campaign_idx ON campaign_rewards (campaign_id, id);
-- At most one royalty-share rule per campaign.
CREATE UNIQUE INDEX campaign_rewards_one_share_idx ON campaign_rewards (campaign_id) WHERE kind = 'royalty_share';

-- Off-chain perk codes, imported from CSV/XLSX; handed out at redemption.
CREATE TABLE reward_codes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    BIGINT      NOT NULL,
    reward_id   BIGINT      NOT NULL,
    code        TEXT        NOT NULL CHECK (length(code) BETWEEN 1 AND 128),
    import_id   UUID        NOT NULL,
    assigned_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (brand_id, reward_id) REFERENCES campaign_rewards (brand_id, id) ON DELETE CASCADE,
    CONSTRAINT reward_codes_code_key UNIQUE (reward_id, code)
);

-- Funding of a token reward into the vault, through the transaction queue.
CREATE TABLE reward_fundings (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    BIGINT         NOT NULL,
    reward_id   BIGINT         NOT NULL,
    amount      NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    chain_tx_id BIGINT         NOT NULL REFERENCES chain_transactions (id),
    created_at  TIMESTAMPTZ    NOT NULL DEFAULT now(),
    FOREIGN KEY (brand_id, reward_id) REFERENCES campaign_rewards (brand_id, id)
);

-- Discount codes, applied at checkout by the payment service (uses counted atomically there).
CREATE TABLE vouchers (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id           BIGINT      NOT NULL REFERENCES brands (id),
    campaign_id        BIGINT,
    code               TEXT        NOT NULL CHECK (code ~ '^[A-Z0-9_-]{3,32}$'),
    kind               TEXT        NOT NULL CHECK (kind IN ('percent', 'fixed')),
    percent_bps        INT         CHECK (percent_bps BETWEEN 1 AND 10000),
    amount_minor       BIGINT      CHECK (amount_minor > 0),
    currency           CHAR(3),
    min_order_minor    BIGINT      NOT NULL DEFAULT 0 CHECK (min_order_minor >= 0),
    starts_at          TIMESTAMPTZ,
    ends_at            TIMESTAMPTZ,
    max_uses           INT         CHECK (max_uses > 0),
    max_uses_per_buyer INT         CHECK (max_uses_per_buyer > 0),
    uses               INT         NOT NULL DEFAULT 0 CHECK (uses >= 0 AND (max_uses IS NULL OR uses <= max_uses)),
    active             BOOLEAN     NOT NULL DEFAULT true,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'percent') = (percent_bps IS NOT NULL)),
    CHECK ((kind = 'fixed') = (amount_minor IS NOT NULL)),
    CHECK (currency IS NOT NULL OR (kind = 'percent' AND min_order_minor = 0)),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    CONSTRAINT vouchers_code_key UNIQUE (brand_id, code)
);

-- What an order is for (the payment service creates them).
ALTER TABLE orders
    ADD COLUMN brand_id       BIGINT  NOT NULL,
    ADD COLUMN campaign_id    BIGINT  NOT NULL,
    ADD COLUMN item_id        BIGINT  NOT NULL,
    ADD COLUMN quantity       INT     NOT NULL CHECK (quantity > 0),
    ADD COLUMN method         TEXT    NOT NULL CHECK (method IN ('card', 'eth', 'stablecoin')),
    ADD COLUMN currency       CHAR(3) NOT NULL,
    ADD COLUMN subtotal_minor BIGINT  NOT NULL CHECK (subtotal_minor >= 0),
    ADD COLUMN discount_minor BIGINT  NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
    ADD COLUMN total_minor    BIGINT  NOT NULL CHECK (total_minor >= 0),
    ADD COLUMN buyer_email    TEXT    NOT NULL,
    ADD COLUMN wallet_address BYTEA   NOT NULL CHECK (octet_length(wallet_address) = 20),
    ADD COLUMN voucher_id     BIGINT  REFERENCES vouchers (id),
    ADD COLUMN expires_at     TIMESTAMPTZ,
    ADD CHECK (total_minor = subtotal_minor - discount_minor),
    ADD FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    ADD FOREIGN KEY (brand_id, item_id) REFERENCES campaign_items (brand_id, id);
CREATE INDEX orders_brand_created_idx ON orders (brand_id, created_at);
CREATE INDEX orders_campaign_created_idx ON orders (campaign_id, created_at);

-- What a redemption is of (the redemption service creates them).
ALTER TABLE redemptions
    ADD COLUMN brand_id    BIGINT         NOT NULL,
    ADD COLUMN campaign_id BIGINT         NOT NULL,
    ADD COLUMN reward_id   BIGINT         NOT NULL,
    ADD COLUMN token_id    NUMERIC(78, 0) NOT NULL,
    ADD COLUMN store_id    BIGINT,
    ADD FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    ADD FOREIGN KEY (brand_id, reward_id) REFERENCES campaign_rewards (brand_id, id),
    ADD FOREIGN KEY (brand_id, store_id) REFERENCES stores (brand_id, id);
CREATE INDEX redemptions_brand_created_idx ON redemptions (brand_id, created_at);

-- Secondary sales of campaign tokens and the royalty each paid (the indexer and marketplace
-- pollers fill it; one row per sale event). `payment_token` NULL is ETH.
CREATE TABLE secondary_sales (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id         BIGINT         NOT NULL,
    campaign_id      BIGINT         NOT NULL,
    chain_id         BIGINT         NOT NULL,
    tx_hash          BYTEA          NOT NULL CHECK (octet_length(tx_hash) = 32),
    log_index        INT            NOT NULL,
    token_id         NUMERIC(78, 0) NOT NULL,
    marketplace      TEXT           NOT NULL,
    payment_token    BYTEA          CHECK (octet_length(payment_token) = 20),
    price            NUMERIC(78, 0) NOT NULL CHECK (price >= 0),
    royalty_expected NUMERIC(78, 0) NOT NULL CHECK (royalty_expected >= 0),
    royalty_received NUMERIC(78, 0) NOT NULL CHECK (royalty_received >= 0),
    sold_at          TIMESTAMPTZ    NOT NULL,
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    CONSTRAINT secondary_sales_event_key UNIQUE (chain_id, tx_hash, log_index)
);
CREATE INDEX secondary_sales_brand_sold_idx ON secondary_sales (brand_id, sold_at);
