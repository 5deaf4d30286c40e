//! What every page handler shares: the signed-in user, rendering in the user's language,
//! message pages, account errors as pages, and finishing a sign-in (every way of signing in
//! ends here: password, emailed link, invitation, activation; the second factor of the MFA
//! issue slots in before the session is made).

use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{json, Value};

use crate::accounts::AccountError;
use crate::auth::flow::{next_step, Step};
use crate::auth::{AuthError, Authenticated};
use crate::config::MfaPolicy;
use crate::domain::mfa::ACR_PWD;
use crate::domain::{User, UserStatus};
use crate::web::error::WebError;
use crate::web::session::{PendingSignIn, Session, SignInOrigin};
use crate::web::state::AppState;
use crate::web::templates::Ui;
use crate::web::ui::negotiate;

/// The signed-in user of a page, else a redirect to the sign-in page that comes back to `back`.
pub async fn signed_in_or_redirect(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<Result<(Session, User), Response>, WebError> {
    match signed_in(state, headers).await? {
        Some(x) => Ok(Ok(x)),
        None => {
            let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", back).finish();
            Ok(Err(Redirect::to(&format!("/login?{q}")).into_response()))
        }
    }
}

/// The signed-in user and session of a page handler, or return the redirect to sign in.
macro_rules! signed_in_or_login {
    ($state:expr, $headers:expr, $back:expr) => {
        match $crate::web::pages::common::signed_in_or_redirect(&$state, &$headers, $back).await? {
            Ok(x) => x,
            Err(r) => return Ok(r),
        }
    };
}

/// The signed-in user of a form post, its CSRF token checked (else to the sign-in page).
macro_rules! posted_by_user {
    ($state:expr, $headers:expr, $back:expr, $csrf:expr) => {{
        let (s, u) = signed_in_or_login!($state, $headers, $back);
        $crate::web::session::check_csrf(Some(&s), $csrf, &$headers)?;
        (s, u)
    }};
}

/// A sign-in recent enough for a sensitive change (`accounts.recent_auth_secs`).
pub fn recent(state: &AppState, s: &Session) -> bool {
    s.data.user.as_ref().is_some_and(|u| state.accounts.recent(u.auth_time))
}

/// To the sign-in page (even signed in: the second factor too, when the user has one), then
/// back to `back`.
pub fn reauth(back: &str) -> Response {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("prompt", "login")
        .append_pair("notice", "reauth")
        .append_pair("return_to", back)
        .finish();
    Redirect::to(&format!("/login?{q}")).into_response()
}

/// The browser's session and its signed-in user (read from the account, never from a copy).
pub async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<(Session, User)>, WebError> {
    let Some(s) = state.sessions.load(headers).await? else { return Ok(None) };
    let Some(u) = &s.data.user else { return Ok(None) };
    match state.accounts.find(u.id).await? {
        Some(user) if user.status == UserStatus::Active => Ok(Some((s, user))),
        _ => Ok(None),
    }
}

pub fn ui(headers: &HeaderMap, uri: &Uri, user: Option<&User>) -> Ui {
    let here = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Ui::new(negotiate(headers, user.and_then(|u| u.locale.as_deref()), None), here)
}

pub fn render(state: &AppState, ui: &Ui, status: StatusCode, name: &str, ctx: &Value) -> Result<Response, WebError> {
    let html = state.templates.page(ui, name, ctx)?;
    let mut res = (status, Html(html)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A page with a form: rendered with the CSRF token of the browser's session, which is made
/// if need be (its cookie set then).
pub async fn form_page(
    state: &AppState,
    headers: &HeaderMap,
    render: impl FnOnce(&str) -> Result<Response, WebError>,
) -> Result<Response, WebError> {
    let (session, created) = state.sessions.load_or_create(headers).await?;
    let mut res = render(&session.data.csrf)?;
    if created {
        res.headers_mut().append(header::SET_COOKIE, state.sessions.set_cookie(&session));
    }
    Ok(res)
}

/// A page that says something: a title, paragraphs, an element id tests and scripts find,
/// and optionally one link.
pub fn message(
    state: &AppState,
    ui: &Ui,
    status: StatusCode,
    title: &str,
    message_id: &str,
    paragraphs: Vec<String>,
    link: Option<(&str, &str, &str)>,
) -> Result<Response, WebError> {
    let (link_id, link_href, link_text) = link.unwrap_or(("", "", ""));
    render(
        state,
        ui,
        status,
        "message.html",
        &json!({
            "title": title, "message_id": message_id, "paragraphs": paragraphs,
            "link_id": link_id, "link_href": link_href, "link_text": link_text,
        }),
    )
}

/// An account error as a page: client mistakes are 4xx with the message in the user's
/// language; store trouble is a 503.
pub fn account_error(state: &AppState, ui: &Ui, e: AccountError) -> Result<Response, WebError> {
    let t = |k: &str| state.templates.t(ui.lang, k).to_owned();
    let (status, key) = match e {
        AccountError::Invalid(k) => (StatusCode::BAD_REQUEST, k),
        AccountError::NotAllowed(k) => (StatusCode::FORBIDDEN, k),
        AccountError::TokenInvalid => (StatusCode::BAD_REQUEST, "link.invalid"),
        AccountError::CodeWrong => (StatusCode::BAD_REQUEST, "email_change.code_wrong"),
        AccountError::Throttled => (StatusCode::TOO_MANY_REQUESTS, "error.too_many"),
        AccountError::Reauthenticate => (StatusCode::FORBIDDEN, "login.reauth"),
        AccountError::NoAccount => (StatusCode::NOT_FOUND, "error.not_found"),
        AccountError::Auth(AuthError::Busy) => (StatusCode::SERVICE_UNAVAILABLE, "login.busy"),
        AccountError::Auth(AuthError::NotActive(UserStatus::Suspended)) => (StatusCode::FORBIDDEN, "login.suspended"),
        AccountError::Auth(AuthError::NotActive(_)) => (StatusCode::FORBIDDEN, "login.pending"),
        AccountError::Auth(a) => return Err(a.into()),
        AccountError::Store(s) => return Err(s.into()),
        AccountError::Internal(i) => return Err(WebError::Internal(i)),
    };
    let mut res = render(
        state,
        ui,
        status,
        "error.html",
        &json!({"title": status.canonical_reason().unwrap_or("Error"), "message": t(key), "error_id": null}),
    )?;
    if status == StatusCode::TOO_MANY_REQUESTS {
        res.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from_static("60"));
    }
    Ok(res)
}

/// The message key of an account error shown inside a form (the form comes back with it).
pub fn form_error_key(e: &AccountError) -> Option<&'static str> {
    match e {
        AccountError::Invalid(k) | AccountError::NotAllowed(k) => Some(k),
        AccountError::CodeWrong => Some("email_change.code_wrong"),
        AccountError::TokenInvalid => Some("email_change.code_expired"),
        AccountError::Throttled => Some("error.too_many"),
        _ => None,
    }
}

/// Ends the first step of a sign-in, whatever the method (password, emailed link, invitation,
/// activation). A user with a second factor (and the policy not `off`) is sent to
/// `/login/second-factor` with the sign-in pending in the session; otherwise the session is made.
pub async fn finish_sign_in(
    state: &AppState,
    mut session: Session,
    auth: &Authenticated,
    origin: &SignInOrigin,
    return_to: &str,
) -> Result<Response, WebError> {
    refuse_if_sso_required(state, auth).await?;
    let policy = state.settings.mfa.policy;
    let has_factor = policy != MfaPolicy::Off && state.mfa.has_factor(auth.user.id).await?;
    if next_step(policy, has_factor, &auth.amr) == Step::SecondFactor {
        session.data.pending = Some(PendingSignIn {
            user: auth.user.id,
            amr: auth.amr.clone(),
            started_at: state.clock.now(),
            return_to: return_to.to_owned(),
        });
        state.sessions.save(&session).await?;
        tracing::info!(user_id = %auth.user.id, "first factor passed; second factor asked");
        return Ok(Redirect::to("/login/second-factor").into_response());
    }
    open_signed_in_session(state, session, auth, origin, return_to).await
}

/// Guichet's own sign-in (password, emailed link, passkey, invitation) is refused for addresses
/// of a verified domain whose organization requires SSO: its identity provider decides who
/// signs in (someone it removed must not get in another way).
async fn refuse_if_sso_required(state: &AppState, auth: &Authenticated) -> Result<(), WebError> {
    if auth.amr.contains(&crate::auth::Amr::Fed) {
        return Ok(());
    }
    let user = &auth.user;
    match state.orgs.realm_of(user.email.as_str()).await {
        Ok(crate::orgs::Realm::Org { org }) if org.require_sso => {
            tracing::info!(user_id = %user.id, org = %org.id, "local sign-in refused: the organization requires SSO");
            let lang = user.locale.as_deref().and_then(crate::i18n::Lang::parse).unwrap_or(crate::i18n::Lang::En);
            Err(WebError::Forbidden(state.templates.tf(lang, "login.sso_required", &[("org", &org.name)])))
        }
        Ok(_) => Ok(()),
        Err(crate::orgs::OrgError::Store(e)) => Err(e.into()),
        Err(e) => Err(WebError::Internal(anyhow::anyhow!("{e}"))),
    }
}

/// Makes the signed-in session (a new cookie), ends the previous user's session if another
/// user signs in, records the sign-in, and goes on to `return_to` — or, when a second factor is
/// required and the user has none, to its enrolment first.
pub async fn complete_sign_in(
    state: &AppState,
    session: Session,
    auth: &Authenticated,
    origin: &SignInOrigin,
    return_to: &str,
) -> Result<Response, WebError> {
    refuse_if_sso_required(state, auth).await?;
    open_signed_in_session(state, session, auth, origin, return_to).await
}

/// `complete_sign_in` once the organization's SSO rule was checked.
async fn open_signed_in_session(
    state: &AppState,
    session: Session,
    auth: &Authenticated,
    origin: &SignInOrigin,
    return_to: &str,
) -> Result<Response, WebError> {
    let mut auth = auth.clone();
    if auth.acr.is_none() {
        auth.acr = Some(ACR_PWD.to_owned());
    }
    let (new, ended) = state.sessions.sign_in(session, &auth, origin).await?;
    if let Some(sid) = ended {
        tracing::info!("previous sign-in session replaced by another user's");
        state.oidc.end_session(&sid).await;
    }
    let method = auth.amr.iter().map(|a| a.as_str()).collect::<Vec<_>>().join("+");
    state.accounts.record_login(auth.user.id, true, &method, origin.ip, origin.user_agent.as_deref()).await;
    tracing::info!(user_id = %auth.user.id, ip = %origin.ip, method, "signed in");
    let must_enrol = state.settings.mfa.policy == MfaPolicy::Required && !state.mfa.has_factor(auth.user.id).await?;
    let next = if must_enrol {
        let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", return_to).finish();
        format!("/account/security/totp?{q}")
    } else {
        return_to.to_owned()
    };
    let mut res = Redirect::to(&next).into_response();
    res.headers_mut().append(header::SET_COOKIE, state.sessions.set_cookie(&new));
    Ok(res)
}

impl From<AccountError> for WebError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => s.into(),
            AccountError::Auth(a) => a.into(),
            AccountError::Internal(i) => WebError::Internal(i),
            AccountError::Invalid(k) => WebError::page(StatusCode::BAD_REQUEST, k),
            AccountError::NotAllowed(k) => WebError::page(StatusCode::FORBIDDEN, k),
            AccountError::TokenInvalid => WebError::page(StatusCode::BAD_REQUEST, "link.invalid"),
            AccountError::CodeWrong => WebError::page(StatusCode::BAD_REQUEST, "email_change.code_wrong"),
            AccountError::Throttled => WebError::page(StatusCode::TOO_MANY_REQUESTS, "error.too_many"),
            AccountError::Reauthenticate => WebError::page(StatusCode::FORBIDDEN, "login.reauth"),
            AccountError::NoAccount => WebError::NotFound,
        }
    }
}

impl From<crate::auth::mfa::MfaError> for WebError {
    fn from(e: crate::auth::mfa::MfaError) -> Self {
        use crate::auth::mfa::MfaError;
        match e {
            MfaError::Store(s) => s.into(),
            MfaError::WrongCode => WebError::page(StatusCode::BAD_REQUEST, "mfa.wrong_code"),
            MfaError::Throttled { retry_after_secs } => {
                WebError::TooManyRequests { retry_after_secs, message: "Too many wrong codes.".into() }
            }
            MfaError::NoFactor => WebError::page(StatusCode::BAD_REQUEST, "mfa.no_factor"),
            MfaError::Sealed(m) => WebError::Internal(anyhow::anyhow!("sealed factor secret: {m}")),
        }
    }
}
