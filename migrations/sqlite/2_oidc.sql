-- OpenID Provider: user claims, clients, consents, grants, codes, refresh tokens.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN phone_number TEXT;
ALTER TABLE users ADD COLUMN phone_number_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN address TEXT; -- JSON object (OIDC Core §5.1.1)
ALTER TABLE users ADD COLUMN locale TEXT;

CREATE TABLE clients (
    client_id                    TEXT    PRIMARY KEY NOT NULL,
    name                         TEXT    NOT NULL,
    secret_digest                TEXT,
    auth_method                  TEXT    NOT NULL,
    application_type             TEXT    NOT NULL,
    redirect_uris                TEXT    NOT NULL, -- JSON array
    post_logout_redirect_uris    TEXT    NOT NULL, -- JSON array
    grant_types                  TEXT    NOT NULL, -- JSON array
    jwks_uri                     TEXT,
    jwks                         TEXT,             -- JSON JWK set
    first_party                  INTEGER NOT NULL DEFAULT 0,
    backchannel_logout_uri       TEXT,
    id_token_signed_response_alg TEXT    NOT NULL,
    id_token_claims              INTEGER NOT NULL DEFAULT 1,
    created_at                   INTEGER NOT NULL,
    updated_at                   INTEGER NOT NULL
);

CREATE TABLE consents (
    user_id    BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- A grant: what one authorization (or client_credentials) gave one client. Codes and refresh
-- tokens belong to a grant; revoking the grant kills all of them and the access tokens that
-- carry its id.
CREATE TABLE grants (
    grant_id   BLOB    PRIMARY KEY NOT NULL,
    client_id  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    user_id    BLOB    REFERENCES users (id) ON DELETE CASCADE,
    sid        TEXT,
    scope      TEXT    NOT NULL,
    offline    INTEGER NOT NULL DEFAULT 0,
    auth_time  INTEGER NOT NULL,
    acr        TEXT,
    amr        TEXT    NOT NULL, -- JSON array
    claims     TEXT,             -- JSON claims request (OIDC Core §5.5)
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX grants_sid ON grants (sid);
CREATE INDEX grants_user_client ON grants (user_id, client_id);

CREATE TABLE auth_codes (
    code_hash             TEXT    PRIMARY KEY NOT NULL,
    grant_id              BLOB    NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    redirect_uri          TEXT    NOT NULL,
    nonce                 TEXT,
    code_challenge        TEXT,             -- S256 only
    expires_at            INTEGER NOT NULL,
    consumed_at           INTEGER
);
CREATE INDEX auth_codes_expires ON auth_codes (expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY NOT NULL,
    grant_id   BLOB    NOT NULL REFERENCES grants (grant_id) ON DELETE CASCADE,
    scope      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
