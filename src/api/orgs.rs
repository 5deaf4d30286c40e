//! The organization and its members.
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;
use utoipa::ToSchema;

use super::*;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs", get(list_orgs).post(create_org))
        .route("/orgs/{org}", get(get_org).patch(patch_org).delete(delete_org))
        .route("/orgs/{org}/members", get(list_members))
        .route("/orgs/{org}/members/{email}", put(put_member).delete(delete_member))
}

#[derive(OpenApi)]
#[openapi(paths(list_orgs, create_org, get_org, patch_org, delete_org, list_members, put_member, delete_member), components(schemas(OrgWire, OrgPage, OrgCreate, OrgPatch, MemberWire, MemberPage, MemberPut, RoleWire)), tags((name = "organizations"), (name = "members")))]
pub(super) struct Doc;

/// A page of organizations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OrgPage {
    pub items: Vec<OrgWire>,
    /// Give it as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The body of `POST /orgs`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgCreate {
    pub name: String,
    /// Lowercase letters, digits and dashes; made from the name when absent.
    pub slug: Option<String>,
    /// The email address of an existing account, made its first owner.
    pub owner: Option<String>,
}

/// The body of `PATCH /orgs/{org}`: what is absent stays as it is.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    pub name: Option<String>,
    pub slug: Option<String>,
    pub require_sso: Option<bool>,
    pub mfa_required: Option<bool>,
    /// `#rrggbb` (readable on white), or `""` to remove it.
    pub accent_color: Option<String>,
}

fn org_response(o: &crate::domain::org::Org, status: StatusCode) -> Response {
    let wire = OrgWire::from(o);
    let mut res = (status, Json(&wire)).into_response();
    if let Ok(v) = HeaderValue::from_str(&wire.etag()) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// A platform admin (their session or personal key): every organization, creating and
/// deleting them.
fn is_platform(c: &Caller) -> bool {
    c.actor == Actor::Platform && c.org.is_none()
}

#[utoipa::path(get, path = "/api/v1/orgs", tag = "organizations",
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = OrgPage, description = "The organizations the caller may administer: all for a platform admin, its own for an organization's key, those a user is an admin or owner of"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_orgs(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<OrgPage>> {
    let q = page_query(raw.as_deref())?;
    let limit = q.limit;
    let after = match q.cursor.as_deref() {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_request("unknown cursor"))?),
        None => None,
    };
    let mut orgs: Vec<crate::domain::org::Org> = match c.org {
        Some(own) => state.orgs.org(own).await?.into_iter().collect(),
        None => {
            state.orgs.list(c.actor).await?.into_iter().filter(|m| m.role >= OrgRole::Admin).map(|m| m.org).collect()
        }
    };
    orgs.sort_by_key(|o| o.id.as_uuid());
    let rest: Vec<_> = orgs.into_iter().filter(|o| after.is_none_or(|a| o.id.as_uuid() > a)).collect();
    let next_cursor = (rest.len() > limit).then(|| encode_cursor(rest[limit - 1].id.as_uuid()));
    let items = rest.iter().take(limit).map(OrgWire::from).collect();
    Ok(Json(OrgPage { items, next_cursor }))
}

#[utoipa::path(post, path = "/api/v1/orgs", tag = "organizations",
    request_body = OrgCreate,
    responses((status = 201, body = OrgWire, description = "Created",
            headers(("ETag" = String, description = "The organization's version, for If-Match"), ("Location" = String, description = "Its address"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, a bad name or slug, a slug taken, or no account with the owner's address (the reason in `detail`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Only the platform creates organizations: any other caller (an organization's key, a user who is not a platform admin) (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_org(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    if !is_platform(&c) {
        return Err(ApiError::forbidden("only the platform creates organizations"));
    }
    if !c.write {
        return Err(ApiError::forbidden("this key may only read"));
    }
    let body: OrgCreate = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let owner = match body.owner.as_deref() {
        None => None,
        Some(email) => match state.accounts.user_by_email(email).await {
            Ok(Some(u)) => Some(u.id),
            Ok(None) => return Err(ApiError::bad_request(format!("no account has the address {}", email.trim()))),
            Err(crate::accounts::AccountError::Store(s)) => return Err(s.into()),
            Err(e) => return Err(ApiError::bad_request(e.to_string())),
        },
    };
    let org = state.orgs.create(c.actor, &body.name, body.slug.as_deref(), owner).await?;
    let mut res = org_response(&org, StatusCode::CREATED);
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/orgs/{}", org.id)) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "organizations",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = OrgWire, description = "The organization",
            headers(("ETag" = String, description = "The organization's version, for If-Match"))),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn get_org(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, false).await?;
    Ok(org_response(&org, StatusCode::OK))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "organizations",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The organization's ETag (or a list of them, or `*`): 412 when it changed since")),
    request_body = OrgPatch,
    responses((status = 200, body = OrgWire, description = "Changed (idempotent); the audit log records it",
            headers(("ETag" = String, description = "The organization's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request, or a bad value: name, slug (or taken), accent colour (the reason in `detail`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"),
        (status = 412, body = Problem, content_type = "application/problem+json", description = "The organization changed since the ETag given in If-Match (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn patch_org(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let patch: OrgPatch = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    // RFC 9110 §13.1.1: `*` matches the (existing) organization; otherwise any listed tag may.
    if let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        let now = OrgWire::from(&org).etag();
        if !want.split(',').map(str::trim).any(|w| w == "*" || w == now) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "Precondition Failed",
                "the organization changed since",
            ));
        }
    }
    let OrgPatch { name, slug, require_sso, mfa_required, accent_color } = patch;
    let unchanged = name.as_deref().is_none_or(|n| n == org.name)
        && slug.as_deref().is_none_or(|s| s == org.slug)
        && require_sso.is_none_or(|v| v == org.require_sso)
        && mfa_required.is_none_or(|v| v == org.mfa_required)
        && accent_color
            .as_deref()
            .is_none_or(|a| Some(a) == org.accent_color.as_deref() || (a.is_empty() && org.accent_color.is_none()));
    if unchanged {
        return Ok(org_response(&org, StatusCode::OK));
    }
    let update = crate::orgs::OrgSettingsUpdate { name, slug, require_sso, mfa_required, accent_color };
    let after = state.orgs.update_settings(c.actor, &org.id.to_string(), update).await?;
    Ok(org_response(&after, StatusCode::OK))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}", tag = "organizations",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("confirm" = String, Query, description = "The organization's slug, typed again (as on its settings page)")),
    responses((status = 204, description = "Gone, with its memberships and grants (the accounts remain). A platform admin gets 204 for an organization already gone; anyone else gets 404"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "No `confirm`, or not the slug; or clients still bound to the organization (the reason in `detail`)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Only a platform admin or an owner deletes an organization; never an organization's own key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_org(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org_ref): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<StatusCode> {
    let org = if is_platform(&c) {
        if !c.write {
            return Err(ApiError::forbidden("this key may only read"));
        }
        match state.orgs.find(&org_ref).await? {
            Some(o) => o,
            None => return Ok(StatusCode::NO_CONTENT),
        }
    } else {
        let org = org_of(&state, &c, &org_ref, true).await?;
        if c.org.is_some() {
            return Err(ApiError::forbidden("an organization's key cannot delete its organization"));
        }
        org
    };
    let mut confirm = None;
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if k == "confirm" {
            if confirm.is_some() {
                return Err(ApiError::bad_request("confirm is given twice"));
            }
            confirm = Some(v.into_owned());
        }
    }
    let confirm = confirm.ok_or_else(|| {
        ApiError::bad_request(format!("type the organization's slug ({}) as ?confirm= to delete it", org.slug))
    })?;
    state.orgs.delete(c.actor, &org.id.to_string(), &confirm).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = MemberPage, description = "A page of members"), (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_members(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<MemberPage>> {
    let org = org_of(&state, &c, &org, false).await?;
    let q = page_query(raw.as_deref())?;
    let limit = q.limit;
    let after = match q.cursor.as_deref() {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_request("unknown cursor"))?),
        None => None,
    };
    let (_, mut members) = state.orgs.members(c.actor, &org.id.to_string()).await?;
    members.sort_by_key(|m| m.user_id);
    let rest: Vec<_> = members.into_iter().filter(|m| after.is_none_or(|a| m.user_id.as_uuid() > a)).collect();
    let next_cursor = (rest.len() > limit).then(|| encode_cursor(rest[limit - 1].user_id.as_uuid()));
    let items = rest.iter().take(limit).map(MemberWire::from).collect();
    Ok(Json(MemberPage { items, next_cursor }))
}

fn member_response(m: &crate::domain::org::Member, status: StatusCode) -> Response {
    let wire = MemberWire::from(m);
    let mut res = (status, Json(&wire)).into_response();
    if let Ok(v) = HeaderValue::from_str(&wire.etag()) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/{email}", tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("email" = String, Path, description = "The account's email address"),
        ("If-Match" = Option<String>, Header, nullable = false, description = "The member's ETag (or a list of them, or `*`): 412 when it changed since or does not exist")),
    request_body = MemberPut,
    responses((status = 200, body = MemberWire, description = "Set (idempotent)",
            headers(("ETag" = String, description = "The member's version, for If-Match"))),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such organization or account"), (status = 412, body = Problem, content_type = "application/problem+json", description = "The member changed since the ETag given in If-Match (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn put_member(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, email)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, true).await?;
    let put: MemberPut = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let role = match put.role {
        RoleWire::Admin => OrgRole::Admin,
        RoleWire::Member => OrgRole::Member,
        RoleWire::Owner => return Err(ApiError::forbidden("owners are made by owners, in Guichet")),
    };
    let (_, members) = state.orgs.members(c.actor, &org.id.to_string()).await?;
    let current = members.iter().find(|m| m.email.eq_ignore_ascii_case(email.trim()));
    if current.is_some_and(|m| m.role == OrgRole::Owner) {
        return Err(ApiError::forbidden("owners are changed by owners, in Guichet"));
    }
    // RFC 9110 §13.1.1: `*` matches an existing member; otherwise any listed tag may match.
    if let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        let now = current.map(|m| MemberWire::from(m).etag());
        let matches = match now.as_deref() {
            None => false,
            Some(tag) => want.split(',').map(str::trim).any(|w| w == "*" || w == tag),
        };
        if !matches {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "Precondition Failed",
                "the member changed since",
            ));
        }
    }
    if current.is_some_and(|m| m.role == role) {
        return Ok(member_response(current.ok_or_else(ApiError::not_found)?, StatusCode::OK));
    }
    let m = state.orgs.set_member(c.actor, &org.id.to_string(), &email, role).await?;
    Ok(member_response(&m, StatusCode::OK))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{email}", tag = "members",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("email" = String, Path, description = "The account's email address")),
    responses((status = 204, description = "Not a member any more (whether or not it was)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_member(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, email)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    let (_, members) = state.orgs.members(c.actor, &org.id.to_string()).await?;
    match members.iter().find(|m| m.email.eq_ignore_ascii_case(email.trim())) {
        None => Ok(StatusCode::NO_CONTENT),
        Some(m) if m.role == OrgRole::Owner => Err(ApiError::forbidden("owners are removed by owners, in Guichet")),
        Some(m) => {
            state.orgs.remove_member(c.actor, &org.id.to_string(), &m.email).await?;
            Ok(StatusCode::NO_CONTENT)
        }
    }
}
