//! Authorization endpoint: RFC 6749 §4.1.1, OIDC Core §3.1.2.1–§3.1.2.6, RFC 7636, RFC 9700
//! §2.1, RFC 9207 (`iss` in the response).
//!
//! Order matters (OIDC Core §3.1.2.6, RFC 6749 §4.1.2.1): `client_id` and `redirect_uri` are
//! checked first and their failures are shown on a page — never redirected, or the endpoint
//! would be an open redirector. Every later failure goes back to the client's redirect URI.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::claims::parse_claims_request;
use super::error::OAuthError;
use super::pkce;
use super::types::{Prompt, ResponseMode, Scope, SUPPORTED_SCOPES};
use super::{jwt, secs, OidcProvider};
use crate::crypto::tokens;
use crate::domain::mfa::{acr_rank, ACR_MFA, ACR_PWD};
use crate::domain::org::{Membership, Org};
use crate::domain::{Client, ClientId, Grant, GrantId, GrantType, NewAuthCode, OrgId, UnixTime, UserId, UserStatus};

/// The raw request parameters (query for GET, form for POST).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub ui_locales: Option<String>,
    pub acr_values: Option<String>,
    pub claims: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
    /// The organization to act for, by id or slug (`org_hint` is the same).
    pub organization: Option<String>,
    pub org_hint: Option<String>,
}

/// A validated authorization request, kept while the user signs in / consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: ClientId,
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub prompts: Vec<Prompt>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`.
    pub hint_sub: Option<String>,
    pub ui_locales: Option<String>,
    pub acr_values: Option<String>,
    pub claims: Option<Value>,
    pub code_challenge: Option<String>,
    /// `organization` (or `org_hint`): id or slug of the organization to act for.
    #[serde(default)]
    pub organization: Option<String>,
}

impl AuthorizationRequest {
    pub fn scope(&self) -> Scope {
        Scope::parse(&self.scope).unwrap_or_default()
    }

    /// What the user consents to: the scope, plus the scopes of the claims asked for by name
    /// (OIDC Core §5.5), so no claim is released past the consent page.
    pub fn consent_scope(&self) -> Scope {
        let mut scope = self.scope();
        for s in super::claims::scopes_of_claims_request(self.claims.as_ref()) {
            scope.insert(s);
        }
        scope
    }
}

/// Where the browser goes with the outcome: the client's redirect URI with these parameters,
/// by query or by an auto-submitted form (`form_post`).
#[derive(Debug, Clone)]
pub struct AuthorizationResponse {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub params: Vec<(String, String)>,
}

#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the user; the client cannot be trusted with a redirect.
    Page(String),
    /// A store could not answer: a 503 page, the user may retry.
    Unavailable(crate::store::StoreError),
    /// Sent back to the client.
    Redirect(AuthorizationResponse),
}

/// The signed-in browser session, as the provider needs it.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub user_id: UserId,
    pub auth_time: UnixTime,
    pub sid: String,
    pub amr: Vec<String>,
    /// The level the sign-in reached (`urn:guichet:acr:*`).
    pub acr: Option<String>,
    /// The user has a second factor (so a higher level can be reached by stepping up).
    pub has_factor: bool,
    /// The connection of a federated sign-in.
    pub idp: Option<String>,
}

pub enum Next {
    /// Sign in (again): no session, `prompt=login`, `max_age` passed, or another user hinted.
    Login,
    /// `prompt=select_account` with a session: confirm or switch the account.
    SelectAccount,
    /// Third-party client without a consent covering the scope (or `prompt=consent`).
    Consent,
    /// The sign-in is below the level asked (`acr_values`) or required (the client's or the
    /// global MFA policy), and the user has a second factor: ask it now.
    StepUp,
    /// A second factor is required and the user has none: enrol one before going on.
    Enrol,
    /// The user belongs to several organizations and the request names none: pick one.
    ChooseOrg(Vec<Org>),
    /// Done: send the code.
    Respond(AuthorizationResponse),
}

/// What happened earlier in this interaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// The user signed in during this interaction (a new session since it started): that
    /// satisfies `prompt=login`, `max_age` and an `id_token_hint` for another user.
    pub fresh_login: bool,
    pub consented: bool,
    pub account_selected: bool,
    /// The organization picked on the chooser page.
    pub org: Option<OrgId>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl OidcProvider {
    /// Validates the request: client and redirect URI first (page errors), then the rest
    /// (redirected errors).
    pub async fn validate_authorize(
        &self,
        p: &AuthorizeParams,
    ) -> Result<(Client, AuthorizationRequest), AuthorizeError> {
        let page = |m: &str| AuthorizeError::Page(m.to_owned());
        let client_id = nonempty(&p.client_id).ok_or_else(|| page("The request has no client_id."))?;
        if client_id.len() > 128 {
            return Err(page("Unknown client."));
        }
        let client = self
            .client(&ClientId::new(client_id))
            .await
            .map_err(AuthorizeError::Unavailable)?
            .ok_or_else(|| page("Unknown client: the application that sent you here is not registered."))?;
        let redirect_uri = nonempty(&p.redirect_uri)
            .ok_or_else(|| page("The request has no redirect_uri (required by OpenID Connect)."))?;
        if !client.redirect_uri_registered(redirect_uri) {
            return Err(page("The redirect_uri is not registered for this application."));
        }
        let response_mode = match nonempty(&p.response_mode) {
            None => ResponseMode::Query,
            Some(m) => match ResponseMode::parse(m) {
                Some(rm) => rm,
                None => {
                    return Err(AuthorizeError::Redirect(error_to(
                        redirect_uri,
                        ResponseMode::Query,
                        p.state.as_deref(),
                        &self.issuer,
                        OAuthError::invalid_request(format!("unsupported response_mode {m:?}")),
                    )))
                }
            },
        };
        let fail = |e: OAuthError| {
            AuthorizeError::Redirect(error_to(redirect_uri, response_mode, p.state.as_deref(), &self.issuer, e))
        };
        let req = self.validate_rest(&client, p, redirect_uri, response_mode).map_err(fail)?;
        Ok((client, req))
    }

    fn validate_rest(
        &self,
        client: &Client,
        p: &AuthorizeParams,
        redirect_uri: &str,
        response_mode: ResponseMode,
    ) -> Result<AuthorizationRequest, OAuthError> {
        if p.request.is_some() {
            return Err(OAuthError::request_not_supported("request objects are not supported"));
        }
        if p.request_uri.is_some() {
            return Err(OAuthError::request_uri_not_supported("request_uri is not supported"));
        }
        match nonempty(&p.response_type) {
            None => return Err(OAuthError::invalid_request("response_type is required")),
            Some("code") => {}
            Some(other) => {
                return Err(OAuthError::unsupported_response_type(format!(
                    "response_type {other:?} is not supported; use code"
                )))
            }
        }
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(OAuthError::unauthorized_client("this client may not use the authorization code flow"));
        }
        let mut scope = Scope::parse(p.scope.as_deref().unwrap_or("")).map_err(OAuthError::invalid_scope)?;
        scope.retain(|s| SUPPORTED_SCOPES.contains(&s));
        if !client.allows(GrantType::RefreshToken) {
            scope.retain(|s| s != "offline_access");
        }
        let code_challenge = match (nonempty(&p.code_challenge), nonempty(&p.code_challenge_method)) {
            (None, Some(_)) => return Err(OAuthError::invalid_request("code_challenge_method without code_challenge")),
            (None, None) if client.is_public() => {
                return Err(OAuthError::invalid_request("PKCE is required for public clients (code_challenge, S256)"))
            }
            (None, None) => None,
            (Some(_), None) | (Some(_), Some("plain")) => {
                return Err(OAuthError::invalid_request("code_challenge_method must be S256 (plain is not allowed)"))
            }
            (Some(_), Some(m)) if m != "S256" => {
                return Err(OAuthError::invalid_request(format!("unsupported code_challenge_method {m:?}")))
            }
            (Some(c), Some(_)) if !pkce::well_formed_s256_challenge(c) => {
                return Err(OAuthError::invalid_request(
                    "an S256 code_challenge is exactly 43 characters of [A-Za-z0-9-_] (base64url of a SHA-256)",
                ))
            }
            (Some(c), Some(_)) => Some(c.to_owned()),
        };
        let prompts = Prompt::parse_list(p.prompt.as_deref().unwrap_or("")).map_err(OAuthError::invalid_request)?;
        let max_age = match nonempty(&p.max_age) {
            None => None,
            Some(m) => Some(
                m.parse::<i64>()
                    .ok()
                    .filter(|v| *v >= 0)
                    .ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))?,
            ),
        };
        let claims = nonempty(&p.claims).map(parse_claims_request).transpose().map_err(OAuthError::invalid_request)?;
        let hint_sub = match nonempty(&p.id_token_hint) {
            None => None,
            Some(h) => {
                // Our own ID token, possibly expired; signature and issuer must hold.
                let c = jwt::verify_ours(&self.keys, h, None)
                    .map_err(|_| OAuthError::invalid_request("id_token_hint is not an ID token issued here"))?;
                if c.get("iss").and_then(|v| v.as_str()) != Some(self.issuer.as_str()) {
                    return Err(OAuthError::invalid_request("id_token_hint was issued by someone else"));
                }
                c.get("sub").and_then(|v| v.as_str()).map(str::to_owned)
            }
        };
        let organization = nonempty(&p.organization).or(nonempty(&p.org_hint)).map(str::to_owned);
        for (name, v) in
            [("state", &p.state), ("nonce", &p.nonce), ("login_hint", &p.login_hint), ("organization", &organization)]
        {
            if v.as_ref().is_some_and(|s| s.len() > 2048) {
                return Err(OAuthError::invalid_request(format!("{name} is too long")));
            }
        }
        Ok(AuthorizationRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            response_mode,
            scope: scope.to_string(),
            state: p.state.clone(),
            nonce: p.nonce.clone().filter(|n| !n.is_empty()),
            prompts,
            max_age,
            login_hint: nonempty(&p.login_hint).map(str::to_owned),
            hint_sub,
            ui_locales: nonempty(&p.ui_locales).map(str::to_owned),
            acr_values: nonempty(&p.acr_values).map(str::to_owned),
            claims,
            code_challenge,
            organization,
        })
    }

    /// Decides what the user must do next, or answers.
    pub async fn next_step(
        &self,
        client: &Client,
        req: &AuthorizationRequest,
        session: Option<&SessionInfo>,
        progress: Progress,
    ) -> Result<Next, AuthorizationResponse> {
        let now = self.clock.now();
        let none = req.prompts.contains(&Prompt::None);
        let fail = |e: OAuthError| self.error_response(req, e);
        // A session whose user was suspended (or deleted) since sign-in counts as none.
        let session = match session {
            Some(s) => match self.stores.users.user_by_id(s.user_id).await {
                Ok(Some(u)) if u.status == UserStatus::Active => Some(s),
                Ok(_) => None,
                Err(e) => return Err(fail(e.into())),
            },
            None => None,
        };
        let s = match session {
            Some(s) => s,
            None if none => return Err(fail(OAuthError::login_required("the user is not signed in"))),
            None => return Ok(Next::Login),
        };
        if !progress.fresh_login {
            // max_age=0 means "sign in again now" (OIDC Core §3.1.2.1 errata: like prompt=login);
            // otherwise, elapsed seconds greater than max_age.
            let too_old = req.max_age.is_some_and(|m| m == 0 || s.auth_time.secs_until(now) > m);
            let other_user = req.hint_sub.as_ref().is_some_and(|h| *h != s.user_id.to_string());
            if none && (too_old || other_user) {
                return Err(fail(OAuthError::login_required(if other_user {
                    "the hinted user is not the signed-in user"
                } else {
                    "the sign-in is older than max_age"
                })));
            }
            if req.prompts.contains(&Prompt::Login) || too_old || other_user {
                return Ok(Next::Login);
            }
            if req.prompts.contains(&Prompt::SelectAccount) && !progress.account_selected {
                return Ok(Next::SelectAccount);
            }
        }
        // The organization the user acts for.
        let memberships = self.stores.orgs.memberships_of(s.user_id).await.map_err(|e| fail(e.into()))?;
        let org = match choose_org(client, req, &memberships, progress.org) {
            Ok(OrgChoice::Chosen(o)) => o,
            Ok(OrgChoice::Pick) if none => {
                return Err(fail(OAuthError::interaction_required(
                    "the user belongs to several organizations: send organization=<id or slug>",
                )))
            }
            Ok(OrgChoice::Pick) => return Ok(Next::ChooseOrg(memberships.into_iter().map(|m| m.org).collect())),
            Err(e) => return Err(fail(e)),
        };
        // The level: what the request asks (acr_values, the highest known one) or what the
        // client, the policy or one of the user's organizations requires.
        let asked = req.acr_values.as_deref().unwrap_or("").split_whitespace().map(acr_rank).max().unwrap_or(0);
        let org_requires = memberships.iter().any(|m| m.org.mfa_required);
        let required = if client.require_mfa || self.mfa_required || org_requires { acr_rank(ACR_MFA) } else { 0 };
        let have = s.acr.as_deref().map(acr_rank).unwrap_or(acr_rank(ACR_PWD));
        if have < required.max(asked.min(acr_rank(ACR_MFA))) {
            let has_factor = s.has_factor
                || self.stores.mfa.factors_of(s.user_id).await.map_err(|e| fail(e.into()))?.iter().any(|f| f.confirmed);
            if has_factor {
                if none {
                    return Err(fail(OAuthError::login_required("the sign-in is below the level asked")));
                }
                return Ok(Next::StepUp);
            }
            if required > have {
                if none {
                    return Err(fail(OAuthError::login_required("a second factor must be enrolled first")));
                }
                return Ok(Next::Enrol);
            }
            // Asked but not reachable (no factor): the ID token's acr says what was reached.
        }
        if !progress.consented {
            // Third-party clients need consent for everything they ask; first-party clients
            // only for offline access (OIDC Core §11), or when the client asks (prompt=consent).
            let needed = if client.first_party {
                let mut n = Scope::default();
                if req.scope().contains("offline_access") {
                    n.insert("offline_access");
                }
                n
            } else {
                req.consent_scope()
            };
            let forced = req.prompts.contains(&Prompt::Consent);
            let covered = needed.is_empty()
                || self
                    .stores
                    .consents
                    .consent(s.user_id, &client.client_id)
                    .await
                    .map_err(|e| fail(e.into()))?
                    .map(|c| Scope::parse(&c).unwrap_or_default())
                    .is_some_and(|granted| needed.is_subset(&granted));
            if forced || !covered {
                if none {
                    return Err(fail(OAuthError::consent_required("the user has not consented to this client")));
                }
                return Ok(Next::Consent);
            }
        }
        self.issue_code(client, req, s, org).await.map(Next::Respond).map_err(fail)
    }

    /// The user approved: remember the consent for this client and scope.
    pub async fn record_consent(&self, user: UserId, req: &AuthorizationRequest) -> Result<(), OAuthError> {
        let mut scope = req.consent_scope();
        if let Some(previous) = self.stores.consents.consent(user, &req.client_id).await? {
            for s in Scope::parse(&previous).unwrap_or_default().iter() {
                scope.insert(s);
            }
        }
        self.stores.consents.save_consent(user, &req.client_id, &scope.to_string()).await?;
        Ok(())
    }

    async fn issue_code(
        &self,
        client: &Client,
        req: &AuthorizationRequest,
        s: &SessionInfo,
        org: Option<OrgId>,
    ) -> Result<AuthorizationResponse, OAuthError> {
        let now = self.clock.now();
        let scope = req.scope();
        let offline = scope.contains("offline_access");
        let expires_at = if offline {
            now.plus_secs(secs(self.cfg.offline_grant_ttl_secs))
        } else {
            s.auth_time.plus_secs(self.session_absolute_secs)
        };
        let grant = Grant {
            id: GrantId::new_random(),
            client_id: client.client_id.clone(),
            user_id: Some(s.user_id),
            sid: Some(s.sid.clone()),
            scope: scope.to_string(),
            offline,
            auth_time: s.auth_time,
            acr: Some(s.acr.clone().unwrap_or_else(|| ACR_PWD.to_owned())),
            amr: s.amr.clone(),
            claims: req.claims.clone(),
            org_id: org,
            idp: s.idp.clone(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.stores.grants.create_grant(&grant).await?;
        let code = tokens::random_token();
        self.stores
            .grants
            .insert_code(&NewAuthCode {
                code_hash: tokens::digest(&code),
                grant_id: grant.id,
                redirect_uri: req.redirect_uri.clone(),
                nonce: req.nonce.clone(),
                code_challenge: req.code_challenge.clone(),
                expires_at: now.plus_secs(secs(self.cfg.code_ttl_secs)),
            })
            .await?;
        let mut params = vec![("code".to_owned(), code)];
        if let Some(st) = &req.state {
            params.push(("state".into(), st.clone()));
        }
        params.push(("iss".into(), self.issuer.clone()));
        Ok(AuthorizationResponse { redirect_uri: req.redirect_uri.clone(), response_mode: req.response_mode, params })
    }

    pub fn error_response(&self, req: &AuthorizationRequest, e: OAuthError) -> AuthorizationResponse {
        if let Some(cause) = &e.cause {
            tracing::error!(error = %e, cause = ?cause, client_id = %req.client_id, "authorization failed on our side");
        }
        error_to(&req.redirect_uri, req.response_mode, req.state.as_deref(), &self.issuer, e)
    }
}

enum OrgChoice {
    Chosen(Option<OrgId>),
    /// Several organizations and nothing says which: the user picks.
    Pick,
}

/// The organization a grant is for: the client's own (bound clients admit its members only),
/// the one the request names (`organization`, by id or slug: the user must be a member), the
/// one picked, or the user's only one — asked only when the scope has `org` or `roles`.
fn choose_org(
    client: &Client,
    req: &AuthorizationRequest,
    memberships: &[Membership],
    picked: Option<OrgId>,
) -> Result<OrgChoice, OAuthError> {
    let named = |r: &str| memberships.iter().find(|m| m.org.slug == r || m.org.id.to_string() == r).map(|m| m.org.id);
    if let Some(bound) = client.org_id {
        let member = memberships.iter().any(|m| m.org.id == bound);
        let other = req.organization.as_deref().is_some_and(|r| named(r) != Some(bound));
        if !member || other {
            return Err(OAuthError::access_denied("this application is only for members of its organization"));
        }
        return Ok(OrgChoice::Chosen(Some(bound)));
    }
    if let Some(r) = req.organization.as_deref() {
        return match named(r) {
            Some(id) => Ok(OrgChoice::Chosen(Some(id))),
            None => Err(OAuthError::access_denied("the user is not a member of the requested organization")),
        };
    }
    let scope = req.scope();
    if !scope.contains("org") && !scope.contains("roles") {
        return Ok(OrgChoice::Chosen(None));
    }
    if let Some(p) = picked.filter(|p| memberships.iter().any(|m| m.org.id == *p)) {
        return Ok(OrgChoice::Chosen(Some(p)));
    }
    match memberships {
        [] => Ok(OrgChoice::Chosen(None)),
        [only] => Ok(OrgChoice::Chosen(Some(only.org.id))),
        _ => Ok(OrgChoice::Pick),
    }
}

fn error_to(
    redirect_uri: &str,
    response_mode: ResponseMode,
    state: Option<&str>,
    issuer: &str,
    e: OAuthError,
) -> AuthorizationResponse {
    let mut params = vec![
        ("error".to_owned(), e.code.as_str().to_owned()),
        ("error_description".into(), super::error::safe_description(&e.description)),
    ];
    if let Some(s) = state {
        params.push(("state".into(), s.to_owned()));
    }
    params.push(("iss".into(), issuer.to_owned()));
    AuthorizationResponse { redirect_uri: redirect_uri.to_owned(), response_mode, params }
}

impl AuthorizationResponse {
    /// The redirect URI with the parameters in its query (keeping any query it already had).
    pub fn query_url(&self) -> String {
        match url::Url::parse(&self.redirect_uri) {
            Ok(mut u) => {
                {
                    let mut q = u.query_pairs_mut();
                    for (k, v) in &self.params {
                        q.append_pair(k, v);
                    }
                }
                u.to_string()
            }
            Err(_) => self.redirect_uri.clone(),
        }
    }
}
