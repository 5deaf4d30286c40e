//! The browser side of the authorization endpoint: `/authorize` (GET and POST), and the
//! interaction steps it may need — sign-in (the login page, resumed at `/authorize/resume`),
//! account selection, consent — kept server-side as an *interaction* in the ephemeral store.

use axum::extract::rejection::FormRejection;
use axum::extract::{RawForm, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};

use crate::crypto::tokens;
use crate::oidc::authorize::{
    AuthorizationRequest, AuthorizationResponse, AuthorizeError, AuthorizeParams, Next, Progress, SessionInfo,
};
use crate::oidc::types::ResponseMode;
use crate::oidc::OAuthError;
use crate::web::error::WebError;
use crate::web::session::{check_csrf, Session};
use crate::web::state::AppState;
use crate::web::templates::Ui;
use crate::web::ui::negotiate;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Interaction {
    request: AuthorizationRequest,
    /// The browser that started the interaction: only it may continue it.
    browser: String,
    /// The sign-in (`login_id`) the browser had when the interaction began, if any: a sign-in
    /// other than this one happened during the interaction and counts as fresh.
    started_login: Option<String>,
    /// Who consented during this interaction: the consent is theirs only.
    consented_by: Option<crate::domain::UserId>,
    account_selected: bool,
    /// The organization picked on the chooser page.
    #[serde(default)]
    org: Option<crate::domain::OrgId>,
}

fn interaction_key(id: &str) -> String {
    crate::store::ephemeral_keys::EphemeralKey::Interaction { id_digest: tokens::digest(id) }.to_string()
}

#[derive(Serialize)]
struct FormPostCtx<'a> {
    title: &'a str,
    action: &'a str,
    params: &'a [(String, String)],
}

#[derive(Serialize)]
struct ConsentCtx {
    title: String,
    client_name: String,
    email: String,
    scopes: Vec<&'static str>,
    csrf_token: String,
    interaction: String,
}

#[derive(Serialize)]
struct ChooseOrgCtx {
    title: String,
    client_name: String,
    email: String,
    orgs: Vec<crate::domain::org::Org>,
    csrf_token: String,
    interaction: String,
}

#[derive(Serialize)]
struct SelectCtx {
    title: String,
    client_name: String,
    email: String,
    csrf_token: String,
    interaction: String,
}

/// Sends the authorization response (success or error) to the client.
fn respond(state: &AppState, headers: &HeaderMap, r: AuthorizationResponse) -> Result<Response, WebError> {
    match r.response_mode {
        ResponseMode::Query => Ok(Redirect::to(&r.query_url()).into_response()),
        ResponseMode::FormPost => {
            let ui = Ui::new(negotiate(headers, None, None), "/");
            let ctx = FormPostCtx {
                title: ui.t(&state.templates, "common.continue"),
                action: &r.redirect_uri,
                params: &r.params,
            };
            Ok(Html(state.templates.page(&ui, "form_post.html", &ctx)?).into_response())
        }
    }
}

/// The language of an interaction's pages: the user's saved locale, the switch, the relying
/// party's `ui_locales`, the browser.
fn interaction_ui(headers: &HeaderMap, user: Option<&crate::domain::User>, ia: &Interaction, id: &str) -> Ui {
    let lang = negotiate(headers, user.and_then(|u| u.locale.as_deref()), ia.request.ui_locales.as_deref());
    Ui::new(lang, &format!("/authorize/resume?interaction={id}"))
}

/// The `ui_locales` of the interaction a sign-in page will resume, if any.
pub async fn ui_locales_for(state: &AppState, return_to: &str) -> Option<String> {
    let id = return_to.strip_prefix("/authorize/resume?interaction=")?;
    let (ia, _) = load_interaction(state, id).await.ok()?;
    ia.request.ui_locales
}

fn session_info(s: Option<&Session>) -> Option<SessionInfo> {
    let u = s?.data.user.as_ref()?;
    Some(SessionInfo {
        user_id: u.id,
        auth_time: u.auth_time,
        sid: u.sid.clone(),
        amr: u.amr.iter().map(|a| a.as_str().to_owned()).collect(),
        acr: u.acr.clone(),
        has_factor: false,
        idp: u.idp.clone(),
    })
}

/// Whether the user could step up: looked up only when the request asks for a level or a
/// second factor is required (no extra query on the common path).
async fn with_factor_info(
    state: &AppState,
    client: &crate::domain::Client,
    ia: &Interaction,
    info: Option<SessionInfo>,
) -> Result<Option<SessionInfo>, WebError> {
    let Some(mut i) = info else { return Ok(None) };
    let matters = ia.request.acr_values.is_some()
        || client.require_mfa
        || state.settings.mfa.policy == crate::config::MfaPolicy::Required;
    if matters {
        i.has_factor = state.mfa.has_factor(i.user_id).await?;
    }
    Ok(Some(i))
}

pub async fn authorize(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Result<RawForm, axum::extract::rejection::RawFormRejection>,
) -> Result<Response, WebError> {
    let RawForm(body) = body?;
    // GET: the query; POST: the form body (OIDC Core §3.1.2.1).
    let params: AuthorizeParams = super::request_params(&method, query.as_deref(), &body)?;
    let (client, req) = match state.oidc.validate_authorize(&params).await {
        Ok(x) => x,
        Err(AuthorizeError::Page(m)) => return Err(WebError::BadRequest(m)),
        Err(AuthorizeError::Unavailable(e)) => return Err(e.into()),
        Err(AuthorizeError::Redirect(r)) => return respond(&state, &headers, r),
    };
    // A browser without a session gets one now, so the interaction is bound to it.
    let (session, created) = state.sessions.load_or_create(&headers).await?;
    let interaction = Interaction {
        request: req,
        browser: session.data.browser.clone(),
        started_login: session.data.user.as_ref().map(|u| u.login_id.clone()),
        consented_by: None,
        account_selected: false,
        org: None,
    };
    let mut res = run(&state, &headers, &client, interaction, None, Some(&session)).await?;
    if created {
        res.headers_mut().append(axum::http::header::SET_COOKIE, state.sessions.set_cookie(&session));
    }
    Ok(res)
}

/// Evaluates the interaction against the current session and takes the next step.
async fn run(
    state: &AppState,
    headers: &HeaderMap,
    client: &crate::domain::Client,
    ia: Interaction,
    id: Option<String>,
    session: Option<&Session>,
) -> Result<Response, WebError> {
    let info = with_factor_info(state, client, &ia, session_info(session)).await?;
    let login = session.and_then(|s| s.data.user.as_ref()).map(|u| u.login_id.clone());
    let progress = Progress {
        fresh_login: login.is_some() && login != ia.started_login,
        consented: info.as_ref().is_some_and(|i| ia.consented_by == Some(i.user_id)),
        account_selected: ia.account_selected,
        org: ia.org,
    };
    let next = state.oidc.next_step(client, &ia.request, info.as_ref(), progress).await;
    let save = |ia: &Interaction| {
        let id = id.clone().unwrap_or_else(tokens::random_token);
        let raw = serde_json::to_vec(ia).unwrap_or_default();
        let ttl = std::time::Duration::from_secs(state.settings.oidc.interaction_ttl_secs);
        let store = state.stores.ephemeral.clone();
        async move {
            store.put(&interaction_key(&id), &raw, ttl).await?;
            Ok::<String, crate::store::StoreError>(id)
        }
    };
    match next {
        Err(resp) | Ok(Next::Respond(resp)) => {
            if let Some(id) = &id {
                state.stores.ephemeral.delete(&interaction_key(id)).await?;
            }
            respond(state, headers, resp)
        }
        Ok(Next::Login) => {
            let id = save(&ia).await?;
            // The request names an organization (or the client is bound to one) with an identity
            // provider: sign in there, without the login page.
            if let Some(org) = interaction_org(state, client, &ia).await {
                if let Ok(Some(c)) = state.federation.connection_of_org(org.id).await {
                    let back = format!("/authorize/resume?interaction={id}");
                    let hint = ia.request.login_hint.as_deref();
                    // A sign-in asked again (prompt=login, max_age, another user): the provider
                    // must authenticate the user again too.
                    let force = session.and_then(|s| s.data.user.as_ref()).is_some()
                        || ia.request.prompts.contains(&crate::oidc::types::Prompt::Login)
                        || ia.request.max_age.is_some();
                    return Ok(
                        Redirect::to(&super::sso::sso_url(&c.id.to_string(), &back, hint, force)).into_response()
                    );
                }
            }
            Ok(Redirect::to(&login_url(&id, true, ia.request.login_hint.as_deref())).into_response())
        }
        Ok(Next::StepUp) => {
            let id = save(&ia).await?;
            let back = format!("/authorize/resume?interaction={id}");
            let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", &back).finish();
            Ok(Redirect::to(&format!("/login/second-factor?{q}")).into_response())
        }
        Ok(Next::Enrol) => {
            let id = save(&ia).await?;
            let back = format!("/authorize/resume?interaction={id}");
            let q = url::form_urlencoded::Serializer::new(String::new()).append_pair("return_to", &back).finish();
            Ok(Redirect::to(&format!("/account/security/totp?{q}")).into_response())
        }
        Ok(Next::SelectAccount) => {
            let id = save(&ia).await?;
            let (s, u) = signed_in(session)?;
            let user = state.accounts.find(u.id).await?.ok_or(WebError::NotFound)?;
            let ui = interaction_ui(headers, Some(&user), &ia, &id)
                .branded(interaction_org(state, client, &ia).await.as_ref());
            let ctx = SelectCtx {
                title: ui.t(&state.templates, "select.title").to_owned(),
                client_name: client.name.clone(),
                email: user.email.to_string(),
                csrf_token: s.data.csrf.clone(),
                interaction: id,
            };
            Ok(Html(state.templates.page(&ui, "select_account.html", &ctx)?).into_response())
        }
        Ok(Next::ChooseOrg(orgs)) => {
            let id = save(&ia).await?;
            let (s, u) = signed_in(session)?;
            let user = state.accounts.find(u.id).await?.ok_or(WebError::NotFound)?;
            let ui = interaction_ui(headers, Some(&user), &ia, &id);
            let ctx = ChooseOrgCtx {
                title: ui.t(&state.templates, "orgs.choose.title").to_owned(),
                client_name: client.name.clone(),
                email: user.email.to_string(),
                orgs,
                csrf_token: s.data.csrf.clone(),
                interaction: id,
            };
            Ok(Html(state.templates.page(&ui, "choose_org.html", &ctx)?).into_response())
        }
        Ok(Next::Consent) => {
            let id = save(&ia).await?;
            let (s, u) = signed_in(session)?;
            let user = state.accounts.find(u.id).await?.ok_or(WebError::NotFound)?;
            let ui = interaction_ui(headers, Some(&user), &ia, &id)
                .branded(interaction_org(state, client, &ia).await.as_ref());
            let scope = ia.request.consent_scope();
            // Catalogue keys under `scopes`, identity first.
            let scopes: Vec<&'static str> =
                ["openid", "profile", "email", "phone", "address", "resources", "org", "roles", "offline_access"]
                    .into_iter()
                    .filter(|name| scope.contains(name))
                    .collect();
            let ctx = ConsentCtx {
                title: state.templates.tf(ui.lang, "consent.title", &[("client", &client.name)]),
                client_name: client.name.clone(),
                email: user.email.to_string(),
                scopes,
                csrf_token: s.data.csrf.clone(),
                interaction: id,
            };
            Ok(Html(state.templates.page(&ui, "consent.html", &ctx)?).into_response())
        }
    }
}

fn signed_in(session: Option<&Session>) -> Result<(&Session, &crate::web::session::SessionUser), WebError> {
    let s = session.ok_or_else(|| WebError::Internal(anyhow::anyhow!("interaction step without a session")))?;
    let u =
        s.data.user.as_ref().ok_or_else(|| WebError::Internal(anyhow::anyhow!("interaction step without a user")))?;
    Ok((s, u))
}

/// The interaction `id`, if this browser started it.
async fn bound_interaction(
    state: &AppState,
    id: &str,
    session: Option<&Session>,
) -> Result<(Interaction, crate::domain::Client), WebError> {
    let (ia, client) = load_interaction(state, id).await?;
    let same_browser = session.is_some_and(|s| {
        !s.data.browser.is_empty() && tokens::constant_time_eq(s.data.browser.as_bytes(), ia.browser.as_bytes())
    });
    if !same_browser {
        return Err(WebError::Forbidden(
            "This sign-in request was started in another browser. Go back to the application and start again.".into(),
        ));
    }
    Ok((ia, client))
}

async fn load_interaction(state: &AppState, id: &str) -> Result<(Interaction, crate::domain::Client), WebError> {
    let expired =
        || WebError::BadRequest("This sign-in request has expired. Go back to the application and start again.".into());
    if id.is_empty() || id.len() > 64 {
        return Err(expired());
    }
    let raw = state.stores.ephemeral.get(&interaction_key(id)).await?.ok_or_else(expired)?;
    let ia: Interaction = serde_json::from_slice(&raw).map_err(|_| expired())?;
    let client = state.stores.clients.client(&ia.request.client_id).await?.ok_or_else(expired)?;
    Ok((ia, client))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResumeQuery {
    interaction: String,
}

pub async fn resume(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let q: ResumeQuery = super::unique_params(query.unwrap_or_default().as_bytes())?;
    let session = state.sessions.load(&headers).await?;
    let (ia, client) = bound_interaction(&state, &q.interaction, session.as_ref()).await?;
    if session_info(session.as_ref()).is_none() {
        // Came back without signing in (e.g. opened the link elsewhere): sign in first.
        return Ok(Redirect::to(&login_url(&q.interaction, false, None)).into_response());
    }
    run(&state, &headers, &client, ia, Some(q.interaction), session.as_ref()).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DecisionForm {
    csrf_token: String,
    interaction: String,
    decision: String,
}

/// A decision posted on an interaction page: CSRF-checked, with its interaction and session.
struct Decision {
    form: DecisionForm,
    session: Option<Session>,
    ia: Interaction,
    client: crate::domain::Client,
}

async fn decision(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<Decision, WebError> {
    let Form(form) = form?;
    let session = state.sessions.load(headers).await?;
    check_csrf(session.as_ref(), &form.csrf_token, headers)?;
    let (ia, client) = bound_interaction(state, &form.interaction, session.as_ref()).await?;
    Ok(Decision { form, session, ia, client })
}

/// The sign-in page, resuming interaction `id` afterwards; `force`: even for a signed-in user.
fn login_url(id: &str, force: bool, login_hint: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("return_to", &format!("/authorize/resume?interaction={id}"));
    if force {
        q.append_pair("prompt", "login");
    }
    if let Some(h) = login_hint {
        q.append_pair("login_hint", h);
    }
    format!("/login?{}", q.finish())
}

pub async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Decision { form: f, session, mut ia, client } = decision(&state, &headers, form).await?;
    let Some(info) = session_info(session.as_ref()) else { return Err(WebError::csrf()) };
    match f.decision.as_str() {
        "allow" => {
            state.oidc.record_consent(info.user_id, &ia.request).await.map_err(oauth_internal)?;
            ia.consented_by = Some(info.user_id);
            run(&state, &headers, &client, ia, Some(f.interaction), session.as_ref()).await
        }
        "deny" => {
            state.stores.ephemeral.delete(&interaction_key(&f.interaction)).await?;
            let r = state.oidc.error_response(&ia.request, OAuthError::access_denied("the user denied access"));
            respond(&state, &headers, r)
        }
        _ => Err(WebError::BadRequest("decision must be allow or deny".into())),
    }
}

pub async fn select_account(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Decision { form: f, session, mut ia, client } = decision(&state, &headers, form).await?;
    match f.decision.as_str() {
        "continue" => {
            ia.account_selected = true;
            run(&state, &headers, &client, ia, Some(f.interaction), session.as_ref()).await
        }
        "switch" => Ok(Redirect::to(&login_url(&f.interaction, true, None)).into_response()),
        _ => Err(WebError::BadRequest("decision must be continue or switch".into())),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ChooseOrgForm {
    csrf_token: String,
    interaction: String,
    org: String,
}

/// The organization picked on the chooser page (a member's only; anything else is shown the
/// chooser again by `next_step`).
pub async fn choose_org(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<ChooseOrgForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let session = state.sessions.load(&headers).await?;
    check_csrf(session.as_ref(), &f.csrf_token, &headers)?;
    let (mut ia, client) = bound_interaction(&state, &f.interaction, session.as_ref()).await?;
    let org =
        f.org.parse::<crate::domain::OrgId>().map_err(|_| WebError::BadRequest("Choose an organization.".into()))?;
    ia.org = Some(org);
    run(&state, &headers, &client, ia, Some(f.interaction), session.as_ref()).await
}

fn oauth_internal(e: OAuthError) -> WebError {
    let cause = anyhow::anyhow!("{e}: {:?}", e.cause);
    if e.code == crate::oidc::OAuthErrorCode::TemporarilyUnavailable {
        return WebError::StoreUnavailable(cause);
    }
    WebError::Internal(cause)
}

/// The organization whose branding an interaction's pages wear: the client's own, the one the
/// request names, or the one picked.
async fn interaction_org(
    state: &AppState,
    client: &crate::domain::Client,
    ia: &Interaction,
) -> Option<crate::domain::org::Org> {
    if let Some(id) = client.org_id.or(ia.org) {
        return state.orgs.org(id).await.ok().flatten();
    }
    state.orgs.find(ia.request.organization.as_deref()?).await.ok().flatten()
}

/// The organization of the interaction `return_to` resumes, if any (for the login page).
pub async fn org_for(state: &AppState, return_to: &str) -> Option<crate::domain::org::Org> {
    let id = return_to.strip_prefix("/authorize/resume?interaction=")?;
    let (ia, client) = load_interaction(state, id).await.ok()?;
    interaction_org(state, &client, &ia).await
}

/// The client a sign-in is for, when `return_to` resumes an interaction (for the login page).
pub async fn client_name_for(state: &AppState, return_to: &str) -> Option<String> {
    let id = return_to.strip_prefix("/authorize/resume?interaction=")?;
    let (_, client) = load_interaction(state, id).await.ok()?;
    Some(client.name)
}
