//! Token introspection (RFC 7662), for authenticated confidential clients. Anything unknown,
//! revoked, expired or malformed is `{"active": false}` and nothing else. Who may learn what
//! (RFC 7662 §4): a client introspects the tokens issued to it; access tokens of other clients
//! only when it was registered as a resource server allowed to introspect (`introspection`);
//! refresh tokens only their owner. When the stores cannot answer, the answer is 503
//! (`temporarily_unavailable`), never `active:false`: a resource server must retry, not treat
//! a live token as revoked.

use serde_json::{json, Value};

use super::client_auth::PresentedCredentials;
use super::error::OAuthError;
use super::OidcProvider;
use crate::crypto::tokens;

impl OidcProvider {
    pub async fn introspect(&self, creds: PresentedCredentials, token: Option<&str>) -> Result<Value, OAuthError> {
        let client = self.authenticate_client(&creds).await?;
        if client.is_public() {
            return Err(OAuthError::invalid_client("public clients cannot introspect tokens"));
        }
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let inactive = json!({ "active": false });
        // The token's shape tells its kind (token_type_hint, §2.1, only optimises look-ups).
        if token.matches('.').count() == 2 {
            let at = match self.validate_access_token(token).await {
                Ok(at) => at,
                Err(e) if e.code.status() >= 500 => return Err(e),
                Err(_) => return Ok(inactive),
            };
            if at.client_id != client.client_id.as_str() && !client.introspection {
                return Ok(inactive);
            }
            let mut out = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": at.scope.to_string(),
                "client_id": at.client_id,
                "sub": at.sub,
                "exp": at.exp,
                "iss": self.issuer,
            });
            // The organization and RBAC claims too: a resource server introspecting gets what
            // one reading the JWT gets.
            for k in ["iat", "aud", "jti", "auth_time", "acr", "sid", "org", "roles", "permissions"] {
                if let Some(v) = at.claims.get(k) {
                    out[k] = v.clone();
                }
            }
            return Ok(out);
        }
        let now = self.clock.now();
        let Some((rec, grant, _)) = self.stores.grants.refresh_grant(&tokens::digest(token)).await? else {
            return Ok(inactive);
        };
        if rec.used_at.is_some()
            || rec.expires_at <= now
            || !grant.is_active(now)
            || grant.client_id != client.client_id
        {
            return Ok(inactive);
        }
        let mut out = json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": rec.scope,
            "client_id": grant.client_id.as_str(),
            "exp": rec.expires_at.0,
            "iat": rec.created_at.0,
            "iss": self.issuer,
        });
        if let Some(u) = grant.user_id {
            out["sub"] = json!(u.to_string());
        }
        if let Some(sid) = &grant.sid {
            out["sid"] = json!(sid);
        }
        Ok(out)
    }
}
