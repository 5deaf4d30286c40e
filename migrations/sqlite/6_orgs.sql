-- Organizations: members with an org role, RBAC (permissions declared by clients, roles as named
-- sets of one client's permissions, granted per membership), verified domains; the organization
-- a grant was given for; clients bound to one organization; invitations into an organization.

CREATE TABLE orgs (
    id            BLOB    PRIMARY KEY NOT NULL,
    slug          TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    -- Password (and emailed-link) sign-in refused for emails of the org's verified domains.
    require_sso   INTEGER NOT NULL DEFAULT 0,
    -- Members need a second factor to act for this organization.
    mfa_required  INTEGER NOT NULL DEFAULT 0,
    accent_color  TEXT,
    logo          BLOB,
    logo_type     TEXT,
    logo_digest   TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE org_members (
    org_id      BLOB    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    user_id     BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL, -- owner | admin | member
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);

CREATE TABLE client_permissions (
    client_id   TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (client_id, name)
);

-- org_id NULL: defined by the operator, grantable in every organization.
CREATE TABLE roles (
    id          BLOB    PRIMARY KEY NOT NULL,
    client_id   TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    org_id      BLOB    REFERENCES orgs (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX roles_global_name ON roles (client_id, name) WHERE org_id IS NULL;
CREATE UNIQUE INDEX roles_org_name ON roles (client_id, org_id, name) WHERE org_id IS NOT NULL;
CREATE INDEX roles_org ON roles (org_id);

CREATE TABLE role_permissions (
    role_id     BLOB    NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    client_id   TEXT    NOT NULL,
    permission  TEXT    NOT NULL,
    PRIMARY KEY (role_id, permission),
    FOREIGN KEY (client_id, permission) REFERENCES client_permissions (client_id, name) ON DELETE CASCADE
);

CREATE TABLE member_roles (
    org_id      BLOB    NOT NULL,
    user_id     BLOB    NOT NULL,
    role_id     BLOB    NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, user_id, role_id),
    FOREIGN KEY (org_id, user_id) REFERENCES org_members (org_id, user_id) ON DELETE CASCADE
);

-- Several organizations may claim a domain; one at most proves it (the partial unique index).
CREATE TABLE org_domains (
    org_id           BLOB    NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    domain           TEXT    NOT NULL,
    challenge        TEXT    NOT NULL,
    verified_at      INTEGER,
    last_checked_at  INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (org_id, domain)
);
CREATE UNIQUE INDEX org_domains_verified ON org_domains (domain) WHERE verified_at IS NOT NULL;
CREATE INDEX org_domains_domain ON org_domains (domain);

ALTER TABLE grants ADD COLUMN org_id BLOB REFERENCES orgs (id) ON DELETE CASCADE;
CREATE INDEX grants_user_org ON grants (user_id, org_id);
-- A client bound to one organization: only its members may sign in to it. An organization
-- with bound clients cannot be deleted (no action: the delete fails).
ALTER TABLE clients ADD COLUMN org_id BLOB REFERENCES orgs (id);
ALTER TABLE invitations ADD COLUMN org_id BLOB REFERENCES orgs (id) ON DELETE CASCADE;
ALTER TABLE invitations ADD COLUMN org_role TEXT;
