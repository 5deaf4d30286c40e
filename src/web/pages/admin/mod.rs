//! The platform admin console (`/admin`): the dashboard (`dashboard.rs`: counts and a chart of
//! sign-ins and failures per day, drawn server-side by `chart.rs`), the accounts (`users.rs`:
//! search, details, suspend/resume, reset of factors, end of sessions, deletion), and lists of
//! every organization, client, connection and webhook (`orgs.rs`, `clients.rs`,
//! `connections.rs`, `webhooks.rs`) that link to the organization pages for the details. The
//! audit log (`/admin/audit`) is linked from the navigation.
//!
//! Platform admins only (`User::is_admin`): anyone else signed in gets 404 on every page and
//! every form (the console's existence is not given away), and an anonymous browser the
//! sign-in redirect, like every page. Forms carry the CSRF token and need a recent sign-in
//! (`accounts.recent_auth_secs`), as the account console's sensitive changes do; the services
//! write the audit entries. Forms post, then redirect with a notice (POST-redirect-GET).

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::common::{render, ui};
use crate::domain::User;
use crate::web::error::WebError;
use crate::web::session::Session;
use crate::web::state::AppState;
use crate::web::templates::Ui;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/users", get(users::list))
        .route("/admin/users/{id}", get(users::show))
        .route("/admin/users/{id}/{action}", post(users::action))
        .route("/admin/orgs", get(orgs::list))
        .route("/admin/clients", get(clients::list))
        .route("/admin/connections", get(connections::list))
        .route("/admin/webhooks", get(webhooks::list))
}

/// The signed-in platform admin of a console page: anyone else signed in gets 404; an
/// anonymous browser goes to the sign-in page, then back to `$back`.
macro_rules! platform_admin {
    ($state:expr, $headers:expr, $back:expr) => {{
        let (s, u) = signed_in_or_login!($state, $headers, $back);
        if !u.is_admin {
            return Err(WebError::NotFound);
        }
        (s, u)
    }};
}

// After the macros: the pages below use them.
pub mod chart;
mod clients;
mod connections;
mod dashboard;
mod orgs;
mod users;
mod webhooks;

#[cfg(test)]
mod tests;

/// The console's sections (the navigation marks the current one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Dashboard,
    Users,
    Orgs,
    Clients,
    Connections,
    Webhooks,
}

impl Section {
    fn name(self) -> &'static str {
        match self {
            Section::Dashboard => "dashboard",
            Section::Users => "users",
            Section::Orgs => "orgs",
            Section::Clients => "clients",
            Section::Connections => "connections",
            Section::Webhooks => "webhooks",
        }
    }

    fn title_key(self) -> &'static str {
        match self {
            Section::Dashboard => "admin.nav.dashboard",
            Section::Users => "admin.nav.users",
            Section::Orgs => "admin.nav.orgs",
            Section::Clients => "admin.nav.clients",
            Section::Connections => "admin.nav.connections",
            Section::Webhooks => "admin.nav.webhooks",
        }
    }
}

/// The notices a redirect may ask for (`?notice=`): only these, never a key from the query.
const NOTICES: &[&str] = &["suspended", "resumed", "factors_reset", "sessions_revoked", "deleted"];

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct NoticeQuery {
    notice: Option<String>,
}

/// The notice of `?notice=` in the page's language, if it is one of [`NOTICES`].
fn notice_of(state: &AppState, ui: &Ui, query: Option<&str>) -> Option<String> {
    let q: NoticeQuery = super::unique_params(query.unwrap_or("").as_bytes()).unwrap_or_default();
    q.notice
        .filter(|n| NOTICES.contains(&n.as_str()))
        .map(|n| state.templates.t(ui.lang, &format!("admin.notice.{n}")).to_owned())
}

/// What every console page gets: its title, section, the CSRF token and the notice.
fn base_ctx(state: &AppState, ui: &Ui, s: &Session, section: Section, notice: Option<String>) -> Value {
    json!({
        "title": format!("{} · {}", ui.t(&state.templates, section.title_key()), ui.t(&state.templates, "admin.title")),
        "admin": true, "section": section.name(), "csrf_token": s.data.csrf, "notice": notice, "error": null,
    })
}

/// The page's language and place for `u`.
fn page_ui(headers: &HeaderMap, uri: &Uri, u: &User) -> Ui {
    ui(headers, uri, Some(u))
}

fn page(state: &AppState, ui: &Ui, status: StatusCode, template: &str, ctx: &Value) -> Result<Response, WebError> {
    render(state, ui, status, template, ctx)
}
