-- Identity and access: platform roles, brands and their members, sessions, customers and
-- Sign-In with Ethereum, scoped API keys, invitations, password resets, rate-limit windows and
-- the hash-chained audit log.
--
-- Tenant rule: every brand-owned table carries `brand_id`, and references between brand-owned
-- rows include it (composite foreign keys), so a row of brand A can never point at brand B's.

-- Platform staff. NULL: not platform staff (brand members and customers).
ALTER TABLE accounts
    ADD COLUMN platform_role TEXT CONSTRAINT accounts_platform_role_check
        CHECK (platform_role IN ('admin', 'support', 'developer'));

-- Brands (the back office adds their settings).
CREATE TABLE brands (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A brand's physical stores, where verifiers scan QR codes.
CREATE TABLE stores (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id   BIGINT      NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    name       TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT stores_brand_id_key UNIQUE (brand_id, id)
);

-- Who belongs to a brand, with which role.
CREATE TABLE brand_members (
    brand_id   BIGINT      NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    account_id BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       TEXT        NOT NULL CHECK (role IN ('owner', 'manager', 'staff', 'verifier')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (brand_id, account_id)
);
CREATE INDEX brand_members_account_idx ON brand_members (account_id);

-- The stores a verifier may scan at (other roles are not store-scoped).
CREATE TABLE member_stores (
    brand_id   BIGINT NOT NULL,
    account_id BIGINT NOT NULL,
    store_id   BIGINT NOT NULL,
    PRIMARY KEY (brand_id, account_id, store_id),
    FOREIGN KEY (brand_id, account_id) REFERENCES brand_members (brand_id, account_id) ON DELETE CASCADE,
    FOREIGN KEY (brand_id, store_id) REFERENCES stores (brand_id, id) ON DELETE CASCADE
);

-- Customers: buyers and reward holders, known by wallet (SIWE) and/or email (guest flows).
-- Addresses are stored as their 20 bytes.
CREATE TABLE customers (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    wallet_address BYTEA       CONSTRAINT customers_wallet_address_key UNIQUE
                               CHECK (octet_length(wallet_address) = 20),
    email          TEXT        CONSTRAINT customers_email_key UNIQUE CHECK (email = lower(email)),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (wallet_address IS NOT NULL OR email IS NOT NULL)
);

-- A session is one sign-in: of an account (password; renewed with rotating refresh tokens, the
-- tokens' family) or of a customer (SIWE). Access tokens name it in `sid`, so revoking the
-- session stops them at once. `expires_at` is the absolute lifetime cap: no refresh outlives it.
CREATE TABLE sessions (
    id           UUID PRIMARY KEY,
    account_id   BIGINT REFERENCES accounts (id) ON DELETE CASCADE,
    customer_id  BIGINT REFERENCES customers (id) ON DELETE CASCADE,
    method       TEXT        NOT NULL CHECK (method IN ('password', 'siwe')),
    ip           INET,
    user_agent   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT sessions_one_principal CHECK ((account_id IS NULL) <> (customer_id IS NULL))
);
CREATE INDEX sessions_account_idx ON sessions (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Refresh-token families become sessions.
INSERT INTO sessions (id, account_id, method, created_at, last_seen_at, expires_at, revoked_at)
SELECT family_id, min(account_id), 'password', min(issued_at), max(issued_at), max(expires_at), max(revoked_at)
FROM refresh_tokens GROUP BY family_id;
ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_session_fkey FOREIGN KEY (family_id) REFERENCES sessions (id) ON DELETE CASCADE;
ALTER TABLE refresh_tokens ALTER COLUMN family_id DROP DEFAULT;
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- SIWE nonces: issued by the server, consumed once (DELETE … RETURNING), short-lived.
CREATE TABLE siwe_nonces (
    nonce      TEXT PRIMARY KEY CHECK (nonce ~ '^[A-Za-z0-9]{8,}$'),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX siwe_nonces_expires_idx ON siwe_nonces (expires_at);

-- Scoped API keys for brand servers: `bm_<prefix>_<secret>`; only the secret's SHA-256 is kept.
CREATE TABLE api_keys (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id     BIGINT      NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix       TEXT        NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    secret_hash  BYTEA       NOT NULL CHECK (octet_length(secret_hash) = 32),
    permissions  TEXT[]      NOT NULL,
    created_by   BIGINT      REFERENCES accounts (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    CONSTRAINT api_keys_brand_id_key UNIQUE (brand_id, id)
);

-- Invitations to join a brand; the token travels by mail, its SHA-256 is kept.
CREATE TABLE brand_invites (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    BIGINT      NOT NULL REFERENCES brands (id) ON DELETE CASCADE,
    email       TEXT        NOT NULL CHECK (email = lower(email)),
    role        TEXT        NOT NULL CHECK (role IN ('owner', 'manager', 'staff', 'verifier')),
    store_ids   BIGINT[]    NOT NULL DEFAULT '{}',
    token_hash  BYTEA       NOT NULL CONSTRAINT brand_invites_token_hash_key UNIQUE
                            CHECK (octet_length(token_hash) = 32),
    invited_by  BIGINT      REFERENCES accounts (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    accepted_at TIMESTAMPTZ,
    accepted_by BIGINT      REFERENCES accounts (id) ON DELETE SET NULL,
    revoked_at  TIMESTAMPTZ,
    CONSTRAINT brand_invites_brand_id_key UNIQUE (brand_id, id)
);

-- Password-reset tokens: single use, short-lived, stored as SHA-256.
CREATE TABLE password_resets (
    token_hash BYTEA PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    account_id BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

-- Fixed-window rate-limit counters shared by every replica. UNLOGGED: losing them in a crash
-- only resets the windows.
CREATE UNLOGGED TABLE rate_limit_windows (
    bucket       TEXT PRIMARY KEY,
    window_start TIMESTAMPTZ NOT NULL,
    hits         INTEGER     NOT NULL
);

-- The audit log: every mutation by staff, brand members or API keys, and every sign-in and
-- role change. Append-only (triggers refuse UPDATE, DELETE and TRUNCATE) and hash-chained:
-- each row's hash commits to its content and to the previous row's hash, so altering or
-- removing a row breaks the chain at that row. Ids are gapless (assigned under a lock).
CREATE TABLE audit_log (
    id         BIGINT PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    -- 'account:<id>', 'api-key:<id>', 'customer:<id>', 'anonymous' or 'system'.
    actor      TEXT        NOT NULL,
    brand_id   BIGINT,
    action     TEXT        NOT NULL,
    target     TEXT        NOT NULL,
    before     JSONB,
    after      JSONB,
    ip         INET,
    request_id TEXT,
    prev_hash  BYTEA       NOT NULL,
    hash       BYTEA       NOT NULL
);
CREATE INDEX audit_log_brand_idx ON audit_log (brand_id, id) WHERE brand_id IS NOT NULL;

-- The hash of one row: SHA-256 over the previous hash and a canonical rendering of the row
-- (jsonb's text form is canonical; the time is taken as epoch microseconds so the session
-- time zone cannot change it).
CREATE FUNCTION audit_row_hash(
    prev_hash BYTEA, id BIGINT, at TIMESTAMPTZ, actor TEXT, brand_id BIGINT, action TEXT, target TEXT,
    before JSONB, after JSONB, ip INET, request_id TEXT
) RETURNS BYTEA LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(prev_hash || convert_to(jsonb_build_array(
        id, (extract(epoch FROM at) * 1000000)::bigint, actor, brand_id, action, target,
        before, after, host(ip), request_id)::text, 'UTF8'))
$$;

-- Appends one row: serialised by a transaction-scoped advisory lock so ids are gapless and
-- each row chains to the one committed before it.
CREATE FUNCTION audit_append(
    p_actor TEXT, p_brand_id BIGINT, p_action TEXT, p_target TEXT, p_before JSONB, p_after JSONB,
    p_ip TEXT, p_request_id TEXT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    last_id   BIGINT;
    last_hash BYTEA;
    new_id    BIGINT;
    new_at    TIMESTAMPTZ := date_trunc('microseconds', clock_timestamp());
    new_ip    INET := p_ip::inet;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('brandmint.audit_log'));
    SELECT a.id, a.hash INTO last_id, last_hash FROM audit_log a ORDER BY a.id DESC LIMIT 1;
    new_id := coalesce(last_id, 0) + 1;
    last_hash := coalesce(last_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    INSERT INTO audit_log (id, at, actor, brand_id, action, target, before, after, ip, request_id, prev_hash, hash)
    VALUES (new_id, new_at, p_actor, p_brand_id, p_action, p_target, p_before, p_after, new_ip, p_request_id,
            last_hash, audit_row_hash(last_hash, new_id, new_at, p_actor, p_brand_id, p_action, p_target,
                                      p_before, p_after, new_ip, p_request_id));
    RETURN new_id;
END
$$;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
