//! Minting: RFC 9068 JWT access tokens, OIDC ID tokens (Core §2, §3.1.3.6 `at_hash`), opaque
//! refresh tokens (only their SHA-256 is stored).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256, Sha512};

use super::claims::user_claims;
use super::error::OAuthError;
use super::jwt::{self, Claims};
use super::types::Scope;
use super::{secs, OidcProvider};
use crate::crypto::tokens;
use crate::domain::{Client, Grant, NewRefresh, SigningAlg, UnixTime, User};

/// A token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// OIDC Core §3.1.3.6: left half of the hash of the access token, with the hash of the alg
/// (SHA-256 for RS256/ES256; SHA-512 for EdDSA over Ed25519).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest: Vec<u8> = match alg {
        SigningAlg::EdDSA => Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

impl OidcProvider {
    fn sign(&self, alg: SigningAlg, typ: &str, claims: &Claims) -> Result<String, OAuthError> {
        let key = self.keys.signing_key(alg).ok_or_else(|| {
            tracing::error!(%alg, "no active signing key");
            OAuthError::server_error("no signing key")
        })?;
        Ok(jwt::encode(&key, typ, claims)?)
    }

    /// RFC 9068 access token. `sub` is the user, or the client itself for client_credentials.
    pub fn mint_access_token(
        &self,
        client: &Client,
        grant: &Grant,
        user: Option<&User>,
        scope: &Scope,
        extra: &Claims,
        now: UnixTime,
    ) -> Result<String, OAuthError> {
        // Extra claims first: the registered ones below always win.
        let mut c = extra.clone();
        c.insert("iss".into(), json!(self.issuer));
        c.insert(
            "sub".into(),
            json!(user.map(|u| u.id.to_string()).unwrap_or_else(|| client.client_id.as_str().to_owned())),
        );
        c.insert("aud".into(), json!(client.client_id.as_str()));
        c.insert("client_id".into(), json!(client.client_id.as_str()));
        c.insert("iat".into(), json!(now.0));
        c.insert("exp".into(), json!(now.plus_secs(secs(self.cfg.access_token_ttl_secs)).0));
        c.insert("jti".into(), json!(tokens::random_id()));
        c.insert("scope".into(), json!(scope.joined()));
        if user.is_some() {
            c.insert("auth_time".into(), json!(grant.auth_time.0));
            if let Some(acr) = &grant.acr {
                c.insert("acr".into(), json!(acr));
            }
            c.insert("amr".into(), json!(grant.amr));
        }
        if let Some(sid) = &grant.sid {
            c.insert("sid".into(), json!(sid));
        }
        // Grant id: revoking the grant (replayed code, reused refresh token, logout) revokes
        // this token at userinfo and introspection. client_credentials grants are not stored.
        if user.is_some() {
            c.insert("gid".into(), json!(grant.id.to_string()));
        }
        self.sign(client.id_token_signed_response_alg, "at+jwt", &c)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn mint_id_token(
        &self,
        client: &Client,
        grant: &Grant,
        user: &User,
        scope: &Scope,
        nonce: Option<&str>,
        access_token: &str,
        extra: &Claims,
        now: UnixTime,
    ) -> Result<String, OAuthError> {
        let alg = client.id_token_signed_response_alg;
        let mut c = if client.id_token_claims {
            user_claims(user, scope, grant.claims.as_ref(), "id_token")
        } else {
            user_claims(user, &Scope::default(), grant.claims.as_ref(), "id_token")
        };
        for (k, v) in extra {
            c.insert(k.clone(), v.clone());
        }
        c.insert("iss".into(), json!(self.issuer));
        c.insert("sub".into(), json!(user.id.to_string()));
        c.insert("aud".into(), json!(client.client_id.as_str()));
        c.insert("azp".into(), json!(client.client_id.as_str()));
        c.insert("iat".into(), json!(now.0));
        c.insert("exp".into(), json!(now.plus_secs(secs(self.cfg.id_token_ttl_secs)).0));
        c.insert("auth_time".into(), json!(grant.auth_time.0));
        if let Some(n) = nonce {
            c.insert("nonce".into(), json!(n));
        }
        if let Some(acr) = &grant.acr {
            c.insert("acr".into(), json!(acr));
        }
        c.insert("amr".into(), json!(grant.amr));
        if let Some(idp) = &grant.idp {
            c.insert("idp".into(), json!(idp));
        }
        if let Some(sid) = &grant.sid {
            c.insert("sid".into(), json!(sid));
        }
        c.insert("at_hash".into(), json!(at_hash(alg, access_token)));
        self.sign(alg, "JWT", &c)
    }

    /// A new refresh token in `grant`: random; only its digest is stored (by the caller, in the
    /// same transaction that consumes what it replaces). Expires with the grant at the latest.
    pub fn new_refresh_token(&self, grant: &Grant, scope: &Scope, now: UnixTime) -> (String, NewRefresh) {
        let token = tokens::random_token();
        let exp = now.plus_secs(secs(self.cfg.refresh_token_ttl_secs)).min(grant.expires_at);
        let rec = NewRefresh {
            token_hash: tokens::digest(&token),
            grant_id: grant.id,
            scope: scope.joined(),
            expires_at: exp,
        };
        (token, rec)
    }

    /// Logout token (Back-Channel Logout 1.0 §2.4).
    pub fn mint_logout_token(
        &self,
        client: &Client,
        sub: Option<&str>,
        sid: Option<&str>,
        jti: &str,
    ) -> Result<String, OAuthError> {
        let now = self.clock.now();
        let mut c = Claims::new();
        c.insert("iss".into(), json!(self.issuer));
        c.insert("aud".into(), json!(client.client_id.as_str()));
        c.insert("iat".into(), json!(now.0));
        c.insert("exp".into(), json!(now.plus_secs(120).0));
        c.insert("jti".into(), json!(jti));
        if let Some(u) = sub {
            c.insert("sub".into(), json!(u));
        }
        if let Some(sid) = sid {
            c.insert("sid".into(), json!(sid));
        }
        c.insert("events".into(), json!({ "http://schemas.openid.net/event/backchannel-logout": {} }));
        self.sign(client.id_token_signed_response_alg, "logout+jwt", &c)
    }
}
