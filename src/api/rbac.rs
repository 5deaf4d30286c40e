//! An organization's roles, the permissions they may hold, and the roles granted to members.
//!
//! Roles belong to a client (the application whose permissions they bundle). The organization
//! has its own roles, which it creates, changes and deletes, and may grant the operator's roles
//! (read-only here). The permissions are those the operator declared for the clients the
//! organization may make roles for (`GET .../permissions`).
//!
//! The platform's own catalogue — the permissions each client declares (`/permissions`,
//! `/clients/{client_id}/permissions/{name}`) and the platform's roles, grantable in every
//! organization (`/roles`) — is the platform's alone: a platform admin's session or personal
//! key reaches it; an organization's key or another user finds nothing there (404).
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{OpenApi, ToSchema};

use super::*;
use crate::domain::org::Role;
use crate::domain::RoleId;
use crate::orgs::Actor;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/roles", get(list_roles).post(create_role))
        .route("/orgs/{org}/roles/{role}", get(get_role).put(put_role).delete(delete_role))
        .route("/orgs/{org}/permissions", get(list_permissions))
        .route("/orgs/{org}/members/{email}/roles/{role}", put(grant_role).delete(revoke_role))
        .route("/permissions", get(platform_permissions))
        .route("/clients/{client_id}/permissions/{name}", put(put_permission).delete(delete_permission))
        .route("/roles", get(platform_roles).post(create_platform_role))
        .route("/roles/{role}", get(get_platform_role).put(put_platform_role).delete(delete_platform_role))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_roles, create_role, get_role, put_role, delete_role, list_permissions, grant_role, revoke_role,
        platform_permissions, put_permission, delete_permission,
        platform_roles, create_platform_role, get_platform_role, put_platform_role, delete_platform_role),
    components(schemas(RoleView, RoleCreate, RolePut, ClientPermissions)),
    tags((name = "roles"), (name = "permissions"))
)]
pub(super) struct Doc;

// ---------------------------------------------------------------- wire types

/// A role grantable in the organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoleView {
    pub id: uuid::Uuid,
    /// The client (application) whose permissions it bundles.
    pub client_id: String,
    pub name: String,
    pub permissions: Vec<String>,
    /// The organization's own role (true), or the operator's, grantable but read-only (false).
    pub own: bool,
    /// Unix seconds.
    pub created_at: i64,
}

impl From<&Role> for RoleView {
    fn from(r: &Role) -> Self {
        Self {
            id: r.id.as_uuid(),
            client_id: r.client_id.to_string(),
            name: r.name.clone(),
            permissions: r.permissions.clone(),
            own: r.org.is_some(),
            created_at: r.created_at.0,
        }
    }
}

/// The body of `POST .../roles`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleCreate {
    /// A client of `GET .../permissions`.
    pub client_id: String,
    /// 1 to 64 of `A-Z a-z 0-9 : . _ - /`, unique per client in the organization.
    pub name: String,
    /// Permissions the client declared (`GET .../permissions`).
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// The body of `PUT .../roles/{role}`: the role's permissions (all of them).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolePut {
    /// The role's name, if given, must be its current one (a role keeps its name).
    #[serde(default)]
    pub name: Option<String>,
    pub permissions: Vec<String>,
}

/// A client the organization may make roles for, with the permissions it declared.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClientPermissions {
    pub client_id: String,
    pub client_name: String,
    pub permissions: Vec<String>,
}

// ---------------------------------------------------------------- helpers shared by this API's files

/// A strong validator of a representation: the first 16 hex digits of SHA-256 of its JSON.
pub(super) fn etag_of<T: Serialize>(v: &T) -> String {
    let json = serde_json::to_vec(v).unwrap_or_default();
    format!("\"{}\"", &hex::encode(Sha256::digest(&json))[..16])
}

/// RFC 9110 §13.1.1 `If-Match`: `*` matches an existing resource; otherwise any listed tag.
/// `current`: the resource's ETag (None: it does not exist).
pub(super) fn check_if_match(headers: &HeaderMap, current: Option<&str>, what: &str) -> ApiResult<()> {
    let Some(want) = headers.get(header::IF_MATCH) else { return Ok(()) };
    let want = want.to_str().unwrap_or_default();
    let matches = match current {
        None => false,
        Some(tag) => want.split(',').map(str::trim).any(|w| w == "*" || w == tag),
    };
    if matches {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::PRECONDITION_FAILED, "Precondition Failed", format!("the {what} changed since")))
    }
}

/// `value` as JSON with its ETag.
pub(super) fn with_etag<T: Serialize>(status: StatusCode, value: &T) -> Response {
    let tag = etag_of(value);
    let mut res = (status, Json(value)).into_response();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// A JSON body, or a 400 problem saying what is wrong with it.
/// NUL characters are refused anywhere in it (no stored text may hold one).
pub(super) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return Err(ApiError::bad_request("body: text cannot contain NUL characters"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))
}

/// The roles grantable in the organization.
async fn org_roles(state: &AppState, c: &Caller, org: &crate::domain::org::Org) -> ApiResult<Vec<Role>> {
    Ok(state.orgs.roles(c.actor, Some(&org.id.to_string())).await?)
}

/// A role grantable in the organization, by id (None: unknown here).
async fn find_role(state: &AppState, c: &Caller, org: &crate::domain::org::Org, role: &str) -> ApiResult<Option<Role>> {
    let Ok(id) = role.trim().parse::<RoleId>() else { return Ok(None) };
    Ok(org_roles(state, c, org).await?.into_iter().find(|r| r.id == id))
}

fn role_error(e: OrgError) -> ApiError {
    match e {
        OrgError::RoleTaken(n) => ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("a role named {n:?} exists already for this client"),
        ),
        OrgError::UnknownRole(_) | OrgError::AmbiguousRole(_) => ApiError::not_found(),
        other => other.into(),
    }
}

// ---------------------------------------------------------------- roles

#[utoipa::path(get, path = "/api/v1/orgs/{org}/roles", tag = "roles",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<RoleView>, description = "The roles grantable in the organization: its own and the operator's"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_roles(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<RoleView>>> {
    let org = org_of(&state, &c, &org, false).await?;
    Ok(Json(org_roles(&state, &c, &org).await?.iter().map(RoleView::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/roles", tag = "roles",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = RoleCreate,
    responses((status = 201, body = RoleView, description = "Created",
            headers(("ETag" = String, description = "The role's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, unknown client or permission (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A role of this name exists for the client (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let body: RoleCreate = json_body(&body)?;
    // Only the clients the organization may make roles for (not another organization's).
    let clients = state.orgs.role_clients(Some(org.id)).await?;
    let client = body.client_id.trim();
    if !clients.iter().any(|(cl, _)| cl.client_id.as_str() == client) {
        return Err(ApiError::bad_request(format!(
            "unknown client {client:?}: roles are made for the clients of GET .../permissions"
        )));
    }
    let role = state
        .orgs
        .create_role(c.actor, client, &body.name, &body.permissions, Some(&org.id.to_string()))
        .await
        .map_err(role_error)?;
    Ok(with_etag(StatusCode::CREATED, &RoleView::from(&role)))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/roles/{role}", tag = "roles",
    params(("org" = String, Path, description = "The organization's id or slug"), ("role" = String, Path, description = "The role id")),
    responses((status = 200, body = RoleView, description = "The role",
            headers(("ETag" = String, description = "The role's version, for If-Match"))),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn get_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, role)): Path<(String, String)>,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, false).await?;
    let role = find_role(&state, &c, &org, &role).await?.ok_or_else(ApiError::not_found)?;
    Ok(with_etag(StatusCode::OK, &RoleView::from(&role)))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/roles/{role}", tag = "roles",
    params(("org" = String, Path, description = "The organization's id or slug"), ("role" = String, Path, description = "The role id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The role's ETag (or a list of them, or `*`): 412 when it changed since")),
    request_body = RolePut,
    responses((status = 200, body = RoleView, description = "Set (idempotent)",
            headers(("ETag" = String, description = "The role's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, unknown permission, or another name (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key, or the operator's role (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "The role changed since the ETag given in If-Match (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn put_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, role)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let current = find_role(&state, &c, &org, &role).await?.ok_or_else(ApiError::not_found)?;
    let put: RolePut = json_body(&body)?;
    let view = RoleView::from(&current);
    check_if_match(&headers, Some(&etag_of(&view)), "role")?;
    if current.org != Some(org.id) {
        return Err(ApiError::forbidden("the operator's roles are read-only here"));
    }
    if put.name.as_deref().is_some_and(|n| n.trim() != current.name) {
        return Err(ApiError::bad_request("a role keeps its name: create another role for another name"));
    }
    let mut wanted: Vec<String> = put.permissions.iter().map(|p| p.trim().to_owned()).collect();
    wanted.sort();
    wanted.dedup();
    let mut now = current.permissions.clone();
    now.sort();
    if wanted == now {
        return Ok(with_etag(StatusCode::OK, &view));
    }
    let updated = state
        .orgs
        .set_role_permissions(c.actor, &org.id.to_string(), current.id, &put.permissions)
        .await
        .map_err(role_error)?;
    Ok(with_etag(StatusCode::OK, &RoleView::from(&updated)))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/roles/{role}", tag = "roles",
    params(("org" = String, Path, description = "The organization's id or slug"), ("role" = String, Path, description = "The role id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The role's ETag (or a list of them, or `*`): 412 when it changed since or is gone")),
    responses((status = 204, description = "Gone (whether or not it was there); its grants end with it"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key, or the operator's role (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "The role changed since the ETag given in If-Match, or is gone (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, role)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    let Some(found) = find_role(&state, &c, &org, &role).await? else {
        check_if_match(&headers, None, "role")?;
        return Ok(StatusCode::NO_CONTENT);
    };
    check_if_match(&headers, Some(&etag_of(&RoleView::from(&found))), "role")?;
    if found.org != Some(org.id) {
        return Err(ApiError::forbidden("the operator's roles are read-only here"));
    }
    match state.orgs.delete_role(c.actor, Some(&org.id.to_string()), found.id).await {
        Ok(()) | Err(OrgError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- permissions

#[utoipa::path(get, path = "/api/v1/orgs/{org}/permissions", tag = "permissions",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<ClientPermissions>, description = "The clients the organization may make roles for, with the permissions each declared"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_permissions(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<ClientPermissions>>> {
    let org = org_of(&state, &c, &org, false).await?;
    let list = state.orgs.role_clients(Some(org.id)).await?;
    Ok(Json(
        list.into_iter()
            .map(|(cl, permissions)| ClientPermissions {
                client_id: cl.client_id.to_string(),
                client_name: cl.name,
                permissions,
            })
            .collect(),
    ))
}

// ---------------------------------------------------------------- grants

/// The member named by email or user id (None: not a member).
async fn find_member(
    state: &AppState,
    c: &Caller,
    org: &crate::domain::org::Org,
    who: &str,
) -> ApiResult<Option<crate::domain::org::Member>> {
    let who = who.trim();
    let (_, members) = state.orgs.members(c.actor, &org.id.to_string()).await?;
    Ok(members.into_iter().find(|m| m.email.eq_ignore_ascii_case(who) || m.user_id.to_string() == who))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/{email}/roles/{role}", tag = "roles",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("email" = String, Path, description = "The member's email address (or user id)"),
        ("role" = String, Path, description = "The role id (`GET .../roles`)")),
    responses((status = 200, body = MemberWire, description = "Granted (idempotent): the member with their roles"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such member or role here (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn grant_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, email, role)): Path<(String, String, String)>,
) -> ApiResult<Json<MemberWire>> {
    let org = org_of(&state, &c, &org, true).await?;
    let member = find_member(&state, &c, &org, &email).await?.ok_or_else(ApiError::not_found)?;
    let role = find_role(&state, &c, &org, &role).await?.ok_or_else(ApiError::not_found)?;
    if member.roles.iter().any(|r| r.id == role.id) {
        return Ok(Json(MemberWire::from(&member)));
    }
    state.orgs.grant_role_id(c.actor, &org.id.to_string(), member.user_id, role.id).await.map_err(role_error)?;
    let after = find_member(&state, &c, &org, &member.user_id.to_string()).await?.ok_or_else(ApiError::not_found)?;
    Ok(Json(MemberWire::from(&after)))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{email}/roles/{role}", tag = "roles",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("email" = String, Path, description = "The member's email address (or user id)"),
        ("role" = String, Path, description = "The role id")),
    responses((status = 204, description = "Not granted any more (whether or not it was)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn revoke_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, email, role)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    let Some(member) = find_member(&state, &c, &org, &email).await? else { return Ok(StatusCode::NO_CONTENT) };
    let Ok(role) = role.trim().parse::<RoleId>() else { return Ok(StatusCode::NO_CONTENT) };
    if !member.roles.iter().any(|r| r.id == role) {
        return Ok(StatusCode::NO_CONTENT);
    }
    state.orgs.revoke_role_id(c.actor, &org.id.to_string(), member.user_id, role).await.map_err(role_error)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- the platform's catalogue

/// The platform's catalogue is the platform's: for any other caller there is nothing here (404);
/// a read-only credential may only read it (403 on changes, audited).
async fn platform_only(state: &AppState, c: &Caller, write: bool) -> ApiResult<()> {
    if c.org.is_some() || c.actor != Actor::Platform {
        return Err(ApiError::not_found());
    }
    if write && !c.write {
        state
            .accounts
            .audit_entry(
                "api.write_denied",
                "platform",
                &c.label,
                None,
                serde_json::json!({"reason": "read-only credential"}),
                crate::domain::account::AuditOutcome::Denied,
            )
            .await;
        return Err(ApiError::forbidden("this key may only read"));
    }
    Ok(())
}

/// A client's catalogue (None: no such client).
async fn catalogue_of(state: &AppState, client: &str) -> ApiResult<Option<ClientPermissions>> {
    let Some(cl) = state.oidc.client(&crate::domain::ClientId::new(client)).await? else { return Ok(None) };
    let permissions = match state.orgs.permissions(cl.client_id.as_str()).await {
        Ok(p) => p,
        Err(OrgError::UnknownClient(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(ClientPermissions { client_id: cl.client_id.to_string(), client_name: cl.name, permissions }))
}

/// A platform role (not bound to an organization) by id (None: unknown).
async fn platform_role(state: &AppState, c: &Caller, role: &str) -> ApiResult<Option<Role>> {
    let Ok(id) = role.trim().parse::<RoleId>() else { return Ok(None) };
    let roles = state.orgs.roles(c.actor, None).await?;
    Ok(roles.into_iter().find(|r| r.id == id && r.org.is_none()))
}

#[utoipa::path(get, path = "/api/v1/permissions", tag = "permissions",
    params(("client_id" = Option<String>, Query, description = "Only this client's catalogue (even when it declared none)")),
    responses((status = 200, body = Vec<ClientPermissions>, description = "The clients that declared permissions, with them (or the one client asked for)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed query, or an unknown client (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Not a platform admin: nothing here (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn platform_permissions(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Vec<ClientPermissions>>> {
    platform_only(&state, &c, false).await?;
    let mut client = None;
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "client_id" if client.is_some() => return Err(ApiError::bad_request("client_id is given twice")),
            "client_id" if v.trim().is_empty() => return Err(ApiError::bad_request("client_id is empty")),
            "client_id" => client = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    if let Some(client) = client {
        let one = catalogue_of(&state, &client)
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("unknown client {client:?}")))?;
        return Ok(Json(vec![one]));
    }
    let list = state.orgs.role_clients(None).await?;
    Ok(Json(
        list.into_iter()
            .map(|(cl, permissions)| ClientPermissions {
                client_id: cl.client_id.to_string(),
                client_name: cl.name,
                permissions,
            })
            .collect(),
    ))
}

#[utoipa::path(put, path = "/api/v1/clients/{client_id}/permissions/{name}", tag = "permissions",
    params(("client_id" = String, Path, description = "The client's id"),
        ("name" = String, Path, description = "The permission: 1 to 100 of `A-Z a-z 0-9 : . _ - * /`")),
    responses((status = 200, body = ClientPermissions, description = "Declared (idempotent): the client's catalogue"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed permission name (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "A read-only credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such client, or not a platform admin (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn put_permission(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((client, name)): Path<(String, String)>,
) -> ApiResult<Json<ClientPermissions>> {
    platform_only(&state, &c, true).await?;
    let mut cat = catalogue_of(&state, client.trim()).await?.ok_or_else(ApiError::not_found)?;
    if cat.permissions.contains(&name) {
        return Ok(Json(cat));
    }
    cat.permissions = match state.orgs.add_permissions(c.actor, &cat.client_id, &[name]).await {
        Ok(all) => all,
        Err(OrgError::UnknownClient(_)) => return Err(ApiError::not_found()),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(cat))
}

#[utoipa::path(delete, path = "/api/v1/clients/{client_id}/permissions/{name}", tag = "permissions",
    params(("client_id" = String, Path, description = "The client's id"), ("name" = String, Path, description = "The permission")),
    responses((status = 204, description = "Not declared any more (whether or not it was); the roles holding it lose it"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "A read-only credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such client, or not a platform admin (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_permission(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((client, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    platform_only(&state, &c, true).await?;
    match state.orgs.remove_permission(c.actor, client.trim(), &name).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(OrgError::UnknownClient(_)) => Err(ApiError::not_found()),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "roles",
    responses((status = 200, body = Vec<RoleView>, description = "The platform's roles, grantable in every organization (`own` is false)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Not a platform admin: nothing here (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn platform_roles(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
) -> ApiResult<Json<Vec<RoleView>>> {
    platform_only(&state, &c, false).await?;
    let roles = state.orgs.roles(c.actor, None).await?;
    Ok(Json(roles.iter().filter(|r| r.org.is_none()).map(RoleView::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "roles",
    request_body = RoleCreate,
    responses((status = 201, body = RoleView, description = "Created",
            headers(("ETag" = String, description = "The role's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, unknown client or permission (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "A read-only credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Not a platform admin: nothing here (problem details)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "A platform role of this name exists for the client (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_platform_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    platform_only(&state, &c, true).await?;
    let body: RoleCreate = json_body(&body)?;
    let role = state
        .orgs
        .create_role(c.actor, body.client_id.trim(), &body.name, &body.permissions, None)
        .await
        .map_err(role_error)?;
    Ok(with_etag(StatusCode::CREATED, &RoleView::from(&role)))
}

#[utoipa::path(get, path = "/api/v1/roles/{role}", tag = "roles",
    params(("role" = String, Path, description = "The role id")),
    responses((status = 200, body = RoleView, description = "The role",
            headers(("ETag" = String, description = "The role's version, for If-Match"))),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such platform role, or not a platform admin (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn get_platform_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(role): Path<String>,
) -> ApiResult<Response> {
    platform_only(&state, &c, false).await?;
    let role = platform_role(&state, &c, &role).await?.ok_or_else(ApiError::not_found)?;
    Ok(with_etag(StatusCode::OK, &RoleView::from(&role)))
}

#[utoipa::path(put, path = "/api/v1/roles/{role}", tag = "roles",
    params(("role" = String, Path, description = "The role id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The role's ETag (or a list of them, or `*`): 412 when it changed since")),
    request_body = RolePut,
    responses((status = 200, body = RoleView, description = "Set (idempotent); the next tokens of its holders carry the change",
            headers(("ETag" = String, description = "The role's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, unknown permission, or another name (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "A read-only credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such platform role, or not a platform admin (problem details)"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "The role changed since the ETag given in If-Match (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn put_platform_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(role): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    platform_only(&state, &c, true).await?;
    let current = platform_role(&state, &c, &role).await?.ok_or_else(ApiError::not_found)?;
    let put: RolePut = json_body(&body)?;
    let view = RoleView::from(&current);
    check_if_match(&headers, Some(&etag_of(&view)), "role")?;
    if put.name.as_deref().is_some_and(|n| n.trim() != current.name) {
        return Err(ApiError::bad_request("a role keeps its name: create another role for another name"));
    }
    let mut wanted: Vec<String> = put.permissions.iter().map(|p| p.trim().to_owned()).collect();
    wanted.sort();
    wanted.dedup();
    let mut now = current.permissions.clone();
    now.sort();
    if wanted == now {
        return Ok(with_etag(StatusCode::OK, &view));
    }
    let updated =
        state.orgs.set_platform_role_permissions(c.actor, current.id, &put.permissions).await.map_err(role_error)?;
    Ok(with_etag(StatusCode::OK, &RoleView::from(&updated)))
}

#[utoipa::path(delete, path = "/api/v1/roles/{role}", tag = "roles",
    params(("role" = String, Path, description = "The role id"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The role's ETag (or a list of them, or `*`): 412 when it changed since or is gone")),
    responses((status = 204, description = "Gone (whether or not it was there); its grants in every organization end with it"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credential (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "A read-only credential (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Not a platform admin: nothing here (problem details)"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "The role changed since the ETag given in If-Match, or is gone (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_platform_role(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    platform_only(&state, &c, true).await?;
    let Some(found) = platform_role(&state, &c, &role).await? else {
        check_if_match(&headers, None, "role")?;
        return Ok(StatusCode::NO_CONTENT);
    };
    check_if_match(&headers, Some(&etag_of(&RoleView::from(&found))), "role")?;
    match state.orgs.delete_role(c.actor, None, found.id).await {
        Ok(()) | Err(OrgError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}
