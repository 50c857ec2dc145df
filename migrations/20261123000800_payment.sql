-- Payment: how orders are paid (Stripe PaymentIntents and Checkout Sessions, FX quotes for
-- wallet payments), the Stripe events received, and what an order holds until it is released.

ALTER TABLE orders
    -- The client's Idempotency-Key for creating it: a retry returns the same order.
    ADD COLUMN idempotency_key     TEXT,
    ADD COLUMN request_hash        TEXT,
    ADD COLUMN payment_intent_id   TEXT,
    ADD COLUMN checkout_session_id TEXT,
    ADD COLUMN mint_tx_id          BIGINT REFERENCES chain_transactions (id),
    ADD COLUMN first_token_id      NUMERIC(78, 0),
    ADD COLUMN failure_reason      TEXT,
    -- Inventory and voucher use are given back exactly once (expired, failed, cancelled).
    ADD COLUMN released_at         TIMESTAMPTZ,
    ADD COLUMN fulfilled_at        TIMESTAMPTZ,
    -- What buyers and checkout pages name the order by (ids are sequential, this is not).
    ADD COLUMN public_id           UUID        NOT NULL DEFAULT gen_random_uuid() UNIQUE;
CREATE UNIQUE INDEX orders_idempotency_key ON orders (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX orders_payment_intent_key ON orders (payment_intent_id) WHERE payment_intent_id IS NOT NULL;
CREATE UNIQUE INDEX orders_checkout_session_key ON orders (checkout_session_id) WHERE checkout_session_id IS NOT NULL;
-- The expiry daemon's work list, and the per-wallet limit's count.
CREATE INDEX orders_pending_expiry_idx ON orders (expires_at) WHERE state = 'pending';
CREATE INDEX orders_item_wallet_idx ON orders (item_id, wallet_address) WHERE released_at IS NULL;
CREATE INDEX orders_voucher_buyer_idx ON orders (voucher_id, lower(buyer_email)) WHERE voucher_id IS NOT NULL AND released_at IS NULL;

-- A wallet payment's price in crypto: the rate it came from and the EIP-712 quote the buyer's
-- wallet sends to the Checkout contract.
CREATE TABLE fx_quotes (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id      BIGINT         NOT NULL UNIQUE REFERENCES orders (id),
    asset         TEXT           NOT NULL CHECK (asset IN ('eth', 'stablecoin')),
    pay_token     BYTEA          NOT NULL CHECK (octet_length(pay_token) = 20),
    amount        NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    rate          TEXT           NOT NULL,
    source        TEXT           NOT NULL,
    spread_bps    INT            NOT NULL,
    rounding      TEXT           NOT NULL,
    fetched_at    TIMESTAMPTZ    NOT NULL,
    expires_at    TIMESTAMPTZ    NOT NULL,
    collection    BYTEA          NOT NULL CHECK (octet_length(collection) = 20),
    checkout      BYTEA          NOT NULL CHECK (octet_length(checkout) = 20),
    chain_id      BIGINT         NOT NULL,
    signature     BYTEA          NOT NULL,
    created_at    TIMESTAMPTZ    NOT NULL DEFAULT now()
);

-- Stripe's events as received (verified): the id makes a redelivery a no-op.
CREATE TABLE stripe_events (
    id           TEXT PRIMARY KEY,
    type         TEXT        NOT NULL,
    object_id    TEXT,
    payload      JSONB       NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at TIMESTAMPTZ
);
CREATE INDEX stripe_events_unprocessed_idx ON stripe_events (received_at) WHERE processed_at IS NULL;

-- How far the wallet-payment watcher has read the Checkout contract's logs, per chain.
CREATE TABLE chain_cursors (
    name       TEXT PRIMARY KEY,
    block      BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
