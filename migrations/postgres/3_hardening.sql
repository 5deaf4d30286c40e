-- Hardening: durable access-token revocations, introspection rights, sign-in sessions.

-- Access tokens revoked before they expire (RFC 7009). Durable, so a revocation survives an
-- empty or evicting ephemeral store; rows go once the token would have expired anyway.
CREATE TABLE revoked_access_tokens (
    jti_hash   TEXT    PRIMARY KEY,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX revoked_access_tokens_expires ON revoked_access_tokens (expires_at);

-- The refresh token that replaced this one at rotation (a lost response may be retried while
-- the replacement is unused).
ALTER TABLE refresh_tokens ADD COLUMN replaced_by TEXT;

-- Resource servers allowed to introspect access tokens issued to other clients (RFC 7662 §4).
ALTER TABLE clients ADD COLUMN introspection BOOLEAN NOT NULL DEFAULT FALSE;

-- Sign-in sessions (the OIDC `sid`): who, since when, last activity, and how they ended. The
-- browser session (cookie) lives in the ephemeral store and points here; this row lets a
-- session that ends by idle timeout be ended like a logout (grants revoked, RPs notified).
CREATE TABLE auth_sessions (
    sid              TEXT    PRIMARY KEY,
    user_id          UUID    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time        BIGINT  NOT NULL,
    last_seen        BIGINT  NOT NULL,
    idle_expires_at  BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    ended_at         BIGINT 
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);
CREATE INDEX auth_sessions_open ON auth_sessions (idle_expires_at) WHERE ended_at IS NULL;
