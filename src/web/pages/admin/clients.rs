//! `GET /admin/clients`: every registered client (id, name, organization, grant types,
//! redirect URIs, how it authenticates). Clients are registered and changed with the CLI.

use std::collections::HashMap;

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
    let (s, u) = platform_admin!(state, headers, "/admin/clients");
    let ui = page_ui(&headers, &uri, &u);
    let orgs: HashMap<_, _> =
        state.orgs.list(Actor::Platform).await.map_err(web_error)?.into_iter().map(|m| (m.org.id, m.org)).collect();
    let clients = state.oidc.all_clients().await?;
    let mut ctx = base_ctx(&state, &ui, &s, Section::Clients, None);
    ctx["clients"] = clients
        .iter()
        .map(|c| {
            let org = c.org_id.and_then(|id| orgs.get(&id)).map(|o| json!({"slug": o.slug, "name": o.name}));
            json!({
                "client_id": c.client_id.as_str(), "name": c.name, "org": org,
                "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
                "redirect_uris": c.redirect_uris, "auth_method": c.token_endpoint_auth_method.as_str(),
                "first_party": c.first_party, "created": c.created_at.display_utc(),
            })
        })
        .collect();
    page(&state, &ui, StatusCode::OK, "admin_clients.html", &ctx)
}
