//! The settings section of an organization (`/orgs/{slug}/settings`): name and policies, the
//! branding (logo upload and removal), and the organization's deletion. Same conventions as the
//! other sections.

use super::*;

pub async fn settings(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> Result<Response, WebError> {
    show_section(state, headers, uri, slug, q, Section::Settings).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SettingsForm {
    csrf_token: String,
    name: String,
    require_sso: Option<String>,
    mfa_required: Option<String>,
    accent_color: String,
}

/// `POST /orgs/{slug}/settings`: name, policies, accent colour (empty: none).
pub async fn settings_save(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<SettingsForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let checked = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty() && v != "off" && v != "false");
    let update = OrgSettingsUpdate {
        name: Some(f.name.clone()),
        slug: None,
        require_sso: Some(checked(&f.require_sso)),
        mfa_required: Some(checked(&f.mfa_required)),
        accent_color: Some(f.accent_color.clone()),
    };
    match state.orgs.update_settings(Actor::of(&u), &org.slug, update).await {
        Ok(after) => answer(&state, &headers, &s, &u, &after, Section::Settings, Ok("settings_saved")).await,
        Err(e) => answer(&state, &headers, &s, &u, &org, Section::Settings, Err(e)).await,
    }
}

fn multipart_error(e: MultipartError) -> WebError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        WebError::PayloadTooLarge
    } else {
        WebError::BadRequest("The form could not be read.".into())
    }
}

/// `POST /orgs/{slug}/logo` (multipart: `csrf_token`, file `logo`): PNG, JPEG, GIF or WebP by
/// content; SVG and anything else refused.
pub async fn logo_upload(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let mut mp =
        multipart.map_err(|_| WebError::UnsupportedMediaType("Send the form as multipart/form-data.".into()))?;
    let (mut csrf, mut logo) = (String::new(), None);
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("csrf_token") if csrf.is_empty() => csrf = field.text().await.map_err(multipart_error)?,
            Some("logo") if logo.is_none() => logo = Some(field.bytes().await.map_err(multipart_error)?),
            _ => {}
        }
    }
    let (s, u) = posted_by_user!(state, headers, "/orgs", &csrf);
    let org = admin_of(&state, &u, &slug).await?;
    let bytes = logo.unwrap_or_default();
    let r = state.orgs.set_logo(Actor::of(&u), &org.slug, Some(&bytes)).await.map(|_| "logo_saved");
    answer(&state, &headers, &s, &u, &org, Section::Settings, r).await
}

/// `POST /orgs/{slug}/logo/remove`.
pub async fn logo_remove(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<CsrfForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    let r = state.orgs.set_logo(Actor::of(&u), &org.slug, None).await.map(|_| "logo_removed");
    answer(&state, &headers, &s, &u, &org, Section::Settings, r).await
}

/// `POST /orgs/{slug}/delete`: owners only, the slug typed again; then to `/orgs`.
pub async fn delete(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    form: FormResult<DeleteForm>,
) -> Result<Response, WebError> {
    let Form(f) = form?;
    let (s, u) = posted_by_user!(state, headers, "/orgs", &f.csrf_token);
    let org = admin_of(&state, &u, &slug).await?;
    match state.orgs.delete(Actor::of(&u), &org.slug, &f.confirm).await {
        Ok(_) => Ok(Redirect::to("/orgs?notice=deleted").into_response()),
        Err(e) => answer(&state, &headers, &s, &u, &org, Section::Settings, Err(e)).await,
    }
}
