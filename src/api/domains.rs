//! An organization's domains.
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use utoipa::OpenApi;

use super::*;
use crate::web::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/orgs/{org}/domains", get(list_domains))
        .route("/orgs/{org}/domains/{domain}", put(put_domain).delete(delete_domain))
        .route("/orgs/{org}/domains/{domain}/verify", axum::routing::post(verify_domain))
}

#[derive(OpenApi)]
#[openapi(paths(list_domains, put_domain, delete_domain, verify_domain), components(schemas(DomainWire)), tags((name = "domains")))]
pub(super) struct Doc;

#[utoipa::path(get, path = "/api/v1/orgs/{org}/domains", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug")),
    responses((status = 200, body = Vec<DomainWire>, description = "The domains the organization claims"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn list_domains(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path(org): Path<String>,
) -> ApiResult<Json<Vec<DomainWire>>> {
    let org = org_of(&state, &c, &org, false).await?;
    let (_, list) = state.orgs.domains(c.actor, &org.id.to_string()).await?;
    Ok(Json(list.iter().map(DomainWire::from).collect()))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/domains/{domain}", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain, e.g. acme.com")),
    responses((status = 200, body = DomainWire, description = "Claimed (idempotent): publish the TXT record, then verify"),
        (status = 400, body = Problem, content_type = "application/problem+json", description = "Malformed request (problem details)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)"), (status = 409, body = Problem, content_type = "application/problem+json", description = "Claimed or verified by another organization (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn put_domain(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, domain)): Path<(String, String)>,
) -> ApiResult<Json<DomainWire>> {
    let org = org_of(&state, &c, &org, true).await?;
    let org_ref = org.id.to_string();
    let (_, list) = state.orgs.domains(c.actor, &org_ref).await?;
    let wanted = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if let Some(d) = list.iter().find(|d| d.domain == wanted) {
        return Ok(Json(DomainWire::from(d)));
    }
    match state.orgs.add_domain(c.actor, &org_ref, &domain).await {
        Ok((_, d)) => Ok(Json(DomainWire::from(&d))),
        Err(OrgError::DomainClaimed(_) | OrgError::DomainTaken(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            "this domain is claimed or verified by another organization",
        )),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/domains/{domain}", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain, e.g. acme.com")),
    responses((status = 204, description = "Not claimed any more (whether or not it was)"), (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn delete_domain(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, domain)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let org = org_of(&state, &c, &org, true).await?;
    match state.orgs.remove_domain(c.actor, &org.id.to_string(), &domain).await {
        Ok(()) | Err(OrgError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/domains/{domain}/verify", tag = "domains",
    params(("org" = String, Path, description = "The organization's id or slug"), ("domain" = String, Path, description = "The domain, e.g. acme.com")),
    responses((status = 200, body = DomainWire, description = "The claim after a check of its TXT record now (verified, or why not)"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No valid developer key (problem details)"), (status = 403, body = Problem, content_type = "application/problem+json", description = "Not allowed for this key (problem details)"), (status = 404, body = Problem, content_type = "application/problem+json", description = "Nothing there for this key: unknown, or another organization's (problem details)")),
    security(("basic" = []), ("signature" = []), ("session" = [])))]
async fn verify_domain(
    State(state): State<AppState>,
    Extension(c): Extension<Caller>,
    Path((org, domain)): Path<(String, String)>,
) -> ApiResult<Json<DomainWire>> {
    let org = org_of(&state, &c, &org, true).await?;
    let d = state.orgs.verify_domain(c.actor, &org.id.to_string(), &domain).await?;
    Ok(Json(DomainWire::from(&d)))
}
