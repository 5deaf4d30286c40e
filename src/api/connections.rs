//! The SSO connections serving an organization: listed with the values to give the IdP, made
//! (OpenID Provider, or SAML IdP from its metadata, by URL, or by hand), edited, deleted, and
//! IdP groups mapped to the organization's roles — through the same service functions as the
//! SSO page (`/orgs/{slug}/sso`), so the same audit entries and `connection.changed` events.
//!
//! Connections an organization's key or admin makes are *restricted*: every request to the IdP
//! goes through the outbound-URL policy. A connection that also serves other organizations is
//! read-only for an organization's key (403), as it is on the page for an admin who does not run
//! them all.
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::rbac::{check_if_match, etag_of, json_body, with_etag};
use super::*;
use crate::domain::federation::{Connection, ConnectionConfig};
use crate::federation::FederationError;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/connections", get(list_connections).post(create_connection))
        .route("/orgs/{org}/connections/{id}", get(get_connection).patch(patch_connection).delete(delete_connection))
        .route("/orgs/{org}/connections/{id}/groups/{group}", axum::routing::delete(unmap_group))
        .route("/orgs/{org}/connections/{id}/groups/{group}/roles/{role}", put(map_group))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_connections, create_connection, get_connection, patch_connection, delete_connection, map_group, unmap_group),
    components(schemas(ConnectionView, ConnectionCreate, ConnectionPatch, ConnectionKind, GroupRoleWire)),
    tags((name = "connections"))
)]
pub(super) struct Doc;

// ---------------------------------------------------------------- wire types

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Oidc,
    Saml,
}

/// An IdP group granting a role of the organization at each sign-in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GroupRoleWire {
    pub group: String,
    pub role: uuid::Uuid,
}

/// An SSO connection serving the organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConnectionView {
    pub id: uuid::Uuid,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    /// The OpenID Provider's issuer, or the SAML IdP's entityID.
    pub issuer: String,
    /// Where a browser starts signing in through it.
    pub login_url: String,
    /// SAML: what to give the IdP (null for OIDC).
    pub sp_entity_id: Option<String>,
    pub acs_url: Option<String>,
    /// OIDC: the redirect URI to register at the provider (null for SAML).
    pub redirect_uri: Option<String>,
    /// How many organizations it serves.
    pub org_count: usize,
    /// It serves other organizations too: read-only for an organization's key.
    pub shared: bool,
    /// The claim (OIDC) or attribute (SAML) read first for the email, the name, the groups.
    pub email_claim: String,
    pub name_claim: String,
    pub groups_claim: String,
    /// SAML: assertions must be signed (null for OIDC).
    pub want_assertions_signed: Option<bool>,
    pub group_roles: Vec<GroupRoleWire>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// The body of `POST .../connections`. OIDC: `issuer`, `client_id`, `client_secret` (its
/// discovery document is fetched now). SAML: `metadata_xml`, or `metadata_url`, or `entity_id`
/// + `sso_url` + `certificate`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionCreate {
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata_xml: Option<String>,
    #[serde(default)]
    pub metadata_url: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    pub sso_url: Option<String>,
    /// PEM or base64 DER.
    #[serde(default)]
    pub certificate: Option<String>,
    /// SAML: false by default (the Response's signature suffices).
    #[serde(default)]
    pub want_assertions_signed: bool,
}

/// The body of `PATCH .../connections/{id}`: what is given changes, the rest stays.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email_claim: Option<String>,
    #[serde(default)]
    pub name_claim: Option<String>,
    #[serde(default)]
    pub groups_claim: Option<String>,
    /// SAML only.
    #[serde(default)]
    pub want_assertions_signed: Option<bool>,
}

fn view(state: &AppState, c: &Connection) -> ConnectionView {
    let f = &state.federation;
    let saml = matches!(c.config, ConnectionConfig::Saml(_));
    let (issuer, want_signed) = match &c.config {
        ConnectionConfig::Oidc(o) => (o.issuer.clone(), None),
        ConnectionConfig::Saml(s) => (s.idp_entity_id.clone(), Some(s.want_assertions_signed)),
    };
    let (email_claim, name_claim, groups_claim) = crate::federation::mapping_view(&c.config);
    ConnectionView {
        id: c.id.as_uuid(),
        name: c.name.clone(),
        kind: if saml { ConnectionKind::Saml } else { ConnectionKind::Oidc },
        issuer,
        login_url: f.login_url(c.id),
        sp_entity_id: saml.then(|| f.sp_entity_id(c.id)),
        acs_url: saml.then(|| f.acs_url(c.id)),
        redirect_uri: (!saml).then(|| f.oidc_redirect_uri()),
        org_count: c.orgs.len(),
        shared: c.orgs.len() > 1,
        email_claim,
        name_claim,
        groups_claim,
        want_assertions_signed: want_signed,
        group_roles: c
            .config
            .group_roles()
            .iter()
            .map(|m| GroupRoleWire { group: m.group.clone(), role: m.role.as_uuid() })
            .collect(),
        created_at: c.created_at.0,
        updated_at: c.updated_at.0,
    }
}

fn fed_error(e: FederationError, saml: bool) -> ApiError {
    match e {
        FederationError::NotFound => ApiError::not_found(),
        FederationError::Forbidden => {
            ApiError::forbidden("this connection also serves other organizations: the operator changes it")
        }
        FederationError::Invalid(m) => ApiError::bad_request(m),
        FederationError::Upstream(_) if saml => {
            ApiError::bad_request("the IdP's metadata could not be fetched (or its server refused)")
        }
        FederationError::Upstream(_) => {
            ApiError::bad_request("the provider's discovery document could not be fetched or does not fit its issuer")
        }
        FederationError::Org(o) => o.into(),
        FederationError::Store(s) => s.into(),
        FederationError::Internal(e) => {
            tracing::error!(error = %format!("{e:#}"), "admin API: connection internal error");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
                "something went wrong on our side",
            )
        }
        other => ApiError::bad_request(other.to_string()),
    }
}

/// The connection `id` serving the organization (404 otherwise); `change`: the caller means to
/// change it, refused (403) for a shared connection when the caller is an organization's key
/// (users' rights are checked by the service, as on the page).
async fn org_connection(
    state: &AppState,
    c: &Caller,
    org: &crate::domain::org::Org,
    id: &str,
    change: bool,
) -> ApiResult<Option<Connection>> {
    let conn = match state.federation.connection(id).await {
        Ok(conn) if conn.orgs.contains(&org.id) => conn,
        Ok(_) | Err(FederationError::NotFound) => return Ok(None),
        Err(e) => return Err(fed_error(e, false)),
    };
    if change && c.org.is_some() && conn.orgs.len() > 1 {
        return Err(fed_error(FederationError::Forbidden, false));
    }
    Ok(Some(conn))
}

fn is_saml(c: &Connection) -> bool {
    matches!(c.config, ConnectionConfig::Saml(_))
}

// ---------------------------------------------------------------- handlers

#[utoipa::path(get, path = "/api/v1/orgs/{org}/connections", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<ConnectionView>, description = "The SSO connections serving the organization"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_connections(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<ConnectionView>>> {
    let org = org_of(&state, &c, &org, false).await?;
    let list =
        state.federation.connections_for_org(c.actor, &org.id.to_string()).await.map_err(|e| fed_error(e, false))?;
    Ok(Json(list.iter().map(|x| view(&state, x)).collect()))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/connections", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = ConnectionCreate,
    responses((status = 201, body = ConnectionView, description = "Connected (the provider answered); give it the values shown",
            headers(("ETag" = String, description = "The connection's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, metadata or issuer not usable or not allowed (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_connection(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    use crate::federation::saml::{SamlOptions, SamlSource};
    let org = org_of(&state, &c, &org, true).await?;
    let b: ConnectionCreate = json_body(&body)?;
    // An organization's key acts as the platform within its organization; what it connects is
    // still the organization's own: restricted, as an admin's is.
    let restricted = c.org.is_some() || c.actor != crate::orgs::Actor::Platform;
    let org_ref = org.id.to_string();
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned);
    let name = given(&b.name);
    if name.as_ref().is_some_and(|n| n.chars().count() > 100) {
        return Err(ApiError::bad_request("the name is at most 100 characters"));
    }
    let (saml, made) = match b.kind {
        ConnectionKind::Oidc => {
            let (Some(issuer), Some(client_id), Some(secret)) =
                (given(&b.issuer), given(&b.client_id), given(&b.client_secret))
            else {
                return Err(ApiError::bad_request("an OIDC connection needs issuer, client_id and client_secret"));
            };
            if [&b.metadata_xml, &b.metadata_url, &b.entity_id, &b.sso_url, &b.certificate].iter().any(|v| v.is_some())
            {
                return Err(ApiError::bad_request(
                    "metadata_xml, metadata_url, entity_id, sso_url and certificate are for SAML",
                ));
            }
            let r = state
                .federation
                .create_oidc_in_org(c.actor, restricted, &org_ref, name.as_deref(), &issuer, &client_id, &secret)
                .await;
            (false, r)
        }
        ConnectionKind::Saml => {
            if [&b.issuer, &b.client_id, &b.client_secret].iter().any(|v| v.is_some()) {
                return Err(ApiError::bad_request("issuer, client_id and client_secret are for OIDC"));
            }
            let source = match (given(&b.metadata_xml), given(&b.metadata_url), given(&b.entity_id)) {
                (Some(x), None, None) => SamlSource::Xml(x),
                (None, Some(u), None) => SamlSource::Url(u),
                (None, None, Some(entity_id)) => SamlSource::Manual {
                    entity_id,
                    sso_url: b.sso_url.clone().unwrap_or_default(),
                    certificate: b.certificate.clone().unwrap_or_default(),
                },
                _ => {
                    return Err(ApiError::bad_request(
                        "a SAML connection needs one of metadata_xml, metadata_url, or entity_id (with sso_url and certificate)",
                    ))
                }
            };
            let opts = SamlOptions { want_assertions_signed: b.want_assertions_signed, ..Default::default() };
            let r =
                state.federation.create_saml_in_org(c.actor, restricted, &org_ref, name.as_deref(), source, opts).await;
            (true, r)
        }
    };
    let conn = made.map_err(|e| fed_error(e, saml))?;
    tracing::info!(org = %org.id, connection = %conn.id, by = %c.label, "connection created through the API");
    Ok(with_etag(StatusCode::CREATED, &view(&state, &conn)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/connections/{id}", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection id")),
    responses((status = 200, body = ConnectionView, description = "The connection",
            headers(("ETag" = String, description = "The connection's version, for If-Match"))),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn get_connection(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, false).await?;
    let conn = org_connection(&state, &c, &org, &id, false).await?.ok_or_else(ApiError::not_found)?;
    Ok(with_etag(StatusCode::OK, &view(&state, &conn)))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/connections/{id}", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The connection's ETag (or a list of them, or `*`): 412 when it changed since")),
    request_body = ConnectionPatch,
    responses((status = 200, body = ConnectionView, description = "Changed (a repeated change changes nothing)",
            headers(("ETag" = String, description = "The connection's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key, or a connection shared with other organizations (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "The connection changed since the ETag given in If-Match (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn patch_connection(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let conn = org_connection(&state, &c, &org, &id, true).await?.ok_or_else(ApiError::not_found)?;
    let p: ConnectionPatch = json_body(&body)?;
    let before = view(&state, &conn);
    check_if_match(&headers, Some(&etag_of(&before)), "connection")?;
    let saml = is_saml(&conn);
    if !saml && p.want_assertions_signed.is_some() {
        return Err(ApiError::bad_request("want_assertions_signed is for SAML connections"));
    }
    // Nothing to change: no audit entry, no event.
    let same = |new: &Option<String>, old: &str| new.as_deref().is_none_or(|n| n.trim().is_empty() || n.trim() == old);
    if same(&p.name, &before.name)
        && same(&p.email_claim, &before.email_claim)
        && same(&p.name_claim, &before.name_claim)
        && same(&p.groups_claim, &before.groups_claim)
        && p.want_assertions_signed.is_none_or(|w| Some(w) == before.want_assertions_signed)
    {
        return Ok(with_etag(StatusCode::OK, &before));
    }
    let edit = crate::federation::ConnectionEdit {
        name: p.name,
        email: p.email_claim,
        display_name: p.name_claim,
        groups: p.groups_claim,
        want_assertions_signed: p.want_assertions_signed,
    };
    let after = state
        .federation
        .edit_for_org(c.actor, &org.id.to_string(), &conn.id.to_string(), edit)
        .await
        .map_err(|e| fed_error(e, saml))?;
    Ok(with_etag(StatusCode::OK, &view(&state, &after)))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/connections/{id}", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection id")),
    responses((status = 204, description = "Gone (whether or not it was there)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key, or a connection shared with other organizations (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_connection(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    let Some(conn) = org_connection(&state, &c, &org, &id, true).await? else { return Ok(StatusCode::NO_CONTENT) };
    // The page asks for the name typed again; a request naming the connection is deliberate.
    match state.federation.delete_for_org(c.actor, &org.id.to_string(), &conn.id.to_string(), &conn.name).await {
        Ok(()) | Err(FederationError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(fed_error(e, false)),
    }
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/connections/{id}/groups/{group}/roles/{role}", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection id"),
        ("group" = String, Path, description = "The IdP group (as the IdP sends it)"),
        ("role" = String, Path, description = "A role id of `GET .../roles`")),
    responses((status = 200, body = ConnectionView, description = "Mapped (idempotent): members of the group get the role at each sign-in",
            headers(("ETag" = String, description = "The connection's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key, or a connection shared with other organizations (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such connection or role here (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn map_group(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id, group, role)): Path<(String, String, String, String)>,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let conn = org_connection(&state, &c, &org, &id, true).await?.ok_or_else(ApiError::not_found)?;
    let rid = role.trim().parse::<crate::domain::RoleId>().map_err(|_| ApiError::not_found())?;
    if group.chars().any(char::is_control) {
        return Err(ApiError::bad_request("a group is 1 to 256 characters, without control characters"));
    }
    if conn.config.group_roles().iter().any(|m| m.group == group.trim() && m.role == rid) {
        return Ok(with_etag(StatusCode::OK, &view(&state, &conn)));
    }
    let after = state
        .federation
        .map_group_for_org(c.actor, &org.id.to_string(), &conn.id.to_string(), &group, Some(&rid.to_string()))
        .await
        .map_err(|e| fed_error(e, false))?;
    Ok(with_etag(StatusCode::OK, &view(&state, &after)))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/connections/{id}/groups/{group}", tag = "connections",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The connection id"),
        ("group" = String, Path, description = "The IdP group")),
    responses((status = 204, description = "The group grants no role any more (whether or not it did)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key, or a connection shared with other organizations (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn unmap_group(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id, group)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    let conn = org_connection(&state, &c, &org, &id, true).await?.ok_or_else(ApiError::not_found)?;
    if !conn.config.group_roles().iter().any(|m| m.group == group.trim()) {
        return Ok(StatusCode::NO_CONTENT);
    }
    state
        .federation
        .map_group_for_org(c.actor, &org.id.to_string(), &conn.id.to_string(), &group, None)
        .await
        .map_err(|e| fed_error(e, false))?;
    Ok(StatusCode::NO_CONTENT)
}
