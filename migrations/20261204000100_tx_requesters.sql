-- Who asked for each queued transaction, as a typed kind: the queue addresses its outcome events
-- to it (`tx.confirmed.order-mint`), so each requester subscribes to its own outcomes instead of
-- filtering every transaction's events. `none`: nobody listens (tests, the queue's own gap fills).
ALTER TABLE chain_transactions ADD COLUMN requester TEXT NOT NULL DEFAULT 'none'
    CHECK (requester ~ '^[a-z][a-z-]*$');
