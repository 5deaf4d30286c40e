//! The audit log pages: `/admin/audit` (platform admins: every entry, optionally of one
//! organization) and `/orgs/{slug}/audit` (an organization's admins: its entries only). Both
//! show a table with filters (action, actor, outcome, date range), pages (newest first, `before`
//! an entry id) and an export link (JSON lines, the same filters) at `.../audit/export`.
//!
//! `crate::audit::AuditService` authorizes and searches: on the organization pages a
//! non-member gets 404 and a plain member 403, as on the organization's other pages; anyone but
//! a platform admin gets 404 on `/admin/audit`, as on the rest of the console.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::common::{render, ui};
use crate::audit::{AuditError, AuditPage, AuditQuery, Reader};
use crate::domain::account::{AuditEvent, AuditOutcome};
use crate::domain::org::Org;
use crate::domain::User;
use crate::orgs::Actor;
use crate::web::error::WebError;
use crate::web::state::AppState;

/// Entries per page.
const PAGE_SIZE: i64 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(platform_page))
        .route("/admin/audit/export", get(platform_export))
        .route("/orgs/{slug}/audit", get(org_page))
        .route("/orgs/{slug}/audit/export", get(org_export))
}

/// The filters of the form, and the page (`before`: the last entry id of the previous page).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Params {
    action: Option<String>,
    actor: Option<String>,
    subject: Option<String>,
    outcome: Option<String>,
    from: Option<String>,
    until: Option<String>,
    org: Option<String>,
    before: Option<String>,
}

impl Params {
    fn parse(raw: Option<&str>) -> Result<(AuditQuery, Option<i64>), WebError> {
        let p: Params = super::unique_params(raw.unwrap_or_default().as_bytes())?;
        let before = match p.before.as_deref().map(str::trim).filter(|b| !b.is_empty()) {
            Some(b) => Some(b.parse::<i64>().map_err(|_| WebError::BadRequest("before: an entry number".into()))?),
            None => None,
        };
        let q = AuditQuery {
            action: p.action,
            actor: p.actor,
            subject: p.subject,
            outcome: p.outcome,
            from: p.from,
            until: p.until,
            org: p.org,
        };
        Ok((q, before))
    }
}

fn audit_error(e: AuditError) -> WebError {
    match e {
        AuditError::NotFound => WebError::NotFound,
        AuditError::Forbidden => WebError::page(StatusCode::FORBIDDEN, "orgs.error.forbidden"),
        AuditError::Invalid(m) => WebError::BadRequest(m),
        AuditError::Store(s) => s.into(),
    }
}

/// The signed-in platform admin (anyone else signed in: 404, like the rest of the console).
async fn platform_admin(state: &AppState, headers: &HeaderMap, back: &str) -> Result<Result<User, Response>, WebError> {
    Ok(match super::common::signed_in_or_redirect(state, headers, back).await? {
        Ok((_, u)) if u.is_admin => Ok(u),
        Ok(_) => return Err(WebError::NotFound),
        Err(r) => Err(r),
    })
}

/// `GET /admin/audit`.
async fn platform_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let u = match platform_admin(&state, &headers, "/admin/audit").await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let (q, before) = Params::parse(raw.as_deref())?;
    let page =
        state.audit.search(Reader::actor(Actor::Platform), None, &q, before, PAGE_SIZE).await.map_err(audit_error)?;
    let ui = ui(&headers, &uri, Some(&u));
    let mut ctx = page_ctx(&state, &q, &page, "/admin/audit", true, before.is_some()).await;
    ctx["title"] =
        json!(format!("{} · {}", ui.t(&state.templates, "audit.title"), ui.t(&state.templates, "admin.title")));
    ctx["admin"] = json!(true);
    ctx["section"] = json!("audit");
    render(&state, &ui, StatusCode::OK, "audit_log.html", &ctx)
}

/// `GET /admin/audit/export`: the entries found, as JSON lines.
async fn platform_export(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    if let Err(r) = platform_admin(&state, &headers, "/admin/audit").await? {
        return Ok(r);
    }
    let (q, _) = Params::parse(raw.as_deref())?;
    let all = state.audit.export(Reader::actor(Actor::Platform), None, &q).await.map_err(audit_error)?;
    Ok(json_lines(&all, "audit"))
}

/// The organization of the path, if `u` may read its log.
async fn org_of(state: &AppState, u: &User, slug: &str) -> Result<Org, WebError> {
    state.audit.org_for(Reader::actor(Actor::of(u)), slug).await.map_err(audit_error)
}

fn back_to(slug: &str) -> String {
    format!("/orgs/{}/audit", url::form_urlencoded::byte_serialize(slug.as_bytes()).collect::<String>())
}

/// `GET /orgs/{slug}/audit`.
async fn org_page(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (_, u) = signed_in_or_login!(state, headers, &back_to(&slug));
    let org = org_of(&state, &u, &slug).await?;
    let (q, before) = Params::parse(raw.as_deref())?;
    let reader = Reader::actor(Actor::of(&u));
    let page = state.audit.search(reader, Some(&org.slug), &q, before, PAGE_SIZE).await.map_err(audit_error)?;
    let ui = ui(&headers, &uri, Some(&u)).branded(Some(&org));
    let mut ctx = page_ctx(&state, &q, &page, &format!("/orgs/{}/audit", org.slug), false, before.is_some()).await;
    ctx["title"] = json!(format!("{} · {}", ui.t(&state.templates, "audit.title"), org.name));
    ctx["org"] = json!({"id": org.id, "slug": org.slug, "name": org.name});
    ctx["section"] = json!("audit");
    render(&state, &ui, StatusCode::OK, "audit_log.html", &ctx)
}

/// `GET /orgs/{slug}/audit/export`.
async fn org_export(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (_, u) = signed_in_or_login!(state, headers, &back_to(&slug));
    let org = org_of(&state, &u, &slug).await?;
    let (q, _) = Params::parse(raw.as_deref())?;
    let all = state.audit.export(Reader::actor(Actor::of(&u)), Some(&org.slug), &q).await.map_err(audit_error)?;
    Ok(json_lines(&all, &format!("audit-{}", org.slug)))
}

/// The entries as a JSON lines download (the API's entry format).
fn json_lines(entries: &[(i64, AuditEvent)], name: &str) -> Response {
    let mut res = crate::api::AuditWire::json_lines(entries).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-ndjson"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.jsonl\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// What the table, the form and the links show. `base`: the page's path; `all_orgs`: the whole
/// log (an organization column and filter).
/// `later`: not the first page (a link back to it).
async fn page_ctx(
    state: &AppState,
    q: &AuditQuery,
    page: &AuditPage,
    base: &str,
    all_orgs: bool,
    later: bool,
) -> Value {
    let mut slugs: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut rows = Vec::with_capacity(page.entries.len());
    for (id, e) in &page.entries {
        let org = match e.org {
            Some(o) if all_orgs => {
                let key = o.to_string();
                if !slugs.contains_key(&key) {
                    // A deleted organization shows its id.
                    let slug = state.orgs.find(&key).await.ok().flatten().map(|org| org.slug).unwrap_or(key.clone());
                    slugs.insert(key.clone(), slug);
                }
                slugs.get(&key).cloned()
            }
            _ => None,
        };
        rows.push(json!({
            "id": id.to_string(), "at": e.at.display_utc(), "at_iso": e.at.rfc3339(), "action": e.action,
            "subject": e.subject, "actor": e.actor.clone().unwrap_or_default(), "outcome": e.outcome.as_str(),
            "ip": e.ip.clone().unwrap_or_default(), "user_agent": e.user_agent.clone().unwrap_or_default(),
            "org": org, "detail": e.detail.clone().unwrap_or_default(),
        }));
    }
    let filter = q.to_query();
    let sep = |s: &str| if s.is_empty() { String::new() } else { format!("{s}&") };
    json!({
        "entries": rows,
        "retention_days": state.settings.audit.retention_days.to_string(),
        "all_orgs": all_orgs,
        "filter": {
            "action": q.action.clone().unwrap_or_default(), "actor": q.actor.clone().unwrap_or_default(),
            "subject": q.subject.clone().unwrap_or_default(), "outcome": q.outcome.clone().unwrap_or_default(),
            "from": q.from.clone().unwrap_or_default(), "until": q.until.clone().unwrap_or_default(),
            "org": q.org.clone().unwrap_or_default(),
        },
        "outcomes": AuditOutcome::ALL.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        "base": base,
        "next": page.next_before.map(|b| format!("{base}?{}before={b}", sep(&filter))),
        "first": later.then(|| if filter.is_empty() { base.to_owned() } else { format!("{base}?{filter}") }),
        "export": if filter.is_empty() { format!("{base}/export") } else { format!("{base}/export?{filter}") },
    })
}
