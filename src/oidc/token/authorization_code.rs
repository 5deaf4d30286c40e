//! `grant_type=authorization_code` (RFC 6749 §4.1.3, OIDC Core §3.1.3.2, RFC 7636 §4.6).
//! The code is consumed atomically, together with storing the first refresh token, after every
//! check; a second presentation revokes the grant, and with it every token issued from the code
//! (RFC 6749 §4.1.2, RFC 9700 §4.2.4). A request that fails before that leaves the code usable.

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
        let hash = tokens::digest(code);
        // Every check and read first, the single write last: a request that fails (bad input,
        // or a store that is down) leaves the code redeemable.
        let rec = match self.stores.grants.code(&hash).await? {
            Some((c, false)) if c.expires_at > now => c,
            Some((c, true)) => return self.replayed(client, c.grant_id, now, "authorization code").await,
            _ => return Err(OAuthError::invalid_grant("authorization code invalid or expired")),
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
        self.check_membership(&grant, &user).await?;
        let scope = Scope::parse(&grant.scope).unwrap_or_default();
        let refresh = client.allows(GrantType::RefreshToken).then_some(&scope);
        let (res, refresh) = self
            .user_token_response(UserTokens {
                client,
                grant: &grant,
                user: &user,
                scope: &scope,
                nonce: rec.nonce.as_deref(),
                refresh_scope: refresh,
                now,
            })
            .await?;
        match self.stores.grants.redeem_code(&hash, now, refresh.as_ref()).await? {
            Consumed::Fresh(_) => Ok(res),
            Consumed::Replayed(grant_id) => self.replayed(client, grant_id, now, "authorization code").await,
            Consumed::NotFound => Err(OAuthError::invalid_grant("authorization code invalid or expired")),
        }
    }
}
