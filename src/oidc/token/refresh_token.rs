//! `grant_type=refresh_token` (RFC 6749 §6, OIDC Core §12, RFC 9700 §4.14.2): every use
//! rotates the token; presenting a used one again means it leaked, so the whole grant (its
//! family) is revoked — except a retry soon after the rotation while the replacement was never
//! used (`oidc.refresh_retry_grace_secs`): the answer was lost, the client gets a new token and
//! the unused replacement is retired (presenting it later is a reuse). The requested scope may only narrow; the new refresh token keeps the
//! original scope (RFC 6749 §6).

use crate::crypto::tokens;
use crate::domain::Client;
use crate::oidc::error::OAuthError;
use crate::oidc::tokens::TokenResponse;
use crate::oidc::types::Scope;
use crate::oidc::{secs, OidcProvider};
use crate::store::Consumed;

use super::{TokenParams, UserTokens};

impl OidcProvider {
    pub(super) async fn grant_refresh_token(
        &self,
        client: &Client,
        p: &TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = p
            .refresh_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
        let now = self.clock.now();
        let hash = tokens::digest(presented);
        // Check ownership before consuming, so another client cannot burn the token.
        let Some((peek, grant, user)) = self.stores.grants.refresh_grant(&hash).await? else {
            return Err(OAuthError::invalid_grant("refresh token invalid or expired"));
        };
        if grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant("refresh token was issued to another client"));
        }
        // A bad request must not burn the token: check the scope before consuming it.
        let token_scope = Scope::parse(&peek.scope).unwrap_or_default();
        let scope = match p.scope.as_deref().filter(|s| !s.is_empty()) {
            None => token_scope.clone(),
            Some(raw) => {
                let asked = Scope::parse(raw).map_err(OAuthError::invalid_scope)?;
                if !asked.is_subset(&token_scope) {
                    return Err(OAuthError::invalid_scope("a refresh can only narrow the scope"));
                }
                asked
            }
        };
        // Used already: a retry of a rotation whose answer was lost (soon after, and only while
        // the replacement is unused — checked when storing), or else a reuse.
        let retry = match peek.used_at {
            None => false,
            Some(used)
                if self.cfg.refresh_retry_grace_secs > 0
                    && used.secs_until(now) <= secs(self.cfg.refresh_retry_grace_secs) =>
            {
                true
            }
            Some(_) => return self.replayed(client, peek.grant_id, now, "refresh token").await,
        };
        if peek.expires_at <= now {
            return Err(OAuthError::invalid_grant("refresh token invalid or expired"));
        }
        if !grant.is_active(now) {
            return Err(OAuthError::invalid_grant("the authorization was revoked or has expired"));
        }
        let user = Self::active_user_of(&grant, user, OAuthError::invalid_grant)?;
        self.check_membership(&grant, &user).await?;
        let (res, successor) = self
            .user_token_response(UserTokens {
                client,
                grant: &grant,
                user: &user,
                scope: &scope,
                nonce: None,
                refresh_scope: Some(&token_scope),
                now,
            })
            .await?;
        let successor = successor.ok_or_else(|| OAuthError::server_error("no successor refresh token"))?;
        // The one write, last: the old token is spent only together with its successor stored.
        let stored = if retry {
            tracing::info!(client_id = %client.client_id, grant_id = %grant.id, "refresh retried after a lost answer");
            self.stores.grants.retry_rotation(&hash, now, &successor).await?
        } else {
            self.stores.grants.rotate_refresh(&hash, now, &successor).await?
        };
        match stored {
            Consumed::Fresh(_) => Ok(res),
            Consumed::Replayed(grant_id) => self.replayed(client, grant_id, now, "refresh token").await,
            Consumed::NotFound => Err(OAuthError::invalid_grant("refresh token invalid or expired")),
        }
    }
}
