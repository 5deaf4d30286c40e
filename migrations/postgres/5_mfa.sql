-- Multi-factor authentication: factors (TOTP now, WebAuthn next) with their secret material
-- sealed (AES-256-GCM, src/crypto/sealed.rs), recovery codes as digests, per-client policy.

CREATE TABLE mfa_factors (
    id            UUID    PRIMARY KEY,
    user_id       UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    secret        TEXT    NOT NULL,
    confirmed     BOOLEAN NOT NULL DEFAULT FALSE,
    -- The last TOTP time step accepted: a step is never accepted twice.
    last_step     BIGINT,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

CREATE TABLE recovery_codes (
    user_id     UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest      TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (user_id, digest)
);

-- A client may require a second factor whatever the global policy.
ALTER TABLE clients ADD COLUMN require_mfa BOOLEAN NOT NULL DEFAULT FALSE;
