//! The audit log, searched, paged and exported (JSON lines), through `crate::audit`: an
//! organization's log (`/orgs/{org}/audit`, its keys and admins), and the whole log (`/audit`:
//! everything for the platform, the key's organization's entries for a key).
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use utoipa::OpenApi;

use super::*;
use crate::audit::{AuditError, AuditQuery, Reader};
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/audit", get(audit_log))
        .route("/orgs/{org}/audit/export", get(audit_export))
        .route("/audit", get(platform_log))
        .route("/audit/export", get(platform_export))
}

#[derive(OpenApi)]
#[openapi(
    paths(audit_log, audit_export, platform_log, platform_export),
    components(schemas(AuditPage, AuditWire, OutcomeWire)),
    tags((name = "audit"))
)]
pub(super) struct Doc;

impl From<AuditError> for ApiError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::NotFound => ApiError::not_found(),
            AuditError::Forbidden => ApiError::forbidden("not allowed to read this audit log"),
            AuditError::Invalid(m) => ApiError::bad_request(m),
            AuditError::Store(s) => s.into(),
        }
    }
}

/// The search of a request: `limit` (1 to 200, 50), `cursor`, and the filters; each at most once.
struct Search {
    limit: i64,
    before: Option<i64>,
    q: AuditQuery,
}

fn search_of(raw: Option<&str>) -> ApiResult<Search> {
    let mut s = Search { limit: 50, before: None, q: AuditQuery::default() };
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !seen.insert(k.to_string()) {
            return Err(ApiError::bad_request(format!("{k} is given twice")));
        }
        let v = Some(v.into_owned());
        match k.as_ref() {
            "limit" => {
                s.limit = v
                    .and_then(|n| n.parse::<i64>().ok())
                    .filter(|n| (1..=crate::audit::PAGE_MAX).contains(n))
                    .ok_or_else(|| ApiError::bad_request("limit is 1 to 200"))?
            }
            "cursor" => {
                s.before = Some(
                    v.as_deref()
                        .and_then(decode_audit_cursor)
                        .ok_or_else(|| ApiError::bad_request("unknown cursor"))?,
                )
            }
            "action" => s.q.action = v,
            "actor" => s.q.actor = v,
            "subject" => s.q.subject = v,
            "outcome" => s.q.outcome = v,
            "from" => s.q.from = v,
            "until" => s.q.until = v,
            "org" => s.q.org = v,
            _ => {}
        }
    }
    Ok(s)
}

fn encode_audit_cursor(id: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.to_string())
}

fn decode_audit_cursor(c: &str) -> Option<i64> {
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    String::from_utf8(b).ok()?.parse::<i64>().ok()
}

fn reader(c: &Caller) -> Reader {
    Reader { actor: c.actor, confined_to: c.org }
}

async fn page(state: &AppState, c: &Caller, org: Option<&str>, raw: Option<&str>) -> ApiResult<Response> {
    let s = search_of(raw)?;
    let p = state.audit.search(reader(c), org, &s.q, s.before, s.limit).await?;
    let items = p.entries.iter().map(|(id, e)| AuditWire::new(*id, e)).collect();
    Ok(Json(AuditPage { items, next_cursor: p.next_before.map(encode_audit_cursor) }).into_response())
}

async fn export(state: &AppState, c: &Caller, org: Option<&str>, raw: Option<&str>) -> ApiResult<Response> {
    let s = search_of(raw)?;
    let all = state.audit.export(reader(c), org, &s.q).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], AuditWire::json_lines(&all)).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit", tag = "audit",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("action" = Option<String>, Query, description = "Only this action (org.member_added), or those starting with a prefix ending in `*` or `.` (org.*)"),
        ("actor" = Option<String>, Query, description = "Only entries by this actor: a user's id or address, `platform`, `operator`"),
        ("subject" = Option<String>, Query, description = "Only entries about this subject (as in `subject`)"),
        ("outcome" = Option<OutcomeWire>, Query, description = "Only entries that ended so"),
        ("from" = Option<String>, Query, description = "From this time: a day (YYYY-MM-DD, UTC), RFC 3339 or Unix seconds"),
        ("until" = Option<String>, Query, description = "Before this time (a day: its end)")),
    responses((status = 200, body = AuditPage, description = "The organization's audit log, newest first"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn audit_log(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    page(&state, &c, Some(&org), raw.as_deref()).await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit/export", tag = "audit",
    params(("org" = String, Path, description = "The organization's id or slug"),
        ("action" = Option<String>, Query, description = "As for the log"),
        ("actor" = Option<String>, Query, description = "As for the log"),
        ("subject" = Option<String>, Query, description = "As for the log"),
        ("outcome" = Option<OutcomeWire>, Query, description = "As for the log"),
        ("from" = Option<String>, Query, description = "As for the log"),
        ("until" = Option<String>, Query, description = "As for the log")),
    responses((status = 200, body = String, content_type = "application/x-ndjson",
            description = "The entries found (10 000 at most, newest first) as JSON lines, one AuditWire per line"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn audit_export(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    export(&state, &c, Some(&org), raw.as_deref()).await
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("limit" = Option<usize>, Query, minimum = 1, maximum = 200, description = "1 to 200 (50)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page"),
        ("org" = Option<String>, Query, description = "Only this organization's entries (id or slug; a key: always its own)"),
        ("action" = Option<String>, Query, description = "Only this action, or those starting with a prefix ending in `*` or `.`"),
        ("actor" = Option<String>, Query, description = "Only entries by this actor: a user's id or address, `platform`, `operator`"),
        ("subject" = Option<String>, Query, description = "Only entries about this subject"),
        ("outcome" = Option<OutcomeWire>, Query, description = "Only entries that ended so"),
        ("from" = Option<String>, Query, description = "From this time: a day (YYYY-MM-DD, UTC), RFC 3339 or Unix seconds"),
        ("until" = Option<String>, Query, description = "Before this time (a day: its end)")),
    responses((status = 200, body = AuditPage, description = "The audit log, newest first: all of it for the platform, the key's organization's entries for a key"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not a platform admin (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such organization (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn platform_log(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    page(&state, &c, None, raw.as_deref()).await
}

#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit",
    params(("org" = Option<String>, Query, description = "As for the log"),
        ("action" = Option<String>, Query, description = "As for the log"),
        ("actor" = Option<String>, Query, description = "As for the log"),
        ("subject" = Option<String>, Query, description = "As for the log"),
        ("outcome" = Option<OutcomeWire>, Query, description = "As for the log"),
        ("from" = Option<String>, Query, description = "As for the log"),
        ("until" = Option<String>, Query, description = "As for the log")),
    responses((status = 200, body = String, content_type = "application/x-ndjson",
            description = "The entries found (10 000 at most, newest first) as JSON lines, one AuditWire per line"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not a platform admin (problem details)"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "No such organization (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn platform_export(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    export(&state, &c, None, raw.as_deref()).await
}
