//! The single sign-on section of an organization (`/orgs/{slug}/sso`): its connections, connecting
//! an OpenID Provider or a SAML IdP (metadata pasted, by URL, or entityID / SSO URL / certificate
//! by hand), deleting one, and testing it. Same conventions as the other sections.

use super::*;

pub async fn sso(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::Sso).await
}

/// What the SSO page lists: the organization's connections (with what an admin may edit), the
/// roles a group may grant, the other organizations the admin runs.
pub(super) async fn sso_context(state: &AppState, u: &User, org: &Org, ctx: &mut Value) -> Result<(), WebError> {
    let actor = Actor::of(u);
    let slug = org.slug.as_str();
    let list = state.federation.connections_for_org(actor, slug).await.map_err(sso_error)?;
    let roles = state.orgs.roles(actor, Some(slug)).await.map_err(web_error)?;
    let label_of = |id: &RoleId| roles.iter().find(|r| r.id == *id).map(role_label);
    let mut others = Vec::new();
    for m in state.orgs.list(actor).await.map_err(web_error)? {
        if m.org.id != org.id && (u.is_admin || m.role.administers()) {
            others.push(m.org);
        }
    }
    ctx["roles"] = roles.iter().map(|r| json!({"id": r.id, "label": role_label(r)})).collect();
    ctx["other_orgs"] = others.iter().map(|o| json!({"slug": o.slug, "name": o.name})).collect();
    ctx["redirect_uri"] = json!(state.federation.oidc_redirect_uri());
    ctx["connections"] = list
        .iter()
        .map(|c| {
            let issuer = match &c.config {
                crate::domain::federation::ConnectionConfig::Oidc(o) => o.issuer.clone(),
                crate::domain::federation::ConnectionConfig::Saml(s) => s.idp_entity_id.clone(),
            };
            let saml = matches!(c.config, crate::domain::federation::ConnectionConfig::Saml(_));
            let (email_claim, name_claim, groups_claim) = crate::federation::mapping_view(&c.config);
            let want_signed =
                matches!(&c.config, crate::domain::federation::ConnectionConfig::Saml(x) if x.want_assertions_signed);
            let groups: Vec<Value> = c
                .config
                .group_roles()
                .iter()
                .filter_map(|m| label_of(&m.role).map(|l| json!({"group": m.group, "role": l})))
                .collect();
            let served: Vec<Value> =
                others.iter().map(|o| json!({"slug": o.slug, "name": o.name, "on": c.orgs.contains(&o.id)})).collect();
            let editable = u.is_admin || c.orgs.iter().all(|o| *o == org.id || others.iter().any(|x| x.id == *o));
            json!({
                "editable": editable,
                "email_claim": email_claim, "name_claim": name_claim, "groups_claim": groups_claim,
                "want_assertions_signed": want_signed, "group_roles": groups, "served": served,
                "id": c.id, "name": c.name, "type": c.config.kind().as_str(), "issuer": issuer,
                "saml": saml,
                "sp_entity_id": if saml { state.federation.sp_entity_id(c.id) } else { String::new() },
                "acs_url": if saml { state.federation.acs_url(c.id) } else { String::new() },
                "login_url": state.federation.login_url(c.id), "org_count": c.orgs.len().to_string(),
                "shared": c.orgs.len() > 1,
            })
        })
        .collect();
    Ok(())
}

/// A federation error as a page error (outside a form).
fn sso_error(e: crate::federation::FederationError) -> WebError {
    use crate::federation::FederationError as F;
    match e {
        F::NotFound | F::Org(OrgError::NotFound) => WebError::NotFound,
        F::Org(o) => web_error(o),
        F::Forbidden => WebError::page(StatusCode::FORBIDDEN, "orgs.sso.error.shared"),
        F::Store(s) => s.into(),
        other => WebError::Internal(anyhow::anyhow!("{other}")),
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConnectionForm {
    csrf_token: String,
    name: String,
    issuer: String,
    client_id: String,
    client_secret: crate::crypto::SecretString,
}

/// `POST /orgs/{slug}/sso`: an org admin connects the organization's OpenID Provider.
pub async fn sso_create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<ConnectionForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state
        .federation
        .create_oidc_for_org(Actor::of(&u), &org.slug, Some(&f.name), &f.issuer, &f.client_id, f.client_secret.expose())
        .await;
    sso_answer(&state, &headers, &s, &u, &org, r.map(|_| "connection_created"), false).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SamlConnectionForm {
    csrf_token: String,
    name: String,
    metadata_xml: String,
    metadata_url: String,
    entity_id: String,
    sso_url: String,
    certificate: String,
    want_assertions_signed: Option<String>,
}

/// `POST /orgs/{slug}/sso/saml`: an org admin connects the organization's SAML IdP, from its
/// metadata (pasted or by URL) or by hand.
pub async fn sso_create_saml(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<SamlConnectionForm>,
) -> Result<Response, WebError> {
    use crate::federation::saml::{SamlOptions, SamlSource};
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let source = if !f.metadata_xml.trim().is_empty() {
        Some(SamlSource::Xml(f.metadata_xml))
    } else if !f.metadata_url.trim().is_empty() {
        Some(SamlSource::Url(f.metadata_url))
    } else if !f.entity_id.trim().is_empty() {
        Some(SamlSource::Manual { entity_id: f.entity_id, sso_url: f.sso_url, certificate: f.certificate })
    } else {
        None
    };
    let r = match source {
        Some(source) => {
            let opts = SamlOptions { want_assertions_signed: f.want_assertions_signed.is_some(), ..Default::default() };
            state.federation.create_saml_for_org(Actor::of(&u), &org.slug, Some(&f.name), source, opts).await
        }
        None => Err(crate::federation::FederationError::Invalid("no metadata".into())),
    };
    sso_answer(&state, &headers, &s, &u, &org, r.map(|_| "connection_created"), true).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConnectionEditForm {
    csrf_token: String,
    name: String,
    email_claim: String,
    name_claim: String,
    groups_claim: String,
    want_assertions_signed: Option<String>,
}

/// `POST /orgs/{slug}/sso/{id}/edit`: the connection's name, the claims or attributes it reads,
/// and (SAML) whether assertions must be signed.
pub async fn sso_edit(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<ConnectionEditForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let saml = matches!(
        state.federation.connection(&id).await.map(|c| c.config),
        Ok(crate::domain::federation::ConnectionConfig::Saml(_))
    );
    let edit = crate::federation::ConnectionEdit {
        name: Some(f.name),
        email: Some(f.email_claim),
        display_name: Some(f.name_claim),
        groups: Some(f.groups_claim),
        want_assertions_signed: saml.then_some(f.want_assertions_signed.is_some()),
    };
    let r = state.federation.edit_for_org(Actor::of(&u), &org.slug, &id, edit).await;
    sso_answer(&state, &headers, &s, &u, &org, r.map(|_| "connection_updated"), saml).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GroupMapForm {
    csrf_token: String,
    group: String,
    role: String,
    op: String,
}

/// `POST /orgs/{slug}/sso/{id}/groups`: an IdP group grants a role of the organization
/// (`op=map`), or none any more (`op=unmap`).
pub async fn sso_groups(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<GroupMapForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let role = (f.op != "unmap").then_some(f.role.as_str());
    let r = state.federation.map_group_for_org(Actor::of(&u), &org.slug, &id, &f.group, role).await;
    sso_answer(&state, &headers, &s, &u, &org, r.map(|_| "connection_updated"), false).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConnectionOrgsForm {
    csrf_token: String,
    org: String,
    op: String,
}

/// `POST /orgs/{slug}/sso/{id}/orgs`: the connection also serves another organization the admin
/// runs (`op=add`), or not any more (`op=remove`).
pub async fn sso_orgs(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
    form: FormResult<ConnectionOrgsForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.federation.associate_for_org(Actor::of(&u), &org.slug, &id, &f.org, f.op != "remove").await;
    sso_answer(&state, &headers, &s, &u, &org, r.map(|_| "connection_updated"), false).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ConnectionDeleteForm {
    csrf_token: String,
    id: String,
    confirm: String,
}

/// `GET /orgs/{slug}/sso/{id}/test`: a real sign-in at the provider, whose result is shown
/// (attributes received, admission, the roles it would grant) without signing anyone in.
pub async fn sso_test(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let back = format!("/orgs/{}/sso", url::form_urlencoded::byte_serialize(slug.as_bytes()).collect::<String>());
    let (s, u) = signed_in_or_login!(state, headers, &back);
    let org = admin_of(&state, &u, &slug).await?;
    let url = state.federation.begin_test(Actor::of(&u), &org.slug, &id, &s.data.browser).await.map_err(sso_error)?;
    Ok(Redirect::to(&url).into_response())
}

/// The result of a connection test (the callback renders it for the admin who started it).
pub async fn sso_test_result(
    state: &AppState,
    headers: &HeaderMap,
    session: &Session,
    report: &crate::federation::oidc::TestReport,
) -> Result<Response, WebError> {
    let Some(su) = session.data.user.as_ref() else { return Err(WebError::NotFound) };
    let u = state.accounts.find(su.id).await?.ok_or(WebError::NotFound)?;
    let org = state.orgs.org(report.test_for).await.map_err(web_error)?.ok_or(WebError::NotFound)?;
    let org = admin_of(state, &u, &org.slug).await?;
    let ui = ui(headers, &Uri::from_static("/orgs"), Some(&u)).branded(Some(&org));
    let ctx = json!({
        "title": format!("{} · {}", ui.t(&state.templates, "orgs.sso.test_title"), org.name),
        "org": org_json(&org), "section": "sso", "report": report,
        "groups": report.groups.join(", "), "roles": report.roles.join(", "),
    });
    render(state, &ui, StatusCode::OK, "org_sso_test.html", &ctx)
}

/// `POST /orgs/{slug}/sso/delete`: deletes a connection of the organization (its name typed again).
pub async fn sso_delete(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<ConnectionDeleteForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.federation.delete_for_org(Actor::of(&u), &org.slug, &f.id, &f.confirm).await;
    sso_answer(&state, &headers, &s, &u, &org, r.map(|_| "connection_deleted"), false).await
}

async fn sso_answer(
    state: &AppState,
    headers: &HeaderMap,
    s: &Session,
    u: &User,
    org: &Org,
    outcome: Result<&'static str, crate::federation::FederationError>,
    saml: bool,
) -> Result<Response, WebError> {
    use crate::federation::FederationError as F;
    let e = match outcome {
        Ok(notice) => return Ok(Redirect::to(&format!("{}?notice={notice}", Section::Sso.url(org))).into_response()),
        Err(e) => e,
    };
    let (status, key) = match &e {
        F::Invalid(m) if m == "confirm" => (StatusCode::BAD_REQUEST, "orgs.sso.error.confirm"),
        F::Invalid(_) if saml => (StatusCode::BAD_REQUEST, "orgs.sso.error.saml_invalid"),
        F::Upstream(_) if saml => (StatusCode::BAD_REQUEST, "orgs.sso.error.metadata_fetch"),
        F::Invalid(_) => (StatusCode::BAD_REQUEST, "orgs.sso.error.invalid"),
        F::Upstream(_) => (StatusCode::BAD_REQUEST, "orgs.sso.error.discovery"),
        F::Forbidden => (StatusCode::FORBIDDEN, "orgs.sso.error.shared"),
        _ => return Err(sso_error(e)),
    };
    tracing::info!(org = %org.id, error = %e, "connection form refused");
    let lang = ui(headers, &Uri::from_static("/orgs"), Some(u)).lang;
    let message = state.templates.t(lang, key).to_owned();
    section_page(state, headers, None, s, u, org, Section::Sso, status, None, Some(message)).await
}
