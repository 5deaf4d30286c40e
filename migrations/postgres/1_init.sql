-- Users. email keeps what the user typed (trimmed, NFC); email_lookup is its NFC lowercase form
-- and carries the uniqueness rule.
CREATE TABLE users (
    id            UUID        PRIMARY KEY,
    email         TEXT        NOT NULL,
    email_lookup  TEXT        NOT NULL,
    name          TEXT,
    password_hash TEXT,
    status        TEXT        NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
    is_admin      BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at    BIGINT      NOT NULL,
    updated_at    BIGINT      NOT NULL,
    CONSTRAINT users_email UNIQUE (email_lookup)
);
CREATE INDEX users_created ON users (created_at, id);

-- Ephemeral key/value store (sessions, one-time codes, counters, replay caches) used when no
-- Redis is configured. expires_at is Unix seconds; expired rows are ignored and purged.
CREATE TABLE ephemeral (
    key        TEXT   PRIMARY KEY,
    value      BYTEA  NOT NULL,
    counter    BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ephemeral_expires ON ephemeral (expires_at);
