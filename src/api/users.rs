//! User accounts: search, creation (pending, with its activation mail), suspension, factor
//! reset, deletion, sign-in sessions. Who may reach which account is decided by the service
//! (`accounts::admin::UserAdmin::reach`): the platform every account, an organization's caller
//! the accounts it manages (members with an address of one of its verified domains); anything
//! else is 404. Wire types are this file's own.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::*;
use crate::accounts::admin::{AdminError, AdminScope, UserAdmin};
use crate::domain::{UserId, UserStatus};
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user).delete(delete_user))
        .route("/users/{id}/suspend", post(suspend_user))
        .route("/users/{id}/resume", post(resume_user))
        .route("/users/{id}/reset-factors", post(reset_factors))
        .route("/users/{id}/sessions", get(list_sessions).delete(revoke_sessions))
        .route("/users/{id}/sessions/{sid}", axum::routing::delete(revoke_session))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_users, create_user, get_user, delete_user, suspend_user, resume_user, reset_factors, list_sessions, revoke_sessions, revoke_session),
    components(schemas(UserWire, UserPage, UserCreate, UserStatusWire, SessionWire)),
    tags((name = "users", description = "Accounts: the platform's, or those an organization manages (its members with an address of a domain it verified)"), (name = "sessions"))
)]
pub(super) struct Doc;

// ---------------------------------------------------------------------- wire types

/// An account's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserStatusWire {
    /// Created, not activated yet (no password chosen, address not confirmed).
    Pending,
    Active,
    Suspended,
}

impl From<UserStatus> for UserStatusWire {
    fn from(s: UserStatus) -> Self {
        match s {
            UserStatus::Pending => Self::Pending,
            UserStatus::Active => Self::Active,
            UserStatus::Suspended => Self::Suspended,
        }
    }
}

impl From<UserStatusWire> for UserStatus {
    fn from(s: UserStatusWire) -> Self {
        match s {
            UserStatusWire::Pending => Self::Pending,
            UserStatusWire::Active => Self::Active,
            UserStatusWire::Suspended => Self::Suspended,
        }
    }
}

/// A user account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserWire {
    pub id: uuid::Uuid,
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
    pub status: UserStatusWire,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

impl From<&crate::domain::User> for UserWire {
    fn from(u: &crate::domain::User) -> Self {
        Self {
            id: u.id.as_uuid(),
            email: u.email.as_str().to_owned(),
            email_verified: u.email_verified,
            name: u.name.clone(),
            status: u.status.into(),
            created_at: u.created_at.0,
            updated_at: u.updated_at.0,
        }
    }
}

/// A page of accounts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserWire>,
    /// Give it as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// The body of `POST /users`: the account is created pending and its activation link mailed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub email: String,
    pub name: Option<String>,
    /// The organization (id or slug) the account joins; required for an organization's
    /// credential, whose verified domain the address must be of.
    pub org: Option<String>,
    /// The role in `org` (member when absent; owners are made by owners, in Guichet).
    pub role: Option<RoleWire>,
}

/// An open sign-in session of an account.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionWire {
    /// The session id (the OIDC `sid`), to revoke it.
    pub sid: String,
    /// Unix seconds of the sign-in.
    pub auth_time: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    /// How the user authenticated (RFC 8176 values).
    pub amr: Vec<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl From<&crate::domain::AuthSessionRecord> for SessionWire {
    fn from(s: &crate::domain::AuthSessionRecord) -> Self {
        Self {
            sid: s.sid.clone(),
            auth_time: s.auth_time.0,
            last_seen: s.last_seen.0,
            expires_at: s.expires_at.min(s.idle_expires_at).0,
            amr: s.amr.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
        }
    }
}

// ---------------------------------------------------------------------- plumbing

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NotFound => ApiError::not_found(),
            AdminError::Forbidden(m) => ApiError::forbidden(m),
            AdminError::Invalid(m) => ApiError::bad_request(m),
            AdminError::Exists => {
                ApiError::new(StatusCode::CONFLICT, "Conflict", "an account has this address already")
            }
            AdminError::NotPending => {
                ApiError::new(StatusCode::CONFLICT, "Conflict", "this invitation is not pending any more")
            }
            AdminError::Store(s) => s.into(),
        }
    }
}

impl Caller {
    pub(super) fn scope(&self) -> AdminScope<'_> {
        AdminScope { actor: self.actor, org: self.org, write: self.write, label: &self.label }
    }
}

pub(super) fn admin(state: &AppState) -> UserAdmin<'_> {
    UserAdmin::new(&state.accounts, &state.orgs)
}

/// A user id of the path: anything but a UUID names nothing (404).
fn user_id(raw: &str) -> ApiResult<UserId> {
    raw.trim().parse::<uuid::Uuid>().map(UserId::from_uuid).map_err(|_| ApiError::not_found())
}

struct UserQuery {
    limit: usize,
    cursor: Option<UserId>,
    q: Option<String>,
    status: Option<UserStatus>,
}

/// `limit` (1 to 200, 50), `cursor`, `q`, `status`: a malformed query is a 400 problem.
fn user_query(raw: Option<&str>) -> ApiResult<UserQuery> {
    let mut out = UserQuery { limit: 50, cursor: None, q: None, status: None };
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !seen.insert(k.to_string()) {
            return Err(ApiError::bad_request(format!("{k} is given twice")));
        }
        match k.as_ref() {
            "limit" => {
                out.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=200).contains(n))
                    .ok_or_else(|| ApiError::bad_request("limit is 1 to 200"))?
            }
            "cursor" => {
                let id = decode_cursor(&v).ok_or_else(|| ApiError::bad_request("unknown cursor"))?;
                out.cursor = Some(UserId::from_uuid(id));
            }
            "q" => {
                if v.chars().count() > 200 {
                    return Err(ApiError::bad_request("q is at most 200 characters"));
                }
                out.q = Some(v.into_owned());
            }
            "status" => {
                let s = v
                    .parse::<UserStatus>()
                    .map_err(|_| ApiError::bad_request("status is pending, active or suspended"))?;
                out.status = Some(s);
            }
            _ => {}
        }
    }
    Ok(out)
}

fn user_response(u: &crate::domain::User, status: StatusCode) -> Response {
    let mut res = (status, Json(UserWire::from(u))).into_response();
    if status == StatusCode::CREATED {
        if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/users/{}", u.id)) {
            res.headers_mut().insert(header::LOCATION, v);
        }
    }
    res
}

// ---------------------------------------------------------------------- handlers

#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    params(("q" = Option<String>, Query, description = "Part of the address or name (case-insensitive)"),
        ("status" = Option<UserStatusWire>, Query, description = "Only accounts in this state"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = UserPage, description = "A page of accounts (by id): every account for a platform admin, the managed accounts of the caller's organizations otherwise"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_users(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<UserPage>> {
    let q = user_query(raw.as_deref())?;
    let page = admin(&state).search(&c.scope(), q.q.as_deref(), q.status, q.cursor, q.limit).await?;
    let next_cursor = match (page.more, page.users.last()) {
        (true, Some(last)) => Some(encode_cursor(last.id.as_uuid())),
        _ => None,
    };
    Ok(Json(UserPage { items: page.users.iter().map(UserWire::from).collect(), next_cursor }))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users",
    request_body = UserCreate,
    responses((status = 201, body = UserWire, description = "Created, pending: the activation link is mailed"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed: a read-only key, an owner asked for, or an address outside the organization's verified domains (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such organization for this caller (problem details)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "An account has this address already (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_user(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    if !c.write {
        return Err(ApiError::forbidden("this credential may only read"));
    }
    let body: UserCreate = serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    let role = match body.role {
        None => None,
        Some(RoleWire::Member) => Some(OrgRole::Member),
        Some(RoleWire::Admin) => Some(OrgRole::Admin),
        Some(RoleWire::Owner) => return Err(ApiError::forbidden("owners are made by owners, in Guichet")),
    };
    let u = admin(&state).create(&c.scope(), &body.email, body.name.as_deref(), body.org.as_deref(), role).await?;
    Ok(user_response(&u, StatusCode::CREATED))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 200, body = UserWire, description = "The account"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller: unknown, or not an account it manages (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn get_user(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let u = admin(&state).reach(&c.scope(), user_id(&id)?, false).await?;
    Ok(user_response(&u, StatusCode::OK))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 204, description = "Deleted for good (also when it was gone already): profile, credentials, sessions, grants; the audit keeps a pseudonym"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Not an account this caller manages (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_user(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&state).delete(&c.scope(), user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{id}/suspend", tag = "users",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 200, body = UserWire, description = "Suspended (idempotent): every session and refresh token ended, sign-in refused"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn suspend_user(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let u = admin(&state).set_suspended(&c.scope(), user_id(&id)?, true).await?;
    Ok(user_response(&u, StatusCode::OK))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/resume", tag = "users",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 200, body = UserWire, description = "Resumed (idempotent): active again, or pending if it never was"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn resume_user(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let u = admin(&state).set_suspended(&c.scope(), user_id(&id)?, false).await?;
    Ok(user_response(&u, StatusCode::OK))
}

#[utoipa::path(post, path = "/api/v1/users/{id}/reset-factors", tag = "users",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 204, description = "Every second factor and recovery code removed; the user is told by mail"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn reset_factors(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&state).reset_factors(&c.scope(), user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users/{id}/sessions", tag = "sessions",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 200, body = Vec<SessionWire>, description = "The account's open sign-in sessions"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_sessions(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<SessionWire>>> {
    let list = admin(&state).sessions(&c.scope(), user_id(&id)?).await?;
    Ok(Json(list.iter().map(SessionWire::from).collect()))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "sessions",
    params(("id" = String, Path, description = "The account's id")),
    responses((status = 204, description = "Every session ended (relying parties told)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn revoke_sessions(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    admin(&state).revoke_sessions(&c.scope(), user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions/{sid}", tag = "sessions",
    params(("id" = String, Path, description = "The account's id"), ("sid" = String, Path, description = "The session's id")),
    responses((status = 204, description = "Ended (also when it was not open)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn revoke_session(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((id, sid)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    admin(&state).revoke_session(&c.scope(), user_id(&id)?, &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}
