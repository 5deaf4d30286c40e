//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 §2.3, OIDC Core §9, RFC 7523 §2.2). Exactly one method per request, and it must be
//! the one the client registered. `private_key_jwt` assertions are single use (`jti` replay
//! cache in the shared ephemeral store).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::clients::secret_matches;
use super::error::OAuthError;
use super::jwt::{self, Claims, JwtError};
use super::OidcProvider;
use crate::domain::{Client, ClientAuthMethod, ClientId, UnixTime};
use crate::store::ephemeral_keys::EphemeralKey;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the request carried: the form fields (flattened into each endpoint's parameters) plus,
/// set by the HTTP layer, the `Authorization: Basic` pair.
#[derive(Default, Clone, serde::Deserialize)]
#[serde(default)]
pub struct PresentedCredentials {
    /// From `Authorization: Basic` (already form-url-decoded, RFC 6749 §2.3.1).
    #[serde(skip)]
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

impl std::fmt::Debug for PresentedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// Client JWK Sets fetched from `jwks_uri` (None: the last fetch failed), with when.
#[derive(Default)]
pub struct JwksCache(Mutex<HashMap<String, (UnixTime, Option<serde_json::Value>)>>);

const JWKS_CACHE_SECS: i64 = 300;
/// At most one fetch a minute per URI outside the regular expiry (unknown kid, failed fetch).
const JWKS_REFETCH_SECS: i64 = 60;

impl OidcProvider {
    pub async fn authenticate_client(&self, p: &PresentedCredentials) -> Result<Client, OAuthError> {
        let assertion = p.client_assertion.is_some() || p.client_assertion_type.is_some();
        let methods = [p.basic.is_some(), p.client_secret.is_some(), assertion].iter().filter(|m| **m).count();
        if methods > 1 {
            return Err(OAuthError::invalid_request("use exactly one client authentication method"));
        }
        let (presented_method, claimed_id) = if let Some((id, _)) = &p.basic {
            if p.client_id.as_ref().is_some_and(|c| c != id) {
                return Err(OAuthError::invalid_request("client_id does not match the Authorization header"));
            }
            (ClientAuthMethod::ClientSecretBasic, Some(id.clone()))
        } else if p.client_secret.is_some() {
            (ClientAuthMethod::ClientSecretPost, p.client_id.clone())
        } else if assertion {
            if p.client_assertion_type.as_deref() != Some(JWT_BEARER) {
                return Err(OAuthError::invalid_request(format!("client_assertion_type must be {JWT_BEARER}")));
            }
            let a =
                p.client_assertion.as_deref().ok_or_else(|| OAuthError::invalid_request("client_assertion missing"))?;
            // The subject names the client; verified below against its keys.
            let sub = jwt::peek_claims(a)
                .ok()
                .and_then(|c| c.get("sub").and_then(|s| s.as_str()).map(str::to_owned))
                .ok_or_else(|| OAuthError::invalid_client("client_assertion is not a JWT with a sub"))?;
            if p.client_id.as_ref().is_some_and(|c| *c != sub) {
                return Err(OAuthError::invalid_client("client_id does not match the assertion"));
            }
            (ClientAuthMethod::PrivateKeyJwt, Some(sub))
        } else {
            (ClientAuthMethod::None, p.client_id.clone())
        };
        let id = claimed_id.ok_or_else(|| OAuthError::invalid_client("client authentication required"))?;
        if id.is_empty() || id.len() > 128 {
            return Err(OAuthError::invalid_client("unknown client"));
        }
        let client = self
            .client(&ClientId::new(id))
            .await?
            .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
        if !compatible(client.token_endpoint_auth_method, presented_method) {
            return Err(OAuthError::invalid_client(format!(
                "this client must authenticate with {}",
                client.token_endpoint_auth_method
            )));
        }
        match presented_method {
            ClientAuthMethod::ClientSecretBasic | ClientAuthMethod::ClientSecretPost => {
                let secret = p.basic.as_ref().map(|(_, s)| s.as_str()).or(p.client_secret.as_deref()).unwrap_or("");
                if !secret_matches(&self.secret, &client, secret) {
                    return Err(OAuthError::invalid_client("client authentication failed"));
                }
            }
            ClientAuthMethod::PrivateKeyJwt => {
                self.check_assertion(&client, p.client_assertion.as_deref().unwrap_or("")).await?;
            }
            ClientAuthMethod::None => {}
        }
        Ok(client)
    }

    async fn check_assertion(&self, client: &Client, assertion: &str) -> Result<(), OAuthError> {
        let bad = |why: &str| OAuthError::invalid_client(format!("client_assertion rejected: {why}"));
        let jwks = self.client_jwks(client, false).await.ok_or_else(|| bad("client keys unavailable"))?;
        let claims = match jwt::verify_with_jwks(&jwks, assertion) {
            Ok(c) => c,
            // A kid we do not know: the client may have rotated its keys. Refetch — only for an
            // unknown kid, and at most once a minute per client, so that unauthenticated
            // requests cannot make us hammer the client's jwks_uri.
            Err(JwtError::UnknownKey) if client.jwks_uri.is_some() => match self.client_jwks(client, true).await {
                Some(fresh) => jwt::verify_with_jwks(&fresh, assertion).map_err(|e| bad(&e.to_string()))?,
                None => return Err(bad("client keys unavailable")),
            },
            Err(e) => return Err(bad(&e.to_string())),
        };
        let now = self.clock.now();
        let id = client.client_id.as_str();
        let s = |k: &str| claims.get(k).and_then(|v| v.as_str());
        if s("iss") != Some(id) || s("sub") != Some(id) {
            return Err(bad("iss and sub must be the client_id"));
        }
        if !audience_ok(&claims, &self.issuer, &self.endpoint(super::paths::TOKEN)) {
            return Err(bad("aud must be the issuer or the token endpoint URL"));
        }
        let exp = jwt::numeric_date(&claims, "exp").ok_or_else(|| bad("exp missing"))?;
        if exp <= now.0 {
            return Err(bad("expired"));
        }
        if exp > now.0 + 600 {
            return Err(bad("exp too far in the future (at most 10 minutes)"));
        }
        if jwt::numeric_date(&claims, "nbf").is_some_and(|nbf| nbf > now.0 + 60) {
            return Err(bad("not valid yet"));
        }
        let jti = s("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or_else(|| bad("jti missing"))?;
        let key =
            EphemeralKey::AssertionJti { client_id: id.to_owned(), jti_digest: crate::crypto::tokens::digest(jti) }
                .to_string();
        let ttl = Duration::from_secs(u64::try_from(exp - now.0 + 60).unwrap_or(660));
        if !self.stores.ephemeral.put_if_absent(&key, b"1", ttl).await? {
            return Err(bad("jti already used"));
        }
        Ok(())
    }

    /// The client's JWK Set: inline, or fetched from `jwks_uri` and kept five minutes.
    /// `refresh` asks for a new copy, granted at most once a minute per URI; a failed fetch is
    /// remembered a minute too (a client whose endpoint is down is not asked on every request).
    pub async fn client_jwks(&self, client: &Client, refresh: bool) -> Option<serde_json::Value> {
        if let Some(j) = &client.jwks {
            return Some(j.clone());
        }
        let uri = client.jwks_uri.as_ref()?;
        let now = self.clock.now();
        let cached = self.jwks_cache.0.lock().ok().and_then(|c| c.get(uri).cloned());
        if let Some((at, v)) = &cached {
            let age = at.secs_until(now);
            let fresh_enough = if refresh || v.is_none() { age < JWKS_REFETCH_SECS } else { age < JWKS_CACHE_SECS };
            if fresh_enough {
                return v.clone();
            }
        }
        let fetched = self.fetch_jwks(client, uri).await;
        if let Ok(mut cache) = self.jwks_cache.0.lock() {
            // A failed refetch keeps the last good set (marked as just tried).
            let keep = fetched.clone().or_else(|| cached.and_then(|(_, v)| v));
            cache.insert(uri.clone(), (now, keep.clone()));
            return keep;
        }
        fetched
    }

    async fn fetch_jwks(&self, client: &Client, uri: &str) -> Option<serde_json::Value> {
        let res = match self.client_request(client, |h| h.get(uri)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(client_id = %client.client_id, error = %e, "jwks_uri fetch failed");
                return None;
            }
        };
        if !res.status().is_success() {
            tracing::warn!(client_id = %client.client_id, status = %res.status(), "jwks_uri fetch failed");
            return None;
        }
        res.json().await.ok()
    }
}

/// The registered method must be the one used — except that client_secret_basic and
/// client_secret_post carry the same secret and are accepted for each other (as Keycloak does):
/// libraries differ in their default (openid-client posts, most others use Basic).
fn compatible(registered: ClientAuthMethod, presented: ClientAuthMethod) -> bool {
    use ClientAuthMethod::{ClientSecretBasic, ClientSecretPost};
    registered == presented
        || matches!(
            (registered, presented),
            (ClientSecretBasic, ClientSecretPost) | (ClientSecretPost, ClientSecretBasic)
        )
}

/// RFC 7523 §3: the audience identifies the authorization server: its issuer identifier, or
/// (as widely deployed) the token endpoint URL. Every audience listed must be one of these: an
/// assertion also addressed to someone else is refused.
fn audience_ok(claims: &Claims, issuer: &str, token_endpoint: &str) -> bool {
    let ok = |a: &serde_json::Value| a.as_str().is_some_and(|a| a == issuer || a == token_endpoint);
    match claims.get("aud") {
        Some(a @ serde_json::Value::String(_)) => ok(a),
        Some(serde_json::Value::Array(v)) => !v.is_empty() && v.iter().all(ok),
        _ => false,
    }
}
