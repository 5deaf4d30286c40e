-- Multi-factor authentication: factors (TOTP now, WebAuthn next) with their secret material
-- sealed (AES-256-GCM, src/crypto/sealed.rs), recovery codes as digests, per-client policy.

CREATE TABLE mfa_factors (
    id            BLOB    PRIMARY KEY NOT NULL,
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    secret        TEXT    NOT NULL,
    confirmed     INTEGER NOT NULL DEFAULT 0,
    -- The last TOTP time step accepted: a step is never accepted twice.
    last_step     INTEGER,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX mfa_factors_user ON mfa_factors (user_id);

CREATE TABLE recovery_codes (
    user_id     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, digest)
);

-- A client may require a second factor whatever the global policy.
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
