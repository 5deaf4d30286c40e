-- Federation: connections to an organization's identity provider (upstream OIDC now, SAML
-- next), the organizations each connection serves, the identities linked to accounts, and how
-- a sign-in was federated (the `idp` claim).

CREATE TABLE connections (
    id          BLOB    PRIMARY KEY NOT NULL,
    name        TEXT    NOT NULL,
    kind        TEXT    NOT NULL, -- oidc | saml
    -- Kind-specific settings (JSON); secrets in it are sealed (src/crypto/sealed.rs).
    config      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE connection_orgs (
    connection_id  BLOB NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    org_id         BLOB NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    PRIMARY KEY (connection_id, org_id)
);
CREATE INDEX connection_orgs_org ON connection_orgs (org_id);

-- An identity at a connection (its subject) linked to an account.
CREATE TABLE federated_identities (
    connection_id  BLOB    NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    subject        TEXT    NOT NULL,
    user_id        BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email          TEXT,
    created_at     INTEGER NOT NULL,
    last_login_at  INTEGER NOT NULL,
    PRIMARY KEY (connection_id, subject)
);
CREATE INDEX federated_identities_user ON federated_identities (user_id);

-- The connection a sign-in came through (the `idp` claim).
ALTER TABLE grants ADD COLUMN idp TEXT;
