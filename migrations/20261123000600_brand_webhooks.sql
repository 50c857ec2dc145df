-- Brand webhooks (Standard Webhooks): endpoints a brand registers, one delivery per
-- (event, endpoint) fanned out from the outbox, and every attempt to deliver it.

-- A brand's HTTPS endpoint and the event types it receives. The signing secret has to be
-- usable for HMAC, so it is stored as issued (`whsec_<base64>`), not hashed; during a
-- rotation's grace period the previous secret signs too. Deleting an endpoint keeps the row
-- (and its delivery log) with `deleted_at` set.
CREATE TABLE webhook_endpoints (
    id                         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id                   BIGINT      NOT NULL REFERENCES brands (id),
    url                        TEXT        NOT NULL CHECK (length(url) <= 2048),
    description                TEXT        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    event_types                TEXT[]      NOT NULL CHECK (cardinality(event_types) > 0),
    enabled                    BOOLEAN     NOT NULL DEFAULT true,
    secret                     TEXT        NOT NULL,
    previous_secret            TEXT,
    previous_secret_expires_at TIMESTAMPTZ,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at                 TIMESTAMPTZ,
    UNIQUE (brand_id, id),
    CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL))
);
CREATE INDEX webhook_endpoints_brand_idx ON webhook_endpoints (brand_id) WHERE deleted_at IS NULL;

-- One message to one endpoint. `message_id` is the `webhook-id` header: the same on every
-- retry and replay, so receivers can deduplicate. `body` is kept byte for byte, so every
-- attempt signs and sends exactly the same payload. `attempts` counts the current round
-- (a replay starts a new one); `total_attempts` numbers the attempt log.
CREATE TABLE webhook_deliveries (
    id               BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id         BIGINT      NOT NULL REFERENCES brands (id),
    endpoint_id      BIGINT      NOT NULL,
    -- The outbox event it came from; no foreign key, so the outbox can be pruned (the body
    -- holds everything a delivery needs).
    event_id         BIGINT      NOT NULL,
    event_type       TEXT        NOT NULL,
    message_id       TEXT        NOT NULL UNIQUE,
    body             TEXT        NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled')),
    attempts         INT         NOT NULL DEFAULT 0,
    total_attempts   INT         NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_status_code INT,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    delivered_at     TIMESTAMPTZ,
    UNIQUE (brand_id, id),
    UNIQUE (endpoint_id, event_id),
    FOREIGN KEY (brand_id, endpoint_id) REFERENCES webhook_endpoints (brand_id, id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (brand_id, endpoint_id, id DESC);

-- Every attempt: when, how long, the response status (none when the connection failed), the
-- error, and the start of the response body.
CREATE TABLE webhook_attempts (
    id            BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id      BIGINT      NOT NULL REFERENCES brands (id),
    delivery_id   BIGINT      NOT NULL,
    attempt       INT         NOT NULL,
    attempted_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    duration_ms   INT         NOT NULL,
    status_code   INT,
    error         TEXT,
    response_body TEXT,
    UNIQUE (delivery_id, attempt),
    FOREIGN KEY (brand_id, delivery_id) REFERENCES webhook_deliveries (brand_id, id)
);
