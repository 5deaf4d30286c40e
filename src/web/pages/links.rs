//! Pages reached from links in mail: password reset (`/password/reset`,
//! `/password/reset/confirm`), activation of an operator-created account (`/activate`),
//! invitations (`/invite`) and the emailed sign-in link (`/login/link`).

use axum::extract::{Form, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use super::common::{account_error, finish_sign_in, form_page, message, render, signed_in, ui};
use super::safe_return_to;
use crate::accounts::{AccountError, InvitationOutcome};
use crate::crypto::SecretString;
use crate::web::client_ip::ClientIp;
use crate::web::error::WebError;
use crate::web::session::{check_csrf, SignInOrigin};
use crate::web::state::AppState;
use crate::web::templates::Ui;

type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenQuery {
    token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EmailForm {
    csrf_token: String,
    email: String,
    return_to: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PasswordTokenForm {
    csrf_token: String,
    token: String,
    password: SecretString,
}

fn invalid_link(state: &AppState, ui: &Ui, key: &str) -> Result<Response, WebError> {
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    message(
        state,
        ui,
        StatusCode::BAD_REQUEST,
        &t("link.invalid_title"),
        "link-invalid",
        vec![t(key)],
        Some(("go-sign-in", "/login", &t("common.back_to_sign_in"))),
    )
}

/// A link whose page asks for a password: reset or activation.
struct PasswordLink {
    action: &'static str,
    title: &'static str,
    intro: &'static str,
    button: &'static str,
    invalid: &'static str,
}

const RESET: PasswordLink = PasswordLink {
    action: "/password/reset/confirm",
    title: "reset.choose_title",
    intro: "reset.choose_intro",
    button: "reset.choose_button",
    invalid: "reset.link_invalid",
};

const ACTIVATION: PasswordLink = PasswordLink {
    action: "/activate",
    title: "activate.title",
    intro: "activate.intro",
    button: "activate.button",
    invalid: "activate.link_invalid",
};

impl PasswordLink {
    /// The "choose a password" form, with the policy's complaint when there is one.
    #[allow(clippy::too_many_arguments)]
    fn form(
        &self,
        state: &AppState,
        ui: &Ui,
        status: StatusCode,
        csrf: &str,
        token: &str,
        email: &str,
        error: Option<&str>,
    ) -> Result<Response, WebError> {
        let p = &state.settings.password;
        let (min, max) = (p.min_length.to_string(), p.max_length.to_string());
        let ctx = json!({
            "title": ui.t(&state.templates, self.title), "csrf_token": csrf, "token": token, "action": self.action,
            "paragraphs": [state.templates.tf(ui.lang, self.intro, &[("email", email)])],
            "button": ui.t(&state.templates, self.button),
            "error": error.map(|k| state.templates.tf(ui.lang, k, &[("min", &min), ("max", &max)])),
            "min_length": min, "max_length": max,
        });
        render(state, ui, status, "password_form.html", &ctx)
    }

    /// `GET` of the link: the form, or why the link does not work.
    async fn show(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        ui: &Ui,
        token: &str,
        target: Result<crate::domain::User, AccountError>,
    ) -> Result<Response, WebError> {
        match target {
            Ok(user) => {
                form_page(state, headers, |csrf| {
                    self.form(state, ui, StatusCode::OK, csrf, token, user.email.as_str(), None)
                })
                .await
            }
            Err(AccountError::TokenInvalid) => invalid_link(state, ui, self.invalid),
            Err(e) => account_error(state, ui, e),
        }
    }
}

// ---------------------------------------------------------------- password reset

pub async fn reset_show(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let ui = ui(&headers, &uri, None);
    form_page(&state, &headers, |csrf| {
        let ctx = json!({"title": ui.t(&state.templates, "reset.title"), "csrf_token": csrf, "email": ""});
        render(&state, &ui, StatusCode::OK, "reset_request.html", &ctx)
    })
    .await
}

pub async fn reset_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: FormResult<EmailForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let ui = ui(&headers, &uri, None);
    let email = f.email.trim();
    if !email.is_empty() && email.len() <= 320 {
        state.accounts.request_reset(email, ui.lang, ip).await?;
    }
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    let sent = state.templates.tf(ui.lang, "reset.sent", &[("email", email)]);
    message(
        &state,
        &ui,
        StatusCode::OK,
        &t("reset.sent_title"),
        "reset-sent",
        vec![sent],
        Some(("go-sign-in", "/login", &t("common.back_to_sign_in"))),
    )
}

pub async fn reset_confirm_show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let q: TokenQuery = super::unique_params(q.unwrap_or_default().as_bytes())?;
    let ui = ui(&headers, &uri, None);
    let target = state.accounts.reset_target(&q.token).await;
    RESET.show(&state, &headers, &ui, &q.token, target).await
}

pub async fn reset_confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    form: FormResult<PasswordTokenForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let ui = ui(&headers, &uri, None);
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    match state.accounts.reset_password(&f.token, &f.password).await {
        Ok(_) => {
            let mut res = message(
                &state,
                &ui,
                StatusCode::OK,
                &t("reset.done_title"),
                "password-set",
                vec![t("reset.done")],
                Some(("go-sign-in", "/login?notice=password_set", &t("login.submit"))),
            )?;
            if let Some(s) = session.filter(|s| s.data.user.is_some()) {
                state.sessions.destroy(s).await?;
                res.headers_mut().append(header::SET_COOKIE, state.sessions.clear_cookie());
            }
            Ok(res)
        }
        Err(AccountError::TokenInvalid) => invalid_link(&state, &ui, RESET.invalid),
        Err(AccountError::Invalid(k)) => {
            let user = state.accounts.reset_target(&f.token).await?;
            let csrf = session.map(|s| s.data.csrf).unwrap_or_default();
            RESET.form(&state, &ui, StatusCode::BAD_REQUEST, &csrf, &f.token, user.email.as_str(), Some(k))
        }
        Err(e) => account_error(&state, &ui, e),
    }
}

// ---------------------------------------------------------------- activation

pub async fn activate_show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let q: TokenQuery = super::unique_params(q.unwrap_or_default().as_bytes())?;
    let ui = ui(&headers, &uri, None);
    let target = state.accounts.activation_target(&q.token).await;
    ACTIVATION.show(&state, &headers, &ui, &q.token, target).await
}

pub async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: FormResult<PasswordTokenForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let Some(session) = session else { return Err(WebError::csrf()) };
    let ui = ui(&headers, &uri, None);
    match state.accounts.activate(&f.token, &f.password).await {
        Ok(auth) => finish_sign_in(&state, session, &auth, &SignInOrigin::new(ip, &headers), "/account").await,
        Err(AccountError::TokenInvalid) => invalid_link(&state, &ui, ACTIVATION.invalid),
        Err(AccountError::Invalid(k)) => {
            let user = state.accounts.activation_target(&f.token).await?;
            ACTIVATION.form(
                &state,
                &ui,
                StatusCode::BAD_REQUEST,
                &session.data.csrf,
                &f.token,
                user.email.as_str(),
                Some(k),
            )
        }
        Err(e) => account_error(&state, &ui, e),
    }
}

// ---------------------------------------------------------------- invitations

pub async fn invite_show(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let q: TokenQuery = super::unique_params(q.unwrap_or_default().as_bytes())?;
    let ui = ui(&headers, &uri, None);
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    let inv = match state.accounts.invitation_of_link(&q.token).await {
        Ok(i) => i,
        Err(AccountError::TokenInvalid) => {
            return message(
                &state,
                &ui,
                StatusCode::BAD_REQUEST,
                &t("invite.invalid_title"),
                "invitation-invalid",
                vec![t("invite.invalid")],
                None,
            )
        }
        Err(e) => return account_error(&state, &ui, e),
    };
    form_page(&state, &headers, |csrf| {
        let mut paragraphs = vec![state.templates.tf(ui.lang, "invite.intro_anonymous", &[("email", &inv.email)])];
        if let Some(r) = &inv.resource {
            paragraphs.push(state.templates.tf(ui.lang, "invite.resource", &[("resource", r)]));
        }
        let ctx = json!({
            "title": t("invite.title"), "csrf_token": csrf, "token": q.token, "action": "/invite",
            "button": t("invite.accept"), "paragraphs": paragraphs,
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

pub async fn invite_accept(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: FormResult<TokenForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let Some(session) = session else { return Err(WebError::csrf()) };
    let ui = ui(&headers, &uri, None);
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    let me = signed_in(&state, &headers).await?.map(|(_, u)| u.id);
    match state.accounts.accept_invitation(&f.token, me).await {
        Ok(InvitationOutcome::Created(auth)) => {
            finish_sign_in(&state, session, &auth, &SignInOrigin::new(ip, &headers), "/account").await
        }
        Ok(InvitationOutcome::Attached) => Ok(Redirect::to("/account").into_response()),
        Ok(InvitationOutcome::SignInFirst { email }) => {
            let back = format!("/invite?token={}", f.token);
            let q = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &back)
                .append_pair("login_hint", &email)
                .finish();
            Ok(Redirect::to(&format!("/login?{q}")).into_response())
        }
        Ok(InvitationOutcome::OtherAccount { email }) => {
            let inv = state.accounts.invitation_of_link(&f.token).await?;
            let msg =
                state.templates.tf(ui.lang, "invite.signed_in_other", &[("current", &email), ("email", &inv.email)]);
            message(
                &state,
                &ui,
                StatusCode::CONFLICT,
                &t("invite.title"),
                "invitation-other-account",
                vec![msg],
                Some(("sign-out-link", "/logout", &t("common.sign_out"))),
            )
        }
        Err(AccountError::TokenInvalid) => message(
            &state,
            &ui,
            StatusCode::BAD_REQUEST,
            &t("invite.invalid_title"),
            "invitation-invalid",
            vec![t("invite.invalid")],
            None,
        ),
        Err(e) => account_error(&state, &ui, e),
    }
}

// ---------------------------------------------------------------- sign-in by emailed link

pub async fn link_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    form: FormResult<EmailForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let Some(session) = session else { return Err(WebError::csrf()) };
    let ui = ui(&headers, &uri, None);
    let email = f.email.trim();
    let return_to = safe_return_to(f.return_to.as_deref());
    if !email.is_empty() && email.len() <= 320 {
        state.accounts.request_login_link(email, &session.data.browser, &return_to, ui.lang, ip).await?;
    }
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    let sent = state.templates.tf(ui.lang, "link.sent", &[("email", email)]);
    message(&state, &ui, StatusCode::OK, &t("link.sent_title"), "link-sent", vec![sent], None)
}

pub async fn link_use(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    ClientIp(ip): ClientIp,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let q: TokenQuery = super::unique_params(q.unwrap_or_default().as_bytes())?;
    let ui = ui(&headers, &uri, None);
    let t = |k: &str| ui.t(&state.templates, k).to_owned();
    let Some(session) = state.sessions.load(&headers).await? else {
        return message(
            &state,
            &ui,
            StatusCode::FORBIDDEN,
            &t("link.invalid_title"),
            "link-other-browser",
            vec![t("link.other_browser")],
            None,
        );
    };
    let browser = session.data.browser.clone();
    match state.accounts.use_login_link(&q.token, &browser).await {
        Ok((auth, return_to)) => {
            let return_to = safe_return_to(Some(&return_to));
            finish_sign_in(&state, session, &auth, &SignInOrigin::new(ip, &headers), &return_to).await
        }
        Err(AccountError::NotAllowed(k)) => message(
            &state,
            &ui,
            StatusCode::FORBIDDEN,
            &t("link.invalid_title"),
            "link-other-browser",
            vec![t(k)],
            None,
        ),
        Err(AccountError::TokenInvalid) => message(
            &state,
            &ui,
            StatusCode::BAD_REQUEST,
            &t("link.invalid_title"),
            "link-invalid",
            vec![t("link.invalid")],
            None,
        ),
        Err(e) => account_error(&state, &ui, e),
    }
}
