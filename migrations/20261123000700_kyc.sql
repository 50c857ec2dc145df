-- KYC: customers' identity submissions and their document images, reviewed by platform staff
-- (or decided by a third-party provider). The document images themselves live in object
-- storage, encrypted (AES-256-GCM); only their metadata is here.
--
-- A submission is the entity of the `kyc` state machine (`shared::kyc::Kyc`):
--   draft → pending → in_review → approved | rejected   (pending → approved | rejected too)
-- A customer edits a draft and uploads documents, then submits it; reviewers claim and decide.
-- After a rejection the customer starts a new submission; the old one stays as history.

CREATE TABLE kyc_submissions (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id         BIGINT      NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    state               TEXT        NOT NULL DEFAULT 'draft' CONSTRAINT kyc_submissions_state_check
                                    CHECK (state IN ('draft', 'pending', 'in_review', 'approved', 'rejected')),
    legal_name          TEXT        NOT NULL CHECK (length(legal_name) BETWEEN 1 AND 200),
    date_of_birth       DATE        NOT NULL,
    -- ISO 3166-1 alpha-2.
    country             TEXT        NOT NULL CHECK (country ~ '^[A-Z]{2}$'),
    document_type       TEXT        NOT NULL
                                    CHECK (document_type IN ('passport', 'id_card', 'driving_licence')),
    document_number     TEXT        NOT NULL CHECK (length(document_number) BETWEEN 1 AND 50),
    -- Who decides: `manual` (the back office queue) or a third-party provider, with its reference.
    provider            TEXT        NOT NULL DEFAULT 'manual',
    provider_ref        TEXT,
    submitted_at        TIMESTAMPTZ,
    -- The platform account that claimed it and, once decided, decided it.
    reviewer_account_id BIGINT      REFERENCES accounts (id),
    claimed_at          TIMESTAMPTZ,
    decided_at          TIMESTAMPTZ,
    -- Why it was rejected (required) or a note on an approval (optional); shown to the customer
    -- when rejected.
    decision_reason     TEXT        CHECK (length(decision_reason) BETWEEN 1 AND 1000),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The workflow engine moves `state` on its own; a transition's business columns are set
    -- just before it (in the same transaction, row locked), so these hold at every statement.
    CHECK (state = 'draft' OR submitted_at IS NOT NULL),
    CHECK (state NOT IN ('in_review', 'approved', 'rejected') OR provider <> 'manual'
           OR reviewer_account_id IS NOT NULL),
    CHECK (state <> 'rejected' OR decision_reason IS NOT NULL),
    CHECK (decided_at IS NULL OR state IN ('approved', 'rejected'))
);

-- One open (draft, pending or in review) submission per customer at a time.
CREATE UNIQUE INDEX kyc_submissions_one_open_key ON kyc_submissions (customer_id)
    WHERE state IN ('draft', 'pending', 'in_review');
-- The customer's history, newest first.
CREATE INDEX kyc_submissions_customer_idx ON kyc_submissions (customer_id, id DESC);
-- The review queue: open submissions, oldest first.
CREATE INDEX kyc_submissions_queue_idx ON kyc_submissions (submitted_at, id)
    WHERE state IN ('pending', 'in_review');

-- One uploaded document image of a submission: metadata only. `storage_key` is chosen by the
-- platform (`kyc/<customer>/<submission>/<uuid>`); the object there is encrypted.
CREATE TABLE kyc_documents (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    submission_id  BIGINT      NOT NULL REFERENCES kyc_submissions (id) ON DELETE CASCADE,
    -- Which side or picture: the document's front, its back, or a selfie holding it.
    kind           TEXT        NOT NULL CHECK (kind IN ('front', 'back', 'selfie')),
    content_type   TEXT        NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'application/pdf')),
    size_bytes     BIGINT      NOT NULL CHECK (size_bytes > 0),
    -- SHA-256 of the plaintext, checked again after decryption.
    sha256         BYTEA       NOT NULL CHECK (octet_length(sha256) = 32),
    storage_key    TEXT        NOT NULL CONSTRAINT kyc_documents_storage_key_key UNIQUE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A new upload of the same kind replaces the old one.
    CONSTRAINT kyc_documents_kind_key UNIQUE (submission_id, kind)
);
