//! The OAuth clients an organization owns (bound to it: only its members sign in to them).
//!
//! The registration rules are the CLI's (`src/oidc/clients.rs`): redirect URIs compared exactly,
//! https but on loopback, no fragments or credentials... An organization cannot make first-party
//! or introspecting clients (the operator's), and the URLs Guichet calls (`jwks_uri`,
//! `backchannel_logout_uri`) pass the outbound-URL policy. The secret of a secret-based client
//! is shown once, at creation and at each rotation (the old one stops at once).
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::rbac::{check_if_match, etag_of, json_body, with_etag};
use super::*;
use crate::domain::{ApplicationType, Client, ClientAuthMethod, ClientId, GrantType, SigningAlg};
use crate::oidc::clients::{registration_of, Registration, RegistrationError};
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/clients", get(list_clients).post(create_client))
        .route("/orgs/{org}/clients/{client_id}", get(get_client).put(put_client).delete(delete_client))
        .route("/orgs/{org}/clients/{client_id}/secret", post(rotate_secret))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_clients, create_client, get_client, put_client, delete_client, rotate_secret),
    components(schemas(ClientView, ClientInput, ClientCreated, ClientSecret, AuthMethodWire, ApplicationTypeWire, GrantTypeWire, SigningAlgWire)),
    tags((name = "clients"))
)]
pub(super) struct Doc;

// ---------------------------------------------------------------- wire types

/// How the client authenticates at the token endpoint (RFC 6749 §2.3, OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethodWire {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

/// `web` (https redirect URIs) or `native` (loopback or a private-use scheme, RFC 8252).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationTypeWire {
    Web,
    Native,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GrantTypeWire {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

/// The algorithm of the ID tokens issued to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum SigningAlgWire {
    RS256,
    ES256,
    EdDSA,
}

macro_rules! map_enum {
    ($wire:ident <=> $domain:ident { $($v:ident),* }) => {
        impl From<$wire> for $domain {
            fn from(w: $wire) -> Self {
                match w { $($wire::$v => $domain::$v),* }
            }
        }
        impl From<$domain> for $wire {
            fn from(d: $domain) -> Self {
                match d { $($domain::$v => $wire::$v),* }
            }
        }
    };
}

map_enum!(AuthMethodWire <=> ClientAuthMethod { ClientSecretBasic, ClientSecretPost, PrivateKeyJwt, None });
map_enum!(ApplicationTypeWire <=> ApplicationType { Web, Native });
map_enum!(GrantTypeWire <=> GrantType { AuthorizationCode, RefreshToken, ClientCredentials });
map_enum!(SigningAlgWire <=> SigningAlg { RS256, ES256, EdDSA });

/// An OAuth client of the organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub client_id: String,
    pub name: String,
    pub token_endpoint_auth_method: AuthMethodWire,
    pub application_type: ApplicationTypeWire,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantTypeWire>,
    pub backchannel_logout_uri: Option<String>,
    pub jwks_uri: Option<String>,
    /// An inline JWK Set (`private_key_jwt`).
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    pub id_token_signed_response_alg: SigningAlgWire,
    /// Scope claims in the ID token too, not only at userinfo.
    pub id_token_claims: bool,
    /// Sign-ins to it need a second factor.
    pub require_mfa: bool,
    /// Set by the operator only: consent is not asked.
    pub first_party: bool,
    /// Set by the operator only: may introspect other clients' tokens.
    pub introspection: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<&Client> for ClientView {
    fn from(c: &Client) -> Self {
        Self {
            client_id: c.client_id.to_string(),
            name: c.name.clone(),
            token_endpoint_auth_method: c.token_endpoint_auth_method.into(),
            application_type: c.application_type.into(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.iter().map(|g| (*g).into()).collect(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            jwks_uri: c.jwks_uri.clone(),
            jwks: c.jwks.clone(),
            id_token_signed_response_alg: c.id_token_signed_response_alg.into(),
            id_token_claims: c.id_token_claims,
            require_mfa: c.require_mfa,
            first_party: c.first_party,
            introspection: c.introspection,
            created_at: c.created_at.0,
        }
    }
}

/// The body of `POST .../clients` and `PUT .../clients/{client_id}` (a PUT replaces: what is
/// left out takes its default, as at creation).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientInput {
    /// 1 to 200 characters.
    pub name: String,
    /// Exact URIs (https; http only on loopback; native clients: loopback or a reverse-domain
    /// scheme). Needed for `authorization_code`.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// `client_secret_basic` by default. It cannot change once registered.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<AuthMethodWire>,
    /// `web` by default.
    #[serde(default)]
    pub application_type: Option<ApplicationTypeWire>,
    /// Default: `authorization_code` + `refresh_token` with redirect URIs, else
    /// `client_credentials`.
    #[serde(default)]
    pub grant_types: Option<Vec<GrantTypeWire>>,
    /// Back-channel logout (OIDC Back-Channel Logout 1.0): a public https URL.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// `private_key_jwt`: where its keys are (a public https URL), or `jwks`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// `RS256` by default.
    #[serde(default)]
    pub id_token_signed_response_alg: Option<SigningAlgWire>,
    /// true by default.
    #[serde(default)]
    pub id_token_claims: Option<bool>,
    #[serde(default)]
    pub require_mfa: bool,
}

/// A client just created: its secret is shown this once (null for clients without one).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientCreated {
    pub client: ClientView,
    pub client_secret: Option<String>,
}

/// A new secret, shown this once; the previous one no longer works.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientSecret {
    pub client_id: String,
    pub client_secret: String,
}

const MAX_URIS: usize = 50;
const MAX_URI_LEN: usize = 2048;

impl ClientInput {
    /// The registration it asks for; `current`: the client a PUT replaces (its auth method
    /// stays when none is given).
    fn registration(self, org: crate::domain::OrgId, current: Option<&Client>) -> ApiResult<Registration> {
        let too_many = self.redirect_uris.len() > MAX_URIS || self.post_logout_redirect_uris.len() > MAX_URIS;
        let uris = self.redirect_uris.iter().chain(&self.post_logout_redirect_uris);
        let too_long =
            uris.chain(self.backchannel_logout_uri.iter()).chain(self.jwks_uri.iter()).any(|u| u.len() > MAX_URI_LEN);
        if too_many || too_long {
            return Err(ApiError::bad_request(format!(
                "at most {MAX_URIS} URIs of each kind, each at most {MAX_URI_LEN} bytes"
            )));
        }
        let grant_types = match self.grant_types {
            Some(g) => {
                let mut g: Vec<GrantType> = g.into_iter().map(GrantType::from).collect();
                g.sort();
                g.dedup();
                g
            }
            None if self.redirect_uris.is_empty() => vec![GrantType::ClientCredentials],
            None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        };
        let auth_method = match (self.token_endpoint_auth_method, current) {
            (Some(m), _) => m.into(),
            (None, Some(c)) => c.token_endpoint_auth_method,
            (None, None) => ClientAuthMethod::ClientSecretBasic,
        };
        Ok(Registration {
            name: self.name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            auth_method,
            application_type: self.application_type.map(Into::into).unwrap_or(ApplicationType::Web),
            grant_types,
            jwks_uri: self.jwks_uri.filter(|u| !u.trim().is_empty()),
            jwks: self.jwks,
            // The operator's switches stay as they are (an organization cannot set them).
            first_party: current.is_some_and(|c| c.first_party),
            backchannel_logout_uri: self.backchannel_logout_uri.filter(|u| !u.trim().is_empty()),
            id_token_signed_response_alg: self
                .id_token_signed_response_alg
                .map(Into::into)
                .unwrap_or(SigningAlg::RS256),
            id_token_claims: self.id_token_claims.unwrap_or(true),
            introspection: current.is_some_and(|c| c.introspection),
            require_mfa: self.require_mfa,
            org_id: Some(org),
        })
    }
}

/// A registration refusal as a 400 problem naming the fields as the API does (the rules are
/// worded for the CLI's flags).
fn registration_error(e: RegistrationError) -> ApiError {
    match e {
        RegistrationError::Invalid(m) => {
            let mut m = m;
            for (flag, field) in [
                ("--redirect-uri", "redirect_uris"),
                ("--jwks-uri", "jwks_uri"),
                ("--jwks", "jwks"),
                ("--backchannel-logout-uri", "backchannel_logout_uri"),
                ("--introspection", "introspection"),
                ("--name", "name"),
            ] {
                m = m.replace(flag, field);
            }
            ApiError::bad_request(m)
        }
        RegistrationError::Store(crate::store::StoreError::NotFound) => ApiError::not_found(),
        RegistrationError::Store(s) => s.into(),
    }
}

/// The organization's client `id` (404 otherwise: unknown, another organization's, or the
/// operator's).
async fn org_client(state: &AppState, org: &crate::domain::org::Org, id: &str) -> ApiResult<Option<Client>> {
    let id = id.trim();
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Ok(None);
    }
    Ok(state.oidc.client_of_org(org.id, &ClientId::new(id)).await?)
}

async fn audit(state: &AppState, c: &Caller, org: &crate::domain::org::Org, action: &str, detail: serde_json::Value) {
    state.orgs.audit_event(action, org.id, c.actor, Some(detail)).await;
}

// ---------------------------------------------------------------- handlers

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clients", tag = "clients",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<ClientView>, description = "The organization's clients, oldest first"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_clients(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<ClientView>>> {
    let org = org_of(&state, &c, &org, false).await?;
    let list = state.oidc.clients_of_org(org.id).await?;
    Ok(Json(list.iter().map(ClientView::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clients", tag = "clients",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = ClientInput,
    responses((status = 201, body = ClientCreated, description = "Registered; the secret is shown this once",
            headers(("ETag" = String, description = "The client's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, or a registration rule broken (the reason in `detail`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_client(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let input: ClientInput = json_body(&body)?;
    let reg = input.registration(org.id, None)?;
    let (client, secret) =
        state.oidc.register_org_client(org.id, reg, &state.federation.outbound).await.map_err(registration_error)?;
    tracing::info!(org = %org.id, client_id = %client.client_id, by = %c.label, "client registered");
    audit(&state, &c, &org, "org.client_created", serde_json::json!({"client": client.client_id, "name": client.name}))
        .await;
    let view = ClientView::from(&client);
    let tag = etag_of(&view);
    let mut res = (StatusCode::CREATED, Json(ClientCreated { client: view, client_secret: secret })).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&tag) {
        res.headers_mut().insert(axum::http::header::ETAG, v);
    }
    Ok(res)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/clients/{client_id}", tag = "clients",
    params(("org" = String, Path, description = "The organization's id or slug"), ("client_id" = String, Path, description = "The client_id")),
    responses((status = 200, body = ClientView, description = "The client",
            headers(("ETag" = String, description = "The client's version, for If-Match"))),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn get_client(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, false).await?;
    let client = org_client(&state, &org, &id).await?.ok_or_else(ApiError::not_found)?;
    Ok(with_etag(StatusCode::OK, &ClientView::from(&client)))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/clients/{client_id}", tag = "clients",
    params(("org" = String, Path, description = "The organization's id or slug"), ("client_id" = String, Path, description = "The client_id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The client's ETag (or a list of them, or `*`): 412 when it changed since")),
    request_body = ClientInput,
    responses((status = 200, body = ClientView, description = "Replaced (idempotent); its secret stays",
            headers(("ETag" = String, description = "The client's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, or a registration rule broken (the reason in `detail`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "The client changed since the ETag given in If-Match (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn put_client(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let before = org_client(&state, &org, &id).await?.ok_or_else(ApiError::not_found)?;
    let input: ClientInput = json_body(&body)?;
    let view = ClientView::from(&before);
    check_if_match(&headers, Some(&etag_of(&view)), "client")?;
    let reg = input.registration(org.id, Some(&before))?;
    let unchanged = {
        let now = registration_of(&before);
        format!("{:?}", Registration { name: reg.name.trim().to_owned(), ..reg.clone() }) == format!("{now:?}")
    };
    if unchanged {
        return Ok(with_etag(StatusCode::OK, &view));
    }
    let after = state
        .oidc
        .update_org_client(org.id, &before.client_id, reg, &state.federation.outbound)
        .await
        .map_err(registration_error)?;
    let after_view = ClientView::from(&after);
    audit(
        &state,
        &c,
        &org,
        "org.client_updated",
        serde_json::json!({"client": after.client_id, "before": view, "after": after_view}),
    )
    .await;
    Ok(with_etag(StatusCode::OK, &after_view))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/clients/{client_id}", tag = "clients",
    params(("org" = String, Path, description = "The organization's id or slug"), ("client_id" = String, Path, description = "The client_id")),
    responses((status = 204, description = "Gone (whether or not it was there), with everything issued to it"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_client(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    let Some(client) = org_client(&state, &org, &id).await? else { return Ok(StatusCode::NO_CONTENT) };
    match state.oidc.delete_client(&client.client_id).await {
        Ok(()) => {
            audit(
                &state,
                &c,
                &org,
                "org.client_deleted",
                serde_json::json!({"client": client.client_id, "name": client.name}),
            )
            .await;
            Ok(StatusCode::NO_CONTENT)
        }
        Err(crate::store::StoreError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/clients/{client_id}/secret", tag = "clients",
    params(("org" = String, Path, description = "The organization's id or slug"), ("client_id" = String, Path, description = "The client_id")),
    responses((status = 200, body = ClientSecret, description = "A new secret, shown this once; the old one stopped working"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "The client has no secret (private_key_jwt or public)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn rotate_secret(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Json<ClientSecret>> {
    let org = org_of(&state, &c, &org, true).await?;
    let client = org_client(&state, &org, &id).await?.ok_or_else(ApiError::not_found)?;
    let secret = state.oidc.rotate_client_secret(&client.client_id).await.map_err(registration_error)?;
    audit(&state, &c, &org, "org.client_secret_rotated", serde_json::json!({"client": client.client_id})).await;
    Ok(Json(ClientSecret { client_id: client.client_id.to_string(), client_secret: secret }))
}
