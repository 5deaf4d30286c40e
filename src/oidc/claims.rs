//! User claims (OIDC Core §5.1) released by scope (§5.4) and by the `claims` request (§5.5),
//! plus a hook for claims other modules add (organisations, roles: the RBAC issue).

use async_trait::async_trait;
use serde_json::{json, Value};

use super::jwt::Claims;
use super::types::Scope;
use crate::domain::{Client, Grant, User};

/// Extra claims for the ID token, the access token and userinfo, computed when each is issued
/// (so a change shows in the next token): resources, organization, roles, permissions. A store
/// failure fails the request (503) rather than issuing a token with claims missing.
#[async_trait]
pub trait ClaimsHook: Send + Sync {
    async fn extra_claims(
        &self,
        user: &User,
        client: &Client,
        grant: &Grant,
        scope: &Scope,
    ) -> Result<Claims, crate::store::StoreError>;
}

pub struct NoExtraClaims;

#[async_trait]
impl ClaimsHook for NoExtraClaims {
    async fn extra_claims(
        &self,
        _user: &User,
        _client: &Client,
        _grant: &Grant,
        _scope: &Scope,
    ) -> Result<Claims, crate::store::StoreError> {
        Ok(Claims::new())
    }
}

/// Several hooks, their claims merged in order.
pub struct ClaimsHooks(pub Vec<std::sync::Arc<dyn ClaimsHook>>);

#[async_trait]
impl ClaimsHook for ClaimsHooks {
    async fn extra_claims(
        &self,
        user: &User,
        client: &Client,
        grant: &Grant,
        scope: &Scope,
    ) -> Result<Claims, crate::store::StoreError> {
        let mut out = Claims::new();
        for h in &self.0 {
            out.extend(h.extra_claims(user, client, grant, scope).await?);
        }
        Ok(out)
    }
}

/// Every claim the user has, by name.
fn all_claims(user: &User) -> Claims {
    let mut c = Claims::new();
    if let Some(n) = &user.name {
        c.insert("name".into(), json!(n));
    }
    if let Some(l) = &user.locale {
        c.insert("locale".into(), json!(l));
    }
    c.insert("updated_at".into(), json!(user.updated_at.0));
    c.insert("email".into(), json!(user.email.as_str()));
    c.insert("email_verified".into(), json!(user.email_verified));
    if let Some(p) = &user.phone_number {
        c.insert("phone_number".into(), json!(p));
        c.insert("phone_number_verified".into(), json!(user.phone_number_verified));
    }
    if let Some(a) = &user.address {
        c.insert("address".into(), a.clone());
    }
    c
}

pub const PROFILE_CLAIMS: &[&str] = &[
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];

fn scope_claim_names(scope: &Scope) -> Vec<&'static str> {
    let mut names = Vec::new();
    if scope.contains("profile") {
        names.extend_from_slice(PROFILE_CLAIMS);
    }
    if scope.contains("email") {
        names.extend_from_slice(&["email", "email_verified"]);
    }
    if scope.contains("phone") {
        names.extend_from_slice(&["phone_number", "phone_number_verified"]);
    }
    if scope.contains("address") {
        names.push("address");
    }
    names
}

/// Claims released for `scope` plus those individually requested in `claims_request[member]`
/// (`member` = "userinfo" or "id_token"). Claims the user lacks are omitted (§5.3.2).
pub fn user_claims(user: &User, scope: &Scope, claims_request: Option<&Value>, member: &str) -> Claims {
    let all = all_claims(user);
    let mut out = Claims::new();
    for n in scope_claim_names(scope) {
        if let Some(v) = all.get(n) {
            out.insert(n.to_owned(), v.clone());
        }
    }
    if let Some(req) = claims_request.and_then(|c| c.get(member)).and_then(|m| m.as_object()) {
        for name in req.keys() {
            if let Some(v) = all.get(name) {
                out.insert(name.clone(), v.clone());
            }
        }
    }
    out
}

/// The scope that would release `claim` (OIDC Core §5.4), if any.
fn scope_of_claim(claim: &str) -> Option<&'static str> {
    match claim {
        "email" | "email_verified" => Some("email"),
        "phone_number" | "phone_number_verified" => Some("phone"),
        "address" => Some("address"),
        c if PROFILE_CLAIMS.contains(&c) => Some("profile"),
        _ => None,
    }
}

/// The scopes whose claims a `claims` request asks for individually (§5.5). Consent is given,
/// shown and remembered in terms of scopes, so a claim asked for by name needs the consent its
/// scope would: `claims={"id_token":{"email":null}}` is consented to as `email`.
pub fn scopes_of_claims_request(claims_request: Option<&Value>) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for member in ["userinfo", "id_token"] {
        if let Some(req) = claims_request.and_then(|c| c.get(member)).and_then(|m| m.as_object()) {
            for s in req.keys().filter_map(|k| scope_of_claim(k)) {
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Validates a `claims` request parameter (§5.5): a JSON object whose `userinfo` / `id_token`
/// members are objects.
pub fn parse_claims_request(raw: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(raw).map_err(|_| "claims is not a valid JSON object".to_owned())?;
    let obj = v.as_object().ok_or("claims must be a JSON object")?;
    for (k, m) in obj {
        if matches!(k.as_str(), "userinfo" | "id_token") && !m.is_object() {
            return Err(format!("claims.{k} must be a JSON object"));
        }
    }
    Ok(v)
}

/// The names all scopes can release, for discovery's `claims_supported`.
pub fn supported_claim_names() -> Vec<&'static str> {
    vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "sid",
        "name",
        "locale",
        "updated_at",
        "email",
        "email_verified",
        "phone_number",
        "phone_number_verified",
        "address",
        "resources",
        "org",
        "roles",
        "permissions",
    ]
}
