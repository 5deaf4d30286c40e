//! `GET /admin/connections`: every SSO connection (OIDC or SAML identity provider): its type,
//! the organizations it serves (each linking to that organization's SSO page, where it is
//! edited), whether it is in use, and for SAML metadata given by URL, how its daily refresh went.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use super::{base_ctx, page, page_ui, Section};
use crate::domain::federation::ConnectionConfig;
use crate::federation::FederationError;
use crate::orgs::Actor;
use crate::web::error::WebError;
use crate::web::pages::orgs::web_error;
use crate::web::state::AppState;

fn federation_error(e: FederationError) -> WebError {
    match e {
        FederationError::NotFound => WebError::NotFound,
        FederationError::Org(o) => web_error(o),
        FederationError::Store(s) => s.into(),
        other => WebError::Internal(anyhow::anyhow!("{other}")),
    }
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Response, WebError> {
    let (s, u) = platform_admin!(state, headers, "/admin/connections");
    let ui = page_ui(&headers, &uri, &u);
    let orgs: HashMap<_, _> =
        state.orgs.list(Actor::Platform).await.map_err(web_error)?.into_iter().map(|m| (m.org.id, m.org)).collect();
    let mut list = state.federation.connections().await.map_err(federation_error)?;
    list.sort_by_key(|c| c.name.to_lowercase());
    let mut ctx = base_ctx(&state, &ui, &s, Section::Connections, None);
    ctx["connections"] = list
        .iter()
        .map(|c| {
            let served: Vec<Value> =
                c.orgs.iter().filter_map(|id| orgs.get(id)).map(|o| json!({"slug": o.slug, "name": o.name})).collect();
            // How its metadata is kept: `static` (given once, or OIDC discovery at each
            // sign-in), `ok` (refreshed from its URL) or `failed` (the last good one in use).
            let (issuer, metadata, refreshed, metadata_error) = match &c.config {
                ConnectionConfig::Oidc(o) => (o.issuer.clone(), "discovery", None, None),
                ConnectionConfig::Saml(x) => {
                    let state = match (&x.metadata_url, &x.metadata_error) {
                        (None, _) => "static",
                        (Some(_), Some(_)) => "failed",
                        (Some(_), None) if x.metadata_refreshed_at.is_some() => "ok",
                        (Some(_), None) => "pending",
                    };
                    (
                        x.idp_entity_id.clone(),
                        state,
                        x.metadata_refreshed_at.map(|t| t.display_utc()),
                        x.metadata_error.clone(),
                    )
                }
            };
            json!({
                "id": c.id.to_string(), "name": c.name, "type": c.config.kind().as_str(), "issuer": issuer,
                "orgs": served, "status": if c.orgs.is_empty() { "unused" } else { "active" },
                "metadata": metadata, "refreshed": refreshed, "metadata_error": metadata_error,
                "updated": c.updated_at.display_utc(),
            })
        })
        .collect();
    page(&state, &ui, StatusCode::OK, "admin_connections.html", &ctx)
}
