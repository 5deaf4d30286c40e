//! The account console (`/account`; `/` redirects there): profile, password, email and phone,
//! sessions and sign-in history, applications, data export, deletion; and sign-out.

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::common::{account_error, form_error_key, message, reauth, recent, render, ui};
use crate::accounts::{AccountError, EmailChangeStep};
use crate::crypto::{tokens, SecretString};
use crate::domain::User;
use crate::web::client_ip::ClientIp;
use crate::web::error::WebError;
use crate::web::session::{check_csrf, Session};
use crate::web::state::AppState;
use crate::web::templates::Ui;

type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

/// Time zones offered in the profile form (any IANA-like name is accepted).
const TIME_ZONES: &[&str] = &[
    "UTC",
    "Europe/Paris",
    "Europe/Brussels",
    "Europe/Zurich",
    "Europe/Luxembourg",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Rome",
    "America/Montreal",
    "America/New_York",
    "America/Los_Angeles",
    "Africa/Casablanca",
    "Africa/Dakar",
    "Africa/Abidjan",
    "Indian/Reunion",
    "America/Martinique",
    "America/Guadeloupe",
    "Pacific/Noumea",
    "Pacific/Tahiti",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Australia/Sydney",
];

pub async fn root() -> Redirect {
    Redirect::to("/account")
}

/// Times are shown in UTC (the zone name is kept for relying apps; no tz database here).
fn fmt_time(t: crate::domain::UnixTime) -> String {
    t.display_utc()
}

async fn console(
    state: &AppState,
    ui: &Ui,
    s: &Session,
    u: &User,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let apps: Vec<Value> = state
        .accounts
        .applications(u.id)
        .await?
        .into_iter()
        .map(|(c, scope, _)| json!({"client_id": c.client_id.to_string(), "name": c.name, "scope": scope}))
        .collect();
    let p = &state.settings.password;
    let orgs: Vec<Value> = state
        .orgs
        .memberships_of(u.id)
        .await
        .map_err(super::orgs::web_error)?
        .into_iter()
        .map(
            |m| json!({"slug": m.org.slug, "name": m.org.name, "role": m.role.as_str(), "admin": m.role.administers()}),
        )
        .collect();
    let identities: Vec<Value> = state
        .federation
        .identities_of(u.id)
        .await
        .map_err(|e| match e {
            crate::federation::FederationError::Store(s) => WebError::from(s),
            other => WebError::Internal(anyhow::anyhow!("{other}")),
        })?
        .into_iter()
        .map(|(name, l)| json!({"name": name, "email": l.email}))
        .collect();
    let ctx = json!({
        "identities": identities,
        "title": ui.t(&state.templates, "account.title"),
        "email": u.email.as_str(), "name": u.name, "locale": u.locale.as_deref().unwrap_or(ui.lang.code()),
        "time_zone": u.time_zone, "time_zones": TIME_ZONES, "phone": u.phone_number,
        "phone_verified": u.phone_number_verified, "csrf_token": s.data.csrf, "apps": apps,
        "factor_summary": state.mfa.factor_kinds(u.id).await?.join(", "),
        "notice": notice.map(|k| ui.t(&state.templates, k)), "error": error,
        "min_length": p.min_length.to_string(), "max_length": p.max_length.to_string(),
        "orgs_link": !orgs.is_empty() || u.is_admin, "orgs": orgs, "platform_admin": u.is_admin,
        "has_password": state.accounts.has_password(u).await?,
    });
    render(state, ui, status, "account.html", &ctx)
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/account");
    let ui = ui(&headers, &uri, Some(&u)).branded(state.orgs.home_org(u.id).await.ok().flatten().as_ref());
    console(&state, &ui, &s, &u, StatusCode::OK, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ProfileForm {
    csrf_token: String,
    name: String,
    locale: String,
    time_zone: String,
}

pub async fn profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    form: FormResult<ProfileForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/account", &f.csrf_token);
    match state.accounts.update_profile(u.id, &f.name, &f.locale, &f.time_zone).await {
        Ok(()) => {
            let u = state.accounts.profile(u.id).await?;
            let ui = ui(&headers, &uri, Some(&u));
            console(&state, &ui, &s, &u, StatusCode::OK, Some("account.profile_saved"), None).await
        }
        Err(e) => form_again(&state, &headers, &uri, &s, &u, e).await,
    }
}

async fn form_again(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    s: &Session,
    u: &User,
    e: AccountError,
) -> Result<Response, WebError> {
    let ui = ui(headers, uri, Some(u));
    match form_error_key(&e) {
        Some(k) => {
            let msg = state.templates.tf(
                ui.lang,
                k,
                &[
                    ("min", &state.settings.password.min_length.to_string()),
                    ("max", &state.settings.password.max_length.to_string()),
                ],
            );
            let status = if matches!(e, AccountError::Throttled) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::BAD_REQUEST
            };
            console(state, &ui, s, u, status, None, Some(msg)).await
        }
        None => account_error(state, &ui, e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: SecretString,
    password: SecretString,
}

pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    form: FormResult<PasswordForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/account", &f.csrf_token);
    let (sid, auth_time) = s
        .data
        .user
        .as_ref()
        .map(|x| (x.sid.clone(), x.auth_time))
        .unwrap_or((String::new(), crate::domain::UnixTime(0)));
    match state.accounts.change_password(u.id, &f.current_password, &f.password, &sid, auth_time).await {
        Ok(()) => {
            let ui = ui(&headers, &uri, Some(&u));
            console(&state, &ui, &s, &u, StatusCode::OK, Some("account.password_changed"), None).await
        }
        Err(AccountError::Reauthenticate) => Ok(reauth("/account")),
        Err(e) => form_again(&state, &headers, &uri, &s, &u, e).await,
    }
}

// ---------------------------------------------------------------- email change

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmailForm {
    csrf_token: String,
    new_email: String,
    code: String,
}

async fn email_page(
    state: &AppState,
    ui: &Ui,
    s: &Session,
    u: &User,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let (step, new_email) = match state.accounts.email_change_step(u.id).await? {
        EmailChangeStep::Start => ("start", String::new()),
        EmailChangeStep::Current { new_email } => ("current", new_email),
        EmailChangeStep::New { new_email } => ("new", new_email),
    };
    let ctx = json!({
        "title": ui.t(&state.templates, "email_change.title"), "email": u.email.as_str(), "step": step,
        "new_email": new_email, "csrf_token": s.data.csrf,
        "notice": notice.map(|k| ui.t(&state.templates, k)), "error": error.map(|k| ui.t(&state.templates, k)),
    });
    render(state, ui, status, "account_email.html", &ctx)
}

pub async fn email_show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/account/email");
    let ui = ui(&headers, &uri, Some(&u));
    email_page(&state, &ui, &s, &u, StatusCode::OK, None, None).await
}

/// The three email-change steps share their answer: the page again, at its new step.
async fn email_step(
    state: &AppState,
    headers: &HeaderMap,
    f: &EmailForm,
    step: &str,
    ip: std::net::IpAddr,
) -> Result<Response, WebError> {
    let (s, u) = posted_by_user!(state, headers, "/account/email", &f.csrf_token);
    let (sid, auth_time) = s
        .data
        .user
        .as_ref()
        .map(|x| (x.sid.clone(), x.auth_time))
        .unwrap_or((String::new(), crate::domain::UnixTime(0)));
    let r = match step {
        "start" => state.accounts.start_email_change(u.id, &f.new_email, ip, auth_time).await,
        "current" => state.accounts.confirm_email_current(u.id, &f.code).await,
        "new" => state.accounts.confirm_email_new(u.id, &f.code, &sid).await,
        "cancel" => state.accounts.cancel_email_change(u.id).await,
        _ => return Err(WebError::NotFound),
    };
    let page = |u: User, status, notice, error| async move {
        let ui = ui(headers, &Uri::from_static("/account/email"), Some(&u));
        email_page(state, &ui, &s, &u, status, notice, error).await
    };
    match r {
        Err(AccountError::Reauthenticate) => Ok(reauth("/account/email")),
        Ok(()) => {
            let u = state.accounts.profile(u.id).await?;
            let notice = match step {
                "new" => Some("email_change.done"),
                "cancel" => Some("email_change.cancelled"),
                _ => None,
            };
            page(u, StatusCode::OK, notice, None).await
        }
        Err(e) => match form_error_key(&e) {
            Some(k) => {
                let status = if matches!(e, AccountError::Throttled) {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::BAD_REQUEST
                };
                page(u, status, None, Some(k)).await
            }
            None => Err(e.into()),
        },
    }
}

pub async fn email_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    form: FormResult<EmailForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    email_step(&state, &headers, &f, "start", ip).await
}

/// `POST /account/email/{current|new|cancel}`.
pub async fn email_action(
    State(state): State<AppState>,
    Path(step): Path<String>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    form: FormResult<EmailForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    match step.as_str() {
        "current" | "new" | "cancel" => email_step(&state, &headers, &f, &step, ip).await,
        _ => Err(WebError::NotFound),
    }
}

// ---------------------------------------------------------------- phone

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PhoneForm {
    csrf_token: String,
    phone: String,
    pow_challenge: String,
    pow_nonce: String,
    code: String,
}

async fn phone_page(
    state: &AppState,
    ui: &Ui,
    s: &Session,
    u: &User,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let pending = state.accounts.pending_phone(u.id).await?;
    let ctx = json!({
        "title": ui.t(&state.templates, "phone.title"), "step": if pending.is_some() { "code" } else { "start" },
        "pending_phone": pending, "phone": u.phone_number, "phone_verified": u.phone_number_verified,
        "pow_challenge": state.accounts.pow_challenge(u.id), "pow_difficulty": state.accounts.pow_difficulty(),
        "csrf_token": s.data.csrf,
        "notice": notice.map(|k| ui.t(&state.templates, k)), "error": error.map(|k| ui.t(&state.templates, k)),
    });
    render(state, ui, status, "account_phone.html", &ctx)
}

pub async fn phone_show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/account/phone");
    let ui = ui(&headers, &uri, Some(&u));
    phone_page(&state, &ui, &s, &u, StatusCode::OK, None, None).await
}

pub async fn phone_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    ClientIp(ip): ClientIp,
    form: FormResult<PhoneForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/account/phone", &f.csrf_token);
    let ui = ui(&headers, &Uri::from_static("/account/phone"), Some(&u));
    match state.accounts.start_phone(u.id, &f.phone, &f.pow_challenge, &f.pow_nonce, ip).await {
        Ok(()) => phone_page(&state, &ui, &s, &u, StatusCode::OK, None, None).await,
        Err(e) => match form_error_key(&e) {
            Some(k) => {
                let status = if matches!(e, AccountError::Throttled) {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::BAD_REQUEST
                };
                phone_page(&state, &ui, &s, &u, status, None, Some(k)).await
            }
            None => Err(e.into()),
        },
    }
}

pub async fn phone_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<PhoneForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/account/phone", &f.csrf_token);
    let ui = ui(&headers, &Uri::from_static("/account/phone"), Some(&u));
    match state.accounts.verify_phone(u.id, &f.code).await {
        Ok(()) => {
            let u = state.accounts.profile(u.id).await?;
            phone_page(&state, &ui, &s, &u, StatusCode::OK, Some("phone.verified"), None).await
        }
        Err(AccountError::CodeWrong) => {
            phone_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("phone.code_wrong")).await
        }
        Err(AccountError::TokenInvalid) => {
            phone_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("phone.code_expired")).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- sessions and history

/// A session is named on the page by a digest of its sid (the sid itself is not shown).
fn handle(sid: &str) -> String {
    tokens::digest(sid)[..16].to_owned()
}

fn device(ua: Option<&str>, unknown: &str) -> String {
    let Some(ua) = ua else { return unknown.to_owned() };
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/", "curl/", "python-requests/", "node"]
        .iter()
        .find(|b| ua.contains(**b))
        .map(|b| b.trim_end_matches('/'))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let os = ["Windows", "Android", "iPhone", "iPad", "Mac OS X", "Linux"].iter().find(|o| ua.contains(**o));
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} · {o}"),
        (Some(b), None) => b.to_owned(),
        (None, Some(o)) => (*o).to_owned(),
        (None, None) => ua.chars().take(60).collect(),
    }
}

async fn sessions_page(
    state: &AppState,
    ui: &Ui,
    s: &Session,
    u: &User,
    notice: Option<&str>,
) -> Result<Response, WebError> {
    let current = s.data.user.as_ref().map(|x| x.sid.clone()).unwrap_or_default();
    let unknown = ui.t(&state.templates, "sessions.unknown_device");
    let list = state.accounts.sessions(u.id).await?;
    let others = list.iter().any(|r| r.sid != current);
    let sessions: Vec<Value> = list
        .iter()
        .map(|r| json!({
            "handle": handle(&r.sid), "current": r.sid == current, "device": device(r.user_agent.as_deref(), unknown),
            "ip": r.ip, "signed_in": fmt_time(r.auth_time), "last_seen": fmt_time(r.last_seen),
        }))
        .collect();
    let history: Vec<Value> = state
        .accounts
        .login_history(u.id)
        .await?
        .iter()
        .map(|e| json!({"at": fmt_time(e.at), "success": e.success, "method": e.method, "ip": e.ip, "device": device(e.user_agent.as_deref(), unknown)}))
        .collect();
    let ctx = json!({
        "title": ui.t(&state.templates, "sessions.title"), "sessions": sessions, "others": others, "history": history,
        "csrf_token": s.data.csrf, "notice": notice.map(|k| ui.t(&state.templates, k)),
    });
    render(state, ui, StatusCode::OK, "account_sessions.html", &ctx)
}

pub async fn sessions_show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/account/sessions");
    let ui = ui(&headers, &uri, Some(&u));
    sessions_page(&state, &ui, &s, &u, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RevokeSessionForm {
    csrf_token: String,
    session: String,
}

pub async fn sessions_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<RevokeSessionForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/account/sessions", &f.csrf_token);
    let ui = ui(&headers, &Uri::from_static("/account/sessions"), Some(&u));
    let target = state.accounts.sessions(u.id).await?.into_iter().find(|r| handle(&r.sid) == f.session);
    let Some(target) = target else { return account_error(&state, &ui, AccountError::TokenInvalid) };
    state.accounts.revoke_session(u.id, &target.sid).await?;
    sessions_page(&state, &ui, &s, &u, Some("sessions.revoked")).await
}

pub async fn sessions_revoke_others(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<RevokeSessionForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/account/sessions", &f.csrf_token);
    let sid = s.data.user.as_ref().map(|x| x.sid.clone()).unwrap_or_default();
    state.accounts.revoke_other_sessions(u.id, &sid).await?;
    let ui = ui(&headers, &Uri::from_static("/account/sessions"), Some(&u));
    sessions_page(&state, &ui, &s, &u, Some("sessions.revoked_others")).await
}

// ---------------------------------------------------------------- export and deletion

pub async fn export(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    let (_, u) = signed_in_or_login!(state, headers, "/account");
    let data = state.accounts.export(u.id).await?;
    let body = serde_json::to_vec_pretty(&data).map_err(|e| WebError::Internal(e.into()))?;
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment; filename=\"guichet-account.json\""));
    Ok(res)
}

async fn delete_page(
    state: &AppState,
    ui: &Ui,
    s: &Session,
    u: &User,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let ctx = json!({
        "title": ui.t(&state.templates, "delete.title"), "email": u.email.as_str(), "csrf_token": s.data.csrf,
        "error": error.map(|k| ui.t(&state.templates, k)),
    });
    render(state, ui, status, "account_delete.html", &ctx)
}

pub async fn delete_show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/account/delete");
    if !recent(&state, &s) {
        return Ok(reauth("/account/delete"));
    }
    let ui = ui(&headers, &uri, Some(&u));
    delete_page(&state, &ui, &s, &u, StatusCode::OK, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DeleteForm {
    csrf_token: String,
    confirm_email: String,
}

pub async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<DeleteForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/account/delete", &f.csrf_token);
    let ui = ui(&headers, &Uri::from_static("/account/delete"), Some(&u));
    let auth_time = s.data.user.as_ref().map(|x| x.auth_time);
    match state.accounts.delete(u.id, Some(&f.confirm_email), auth_time, "self").await {
        Ok(()) => {
            state.sessions.destroy(s).await?;
            let t = |k: &str| ui.t(&state.templates, k).to_owned();
            let mut res =
                message(&state, &ui, StatusCode::OK, &t("delete.done_title"), "deleted", vec![t("delete.done")], None)?;
            res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
            Ok(res)
        }
        Err(AccountError::Reauthenticate) => Ok(reauth("/account/delete")),
        Err(AccountError::Invalid(k)) => delete_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, Some(k)).await,
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- sign-out and consents

pub async fn confirm_logout(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/account");
    let ui = ui(&headers, &uri, Some(&u));
    let ctx =
        json!({"title": ui.t(&state.templates, "logout.title"), "email": u.email.as_str(), "csrf_token": s.data.csrf});
    render(&state, &ui, StatusCode::OK, "logout.html", &ctx)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    let Some(s) = state.sessions.load(&headers).await? else {
        // Nothing to end (already signed out or expired).
        let mut res = Redirect::to("/login").into_response();
        res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
        return Ok(res);
    };
    check_csrf(Some(&s), &form.csrf_token, &headers)?;
    super::end_session::sign_out(&state, s).await?;
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
    Ok(res)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RevokeForm {
    csrf_token: String,
    client_id: String,
}

/// Withdraws consent for an application: the consent is forgotten and every grant the user
/// gave it is revoked (its refresh and access tokens stop working).
pub async fn revoke_consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<RevokeForm>,
) -> Result<Response, WebError> {
    let Form(form) = form?;
    let s = state.sessions.load(&headers).await?;
    check_csrf(s.as_ref(), &form.csrf_token, &headers)?;
    let Some(u) = s.as_ref().and_then(|s| s.data.user.as_ref()) else {
        return Ok(Redirect::to("/login").into_response());
    };
    let client = crate::domain::ClientId::new(form.client_id);
    state.accounts.withdraw_consent(u.id, &client).await?;
    Ok(Redirect::to("/account").into_response())
}
