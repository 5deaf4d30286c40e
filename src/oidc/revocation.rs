//! Token revocation (RFC 7009). A refresh token revokes its whole grant (and so the access
//! tokens issued from it, §2.1); an access token is revoked by its `jti` until it expires.
//! Unknown, invalid or foreign tokens get the same 200 (§2.2): no oracle.

use super::client_auth::PresentedCredentials;
use super::error::OAuthError;
use super::OidcProvider;
use crate::crypto::tokens;

impl OidcProvider {
    pub async fn revoke(&self, creds: PresentedCredentials, token: Option<&str>) -> Result<(), OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let now = self.clock.now();
        if token.matches('.').count() == 2 {
            if let Ok(at) = self.validate_access_token(token).await {
                if at.client_id == client.client_id.as_str() {
                    self.revoke_access_token(&at).await?;
                }
            }
            return Ok(());
        }
        if let Some((_, grant, _)) = self.stores.grants.refresh_grant(&tokens::digest(token)).await? {
            if grant.client_id == client.client_id {
                self.stores.grants.revoke_grant(grant.id, now).await?;
            }
        }
        Ok(())
    }
}
