-- Developer keys of a user, for their own apps: a key belongs to an organization (org_id) or to
-- a user (user_id), never both. SQLite cannot drop a NOT NULL: the table is rebuilt.

CREATE TABLE dev_keys_new (
    id             TEXT    PRIMARY KEY NOT NULL,
    org_id         BLOB    REFERENCES orgs (id) ON DELETE CASCADE,
    user_id        BLOB    REFERENCES users (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    scopes         TEXT    NOT NULL, -- space-separated
    secret_digest  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER,
    expires_at     INTEGER,
    CHECK ((org_id IS NULL) <> (user_id IS NULL))
);
INSERT INTO dev_keys_new (id, org_id, name, scopes, secret_digest, created_at, last_used_at, expires_at)
    SELECT id, org_id, name, scopes, secret_digest, created_at, last_used_at, expires_at FROM dev_keys;
DROP TABLE dev_keys;
ALTER TABLE dev_keys_new RENAME TO dev_keys;
CREATE INDEX dev_keys_org ON dev_keys (org_id);
CREATE INDEX dev_keys_user ON dev_keys (user_id);
