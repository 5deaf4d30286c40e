//! The audit log, paged and exported.
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use utoipa::OpenApi;

use super::*;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/orgs/{org}/audit", get(audit_log)).route("/orgs/{org}/audit/export", get(audit_export))
}

#[derive(OpenApi)]
#[openapi(paths(audit_log, audit_export), components(schemas(AuditPage, AuditWire)), tags((name = "audit")))]
pub(super) struct Doc;

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit", tag = "audit",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("action" = Option<String>, Query, description = "Only this action, e.g. org.member_added")),
    responses((status = 200, body = AuditPage, description = "The organization's audit log, newest first"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn audit_log(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, false).await?;
    let q = page_query(raw.as_deref())?;
    let before = match q.cursor.as_deref() {
        Some(c) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| ApiError::bad_request("unknown cursor"))?,
        ),
        None => None,
    };
    let org_ref = org.id.to_string();
    let limit = i64::try_from(q.limit).unwrap_or(50);
    let mut rows = state.orgs.audit_log(c.actor, &org_ref, q.action.as_deref(), before, limit + 1).await?;
    let next_cursor = if rows.len() > q.limit {
        rows.truncate(q.limit);
        rows.last().map(|(id, _)| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_string()))
    } else {
        None
    };
    let items = rows.iter().map(|(id, e)| AuditWire::new(*id, e)).collect();
    Ok(Json(AuditPage { items, next_cursor }).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit/export", tag = "audit",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("action" = Option<String>, Query, description = "Only this action, e.g. org.member_added")),
    responses((status = 200, body = String, content_type = "application/x-ndjson",
            description = "The organization's audit log (10 000 entries at most, newest first) as JSON lines, one AuditWire per line"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = [])))]
async fn audit_export(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let org = org_of(&state, &c, &org, false).await?;
    let q = page_query(raw.as_deref())?;
    let all = state.orgs.audit_log(c.actor, &org.id.to_string(), q.action.as_deref(), None, 10_000).await?;
    let mut body = String::new();
    for (id, e) in &all {
        body.push_str(&serde_json::to_string(&AuditWire::new(*id, e)).unwrap_or_default());
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
