//! Second factors: the sign-in's second step (`/login/second-factor`, also the step-up of a
//! signed-in user), and the security page of the console (`/account/security`: factors,
//! TOTP enrolment, removal, recovery codes).

use axum::extract::{Form, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::common::{complete_sign_in, reauth, recent, render, ui};
use super::safe_return_to;
use crate::auth::mfa::MfaError;
use crate::auth::{Amr, Authenticated};
use crate::domain::mfa::ACR_MFA;
use crate::domain::User;
use crate::web::client_ip::ClientIp;
use crate::web::error::WebError;
use crate::web::session::{check_csrf, PendingSignIn, Session, SignInOrigin, PENDING_TTL_SECS};
use crate::web::state::AppState;
use crate::web::templates::Ui;

type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ReturnQuery {
    return_to: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CodeForm {
    csrf_token: String,
    code: String,
    return_to: Option<String>,
    factor: String,
}

async fn step_page(
    state: &AppState,
    ui: &Ui,
    status: StatusCode,
    s: &Session,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let has_passkey = match s.data.pending.as_ref() {
        Some(p) if state.mfa.webauthn_enabled() => state.mfa.has_passkey(p.user).await?,
        _ => false,
    };
    let ctx = json!({
        "title": ui.t(&state.templates, "mfa.step_title"), "csrf_token": s.data.csrf, "has_passkey": has_passkey,
        "error": error.map(|k| ui.t(&state.templates, k)),
    });
    render(state, ui, status, "second_factor.html", &ctx)
}

fn pending_of(state: &AppState, s: &Session) -> Option<PendingSignIn> {
    s.data.pending.clone().filter(|p| p.started_at.secs_until(state.clock.now()) <= PENDING_TTL_SECS)
}

/// The second step. A signed-in user arriving here (step-up: an application asked for a higher
/// level) gets a pending sign-in of their own.
pub async fn step_show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let q: ReturnQuery = super::unique_params(q.unwrap_or_default().as_bytes())?;
    let ui = ui(&headers, &uri, None);
    let Some(mut s) = state.sessions.load(&headers).await? else { return Ok(Redirect::to("/login").into_response()) };
    if pending_of(&state, &s).is_none() {
        let Some(u) = s.data.user.clone() else { return Ok(Redirect::to("/login").into_response()) };
        if !state.mfa.has_factor(u.id).await? {
            return Ok(Redirect::to(&safe_return_to(q.return_to.as_deref())).into_response());
        }
        s.data.pending = Some(PendingSignIn {
            user: u.id,
            amr: u.amr.clone(),
            started_at: state.clock.now(),
            return_to: safe_return_to(q.return_to.as_deref()),
        });
        state.sessions.save(&s).await?;
    }
    step_page(&state, &ui, StatusCode::OK, &s, None).await
}

pub async fn step_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: FormResult<CodeForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let s = state.sessions.load(&headers).await?;
    check_csrf(s.as_ref(), &f.csrf_token, &headers)?;
    let Some(mut s) = s else { return Err(WebError::csrf()) };
    let ui = ui(&headers, &uri, None);
    let Some(pending) = pending_of(&state, &s) else {
        // Abandoned or too old: start again.
        return Ok(Redirect::to("/login?prompt=login").into_response());
    };
    let origin = SignInOrigin::new(ip, &headers);
    match state.mfa.verify(pending.user, &f.code).await {
        Ok(method) => {
            let user = state.accounts.find(pending.user).await?.ok_or(WebError::NotFound)?;
            let mut amr = pending.amr.clone();
            for a in [method, Amr::Mfa] {
                if !amr.contains(&a) {
                    amr.push(a);
                }
            }
            s.data.pending = None;
            let auth =
                Authenticated { user, amr, acr: Some(ACR_MFA.to_owned()), auth_time: state.clock.now(), idp: None };
            complete_sign_in(&state, s, &auth, &origin, &pending.return_to).await
        }
        Err(MfaError::WrongCode) => {
            state.accounts.record_login(pending.user, false, "otp", ip, origin.user_agent.as_deref()).await;
            step_page(&state, &ui, StatusCode::UNAUTHORIZED, &s, Some("mfa.wrong_code")).await
        }
        Err(MfaError::Throttled { retry_after_secs }) => {
            let mut res = step_page(&state, &ui, StatusCode::TOO_MANY_REQUESTS, &s, Some("mfa.throttled")).await?;
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- the security page

async fn security_page(
    state: &AppState,
    ui: &Ui,
    s: &Session,
    u: &User,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let factors: Vec<serde_json::Value> = state
        .mfa
        .factors(u.id)
        .await?
        .iter()
        .filter(|f| f.confirmed)
        .map(|f| {
            let name = match f.kind {
                crate::domain::mfa::FactorKind::Totp => ui.t(&state.templates, "mfa.authenticator_app").to_owned(),
                crate::domain::mfa::FactorKind::WebAuthn => f.name.clone(),
            };
            json!({
                "id": f.id, "kind": f.kind.as_str(), "name": name,
                "created": f.created_at.display_utc(), "last_used": f.last_used_at.map(|t| t.display_utc()),
            })
        })
        .collect();
    let ctx = json!({
        "title": ui.t(&state.templates, "mfa.security_title"), "csrf_token": s.data.csrf,
        "has_totp": factors.iter().any(|f| f["kind"] == "totp"), "factors": factors,
        "webauthn": state.mfa.webauthn_enabled(),
        "recovery_left": state.mfa.recovery_codes_left(u.id).await?.to_string(),
        "notice": notice.map(|k| ui.t(&state.templates, k)), "error": error.map(|k| ui.t(&state.templates, k)),
    });
    render(state, ui, status, "security.html", &ctx)
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/account/security");
    let ui = ui(&headers, &uri, Some(&u)).branded(state.orgs.home_org(u.id).await.ok().flatten().as_ref());
    security_page(&state, &ui, &s, &u, StatusCode::OK, None, None).await
}

async fn totp_page(
    state: &AppState,
    ui: &Ui,
    s: &Session,
    u: &User,
    status: StatusCode,
    return_to: &str,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let e = state.mfa.totp_enrolment(u).await?;
    let ctx = json!({
        "title": ui.t(&state.templates, "mfa.totp_title"), "csrf_token": s.data.csrf, "return_to": return_to,
        "qr_svg": e.qr_svg, "secret": e.secret_base32, "uri": e.uri, "codes": null,
        "required": state.settings.mfa.policy == crate::config::MfaPolicy::Required,
        "error": error.map(|k| ui.t(&state.templates, k)),
    });
    render(state, ui, status, "security_totp.html", &ctx)
}

pub async fn totp_show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let q: ReturnQuery = super::unique_params(q.unwrap_or_default().as_bytes())?;
    let (s, u) = signed_in_or_login!(state, headers, "/account/security/totp");
    let ui = ui(&headers, &uri, Some(&u));
    let return_to = safe_return_to(Some(q.return_to.as_deref().unwrap_or("/account/security")));
    totp_page(&state, &ui, &s, &u, StatusCode::OK, &return_to, None).await
}

pub async fn totp_activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<CodeForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = signed_in_or_login!(state, headers, "/account/security/totp");
    check_csrf(Some(&s), &f.csrf_token, &headers)?;
    let ui = ui(&headers, &Uri::from_static("/account/security/totp"), Some(&u));
    let return_to = safe_return_to(Some(f.return_to.as_deref().unwrap_or("/account/security")));
    match state.mfa.confirm_totp(&u, &f.code).await {
        Ok(codes) => {
            let ctx = json!({
                "title": ui.t(&state.templates, "mfa.totp_title"), "csrf_token": s.data.csrf,
                "codes": codes.unwrap_or_default(), "return_to": return_to,
            });
            render(&state, &ui, StatusCode::OK, "security_totp.html", &ctx)
        }
        Err(MfaError::WrongCode) => {
            totp_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, &return_to, Some("mfa.wrong_code")).await
        }
        Err(MfaError::Throttled { .. }) => {
            totp_page(&state, &ui, &s, &u, StatusCode::TOO_MANY_REQUESTS, &return_to, Some("mfa.throttled")).await
        }
        Err(MfaError::NoFactor) => Ok(Redirect::to("/account/security").into_response()),
        Err(e) => Err(e.into()),
    }
}

pub async fn factor_remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<CodeForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = signed_in_or_login!(state, headers, "/account/security");
    check_csrf(Some(&s), &f.csrf_token, &headers)?;
    if !recent(&state, &s) {
        return Ok(reauth("/account/security"));
    }
    let ui = ui(&headers, &Uri::from_static("/account/security"), Some(&u));
    let Ok(id) = f.factor.parse::<uuid::Uuid>() else {
        return security_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("mfa.no_factor")).await;
    };
    match state.mfa.remove(u.id, id, &f.code).await {
        Ok(()) => security_page(&state, &ui, &s, &u, StatusCode::OK, Some("mfa.removed"), None).await,
        Err(MfaError::WrongCode) => {
            security_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("mfa.wrong_code")).await
        }
        Err(MfaError::NoFactor) => {
            security_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("mfa.no_factor")).await
        }
        Err(MfaError::Throttled { .. }) => {
            security_page(&state, &ui, &s, &u, StatusCode::TOO_MANY_REQUESTS, None, Some("mfa.throttled")).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn recovery_regenerate(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<CodeForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = signed_in_or_login!(state, headers, "/account/security");
    check_csrf(Some(&s), &f.csrf_token, &headers)?;
    if !recent(&state, &s) {
        return Ok(reauth("/account/security"));
    }
    let ui = ui(&headers, &Uri::from_static("/account/security"), Some(&u));
    if !state.mfa.has_factor(u.id).await? {
        return security_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("mfa.no_factor")).await;
    }
    let codes = state.mfa.regenerate_recovery_codes(u.id).await?;
    let ctx = json!({
        "title": ui.t(&state.templates, "mfa.recovery_title"), "csrf_token": s.data.csrf, "codes": codes,
        "return_to": "/account/security",
    });
    render(&state, &ui, StatusCode::OK, "security_totp.html", &ctx)
}

// ---------------------------------------------------------------- WebAuthn

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct WebauthnForm {
    csrf_token: String,
    credential: String,
    name: String,
    factor: String,
    return_to: Option<String>,
}

fn json_response(v: serde_json::Value) -> Response {
    let mut res = axum::Json(v).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The session of a WebAuthn form post, its CSRF token checked.
async fn posted(state: &AppState, headers: &HeaderMap, csrf: &str) -> Result<Session, WebError> {
    let s = state.sessions.load(headers).await?;
    check_csrf(s.as_ref(), csrf, headers)?;
    s.ok_or_else(WebError::csrf)
}

/// Options for registering a security key or passkey (the signed-in user).
pub async fn passkey_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<WebauthnForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = signed_in_or_login!(state, headers, "/account/security");
    check_csrf(Some(&s), &f.csrf_token, &headers)?;
    Ok(json_response(state.mfa.start_registration(&u, &s.data.browser).await?))
}

pub async fn passkey_register(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<WebauthnForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = signed_in_or_login!(state, headers, "/account/security");
    check_csrf(Some(&s), &f.csrf_token, &headers)?;
    let ui = ui(&headers, &Uri::from_static("/account/security"), Some(&u));
    match state.mfa.finish_registration(&u, &s.data.browser, &f.name, &f.credential).await {
        Ok(Some(codes)) => {
            let ctx = json!({
                "title": ui.t(&state.templates, "mfa.security_title"), "csrf_token": s.data.csrf, "codes": codes,
                "return_to": "/account/security",
            });
            render(&state, &ui, StatusCode::OK, "security_totp.html", &ctx)
        }
        Ok(None) => security_page(&state, &ui, &s, &u, StatusCode::OK, Some("mfa.added_passkey"), None).await,
        Err(MfaError::WrongCode | MfaError::NoFactor) => {
            security_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("mfa.webauthn_failed")).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn factor_rename(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<WebauthnForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = signed_in_or_login!(state, headers, "/account/security");
    check_csrf(Some(&s), &f.csrf_token, &headers)?;
    let ui = ui(&headers, &Uri::from_static("/account/security"), Some(&u));
    let renamed = match f.factor.parse::<uuid::Uuid>() {
        Ok(id) => state.mfa.rename(u.id, id, &f.name).await,
        Err(_) => Err(MfaError::NoFactor),
    };
    match renamed {
        Ok(()) => security_page(&state, &ui, &s, &u, StatusCode::OK, Some("mfa.renamed"), None).await,
        Err(MfaError::NoFactor) => {
            security_page(&state, &ui, &s, &u, StatusCode::BAD_REQUEST, None, Some("mfa.no_factor")).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The amr and acr of a WebAuthn use.
fn webauthn_facts(used: crate::auth::webauthn::WebauthnUse) -> (Vec<Amr>, &'static str) {
    let key = if used.backup_eligible { Amr::Swk } else { Amr::Hwk };
    let mut amr = vec![key];
    if used.user_verified {
        amr.push(Amr::User);
    }
    (amr, if used.user_verified { crate::domain::mfa::ACR_PHR } else { ACR_MFA })
}

pub async fn step_webauthn_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<WebauthnForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let s = posted(&state, &headers, &f.csrf_token).await?;
    let Some(pending) = pending_of(&state, &s) else {
        return Err(WebError::page(StatusCode::BAD_REQUEST, "mfa.expired"));
    };
    Ok(json_response(state.mfa.start_second_factor(pending.user, &s.data.browser).await?))
}

pub async fn step_webauthn(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: FormResult<WebauthnForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let mut s = posted(&state, &headers, &f.csrf_token).await?;
    let ui = ui(&headers, &uri, None);
    let Some(pending) = pending_of(&state, &s) else {
        return Ok(Redirect::to("/login?prompt=login").into_response());
    };
    match state.mfa.finish_second_factor(pending.user, &s.data.browser, &f.credential).await {
        Ok(used) => {
            let user = state.accounts.find(pending.user).await?.ok_or(WebError::NotFound)?;
            let (facts, acr) = webauthn_facts(used);
            let mut amr = pending.amr.clone();
            for a in facts.into_iter().chain([Amr::Mfa]) {
                if !amr.contains(&a) {
                    amr.push(a);
                }
            }
            s.data.pending = None;
            let auth = Authenticated { user, amr, acr: Some(acr.to_owned()), auth_time: state.clock.now(), idp: None };
            complete_sign_in(&state, s, &auth, &SignInOrigin::new(ip, &headers), &pending.return_to).await
        }
        Err(MfaError::WrongCode | MfaError::NoFactor) => {
            let origin = SignInOrigin::new(ip, &headers);
            state.accounts.record_login(pending.user, false, "webauthn", ip, origin.user_agent.as_deref()).await;
            step_page(&state, &ui, StatusCode::UNAUTHORIZED, &s, Some("mfa.webauthn_failed")).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn passwordless_options(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: FormResult<WebauthnForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let s = posted(&state, &headers, &f.csrf_token).await?;
    Ok(json_response(state.mfa.start_passwordless(&s.data.browser).await?))
}

/// Passwordless sign-in with a discoverable credential and user verification: two factors in
/// one (possession + PIN or biometrics), phishing-resistant.
pub async fn passwordless(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: FormResult<WebauthnForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let s = posted(&state, &headers, &f.csrf_token).await?;
    let ui = ui(&headers, &uri, None);
    let return_to = safe_return_to(f.return_to.as_deref());
    match state.mfa.finish_passwordless(&s.data.browser, &f.credential).await {
        Ok((user_id, used)) => {
            let user = match state.accounts.find(user_id).await? {
                Some(u) if u.status == crate::domain::UserStatus::Active => u,
                _ => {
                    return super::common::message(
                        &state,
                        &ui,
                        StatusCode::FORBIDDEN,
                        ui.t(&state.templates, "login.title"),
                        "passkey-refused",
                        vec![ui.t(&state.templates, "login.suspended").to_owned()],
                        None,
                    )
                }
            };
            let (mut amr, acr) = webauthn_facts(used);
            amr.push(Amr::Mfa);
            let auth = Authenticated { user, amr, acr: Some(acr.to_owned()), auth_time: state.clock.now(), idp: None };
            complete_sign_in(&state, s, &auth, &SignInOrigin::new(ip, &headers), &return_to).await
        }
        Err(MfaError::WrongCode | MfaError::NoFactor) => super::common::message(
            &state,
            &ui,
            StatusCode::UNAUTHORIZED,
            ui.t(&state.templates, "login.title"),
            "passkey-failed",
            vec![ui.t(&state.templates, "mfa.webauthn_failed").to_owned()],
            Some(("go-sign-in", "/login", ui.t(&state.templates, "common.back_to_sign_in"))),
        ),
        Err(e) => Err(e.into()),
    }
}
