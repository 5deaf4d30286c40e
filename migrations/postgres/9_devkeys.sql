-- Developer keys: a public, immutable key id (DevKey) and a secret (DevSecret) shown once and
-- kept as its SHA-256 digest; owned by an organization (confined to it). Scopes, name, last use,
-- expiry.

CREATE TABLE dev_keys (
    id             TEXT    PRIMARY KEY,
    org_id         UUID    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name           TEXT    NOT NULL,
    scopes         TEXT    NOT NULL, -- space-separated
    secret_digest  TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT,
    expires_at     BIGINT
);
CREATE INDEX dev_keys_org ON dev_keys (org_id);
