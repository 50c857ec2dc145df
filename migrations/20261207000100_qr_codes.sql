-- QR codes a brand prints for one reward (packaging, receipts, posters), generated in batches.
-- A code's text is its random `nonce` and a tag made with QR_CODE_KEY; only the nonce is kept,
-- so the database alone cannot print codes. Large batches are generated in steps; `generated`
-- is the progress.
CREATE TABLE qr_batches (
    id              BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id        BIGINT      NOT NULL,
    campaign_id     BIGINT      NOT NULL,
    reward_id       BIGINT      NOT NULL,
    label           TEXT        NOT NULL CHECK (length(label) BETWEEN 1 AND 200),
    size            INT         NOT NULL CHECK (size BETWEEN 1 AND 100000),
    generated       INT         NOT NULL DEFAULT 0 CHECK (generated BETWEEN 0 AND size),
    -- How many claims each code allows (1: single use).
    uses_per_code   INT         NOT NULL DEFAULT 1 CHECK (uses_per_code BETWEEN 1 AND 10000),
    -- Whether a claimant may type an address instead of proving a wallet (SIWE).
    typed_addresses BOOLEAN     NOT NULL DEFAULT false,
    expires_at      TIMESTAMPTZ,
    state           TEXT        NOT NULL DEFAULT 'generating'
                                CHECK (state IN ('generating', 'ready', 'revoked')),
    created_by      TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (brand_id, id),
    FOREIGN KEY (brand_id, campaign_id) REFERENCES campaigns (brand_id, id),
    FOREIGN KEY (brand_id, reward_id) REFERENCES campaign_rewards (brand_id, id),
    CHECK ((state = 'generating') = (generated < size) OR state = 'revoked')
);
CREATE INDEX qr_batches_campaign_idx ON qr_batches (campaign_id, id);
CREATE INDEX qr_batches_generating_idx ON qr_batches (id) WHERE state = 'generating';

-- One printed code: issued → claimed (every use taken) → paid (every use paid); or expired,
-- or revoked by the brand. A failed payout gives its use back (claimed → issued).
CREATE TABLE qr_codes (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id   BIGINT      NOT NULL,
    batch_id   BIGINT      NOT NULL,
    -- 1..size within the batch: the printed sheet's order and the manifest's rows.
    seq        INT         NOT NULL CHECK (seq >= 1),
    nonce      BYTEA       NOT NULL UNIQUE CHECK (octet_length(nonce) = 10),
    state      TEXT        NOT NULL DEFAULT 'issued'
                           CHECK (state IN ('issued', 'claimed', 'paid', 'expired', 'revoked')),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (batch_id, seq),
    FOREIGN KEY (brand_id, batch_id) REFERENCES qr_batches (brand_id, id)
);
CREATE INDEX qr_codes_batch_state_idx ON qr_codes (batch_id, state);

-- A claim of a printed code is a redemption without a token: one use of the code. The unique
-- index is the database's half of "each use once" (the vault's bitmap is the chain's).
ALTER TABLE redemptions
    ALTER COLUMN token_id DROP NOT NULL,
    ALTER COLUMN period_key SET DEFAULT '',
    ADD COLUMN qr_code_id BIGINT REFERENCES qr_codes (id),
    ADD CHECK ((token_id IS NULL) = (qr_code_id IS NOT NULL));
CREATE UNIQUE INDEX redemptions_code_use_idx ON redemptions (qr_code_id, slot)
    WHERE qr_code_id IS NOT NULL AND state NOT IN ('failed', 'refused', 'expired');
CREATE INDEX redemptions_store_idx ON redemptions (store_id, created_at) WHERE store_id IS NOT NULL;
