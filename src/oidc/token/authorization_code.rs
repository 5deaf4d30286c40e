//! `grant_type=authorization_code` (RFC 6749 §4.1.3, OIDC Core §3.1.3.2, RFC 7636 §4.6).
//! The code is consumed atomically; a second presentation revokes the grant, and with it every
//! token issued from the code (RFC 6749 §4.1.2, RFC 9700 §4.2.4).

use crate::crypto::tokens;
use crate::domain::{Client, GrantType};
use crate::oidc::error::OAuthError;
use crate::oidc::pkce;
use crate::oidc::tokens::TokenResponse;
use crate::oidc::types::Scope;
use crate::oidc::OidcProvider;
use crate::store::Consumed;

use super::{TokenParams, UserTokens};

impl OidcProvider {
    pub(super) async fn grant_authorization_code(
        &self,
        client: &Client,
        p: &TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        let code = p
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
        let now = self.clock.now();
        let rec = match self.stores.grants.consume_code(&tokens::digest(code), now).await? {
            Consumed::Fresh(c) => c,
            Consumed::Replayed(grant_id) => {
                tracing::warn!(client_id = %client.client_id, %grant_id, "authorization code replayed: revoking its grant");
                self.stores.grants.revoke_grant(grant_id, now).await?;
                return Err(OAuthError::invalid_grant("authorization code already used"));
            }
            Consumed::NotFound => return Err(OAuthError::invalid_grant("authorization code invalid or expired")),
        };
        let grant = self
            .stores
            .grants
            .grant(rec.grant_id)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("authorization code invalid or expired"))?;
        if grant.client_id != client.client_id {
            return Err(OAuthError::invalid_grant("authorization code was issued to another client"));
        }
        if p.redirect_uri.as_deref() != Some(rec.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
        }
        match (&rec.code_challenge, p.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce::verify(challenge, verifier) => {}
            (Some(_), Some(_)) => return Err(OAuthError::invalid_grant("PKCE verification failed")),
            (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
            (None, Some(_)) => return Err(OAuthError::invalid_grant("code_verifier sent but no code_challenge was")),
            (None, None) => {}
        }
        if !grant.is_active(now) {
            return Err(OAuthError::invalid_grant("the authorization was revoked"));
        }
        let user = self.active_user(grant.user_id, OAuthError::invalid_grant).await?;
        let scope = Scope::parse(&grant.scope).unwrap_or_default();
        let refresh = client.allows(GrantType::RefreshToken).then_some(&scope);
        self.user_token_response(UserTokens {
            client,
            grant: &grant,
            user: &user,
            scope: &scope,
            nonce: rec.nonce.as_deref(),
            refresh_scope: refresh,
            now,
        })
        .await
    }
}
