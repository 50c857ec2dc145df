-- Identity: accounts that sign in with email + password, and their refresh tokens.

-- Staff and brand members. Emails are stored lowercased (the application normalises them;
-- the CHECK keeps it so), which gives case-insensitive uniqueness without the citext extension.
CREATE TABLE accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT        NOT NULL,
    -- argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash).
    password_hash TEXT        NOT NULL,
    display_name  TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    disabled_at   TIMESTAMPTZ,
    CONSTRAINT accounts_email_key UNIQUE (email),
    CONSTRAINT accounts_email_lowercase CHECK (email = lower(email))
);

-- Rotating refresh tokens (RFC 9700 §4.14.2). Only the SHA-256 of the random token is stored.
-- Every token descends from one sign-in, its family: using a token retires it and issues its
-- successor in the same family; presenting a retired token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  BIGINT      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    family_id   UUID        NOT NULL DEFAULT gen_random_uuid(),
    token_hash  BYTEA       NOT NULL,
    issued_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    -- Set when the token was exchanged for its successor (`replaced_by`).
    retired_at  TIMESTAMPTZ,
    -- Set on the whole family at logout or when a retired token is re-used.
    revoked_at  TIMESTAMPTZ,
    replaced_by BIGINT      REFERENCES refresh_tokens (id),
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_token_hash_len CHECK (octet_length(token_hash) = 32)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_account_idx ON refresh_tokens (account_id);
