-- Royalty-share rewards: what each holder is owed from each sale's royalty (accruals), and the
-- RewardVault.distribute batches that pay them. A batch's id is the vault's batchId, which the
-- vault accepts once: a batch can never pay twice.
CREATE TABLE royalty_batches (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id      BIGINT         NOT NULL,
    campaign_id   BIGINT         NOT NULL,
    payment_token BYTEA          NOT NULL CHECK (octet_length(payment_token) = 20),
    total         NUMERIC(78, 0) NOT NULL CHECK (total > 0),
    recipients    INT            NOT NULL CHECK (recipients > 0),
    state         TEXT           NOT NULL DEFAULT 'submitted' CHECK (state IN ('submitted', 'paid', 'failed')),
    chain_tx_id   BIGINT         REFERENCES chain_transactions (id),
    created_at    TIMESTAMPTZ    NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ    NOT NULL DEFAULT now(),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id)
);

CREATE TABLE royalty_accruals (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id      BIGINT         NOT NULL,
    campaign_id   BIGINT         NOT NULL,
    reward_id     BIGINT         NOT NULL REFERENCES campaign_rewards (id),
    -- The sale's id (no foreign key: a sale reorged out is deleted; its accruals stay, reversed).
    sale_id       BIGINT         NOT NULL,
    -- The sale's block: a share is paid only once its sale is confirmed.
    sale_block    BIGINT         NOT NULL,
    holder        BYTEA          NOT NULL CHECK (octet_length(holder) = 20),
    -- The zero address for ETH.
    payment_token BYTEA          NOT NULL CHECK (octet_length(payment_token) = 20),
    amount        NUMERIC(78, 0) NOT NULL CHECK (amount > 0),
    state         TEXT           NOT NULL DEFAULT 'accrued' CHECK (state IN ('accrued', 'batched', 'paid', 'reversed')),
    batch_id      BIGINT         REFERENCES royalty_batches (id),
    created_at    TIMESTAMPTZ    NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ    NOT NULL DEFAULT now(),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    UNIQUE (sale_id, holder),
    CHECK ((state IN ('batched', 'paid')) = (batch_id IS NOT NULL))
);
CREATE INDEX royalty_accruals_pending_idx ON royalty_accruals (campaign_id, payment_token) WHERE state = 'accrued';
CREATE INDEX royalty_accruals_batch_idx ON royalty_accruals (batch_id);
