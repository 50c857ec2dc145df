-- The transaction queue's operations: an operator's cancel or replace of a stuck transaction,
-- the signers' low-balance alerts, and re-checking confirmed transactions against the chain's
-- finalized block.

-- What an operator asked of a transaction not yet mined: `cancel` (a 0-value self-transfer at
-- its nonce with higher fees; once that is mined the request fails, `cancelled`) or `replace`
-- (the same call at the same nonce with higher fees). The sender does it and clears `pending`.
ALTER TABLE chain_transactions
    ADD COLUMN operator_action          TEXT        CHECK (operator_action IN ('cancel', 'replace')),
    ADD COLUMN operator_action_by       TEXT,
    ADD COLUMN operator_action_at       TIMESTAMPTZ,
    -- `replace` with a fee of the operator's choosing (NULL: the usual bump).
    ADD COLUMN operator_max_fee_per_gas uint256,
    ADD COLUMN operator_action_pending  BOOLEAN     NOT NULL DEFAULT false,
    -- Set when the receipt's block is at or below the chain's `finalized` block: never looked at
    -- again. Until then a confirmed (or mined-and-failed) transaction is re-checked, and one a
    -- reorg deeper than its confirmations removed is sent again.
    ADD COLUMN finalized_at             TIMESTAMPTZ,
    -- How often a reorg removed it after it was confirmed, and the outcome its requester was
    -- told first (a re-confirmation after such a reorg is not announced to it twice).
    ADD COLUMN deep_reorgs              INT         NOT NULL DEFAULT 0,
    ADD COLUMN reported_outcome         TEXT        CHECK (reported_outcome IN ('confirmed', 'failed'));

-- Rows the operator actions and the finality check look for.
CREATE INDEX chain_transactions_operator_pending_idx
    ON chain_transactions (chain_id, signer) WHERE operator_action_pending;
CREATE INDEX chain_transactions_unfinalized_idx
    ON chain_transactions (chain_id, signer, block_number)
    WHERE finalized_at IS NULL AND block_number IS NOT NULL AND state IN ('confirmed', 'failed');

-- Existing final rows are old enough to count as finalized: nothing re-checks them.
UPDATE chain_transactions SET finalized_at = now() WHERE state IN ('confirmed', 'failed');

-- Which attempt is which: `cancel` attempts are self-transfers replacing the request's call.
ALTER TABLE chain_transaction_attempts
    ADD COLUMN purpose TEXT NOT NULL DEFAULT 'send' CHECK (purpose IN ('send', 'cancel'));

-- Each signer's balance as the sender last judged it against its threshold: an alert
-- (`signer.balance_low` / `signer.balance_ok` in the outbox) is raised when `low` flips, once
-- per crossing.
CREATE TABLE signer_balances (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_id   BIGINT      NOT NULL,
    address    BYTEA       NOT NULL CHECK (octet_length(address) = 20),
    low        BOOLEAN     NOT NULL,
    balance    uint256     NOT NULL,
    threshold  uint256     NOT NULL,
    changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    checked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (chain_id, address)
);
