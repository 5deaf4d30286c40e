//! UserInfo endpoint (OIDC Core §5.3) and access-token validation shared with introspection.
//! Access tokens are checked fully: our key for the header's alg and kid (no `none`, no alg
//! confusion), `typ` = `at+jwt`, issuer, expiry, not revoked (by jti or through its grant).

use super::claims::user_claims;
use super::error::OAuthError;
use super::jwt::{self, Claims};
use super::types::Scope;
use super::OidcProvider;
use crate::crypto::tokens;
use crate::domain::{Grant, GrantId, User};

#[derive(Debug, Clone)]
pub struct ValidAccessToken {
    pub claims: Claims,
    pub sub: String,
    pub client_id: String,
    pub scope: Scope,
    pub exp: i64,
    pub grant: Option<Grant>,
}

impl OidcProvider {
    pub async fn validate_access_token(&self, token: &str) -> Result<ValidAccessToken, OAuthError> {
        Ok(self.check_access_token(token, false).await?.0)
    }

    /// `validate_access_token`, and with `with_user` the grant's user read in the same statement
    /// as the grant (None when the token has no grant, the grant no user, or the user is gone).
    async fn check_access_token(
        &self,
        token: &str,
        with_user: bool,
    ) -> Result<(ValidAccessToken, Option<User>), OAuthError> {
        let bad = |why: &str| OAuthError::invalid_token(why.to_owned());
        let claims = jwt::verify_ours(&self.keys, token, Some("at+jwt"))
            .map_err(|e| bad(&format!("access token rejected: {e}")))?;
        let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        if s("iss").as_deref() != Some(self.issuer.as_str()) {
            return Err(bad("access token from another issuer"));
        }
        let now = self.clock.now();
        let exp = jwt::numeric_date(&claims, "exp").ok_or_else(|| bad("access token has no exp"))?;
        if exp <= now.0 {
            return Err(bad("access token expired"));
        }
        let jti = s("jti").ok_or_else(|| bad("access token has no jti"))?;
        // Revocations are durable (SQL), not in the ephemeral store: an emptied or evicting
        // Redis must never bring a revoked token back. A user's token: its revocation and its
        // grant in one query.
        let jti_hash = tokens::digest(&jti);
        let (grant, user) = match s("gid") {
            None => {
                if self.stores.grants.access_token_revoked(&jti_hash).await? {
                    return Err(bad("access token revoked"));
                }
                (None, None)
            }
            Some(g) => {
                let id: GrantId = g.parse().map_err(|_| bad("access token malformed"))?;
                let (revoked, found) = if with_user {
                    self.stores.grants.access_token_grant_user(&jti_hash, id).await?
                } else {
                    let (revoked, grant) = self.stores.grants.access_token_grant(&jti_hash, id).await?;
                    (revoked, grant.map(|g| (g, None)))
                };
                let (grant, user) =
                    found.filter(|(g, _)| !revoked && g.is_active(now)).ok_or_else(|| bad("access token revoked"))?;
                (Some(grant), user)
            }
        };
        let at = ValidAccessToken {
            sub: s("sub").ok_or_else(|| bad("access token has no sub"))?,
            client_id: s("client_id").ok_or_else(|| bad("access token has no client_id"))?,
            scope: Scope::parse(&s("scope").unwrap_or_default()).unwrap_or_default(),
            exp,
            grant,
            claims,
        };
        Ok((at, user))
    }

    /// Revokes one access token until it would have expired anyway.
    pub async fn revoke_access_token(&self, at: &ValidAccessToken) -> Result<(), OAuthError> {
        let jti = at.claims.get("jti").and_then(|v| v.as_str()).unwrap_or_default();
        self.stores.grants.revoke_access_token(&tokens::digest(jti), crate::domain::UnixTime(at.exp)).await?;
        Ok(())
    }

    pub async fn userinfo(&self, token: &str) -> Result<Claims, OAuthError> {
        let (at, user) = self.check_access_token(token, true).await?;
        if !at.scope.contains("openid") {
            return Err(OAuthError::insufficient_scope("the access token was not granted the openid scope"));
        }
        let grant = at.grant.as_ref().ok_or_else(|| OAuthError::invalid_token("not a user's access token"))?;
        let user = Self::active_user_of(grant, user, OAuthError::invalid_token)?;
        if user.id.to_string() != at.sub {
            return Err(OAuthError::invalid_token("access token malformed"));
        }
        let client = self
            .client(&grant.client_id)
            .await?
            .ok_or_else(|| OAuthError::invalid_token("the client no longer exists"))?;
        let mut out = user_claims(&user, &at.scope, grant.claims.as_ref(), "userinfo");
        for (k, v) in self.claims_hook.extra_claims(&user, &client, grant, &at.scope).await? {
            out.insert(k, v);
        }
        out.insert("sub".into(), serde_json::json!(user.id.to_string()));
        Ok(out)
    }
}
