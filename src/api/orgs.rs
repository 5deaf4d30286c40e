//! The organization and its members.
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use utoipa::OpenApi;

use super::*;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}", get(get_org))
        .route("/orgs/{org}/members", get(list_members))
        .route("/orgs/{org}/members/{email}", put(put_member).delete(delete_member))
}

#[derive(OpenApi)]
#[openapi(paths(get_org, list_members, put_member, delete_member), components(schemas(OrgWire, MemberWire, MemberPage, MemberPut, RoleWire)), tags((name = "organizations"), (name = "members")))]
pub(super) struct Doc;

#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "organizations",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = OrgWire, description = "The organization"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn get_org(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Json<OrgWire>> {
    let org = org_of(&state, &c, &org, false).await?;
    Ok(Json(OrgWire::from(&org)))
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
