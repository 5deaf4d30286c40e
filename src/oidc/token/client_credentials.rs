//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client acting for itself.
//! No user, no ID token, no refresh token. User scopes (openid, profile, ...) are refused.

use crate::domain::{Client, Grant, GrantId};
use crate::oidc::error::OAuthError;
use crate::oidc::tokens::TokenResponse;
use crate::oidc::types::{Scope, SUPPORTED_SCOPES};
use crate::oidc::{secs, OidcProvider};

use super::TokenParams;

impl OidcProvider {
    pub(super) async fn grant_client_credentials(
        &self,
        client: &Client,
        p: &TokenParams,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::unauthorized_client("public clients cannot use client_credentials"));
        }
        let scope = Scope::parse(p.scope.as_deref().unwrap_or("")).map_err(OAuthError::invalid_scope)?;
        if let Some(s) = scope.iter().find(|s| SUPPORTED_SCOPES.contains(s)) {
            return Err(OAuthError::invalid_scope(format!(
                "{s} is a user scope; client_credentials acts for the client"
            )));
        }
        let now = self.clock.now();
        // Not stored: there is nothing to revoke as a family; the token is self-contained and
        // revocable by jti (RFC 7009).
        let grant = Grant {
            id: GrantId::new_random(),
            client_id: client.client_id.clone(),
            user_id: None,
            sid: None,
            scope: scope.joined(),
            offline: false,
            auth_time: now,
            acr: None,
            amr: vec![],
            claims: None,
            org_id: client.org_id,
            idp: None,
            created_at: now,
            expires_at: now.plus_secs(secs(self.cfg.access_token_ttl_secs)),
            revoked_at: None,
        };
        let access_token =
            self.mint_access_token(client, &grant, None, &scope, &crate::oidc::jwt::Claims::new(), now)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.cfg.access_token_ttl_secs,
            scope: scope.joined(),
            id_token: None,
            refresh_token: None,
        })
    }
}
