-- Commerce core: persisted state machines, the outbox, daemon leases and runs, the error log.

-- Every accepted transition of every machine: the audit trail of "how did it get here".
-- (machine, entity_id, cause) is unique: the same cause (an outbox event, a webhook id, an
-- operator's request) can move an entity at most once, so replaying it is a no-op.
CREATE TABLE state_transitions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine     TEXT        NOT NULL,
    entity_id   BIGINT      NOT NULL,
    from_state  TEXT        NOT NULL,
    to_state    TEXT        NOT NULL,
    event       TEXT        NOT NULL,
    cause       TEXT        NOT NULL,
    actor       TEXT        NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT state_transitions_cause_key UNIQUE (machine, entity_id, cause)
);
CREATE INDEX state_transitions_entity_idx ON state_transitions (machine, entity_id, id);

-- The entities of the five machines. Later migrations add their business columns; the
-- workflow engine needs only `id`, `state` and `updated_at`.
CREATE TABLE orders (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state      TEXT        NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE contract_deployments (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state      TEXT        NOT NULL DEFAULT 'requested',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE redemptions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state      TEXT        NOT NULL DEFAULT 'requested',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE reward_batches (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state      TEXT        NOT NULL DEFAULT 'draft',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Domain events, written in the same transaction as the state change they describe.
CREATE TABLE outbox_events (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_type     TEXT        NOT NULL,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   BIGINT      NOT NULL,
    payload        JSONB       NOT NULL,
    correlation_id TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbox_events_aggregate_idx ON outbox_events (aggregate_type, aggregate_id);

-- Which subscriber wants which event types; kept current by each process at start-up.
CREATE TABLE outbox_subscriptions (
    subscriber    TEXT        NOT NULL,
    event_type    TEXT        NOT NULL,
    registered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber, event_type)
);

-- One row per (event, subscriber), created with the event: nothing can slip between.
CREATE TABLE outbox_deliveries (
    event_id        BIGINT      NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
    subscriber      TEXT        NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'dead')),
    attempts        INT         NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT,
    completed_at    TIMESTAMPTZ,
    PRIMARY KEY (event_id, subscriber)
);
CREATE INDEX outbox_deliveries_due_idx ON outbox_deliveries (next_attempt_at, event_id) WHERE status = 'pending';
CREATE INDEX outbox_deliveries_dead_idx ON outbox_deliveries (subscriber, event_id) WHERE status = 'dead';

-- Processed-events keys: a subscriber's effects and this key commit together, so a redelivery
-- after a crash finds the key and does nothing.
CREATE TABLE processed_events (
    subscriber   TEXT        NOT NULL,
    event_id     BIGINT      NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber, event_id)
);

-- At most one holder per daemon; a holder that stops renewing loses the lease when it expires.
CREATE TABLE daemon_leases (
    daemon      TEXT PRIMARY KEY,
    holder      TEXT        NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE daemon_runs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    daemon      TEXT        NOT NULL,
    holder      TEXT        NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    finished_at TIMESTAMPTZ,
    outcome     TEXT        NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'failed', 'lease_lost', 'cancelled')),
    items       BIGINT      NOT NULL DEFAULT 0,
    error       TEXT
);
CREATE INDEX daemon_runs_daemon_idx ON daemon_runs (daemon, started_at DESC);

-- Structured error log: one row per distinct failure (fingerprint), counted.
CREATE TABLE error_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fingerprint    TEXT        NOT NULL UNIQUE,
    source         TEXT        NOT NULL,
    kind           TEXT        NOT NULL,
    message        TEXT        NOT NULL,
    context        JSONB       NOT NULL DEFAULT '{}',
    correlation_id TEXT,
    first_seen     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen      TIMESTAMPTZ NOT NULL DEFAULT now(),
    count          BIGINT      NOT NULL DEFAULT 1
);
CREATE INDEX error_log_last_seen_idx ON error_log (last_seen);

-- The chain transaction queue's requests (columns for nonces, fees, hashes come with the
-- queue itself).
CREATE TABLE chain_transactions (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state      TEXT        NOT NULL DEFAULT 'queued',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
