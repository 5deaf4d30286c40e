//! Self-registration (`/register`) and the emailed confirmation (`/register/verify?token=`:
//! a page with a button, so that mail scanners fetching the link do not spend it).

use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::common::{account_error, form_page, message, render, ui};
use crate::accounts::{policy, AccountError};
use crate::config::Registration;
use crate::crypto::SecretString;
use crate::web::client_ip::ClientIp;
use crate::web::error::WebError;
use crate::web::session::check_csrf;
use crate::web::state::AppState;
use crate::web::templates::Ui;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct RegisterForm {
    csrf_token: String,
    email: String,
    password: SecretString,
    name: String,
    accept_terms: Option<String>,
    newsletter: Option<String>,
    return_to: Option<String>,
}

#[allow(clippy::too_many_arguments)]
fn page(
    state: &AppState,
    ui: &Ui,
    status: StatusCode,
    csrf: &str,
    f: Option<&RegisterForm>,
    error: Option<String>,
    strength: u8,
) -> Result<Response, WebError> {
    let p = &state.settings.password;
    let levels = ["password.weak", "password.weak", "password.fair", "password.good", "password.strong"];
    let ctx = json!({
        "title": ui.t(&state.templates, "register.title"), "csrf_token": csrf,
        "email": f.map(|f| f.email.trim()).unwrap_or(""), "name": f.map(|f| f.name.as_str()).unwrap_or(""),
        "newsletter": f.is_some_and(|f| f.newsletter.is_some()), "return_to": "/",
        "terms_version": state.settings.accounts.terms_version, "error": error,
        "min_length": p.min_length.to_string(), "max_length": p.max_length.to_string(), "strength": strength,
        "strength_text": f.filter(|f| !f.password.expose().is_empty()).map(|_| format!("{} {}", ui.t(&state.templates, "password.strength"), ui.t(&state.templates, levels[usize::from(strength.min(4))]))),
    });
    render(state, ui, status, "register.html", &ctx)
}

fn closed(state: &AppState, ui: &Ui) -> Option<Result<Response, WebError>> {
    let key = match state.accounts.registration() {
        Registration::Open => return None,
        Registration::InviteOnly => "register.invite_only",
        Registration::Closed => "register.closed",
    };
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    Some(message(
        state,
        ui,
        StatusCode::FORBIDDEN,
        &t("register.title"),
        "register-closed",
        vec![t(key)],
        Some(("go-sign-in", "/login", ui.t(&state.templates, "common.back_to_sign_in"))),
    ))
}

pub async fn show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let ui = ui(&headers, &uri, None);
    if let Some(r) = closed(&state, &ui) {
        return r;
    }
    form_page(&state, &headers, |csrf| page(&state, &ui, StatusCode::OK, csrf, None, None, 0)).await
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: Result<Form<RegisterForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let ui = ui(&headers, &uri, None);
    if let Some(r) = closed(&state, &ui) {
        return r;
    }
    let csrf = session.map(|s| s.data.csrf).unwrap_or_default();
    let r = state
        .accounts
        .register(&f.email, &f.password, &f.name, f.accept_terms.is_some(), f.newsletter.is_some(), ui.lang, ip)
        .await;
    match r {
        Ok(()) => {
            let t = |k: &str| ui.t(&state.templates, k).to_owned();
            let sent = state.templates.tf(ui.lang, "register.sent", &[("email", f.email.trim())]);
            message(
                &state,
                &ui,
                StatusCode::OK,
                &t("register.sent_title"),
                "register-sent",
                vec![sent, t("register.sent_hint")],
                None,
            )
        }
        Err(AccountError::Invalid(k)) => {
            let p = &state.settings.password;
            let msg = state.templates.tf(
                ui.lang,
                k,
                &[("min", &p.min_length.to_string()), ("max", &p.max_length.to_string())],
            );
            page(
                &state,
                &ui,
                StatusCode::BAD_REQUEST,
                &csrf,
                Some(&f),
                Some(msg),
                policy::strength(f.password.expose()),
            )
        }
        Err(e) => account_error(&state, &ui, e),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
}

pub async fn verify_show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let q: TokenQuery = super::unique_params(q.unwrap_or_default().as_bytes())?;
    let ui = ui(&headers, &uri, None);
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    let user = match state.accounts.verification_target(&q.token).await {
        Ok(u) => u,
        Err(AccountError::TokenInvalid) => {
            return message(
                &state,
                &ui,
                StatusCode::BAD_REQUEST,
                &t("link.invalid_title"),
                "link-invalid",
                vec![t("register.link_invalid")],
                Some(("go-sign-in", "/login", &t("common.back_to_sign_in"))),
            )
        }
        Err(e) => return account_error(&state, &ui, e),
    };
    form_page(&state, &headers, |csrf| {
        let ctx = json!({
            "title": t("register.verify_title"), "csrf_token": csrf, "token": q.token, "action": "/register/verify",
            "button": t("register.verify_button"),
            "paragraphs": [state.templates.tf(ui.lang, "register.verify_intro", &[("email", user.email.as_str())])],
        });
        render(&state, &ui, StatusCode::OK, "confirm.html", &ctx)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenForm {
    csrf_token: String,
    token: String,
}

pub async fn verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let ui = ui(&headers, &uri, None);
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    match state.accounts.verify_email(&f.token).await {
        Ok(_) => message(
            &state,
            &ui,
            StatusCode::OK,
            &t("register.verified_title"),
            "verified",
            vec![t("register.verified")],
            Some(("go-sign-in", "/login?notice=verified", &t("login.submit"))),
        ),
        Err(AccountError::TokenInvalid) => message(
            &state,
            &ui,
            StatusCode::BAD_REQUEST,
            &t("link.invalid_title"),
            "link-invalid",
            vec![t("register.link_invalid")],
            Some(("go-sign-in", "/login", &t("common.back_to_sign_in"))),
        ),
        Err(e) => account_error(&state, &ui, e),
    }
}
