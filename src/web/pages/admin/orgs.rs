//! `GET /admin/orgs`: every organization, each linking to its own pages (`/orgs/{slug}`),
//! where a platform admin runs it like its admins do.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::json;

use super::{base_ctx, page, page_ui, Section};
use crate::orgs::Actor;
use crate::web::error::WebError;
use crate::web::pages::orgs::web_error;
use crate::web::state::AppState;

pub async fn list(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = platform_admin!(state, headers, "/admin/orgs");
    let ui = page_ui(&headers, &uri, &u);
    let mut orgs: Vec<_> =
        state.orgs.list(Actor::Platform).await.map_err(web_error)?.into_iter().map(|m| m.org).collect();
    orgs.sort_by_key(|o| o.name.to_lowercase());
    let mut ctx = base_ctx(&state, &ui, &s, Section::Orgs, None);
    ctx["orgs"] = orgs
        .iter()
        .map(|o| {
            json!({
                "slug": o.slug, "name": o.name, "require_sso": o.require_sso, "mfa_required": o.mfa_required,
                "created": o.created_at.display_utc(),
            })
        })
        .collect();
    page(&state, &ui, StatusCode::OK, "admin_orgs.html", &ctx)
}
