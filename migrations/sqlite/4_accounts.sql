-- Account lifecycle: profile and consents on users, single-use tokens and codes, invitations,
-- resources granted by invitations, the durable outbox (mail, SMS), sign-in history, audit.

ALTER TABLE users ADD COLUMN time_zone TEXT;
ALTER TABLE users ADD COLUMN terms_version TEXT;
ALTER TABLE users ADD COLUMN terms_accepted_at INTEGER;
ALTER TABLE users ADD COLUMN newsletter_consent_at INTEGER;

-- How each sign-in session was made, and from where (shown on the account's session list).
ALTER TABLE auth_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_sessions ADD COLUMN acr TEXT;
ALTER TABLE auth_sessions ADD COLUMN ip TEXT;
ALTER TABLE auth_sessions ADD COLUMN user_agent TEXT;

-- Links and codes sent to a person (kinds and lifetimes: src/domain/account.rs). Only a digest
-- of the secret is kept: SHA-256 for 256-bit link tokens, HMAC-SHA256 (server secret) for
-- 6-digit codes. used_at makes each single use; attempts counts wrong codes.
CREATE TABLE account_tokens (
    digest      TEXT    PRIMARY KEY NOT NULL,
    kind        TEXT    NOT NULL,
    user_id     BLOB    REFERENCES users (id) ON DELETE CASCADE,
    email       TEXT,
    data        TEXT    NOT NULL DEFAULT '{}',
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, kind);
CREATE INDEX account_tokens_expires ON account_tokens (expires_at);

CREATE TABLE invitations (
    id            BLOB    PRIMARY KEY NOT NULL,
    email         TEXT    NOT NULL,
    email_lookup  TEXT    NOT NULL,
    name          TEXT,
    org           TEXT,
    resource      TEXT,
    invited_by    BLOB    REFERENCES users (id) ON DELETE SET NULL,
    token_digest  TEXT    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    accepted_at   INTEGER,
    accepted_by   BLOB    REFERENCES users (id) ON DELETE SET NULL,
    revoked_at    INTEGER
);
CREATE INDEX invitations_email ON invitations (email_lookup);
CREATE INDEX invitations_created ON invitations (created_at);

-- Resources a user was given access to (by an invitation), released under scope `resources`.
CREATE TABLE user_resources (
    user_id       BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    resource      TEXT    NOT NULL,
    invitation_id BLOB,
    granted_at    INTEGER NOT NULL,
    PRIMARY KEY (user_id, resource)
);

-- The durable outbox: written in the transaction of the change that causes the message, sent
-- by a worker on any node (claimed with a lease), retried with backoff.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    sent_at         INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Sign-ins and failed sign-ins of known accounts (the last ones are shown to the user).
CREATE TABLE login_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    success     INTEGER NOT NULL,
    method      TEXT    NOT NULL,
    ip          TEXT,
    user_agent  TEXT
);
CREATE INDEX login_events_user ON login_events (user_id, at);

-- What happened to accounts. After a deletion only a pseudonymous subject remains here.
CREATE TABLE audit_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    action   TEXT    NOT NULL,
    subject  TEXT    NOT NULL,
    actor    TEXT,
    detail   TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
