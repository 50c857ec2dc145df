-- The persisted chain transaction queue: every contract write is a row here first.
--
-- A request carries a business idempotency key (`mint:order:17`); the sender of its signer
-- assigns it a nonce from `signer_nonces`, signs it, stores the raw transaction and its hash
-- (in `chain_transaction_attempts`) before broadcasting, and follows it to N confirmations.
-- The workflow engine's `tx` machine moves `state`; the columns below are its business data.

ALTER TABLE chain_transactions
    ADD COLUMN idempotency_key          TEXT        NOT NULL,
    ADD COLUMN kind                     TEXT        NOT NULL DEFAULT 'request'
        CHECK (kind IN ('request', 'gap_fill')),
    ADD COLUMN chain_id                 BIGINT      NOT NULL CHECK (chain_id > 0),
    ADD COLUMN signer                   BYTEA       NOT NULL CHECK (octet_length(signer) = 20),
    -- NULL: contract creation.
    ADD COLUMN to_address               BYTEA       CHECK (octet_length(to_address) = 20),
    ADD COLUMN value                    uint256     NOT NULL DEFAULT 0,
    ADD COLUMN calldata                 BYTEA       NOT NULL DEFAULT '\x',
    -- As requested, or estimated (with a margin) when first signed; then fixed for every attempt.
    ADD COLUMN gas_limit                BIGINT      CHECK (gas_limit > 0),
    ADD COLUMN confirmations            INT         NOT NULL DEFAULT 1 CHECK (confirmations >= 1),
    -- Echoed in the `tx.*` events, for the requester.
    ADD COLUMN context                  JSONB       NOT NULL DEFAULT '{}',
    -- Assigned by the sender (or handed over from a request that failed before broadcast).
    ADD COLUMN nonce                    BIGINT      CHECK (nonce >= 0),
    -- The current attempt (see chain_transaction_attempts for all of them).
    ADD COLUMN max_fee_per_gas          uint256,
    ADD COLUMN max_priority_fee_per_gas uint256,
    ADD COLUMN raw_tx                   BYTEA,
    ADD COLUMN tx_hash                  BYTEA       CHECK (octet_length(tx_hash) = 32),
    ADD COLUMN signed_at                TIMESTAMPTZ,
    ADD COLUMN broadcast_at             TIMESTAMPTZ,
    -- When the current attempt was last handed to the node: the stuck timer starts here.
    ADD COLUMN last_sent_at             TIMESTAMPTZ,
    ADD COLUMN broadcast_errors         INT         NOT NULL DEFAULT 0,
    -- The receipt (of whichever attempt was mined).
    ADD COLUMN block_number             BIGINT,
    ADD COLUMN block_hash               BYTEA       CHECK (octet_length(block_hash) = 32),
    ADD COLUMN gas_used                 BIGINT,
    ADD COLUMN effective_gas_price      uint256,
    ADD COLUMN receipt_status           BOOLEAN,
    ADD COLUMN mined_at                 TIMESTAMPTZ,
    ADD COLUMN finished_at              TIMESTAMPTZ,
    ADD COLUMN error                    TEXT,
    ADD COLUMN revert_reason            TEXT,
    -- Bumped by every change the sender makes: its updates are conditional on it, so a sender
    -- that lost its lock without noticing cannot overwrite its successor's work.
    ADD COLUMN revision                 INT         NOT NULL DEFAULT 0;

ALTER TABLE chain_transactions
    ADD CONSTRAINT chain_transactions_idempotency_key_key UNIQUE (idempotency_key);

-- One nonce, one live request per signer: the database refuses a duplicate.
CREATE UNIQUE INDEX chain_transactions_signer_nonce_key
    ON chain_transactions (chain_id, signer, nonce) WHERE nonce IS NOT NULL;

-- The sender's working set: the requests of a signer that are not final.
CREATE INDEX chain_transactions_open_idx
    ON chain_transactions (chain_id, signer, state, nonce)
    WHERE state NOT IN ('confirmed', 'failed');

-- Every signed version of a request: the first one, re-signs with bumped fees. Stored before
-- it is broadcast; any of them may be the one that is mined.
CREATE TABLE chain_transaction_attempts (
    id                       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_transaction_id     BIGINT      NOT NULL REFERENCES chain_transactions (id),
    nonce                    BIGINT      NOT NULL,
    tx_hash                  BYTEA       NOT NULL UNIQUE CHECK (octet_length(tx_hash) = 32),
    raw_tx                   BYTEA       NOT NULL,
    max_fee_per_gas          uint256     NOT NULL,
    max_priority_fee_per_gas uint256     NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX chain_transaction_attempts_tx_idx ON chain_transaction_attempts (chain_transaction_id, id);

-- The next nonce each signer will hand out. The sender locks the row while it assigns a range;
-- it never goes down, and is raised to the chain's pending count when someone else used it.
CREATE TABLE signer_nonces (
    chain_id   BIGINT      NOT NULL,
    address    BYTEA       NOT NULL CHECK (octet_length(address) = 20),
    next_nonce BIGINT      NOT NULL DEFAULT 0 CHECK (next_nonce >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (chain_id, address)
);
