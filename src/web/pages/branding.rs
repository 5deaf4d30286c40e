//! An organization's branding, served by Guichet itself (no third-party fetch, no inline
//! style under the CSP): `GET /orgs/{slug}/logo` (the uploaded image, its type judged by content
//! at upload) and `GET /orgs/{slug}/brand.css` (the accent colour as a CSS variable). Public:
//! sign-in pages show them before anyone is signed in. URLs carry a version (`?v=`), so both are
//! cached for a day.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::web::error::WebError;
use crate::web::state::AppState;

async fn org(state: &AppState, slug: &str) -> Result<crate::domain::org::Org, WebError> {
    match state.orgs.find(slug).await {
        Ok(Some(o)) if o.slug == slug => Ok(o),
        Ok(_) => Err(WebError::NotFound),
        Err(crate::orgs::OrgError::Store(e)) => Err(e.into()),
        Err(e) => Err(WebError::Internal(anyhow::anyhow!("{e}"))),
    }
}

fn cached(mut res: Response, content_type: &str) -> Response {
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    res
}

pub async fn logo(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, WebError> {
    let o = org(&state, &slug).await?;
    let Some((bytes, media)) = state.orgs.logo(o.id).await.map_err(|e| WebError::Internal(anyhow::anyhow!("{e}")))?
    else {
        return Err(WebError::NotFound);
    };
    // Only the types accepted at upload; anything else is never served as an image.
    if !matches!(media.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp") {
        return Err(WebError::NotFound);
    }
    let mut res = cached(bytes.into_response(), &media);
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    Ok(res)
}

pub async fn brand_css(State(state): State<AppState>, Path(slug): Path<String>) -> Result<Response, WebError> {
    let o = org(&state, &slug).await?;
    // The colour was validated (#rrggbb) when saved: nothing else reaches the stylesheet.
    let css = match o.accent_color.as_deref().and_then(|c| crate::domain::org::parse_accent_color(c).ok()) {
        Some(c) => format!(":root {{ --accent: {c}; }}\n"),
        None => String::new(),
    };
    Ok(cached(css.into_response(), "text/css; charset=utf-8"))
}
