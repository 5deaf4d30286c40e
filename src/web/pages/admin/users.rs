//! The accounts: `GET /admin/users` (search by address or name, filter by status, pages of
//! [`PER_PAGE`]) and `GET /admin/users/{id}` (status, verified address, factors, organizations,
//! open sessions, recent sign-ins) with its forms: suspend or resume, reset the second factors,
//! end every session, delete (the admin types the account's address to confirm).
//!
//! Each form: platform admin (else 404), CSRF token, recent sign-in (else to the sign-in page
//! and back); then one service call, which writes the audit entry (actor: the admin's id). An
//! admin cannot suspend or delete their own account here (the account console deletes it).

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{base_ctx, notice_of, page, page_ui, Section};
use crate::accounts::AccountError;
use crate::domain::{User, UserId, UserStatus};
use crate::web::error::WebError;
use crate::web::pages::common::{form_error_key, reauth, recent};
use crate::web::session::Session;
use crate::web::state::AppState;

/// Accounts per page of the list.
const PER_PAGE: i64 = 50;
/// Sign-ins listed on an account's page (newest first).
const HISTORY: usize = 20;

#[derive(Deserialize, Default)]
#[serde(default)]
struct ListQuery {
    q: String,
    status: String,
    page: String,
    notice: Option<String>,
}

/// The list's URL for these criteria and page (criteria kept when paging).
fn list_url(q: &str, status: Option<UserStatus>, page: i64) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        ser.append_pair("q", q);
    }
    if let Some(s) = status {
        ser.append_pair("status", s.as_str());
    }
    if page > 1 {
        ser.append_pair("page", &page.to_string());
    }
    let qs = ser.finish();
    if qs.is_empty() {
        "/admin/users".to_owned()
    } else {
        format!("/admin/users?{qs}")
    }
}

fn status_of(raw: &str) -> Option<UserStatus> {
    [UserStatus::Active, UserStatus::Pending, UserStatus::Suspended].into_iter().find(|s| s.as_str() == raw.trim())
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let (s, u) = platform_admin!(state, headers, "/admin/users");
    let ui = page_ui(&headers, &uri, &u);
    let f: ListQuery = crate::web::pages::unique_params(raw.as_deref().unwrap_or("").as_bytes())?;
    let q = f.q.trim().to_owned();
    let status = status_of(&f.status);
    let page_no = f.page.trim().parse::<i64>().unwrap_or(1).clamp(1, 1_000_000);
    let (users, total) = state.accounts.find_users(&q, status, page_no, PER_PAGE).await?;
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let notice = notice_of(&state, &ui, raw.as_deref()).filter(|_| f.notice.is_some());
    let mut ctx = base_ctx(&state, &ui, &s, Section::Users, notice);
    ctx["q"] = json!(q);
    ctx["status"] = json!(status.map(|s| s.as_str()).unwrap_or(""));
    ctx["statuses"] = json!(["active", "pending", "suspended"]);
    ctx["users"] = users.iter().map(user_row).collect();
    ctx["total"] = json!(total.to_string());
    ctx["page"] = json!(page_no.to_string());
    ctx["pages"] = json!(pages.to_string());
    ctx["prev_url"] = json!((page_no > 1).then(|| list_url(&q, status, page_no - 1)));
    ctx["next_url"] = json!((page_no < pages).then(|| list_url(&q, status, page_no + 1)));
    page(&state, &ui, StatusCode::OK, "admin_users.html", &ctx)
}

fn user_row(u: &User) -> Value {
    json!({
        "id": u.id.to_string(), "email": u.email.as_str(), "name": u.name.clone().unwrap_or_default(),
        "status": u.status.as_str(), "email_verified": u.email_verified, "is_admin": u.is_admin,
        "created": u.created_at.display_utc(),
    })
}

/// The account of the path, or 404 (a malformed id too).
async fn account(state: &AppState, raw: &str) -> Result<User, WebError> {
    let id = raw.trim().parse::<UserId>().map_err(|_| WebError::NotFound)?;
    state.accounts.find(id).await?.ok_or(WebError::NotFound)
}

fn user_url(id: UserId) -> String {
    format!("/admin/users/{id}")
}

pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, WebError> {
    let back = format!("/admin/users/{}", url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>());
    let (s, u) = platform_admin!(state, headers, &back);
    let target = account(&state, &id).await?;
    let ui = page_ui(&headers, &uri, &u);
    let notice = notice_of(&state, &ui, raw.as_deref());
    user_page(&state, &headers, &uri, &s, &u, &target, StatusCode::OK, notice, None).await
}

/// The account's page (with a notice or a form's error).
#[allow(clippy::too_many_arguments)]
async fn user_page(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    s: &Session,
    admin: &User,
    target: &User,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let ui = page_ui(headers, uri, admin);
    let factors: Vec<_> = state.mfa.factors(target.id).await?.into_iter().filter(|f| f.confirmed).collect();
    let memberships = state.orgs.memberships_of(target.id).await.map_err(crate::web::pages::orgs::web_error)?;
    let sessions = state.accounts.sessions(target.id).await?;
    let history = state.accounts.login_history(target.id).await?;
    let ua = |x: &Option<String>| x.as_deref().map(|a| a.chars().take(80).collect::<String>()).unwrap_or_default();
    let mut ctx = base_ctx(state, &ui, s, Section::Users, notice);
    ctx["title"] = json!(format!("{} · {}", target.email.as_str(), ui.t(&state.templates, "admin.title")));
    ctx["error"] = json!(error);
    ctx["user"] = user_row(target);
    ctx["user"]["phone"] = json!(target.phone_number.clone().unwrap_or_default());
    ctx["user"]["updated"] = json!(target.updated_at.display_utc());
    ctx["is_self"] = json!(target.id == admin.id);
    ctx["suspended"] = json!(target.status == UserStatus::Suspended);
    ctx["factor_count"] = json!(factors.len().to_string());
    ctx["factor_kinds"] =
        json!(factors.iter().map(|f| f.kind.as_str().to_owned()).collect::<std::collections::BTreeSet<_>>());
    ctx["memberships"] =
        memberships.iter().map(|m| json!({"slug": m.org.slug, "name": m.org.name, "role": m.role.as_str()})).collect();
    ctx["sessions"] = sessions
        .iter()
        .map(|x| {
            json!({
                "signed_in": x.auth_time.display_utc(), "last_seen": x.last_seen.display_utc(),
                "ip": x.ip.clone().unwrap_or_default(), "device": ua(&x.user_agent), "amr": x.amr.join("+"),
            })
        })
        .collect();
    ctx["session_count"] = json!(sessions.len().to_string());
    ctx["history"] = history
        .iter()
        .take(HISTORY)
        .map(|e| {
            json!({
                "at": e.at.display_utc(), "at_iso": e.at.rfc3339(), "success": e.success, "method": e.method,
                "ip": e.ip.clone().unwrap_or_default(), "device": ua(&e.user_agent),
            })
        })
        .collect();
    page(state, &ui, status, "admin_user.html", &ctx)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ActionForm {
    csrf_token: String,
    confirm_email: String,
}

type FormResult = Result<Form<ActionForm>, FormRejection>;

/// What a form asks of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Suspend,
    Resume,
    ResetFactors,
    RevokeSessions,
    Delete,
}

impl Action {
    fn notice(self) -> &'static str {
        match self {
            Action::Suspend => "suspended",
            Action::Resume => "resumed",
            Action::ResetFactors => "factors_reset",
            Action::RevokeSessions => "sessions_revoked",
            Action::Delete => "deleted",
        }
    }

    /// Done to oneself, it would lock the admin out (or delete them without the account
    /// console's steps).
    fn refused_on_self(self) -> bool {
        matches!(self, Action::Suspend | Action::Delete)
    }
}

/// One form of an account's page: checks, the service call, the answer.
async fn act(
    state: AppState,
    id: String,
    headers: HeaderMap,
    uri: Uri,
    form: FormResult,
    action: Action,
) -> Result<Response, WebError> {
    let (s, u) = platform_admin!(state, headers, "/admin/users");
    let Form(f) = form?;
    crate::web::session::check_csrf(Some(&s), &f.csrf_token, &headers)?;
    let target = account(&state, &id).await?;
    let back = user_url(target.id);
    if !recent(&state, &s) {
        return Ok(reauth(&back));
    }
    let actor = u.id.to_string();
    let outcome = if action.refused_on_self() && target.id == u.id {
        Err(AccountError::NotAllowed("admin.users.error.self"))
    } else {
        match action {
            Action::Suspend => state.accounts.set_suspended(target.id, true, &actor).await.map(|_| ()),
            Action::Resume => state.accounts.set_suspended(target.id, false, &actor).await.map(|_| ()),
            Action::ResetFactors => state.accounts.reset_factors(target.id, &actor).await,
            Action::RevokeSessions => state.accounts.revoke_all_sessions(target.id, &actor).await.map(|_| ()),
            Action::Delete => {
                let auth_time = s.data.user.as_ref().map(|x| x.auth_time);
                state.accounts.delete(target.id, Some(&f.confirm_email), auth_time, &actor).await
            }
        }
    };
    match outcome {
        Ok(()) => {
            tracing::info!(admin = %u.id, user_id = %target.id, action = action.notice(), "admin console action");
            let to = if action == Action::Delete { "/admin/users".to_owned() } else { back };
            Ok(Redirect::to(&format!("{to}?notice={}", action.notice())).into_response())
        }
        Err(AccountError::Reauthenticate) => Ok(reauth(&back)),
        Err(e) => match form_error_key(&e) {
            Some(key) => {
                let status = match e {
                    AccountError::NotAllowed(_) => StatusCode::FORBIDDEN,
                    AccountError::Throttled => StatusCode::TOO_MANY_REQUESTS,
                    _ => StatusCode::BAD_REQUEST,
                };
                let ui = page_ui(&headers, &uri, &u);
                let message = state.templates.t(ui.lang, key).to_owned();
                user_page(&state, &headers, &uri, &s, &u, &target, status, None, Some(message)).await
            }
            None => Err(e.into()),
        },
    }
}

/// `POST /admin/users/<id>/<action>`: suspend, resume, reset-factors, revoke-sessions, delete.
pub async fn action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
    form: FormResult,
) -> Result<Response, WebError> {
    let action = match action.as_str() {
        "suspend" => Action::Suspend,
        "resume" => Action::Resume,
        "reset-factors" => Action::ResetFactors,
        "revoke-sessions" => Action::RevokeSessions,
        "delete" => Action::Delete,
        _ => return Err(WebError::NotFound),
    };
    act(state, id, headers, uri, form, action).await
}
