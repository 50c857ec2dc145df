-- Redeeming rewards. A reward says how often each token may redeem it (`redemptions_per_nft`
-- per `period`: once ever, or per UTC day, ISO week or month) and, for a token reward, from
-- which amount the claim waits for the customer's approved KYC (`kyc_threshold`, base units).
ALTER TABLE campaign_rewards
    ADD COLUMN period        TEXT           NOT NULL DEFAULT 'once'
                                            CHECK (period IN ('once', 'day', 'week', 'month')),
    ADD COLUMN kyc_threshold NUMERIC(78, 0) CHECK (kyc_threshold >= 0),
    ADD CHECK (kind = 'token' OR kyc_threshold IS NULL);

-- A redemption: one use of a reward by one token, in one period. Its id is the vault's
-- `redemptionId` (a bitmap index on chain: the vault pays an id once). `slot` counts the
-- token's uses in the period (1..redemptions_per_nft); the unique index is the database's
-- half of "exactly once" (a failed, refused or expired claim gives its slot back).
ALTER TABLE redemptions
    ALTER COLUMN state SET DEFAULT 'claimed',
    ADD COLUMN customer_id    BIGINT         REFERENCES customers (id),
    -- The wallet that proved it holds the token, and where the reward goes.
    ADD COLUMN claimant       BYTEA          NOT NULL CHECK (octet_length(claimant) = 20),
    ADD COLUMN recipient      BYTEA          NOT NULL CHECK (octet_length(recipient) = 20),
    ADD COLUMN period_key     TEXT           NOT NULL,
    ADD COLUMN slot           INT            NOT NULL CHECK (slot >= 1),
    -- Who sends the voucher to the vault: the platform's queue (gasless) or the customer.
    ADD COLUMN submitted_by   TEXT           NOT NULL DEFAULT 'platform'
                                             CHECK (submitted_by IN ('platform', 'customer')),
    -- Token rewards: the signed voucher (payout token, zero address for ETH).
    ADD COLUMN payout_token   BYTEA          CHECK (octet_length(payout_token) = 20),
    ADD COLUMN amount         NUMERIC(78, 0) CHECK (amount > 0),
    ADD COLUMN deadline       TIMESTAMPTZ,
    ADD COLUMN signature      BYTEA,
    ADD COLUMN chain_tx_id    BIGINT         REFERENCES chain_transactions (id),
    -- Perk rewards: the code handed out.
    ADD COLUMN reward_code_id BIGINT         UNIQUE REFERENCES reward_codes (id),
    -- Why it failed or was refused, for the customer and the operator.
    ADD COLUMN reason         TEXT;
CREATE UNIQUE INDEX redemptions_once_idx ON redemptions (reward_id, token_id, period_key, slot)
    WHERE state NOT IN ('failed', 'refused', 'expired');
CREATE INDEX redemptions_customer_idx ON redemptions (customer_id, id);
CREATE INDEX redemptions_awaiting_kyc_idx ON redemptions (customer_id) WHERE state = 'awaiting_kyc';
CREATE INDEX redemptions_campaign_idx ON redemptions (campaign_id, reward_id, state);

-- Addresses never paid or handed a perk (sanctions screening): a screening job or an operator
-- adds them; `REDEMPTION_DENYLIST` adds more from the configuration.
CREATE TABLE denied_addresses (
    address    BYTEA       PRIMARY KEY CHECK (octet_length(address) = 20),
    reason     TEXT        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
