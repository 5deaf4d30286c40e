//! An organization's invitations: list, send, revoke, send again (a new link; the old one dies).
//! The service (`accounts::admin::UserAdmin`) checks the caller administers the organization
//! (else 404) and that an invitation is this organization's.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::users::admin;
use super::*;
use crate::i18n::Lang;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/invitations", get(list_invitations).post(create_invitation))
        .route("/orgs/{org}/invitations/{id}", axum::routing::delete(revoke_invitation))
        .route("/orgs/{org}/invitations/{id}/resend", post(resend_invitation))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_invitations, create_invitation, revoke_invitation, resend_invitation),
    components(schemas(InvitationWire, InvitationPage, InvitationCreate, InvitationResend, InvitationStatusWire)),
    tags((name = "invitations", description = "Invitations into an organization (mailed links; an account is created on acceptance when there is none)"))
)]
pub(super) struct Doc;

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InvitationStatusWire {
    Pending,
    Accepted,
    Expired,
    Revoked,
}

/// An invitation into the organization.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationWire {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: Option<String>,
    #[schema(value_type = Option<RoleWire>)]
    pub role: Option<String>,
    pub status: InvitationStatusWire,
    /// The account that invited (absent for the platform or a key).
    pub invited_by: Option<uuid::Uuid>,
    /// Unix seconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

impl InvitationWire {
    fn of(i: &crate::domain::account::Invitation, now: crate::domain::UnixTime) -> Self {
        let status = match i.status(now) {
            "revoked" => InvitationStatusWire::Revoked,
            "accepted" => InvitationStatusWire::Accepted,
            "expired" => InvitationStatusWire::Expired,
            _ => InvitationStatusWire::Pending,
        };
        Self {
            id: i.id,
            email: i.email.clone(),
            name: i.name.clone(),
            role: i.org_role.map(|r| r.as_str().to_owned()),
            status,
            invited_by: i.invited_by.map(|u| u.as_uuid()),
            created_at: i.created_at.0,
            expires_at: i.expires_at.0,
            accepted_at: i.accepted_at.map(|t| t.0),
        }
    }
}

/// A page of invitations, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationPage {
    pub items: Vec<InvitationWire>,
    pub next_cursor: Option<String>,
}

/// The body of `POST .../invitations`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationCreate {
    pub email: String,
    /// Member when absent (owners are made by owners, in Guichet).
    pub role: Option<RoleWire>,
    /// The language of the mail: `en` (default) or `fr`.
    pub lang: Option<String>,
}

fn lang(raw: Option<&str>) -> ApiResult<Lang> {
    match raw {
        None => Ok(Lang::En),
        Some(l) => Lang::parse(l).ok_or_else(|| ApiError::bad_request("lang is en or fr")),
    }
}

fn invitation_id(raw: &str) -> ApiResult<uuid::Uuid> {
    raw.trim().parse::<uuid::Uuid>().map_err(|_| ApiError::not_found())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/invitations", tag = "invitations",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses((status = 200, body = InvitationPage, description = "A page of the organization's invitations, newest first"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_invitations(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<InvitationPage>> {
    let q = page_query(raw.as_deref())?;
    let after = match q.cursor.as_deref() {
        Some(c) => Some(decode_cursor(c).ok_or_else(|| ApiError::bad_request("unknown cursor"))?),
        None => None,
    };
    let (_, list) = admin(&state).invitations(&c.scope(), &org).await?;
    let start = match after {
        Some(a) => {
            list.iter().position(|i| i.id == a).map(|p| p + 1).ok_or_else(|| ApiError::bad_request("unknown cursor"))?
        }
        None => 0,
    };
    let rest = &list[start.min(list.len())..];
    let now = state.clock.now();
    let next_cursor = (rest.len() > q.limit).then(|| encode_cursor(rest[q.limit - 1].id));
    Ok(Json(InvitationPage {
        items: rest.iter().take(q.limit).map(|i| InvitationWire::of(i, now)).collect(),
        next_cursor,
    }))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations", tag = "invitations",
    params(("org" = String, Path, description = "The organization's id or slug")),
    request_body = InvitationCreate,
    responses((status = 201, body = InvitationWire, description = "Sent: the invitee gets a link by mail"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn create_invitation(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: InvitationCreate =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    // The organization first: another one's is 404 whatever the body asks.
    admin(&state).organization(&c.scope(), &org, true).await?;
    let role = match body.role {
        None | Some(RoleWire::Member) => OrgRole::Member,
        Some(RoleWire::Admin) => OrgRole::Admin,
        Some(RoleWire::Owner) => return Err(ApiError::forbidden("owners are made by owners, in Guichet")),
    };
    let lang = lang(body.lang.as_deref())?;
    let inv = admin(&state).invite(&c.scope(), &org, &body.email, role, lang).await?;
    Ok((StatusCode::CREATED, Json(InvitationWire::of(&inv, state.clock.now()))).into_response())
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/invitations/{id}", tag = "invitations",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The invitation's id")),
    responses((status = 204, description = "Revoked: its link no longer works (also when there was no such pending invitation)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn revoke_invitation(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let admin = admin(&state);
    match invitation_id(&id) {
        Ok(id) => admin.revoke_invitation(&c.scope(), &org, id).await?,
        // Not an id: there is no such invitation (once the organization is checked).
        Err(_) => {
            admin.organization(&c.scope(), &org, true).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations/{id}/resend", tag = "invitations",
    params(("org" = String, Path, description = "The organization's id or slug"), ("id" = String, Path, description = "The invitation's id")),
    request_body(content = Option<InvitationResend>, description = "Optional: the language of the mail"),
    responses((status = 200, body = InvitationWire, description = "Sent again with a new link (the previous link no longer works; the expiry restarts)"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid credentials (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this caller (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this caller (problem details)"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Accepted or revoked already (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn resend_invitation(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Json<InvitationWire>> {
    let lang = if body.is_empty() {
        Lang::En
    } else {
        let r: InvitationResend =
            serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
        self::lang(r.lang.as_deref())?
    };
    let id = invitation_id(&id)?;
    let inv = admin(&state).resend_invitation(&c.scope(), &org, id, lang).await?;
    Ok(Json(InvitationWire::of(&inv, state.clock.now())))
}

/// The (optional) body of `POST .../invitations/{id}/resend`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationResend {
    /// `en` (default) or `fr`.
    pub lang: Option<String>,
}
