//! The organization admin pages: `/orgs` (the organizations one runs), and per organization
//! `/orgs/{slug}` (overview), `/members` (members, invitations, grants of roles), `/roles`,
//! `/domains`, `/sso` (`sso.rs`), `/webhooks` (`webhooks.rs`), `/keys` (developer keys,
//! `devkeys.rs`) and `/settings` (name, policies, branding, deletion).
//!
//! Every page and every form resolves the slug through the service first
//! (`authorize(actor, slug, Admin)`): a non-member gets 404 (the organization's existence is not
//! given away), a plain member 403, a platform admin passes. Ids posted in forms (user, role,
//! domain) are checked against the organization of the path by the service: another
//! organization's ids are 404, and nothing changes. Forms post, then redirect to the page with a
//! notice (POST-redirect-GET); a refused form comes back with its message and a 4xx.

use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{Form, Path, RawForm, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{json, Value};

use super::common::{form_error_key, render, ui};
use crate::accounts::AccountError;
use crate::domain::org::{Org, OrgRole, Role};
use crate::domain::{RoleId, User, UserId};
use crate::orgs::{Actor, OrgError, OrgSettingsUpdate};
use crate::web::error::WebError;
use crate::web::session::Session;
use crate::web::state::AppState;
use crate::web::templates::Ui;

type FormResult<T> = Result<Form<T>, axum::extract::rejection::FormRejection>;

/// An organization error as a page error (for what is not shown inside a form): unknown or
/// invisible → 404, below the needed org role → 403, store trouble → 503, the rest → 4xx with
/// the message of [`OrgError::key`].
pub fn web_error(e: OrgError) -> WebError {
    match e {
        OrgError::NotFound => WebError::NotFound,
        OrgError::Forbidden => WebError::page(StatusCode::FORBIDDEN, "orgs.error.forbidden"),
        OrgError::Store(s) => s.into(),
        OrgError::Account(a) => a.into(),
        other => WebError::page(status_of(&other), other.key()),
    }
}

/// The status of a refused form.
fn status_of(e: &OrgError) -> StatusCode {
    match e {
        OrgError::NotFound => StatusCode::NOT_FOUND,
        OrgError::Forbidden | OrgError::OwnerOnly => StatusCode::FORBIDDEN,
        OrgError::SlugTaken(_)
        | OrgError::HasClients
        | OrgError::RoleTaken(_)
        | OrgError::DomainClaimed(_)
        | OrgError::DomainTaken(_) => StatusCode::CONFLICT,
        OrgError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The notices a redirect may ask for (`?notice=`): only these, never a key from the query.
const NOTICES: &[&str] = &[
    "invited",
    "role_changed",
    "removed",
    "left",
    "granted",
    "revoked",
    "role_created",
    "role_updated",
    "role_deleted",
    "domain_added",
    "domain_verified",
    "domain_pending",
    "domain_removed",
    "settings_saved",
    "logo_saved",
    "logo_removed",
    "deleted",
    "connection_created",
    "connection_deleted",
    "connection_updated",
    "webhook_created",
    "webhook_deleted",
    "webhook_rotated",
    "webhook_redelivered",
    "devkey_created",
    "devkey_deleted",
    "devkey_reset",
];

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoticeQuery {
    notice: Option<String>,
}

fn notice_of(state: &AppState, ui: &Ui, raw: Option<String>) -> Result<Option<String>, WebError> {
    let q: NoticeQuery = super::unique_params(raw.unwrap_or_default().as_bytes())?;
    Ok(q.notice
        .filter(|n| NOTICES.contains(&n.as_str()))
        .map(|n| state.templates.t(ui.lang, &format!("orgs.admin.notice.{n}")).to_owned()))
}

/// The pages of one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Overview,
    Members,
    Roles,
    Domains,
    Sso,
    Webhooks,
    DevKeys,
    Settings,
}

impl Section {
    fn path(self) -> &'static str {
        match self {
            Section::Overview => "",
            Section::Members => "/members",
            Section::Roles => "/roles",
            Section::Domains => "/domains",
            Section::Sso => "/sso",
            Section::Webhooks => "/webhooks",
            Section::DevKeys => "/keys",
            Section::Settings => "/settings",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Section::Overview => "overview",
            Section::Members => "members",
            Section::Roles => "roles",
            Section::Domains => "domains",
            Section::Sso => "sso",
            Section::Webhooks => "webhooks",
            Section::DevKeys => "keys",
            Section::Settings => "settings",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Section::Overview => "org.html",
            Section::Members => "org_members.html",
            Section::Roles => "org_roles.html",
            Section::Domains => "org_domains.html",
            Section::Sso => "org_sso.html",
            Section::Webhooks => "org_webhooks.html",
            Section::DevKeys => "org_devkeys.html",
            Section::Settings => "org_settings.html",
        }
    }

    fn title_key(self) -> &'static str {
        match self {
            Section::Overview => "orgs.admin.overview",
            Section::Members => "orgs.admin.members.title",
            Section::Roles => "orgs.admin.roles.title",
            Section::Domains => "orgs.admin.domains.title",
            Section::Sso => "orgs.sso.title",
            Section::Webhooks => "orgs.webhooks.title",
            Section::DevKeys => "orgs.devkeys.title",
            Section::Settings => "orgs.admin.settings.title",
        }
    }

    fn url(self, org: &Org) -> String {
        format!("/orgs/{}{}", org.slug, self.path())
    }
}

/// The organization of the path, if the user runs it (or is a platform admin).
async fn admin_of(state: &AppState, u: &User, slug: &str) -> Result<Org, WebError> {
    state.orgs.authorize(Actor::of(u), slug, OrgRole::Admin).await.map_err(web_error)
}

fn org_json(org: &Org) -> Value {
    json!({
        "id": org.id, "slug": org.slug, "name": org.name, "require_sso": org.require_sso,
        "mfa_required": org.mfa_required, "accent_color": org.accent_color.clone().unwrap_or_default(),
        "logo": org.logo_digest.as_ref().map(|d| format!("/orgs/{}/logo?v={d}", org.slug)),
    })
}

fn role_label(r: &Role) -> String {
    format!("{}/{}", r.client_id, r.name)
}

/// The page of `section`, with what it lists fetched for `u`.
#[allow(clippy::too_many_arguments)]
async fn section_page(
    state: &AppState,
    headers: &HeaderMap,
    uri: Option<&Uri>,
    s: &Session,
    u: &User,
    org: &Org,
    section: Section,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, WebError> {
    let (ui, ctx) = section_ctx(state, headers, uri, s, u, org, section, notice, error).await?;
    render(state, &ui, status, section.template(), &ctx)
}

/// The language and context of `section`'s page (what it lists fetched for `u`).
#[allow(clippy::too_many_arguments)]
async fn section_ctx(
    state: &AppState,
    headers: &HeaderMap,
    uri: Option<&Uri>,
    s: &Session,
    u: &User,
    org: &Org,
    section: Section,
    notice: Option<String>,
    error: Option<String>,
) -> Result<(Ui, Value), WebError> {
    let actor = Actor::of(u);
    let here = match uri {
        Some(x) => x.clone(),
        None => section.url(org).parse::<Uri>().unwrap_or_else(|_| Uri::from_static("/orgs")),
    };
    let ui = ui(headers, &here, Some(u)).branded(Some(org));
    let slug = org.slug.as_str();
    let my_role = state.orgs.role_of(actor, org.id).await.map_err(web_error)?;
    let mut ctx = json!({
        "title": format!("{} · {}", ui.t(&state.templates, section.title_key()), org.name),
        "csrf_token": s.data.csrf, "org": org_json(org), "section": section.name(),
        "org_roles": OrgRole::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "my_role": my_role.map(|r| r.as_str()).unwrap_or(""),
        "platform": u.is_admin, "can_delete": my_role == Some(OrgRole::Owner),
        "notice": notice, "error": error,
    });
    match section {
        Section::Overview => {
            let (_, members) = state.orgs.members(actor, slug).await.map_err(web_error)?;
            let (_, domains) = state.orgs.domains(actor, slug).await.map_err(web_error)?;
            let roles = state.orgs.roles(actor, Some(slug)).await.map_err(web_error)?;
            ctx["member_count"] = json!(members.len().to_string());
            ctx["domain_count"] = json!(domains.len().to_string());
            ctx["verified_count"] = json!(domains.iter().filter(|d| d.verified()).count().to_string());
            ctx["role_count"] = json!(roles.len().to_string());
        }
        Section::Members => {
            let (_, members) = state.orgs.members(actor, slug).await.map_err(web_error)?;
            let roles = state.orgs.roles(actor, Some(slug)).await.map_err(web_error)?;
            ctx["members"] = members
                .iter()
                .map(|m| {
                    json!({
                        "user_id": m.user_id, "email": m.email, "name": m.name.clone().unwrap_or_default(),
                        "role": m.role.as_str(), "is_self": m.user_id == u.id, "joined": m.joined_at.display_utc(),
                        "roles": m.roles.iter().map(|r| json!({"id": r.id, "client_id": r.client_id, "name": r.name}))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            ctx["roles"] =
                roles.iter().map(|r| json!({"id": r.id, "label": role_label(r), "own": r.org.is_some()})).collect();
        }
        Section::Roles => {
            let roles = state.orgs.roles(actor, Some(slug)).await.map_err(web_error)?;
            let clients = state.orgs.role_clients(Some(org.id)).await.map_err(web_error)?;
            // By client: those roles can be made for first, then any other a role refers to.
            let mut groups: Vec<(String, String, Vec<String>)> =
                clients.into_iter().map(|(c, perms)| (c.client_id.to_string(), c.name.clone(), perms)).collect();
            for r in &roles {
                if !groups.iter().any(|g| g.0 == r.client_id.as_str()) {
                    groups.push((r.client_id.to_string(), r.client_id.to_string(), Vec::new()));
                }
            }
            let mut n = 0usize;
            ctx["clients"] = groups
                .iter()
                .map(|(id, name, perms)| {
                    let rs: Vec<Value> = roles
                        .iter()
                        .filter(|r| r.client_id.as_str() == id)
                        .map(|r| {
                            let choices: Vec<Value> = perms
                                .iter()
                                .chain(r.permissions.iter().filter(|p| !perms.contains(p)))
                                .map(|p| {
                                    n += 1;
                                    json!({"name": p, "checked": r.permissions.contains(p), "key": format!("p{n}")})
                                })
                                .collect();
                            json!({
                                "id": r.id, "name": r.name, "own": r.org.is_some(), "permissions": r.permissions,
                                "choices": choices,
                            })
                        })
                        .collect();
                    let new_choices: Vec<Value> = perms
                        .iter()
                        .map(|p| {
                            n += 1;
                            json!({"name": p, "key": format!("p{n}")})
                        })
                        .collect();
                    json!({"client_id": id, "name": name, "permissions": perms, "new_choices": new_choices, "roles": rs})
                })
                .collect();
            ctx["can_create"] = json!(groups.iter().any(|g| !g.2.is_empty()));
        }
        Section::Domains => {
            let (_, domains) = state.orgs.domains(actor, slug).await.map_err(web_error)?;
            ctx["domains"] = domains
                .iter()
                .map(|d| {
                    json!({
                        "domain": d.domain, "record_name": d.record_name(), "challenge": d.challenge,
                        "verified": d.verified(), "verified_at": d.verified_at.map(|t| t.display_utc()).unwrap_or_default(),
                        "last_error": d.last_error.clone().unwrap_or_default(),
                        "last_checked": d.last_checked_at.map(|t| t.display_utc()).unwrap_or_default(),
                    })
                })
                .collect();
        }
        Section::Sso => sso::sso_context(state, u, org, &mut ctx).await?,
        Section::Webhooks => webhooks::webhooks_context(state, u, org, &mut ctx).await?,
        Section::DevKeys => devkeys::devkeys_context(state, u, org, &mut ctx).await?,
        Section::Settings => {}
    }
    Ok((ui, ctx))
}

/// A GET of one organization page.
async fn show_section(
    state: AppState,
    headers: HeaderMap,
    uri: Uri,
    slug: String,
    query: Option<String>,
    section: Section,
) -> Result<Response, WebError> {
    let back = format!(
        "/orgs/{}{}",
        url::form_urlencoded::byte_serialize(slug.as_bytes()).collect::<String>(),
        section.path()
    );
    let (s, u) = signed_in_or_login!(state, headers, &back);
    let org = admin_of(&state, &u, &slug).await?;
    let ui = ui(&headers, &uri, Some(&u));
    let notice = notice_of(&state, &ui, query)?;
    section_page(&state, &headers, Some(&uri), &s, &u, &org, section, StatusCode::OK, notice, None).await
}

/// The answer to a form of `section`: to the page with a notice, or the page again with the
/// message (404 and store trouble as error pages).
async fn answer(
    state: &AppState,
    headers: &HeaderMap,
    s: &Session,
    u: &User,
    org: &Org,
    section: Section,
    outcome: Result<&'static str, OrgError>,
) -> Result<Response, WebError> {
    let e = match outcome {
        Ok(notice) => return Ok(Redirect::to(&format!("{}?notice={notice}", section.url(org))).into_response()),
        Err(e) => e,
    };
    let (status, key) = match e {
        OrgError::NotFound => return Err(WebError::NotFound),
        OrgError::Store(st) => return Err(st.into()),
        OrgError::Account(a) => match form_error_key(&a) {
            Some(k) if matches!(a, AccountError::Throttled) => (StatusCode::TOO_MANY_REQUESTS, k),
            Some(k) => (StatusCode::BAD_REQUEST, k),
            None => return Err(a.into()),
        },
        other => (status_of(&other), other.key()),
    };
    let lang = ui(headers, &Uri::from_static("/orgs"), Some(u)).lang;
    let message = state.templates.t(lang, key).to_owned();
    tracing::info!(org = %org.id, error = %key, "organization form refused");
    section_page(state, headers, None, s, u, org, section, status, None, Some(message)).await
}

fn user_id(raw: &str) -> Result<UserId, OrgError> {
    raw.trim().parse::<UserId>().map_err(|_| OrgError::NotFound)
}

fn role_id(raw: &str) -> Result<RoleId, OrgError> {
    raw.trim().parse::<RoleId>().map_err(|_| OrgError::NotFound)
}

fn org_role(raw: &str) -> Result<OrgRole, OrgError> {
    raw.trim().parse::<OrgRole>().map_err(|_| OrgError::UnknownRole(raw.trim().to_owned()))
}

/// The fields of a urlencoded form, repeated ones kept (checkboxes named alike).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(raw: &[u8]) -> Self {
        Fields(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    fn one(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.trim().is_empty()).collect()
    }
}

// ---------------------------------------------------------------- the list and the overview

/// `GET /orgs`: the organizations the user belongs to; those they run link to their pages. A
/// platform admin sees them all.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    let (s, u) = signed_in_or_login!(state, headers, "/orgs");
    let ui = ui(&headers, &uri, Some(&u));
    let notice = notice_of(&state, &ui, q)?;
    let mut list = state.orgs.list(Actor::of(&u)).await.map_err(web_error)?;
    list.sort_by_key(|m| m.org.name.to_lowercase());
    let orgs: Vec<Value> = list
        .iter()
        .map(|m| {
            json!({
                "slug": m.org.slug, "name": m.org.name, "role": m.role.as_str(),
                "admin": u.is_admin || m.role.administers(),
            })
        })
        .collect();
    let ctx = json!({
        "title": ui.t(&state.templates, "orgs.admin.title"), "orgs": orgs, "platform": u.is_admin,
        "csrf_token": s.data.csrf, "notice": notice,
    });
    render(&state, &ui, StatusCode::OK, "orgs.html", &ctx)
}

pub async fn overview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::Overview).await
}

// ---------------------------------------------------------------- members

pub async fn members(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::Members).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct InviteForm {
    csrf_token: String,
    email: String,
    role: String,
}

/// `POST /orgs/{slug}/members/invite`: the invitation mail (an account is made on acceptance
/// when the address has none; existing accounts get it too).
pub async fn invite(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<InviteForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let lang = ui(&headers, &Uri::from_static("/orgs"), Some(&u)).lang;
    let r = match org_role(&f.role) {
        Ok(role) => state.orgs.invite(Actor::of(&u), &org.slug, &f.email, role, lang).await.map(|_| "invited"),
        Err(e) => Err(e),
    };
    answer(&state, &headers, &s, &u, &org, Section::Members, r).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct MemberForm {
    csrf_token: String,
    user_id: String,
    role: String,
}

/// `POST /orgs/{slug}/members/role`: a member's org role.
pub async fn member_role(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<MemberForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = async {
        let (user, role) = (user_id(&f.user_id)?, org_role(&f.role)?);
        state.orgs.set_member_role_id(Actor::of(&u), &org.slug, user, role).await.map(|_| "role_changed")
    }
    .await;
    answer(&state, &headers, &s, &u, &org, Section::Members, r).await
}

/// `POST /orgs/{slug}/members/remove`: the member leaves (their account remains).
pub async fn member_remove(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<MemberForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = async {
        let user = user_id(&f.user_id)?;
        state.orgs.remove_member_id(Actor::of(&u), &org.slug, user).await?;
        Ok::<_, OrgError>(user)
    }
    .await;
    match r {
        // Removed oneself: the organization's pages are no longer theirs.
        Ok(user) if user == u.id && !u.is_admin => Ok(Redirect::to("/orgs?notice=left").into_response()),
        r => answer(&state, &headers, &s, &u, &org, Section::Members, r.map(|_| "removed")).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GrantForm {
    csrf_token: String,
    user_id: String,
    role_id: String,
}

/// `POST /orgs/{slug}/roles/grant`: a role to a member.
pub async fn role_grant(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<GrantForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = async {
        let (user, role) = (user_id(&f.user_id)?, role_id(&f.role_id)?);
        state.orgs.grant_role_id(Actor::of(&u), &org.slug, user, role).await.map(|_| "granted")
    }
    .await;
    answer(&state, &headers, &s, &u, &org, Section::Members, r).await
}

/// `POST /orgs/{slug}/roles/revoke`: a role taken away (404 when the member did not hold it in
/// this organization).
pub async fn role_revoke(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<GrantForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = async {
        let (user, role) = (user_id(&f.user_id)?, role_id(&f.role_id)?);
        match state.orgs.revoke_role_id(Actor::of(&u), &org.slug, user, role).await? {
            true => Ok("revoked"),
            false => Err(OrgError::NotFound),
        }
    }
    .await;
    answer(&state, &headers, &s, &u, &org, Section::Members, r).await
}

// ---------------------------------------------------------------- roles

pub async fn roles(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::Roles).await
}

/// `POST /orgs/{slug}/roles`: a role of the organization (`client_id`, `name`, repeated
/// `permission`).
pub async fn role_create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Result<Response, WebError> {
    let f = Fields::parse(&raw);
    let (s, u) = posted_by_user!(state, headers, "/orgs", f.one("csrf_token"));
    let org = admin_of(&state, &u, &slug).await?;
    let r = state
        .orgs
        .create_role(Actor::of(&u), f.one("client_id").trim(), f.one("name"), &f.all("permission"), Some(&org.slug))
        .await
        .map(|_| "role_created");
    answer(&state, &headers, &s, &u, &org, Section::Roles, r).await
}

/// `POST /orgs/{slug}/roles/{role_id}/permissions`: the permissions of one of the organization's
/// own roles (operator roles are read-only).
pub async fn role_permissions(
    State(state): State<AppState>,
    Path((slug, role)): Path<(String, String)>,
    headers: HeaderMap,
    RawForm(raw): RawForm,
) -> Result<Response, WebError> {
    let f = Fields::parse(&raw);
    let (s, u) = posted_by_user!(state, headers, "/orgs", f.one("csrf_token"));
    let org = admin_of(&state, &u, &slug).await?;
    let r = async {
        let role = role_id(&role)?;
        state
            .orgs
            .set_role_permissions(Actor::of(&u), &org.slug, role, &f.all("permission"))
            .await
            .map(|_| "role_updated")
    }
    .await;
    answer(&state, &headers, &s, &u, &org, Section::Roles, r).await
}

/// What a form of a section that hands out secrets (webhooks, keys) did.
enum Done {
    /// Back to the page with this notice.
    Notice(&'static str),
    /// The page itself, with this notice and, under `field` of the page's context, the secret
    /// (with what it belongs to): shown this once.
    Secret { notice: &'static str, field: &'static str, shown: Value },
}

/// The answer to such a form: with a secret, the page itself showing it once; otherwise a
/// redirect with the notice; a refusal (`Err(Ok(key))`: a catalogue key), the page again with the
/// message and 400; anything else (`Err(Err(..))`) as an error page.
async fn secret_answer(
    state: &AppState,
    headers: &HeaderMap,
    s: &Session,
    u: &User,
    org: &Org,
    section: Section,
    outcome: Result<Done, Result<&'static str, WebError>>,
) -> Result<Response, WebError> {
    let lang = ui(headers, &Uri::from_static("/orgs"), Some(u)).lang;
    let (status, notice, error, secret) = match outcome {
        Ok(Done::Notice(notice)) => {
            let to = format!("{}?notice={notice}", section.url(org));
            return Ok(Redirect::to(&to).into_response());
        }
        Ok(Done::Secret { notice, field, shown }) => {
            let n = state.templates.t(lang, &format!("orgs.admin.notice.{notice}")).to_owned();
            (StatusCode::OK, Some(n), None, Some((field, shown)))
        }
        Err(Ok(key)) => (StatusCode::BAD_REQUEST, None, Some(state.templates.t(lang, key).to_owned()), None),
        Err(Err(e)) => return Err(e),
    };
    let (ui, mut ctx) = section_ctx(state, headers, None, s, u, org, section, notice, error).await?;
    if let Some((field, shown)) = secret {
        ctx[field] = shown;
    }
    render(state, &ui, status, section.template(), &ctx)
}

/// A deletion confirmed by typing a name again.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DeleteForm {
    csrf_token: String,
    confirm: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /orgs/{slug}/roles/{role_id}/delete`.
pub async fn role_delete(
    State(state): State<AppState>,
    Path((slug, role)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = async {
        let role = role_id(&role)?;
        state.orgs.delete_role(Actor::of(&u), Some(&org.slug), role).await.map(|_| "role_deleted")
    }
    .await;
    answer(&state, &headers, &s, &u, &org, Section::Roles, r).await
}

// ---------------------------------------------------------------- domains

pub async fn domains(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::Domains).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DomainForm {
    csrf_token: String,
    domain: String,
}

/// `POST /orgs/{slug}/domains`: claims a domain (the page then shows the TXT record to publish).
pub async fn domain_add(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<DomainForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.orgs.add_domain(Actor::of(&u), &org.slug, &f.domain).await.map(|_| "domain_added");
    answer(&state, &headers, &s, &u, &org, Section::Domains, r).await
}

/// `POST /orgs/{slug}/domains/verify`: checks the TXT record now.
pub async fn domain_verify(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<DomainForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.orgs.verify_domain(Actor::of(&u), &org.slug, &f.domain).await.map(|d| {
        if d.verified() {
            "domain_verified"
        } else {
            "domain_pending"
        }
    });
    answer(&state, &headers, &s, &u, &org, Section::Domains, r).await
}

/// `POST /orgs/{slug}/domains/remove`.
pub async fn domain_remove(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<DomainForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.orgs.remove_domain(Actor::of(&u), &org.slug, &f.domain).await.map(|_| "domain_removed");
    answer(&state, &headers, &s, &u, &org, Section::Domains, r).await
}

mod devkeys;
mod settings;
mod sso;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;

pub use devkeys::{devkey_create, devkey_delete, devkey_reset, devkeys};
pub use settings::{delete, logo_remove, logo_upload, settings, settings_save};
pub use sso::{
    sso, sso_create, sso_create_saml, sso_delete, sso_edit, sso_groups, sso_orgs, sso_test, sso_test_result,
};
mod webhooks;
pub use webhooks::{webhook_create, webhook_delete, webhook_redeliver, webhook_rotate, webhooks};
