//! Browser pages: each file holds its handlers and the `Ctx` struct its template renders.

// First: its macros serve the modules below.
#[macro_use]
pub mod common;
pub mod account;
pub mod account_keys;
pub mod admin;
pub mod audit_log;
pub mod authorize;
pub mod branding;
pub mod end_session;
pub mod links;
pub mod login;
pub mod orgs;
pub mod register;
pub mod security;
pub mod sso;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::error::WebError;
use super::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(admin::router())
        .merge(audit_log::router())
        .route("/", get(account::root))
        .route("/login", get(login::show).post(login::submit))
        .route("/login/link", get(links::link_use).post(links::link_request))
        .route("/login/second-factor", get(security::step_show).post(security::step_submit))
        .route("/account/keys", get(account_keys::show).post(account_keys::create))
        .route("/account/keys/{key}/reset", post(account_keys::reset))
        .route("/account/keys/{key}/delete", post(account_keys::delete))
        .route("/account/security", get(security::show))
        .route("/account/security/totp", get(security::totp_show).post(security::totp_activate))
        .route("/account/security/factor/remove", post(security::factor_remove))
        .route("/account/security/factor/rename", post(security::factor_rename))
        .route("/account/security/passkey/options", post(security::passkey_options))
        .route("/account/security/passkey", post(security::passkey_register))
        .route("/login/second-factor/webauthn/options", post(security::step_webauthn_options))
        .route("/login/second-factor/webauthn", post(security::step_webauthn))
        .route("/login/passkey/options", post(security::passwordless_options))
        .route("/login/passkey", post(security::passwordless))
        .route("/account/security/recovery-codes", post(security::recovery_regenerate))
        .route("/logout", get(account::confirm_logout).post(account::logout))
        .route("/lang", get(crate::web::ui::switch))
        .route("/register", get(register::show).post(register::submit))
        .route("/register/verify", get(register::verify_show).post(register::verify))
        .route("/password/reset", get(links::reset_show).post(links::reset_request))
        .route("/password/reset/confirm", get(links::reset_confirm_show).post(links::reset_confirm))
        .route("/activate", get(links::activate_show).post(links::activate))
        .route("/invite", get(links::invite_show).post(links::invite_accept))
        .route("/account", get(account::show))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::change_password))
        .route("/account/email", get(account::email_show).post(account::email_start))
        .route("/account/email/{step}", post(account::email_action))
        .route("/account/phone", get(account::phone_show).post(account::phone_start))
        .route("/account/phone/verify", post(account::phone_verify))
        .route("/account/sessions", get(account::sessions_show))
        .route("/account/sessions/revoke", post(account::sessions_revoke))
        .route("/account/sessions/revoke-others", post(account::sessions_revoke_others))
        .route("/account/export", get(account::export))
        .route("/account/delete", get(account::delete_show).post(account::delete))
        .route("/account/consents/revoke", post(account::revoke_consent))
        .route(crate::oidc::paths::AUTHORIZE, get(authorize::authorize).post(authorize::authorize))
        .route("/authorize/resume", get(authorize::resume))
        .route("/authorize/consent", post(authorize::consent))
        .route("/authorize/select", post(authorize::select_account))
        .route("/authorize/org", post(authorize::choose_org))
        .route(crate::federation::OIDC_CALLBACK, get(sso::oidc_callback))
        .route("/sso/{id}", get(sso::start))
        .route("/saml/{id}/metadata", get(sso::saml_metadata))
        // A SAMLResponse over 512 KiB gets a 413 page from the handler; far larger bodies are
        // cut by the limit.
        .route(
            "/saml/{id}/acs",
            get(sso::saml_acs_get)
                .post(sso::saml_acs)
                .layer(axum::extract::DefaultBodyLimit::max(crate::federation::saml::MAX_ACS_BODY_BYTES)),
        )
        .route("/orgs/{slug}/logo", get(branding::logo))
        .route("/orgs/{slug}/brand.css", get(branding::brand_css))
        .route(crate::oidc::paths::END_SESSION, get(end_session::end_session).post(end_session::end_session))
        .route("/end_session/confirm", post(end_session::confirm))
        // The organization admin pages (orgs.rs); `GET /orgs/{slug}/logo` is branding's.
        .route("/orgs", get(orgs::list))
        .route("/orgs/{slug}", get(orgs::overview))
        .route("/orgs/{slug}/members", get(orgs::members))
        .route("/orgs/{slug}/members/invite", post(orgs::invite))
        .route("/orgs/{slug}/members/role", post(orgs::member_role))
        .route("/orgs/{slug}/members/remove", post(orgs::member_remove))
        .route("/orgs/{slug}/roles", get(orgs::roles).post(orgs::role_create))
        .route("/orgs/{slug}/roles/grant", post(orgs::role_grant))
        .route("/orgs/{slug}/roles/revoke", post(orgs::role_revoke))
        .route("/orgs/{slug}/roles/{role_id}/permissions", post(orgs::role_permissions))
        .route("/orgs/{slug}/roles/{role_id}/delete", post(orgs::role_delete))
        .route("/orgs/{slug}/domains", get(orgs::domains).post(orgs::domain_add))
        .route("/orgs/{slug}/sso", get(orgs::sso).post(orgs::sso_create))
        .route("/orgs/{slug}/sso/saml", post(orgs::sso_create_saml))
        .route("/orgs/{slug}/sso/delete", post(orgs::sso_delete))
        .route("/orgs/{slug}/sso/{id}/edit", post(orgs::sso_edit))
        .route("/orgs/{slug}/sso/{id}/groups", post(orgs::sso_groups))
        .route("/orgs/{slug}/sso/{id}/orgs", post(orgs::sso_orgs))
        .route("/orgs/{slug}/sso/{id}/test", get(orgs::sso_test))
        .route("/orgs/{slug}/webhooks", get(orgs::webhooks).post(orgs::webhook_create))
        .route("/orgs/{slug}/webhooks/redeliver", post(orgs::webhook_redeliver))
        .route("/orgs/{slug}/webhooks/{id}/rotate", post(orgs::webhook_rotate))
        .route("/orgs/{slug}/webhooks/{id}/delete", post(orgs::webhook_delete))
        .route("/orgs/{slug}/keys", get(orgs::devkeys).post(orgs::devkey_create))
        .route("/orgs/{slug}/keys/{key}/reset", post(orgs::devkey_reset))
        .route("/orgs/{slug}/keys/{key}/delete", post(orgs::devkey_delete))
        .route("/orgs/{slug}/domains/verify", post(orgs::domain_verify))
        .route("/orgs/{slug}/domains/remove", post(orgs::domain_remove))
        .route("/orgs/{slug}/settings", get(orgs::settings).post(orgs::settings_save))
        .route("/orgs/{slug}/logo", post(orgs::logo_upload).layer(axum::extract::DefaultBodyLimit::max(150 * 1024)))
        .route("/orgs/{slug}/logo/remove", post(orgs::logo_remove))
        .route("/orgs/{slug}/delete", post(orgs::delete))
        .route("/static/guichet.css", get(stylesheet))
        .route("/static/form_post.js", get(form_post_script))
        .route("/static/strength.js", get(|| script(STRENGTH_JS)))
        .route("/static/pow.js", get(|| script(POW_JS)))
        .route("/static/webauthn.js", get(|| script(WEBAUTHN_JS)))
        .route("/static/copy.js", get(|| script(COPY_JS)))
}

const CSS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/static/guichet.css"));

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        CSS,
    )
        .into_response()
}

const FORM_POST_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/static/form_post.js"));

async fn form_post_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        FORM_POST_JS,
    )
        .into_response()
}

const STRENGTH_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/static/strength.js"));
const WEBAUTHN_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/static/webauthn.js"));
const POW_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/static/pow.js"));
const COPY_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/static/copy.js"));

async fn script(src: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        src,
    )
        .into_response()
}

/// Request parameters from a query string or form body, refusing any parameter sent twice
/// (RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once").
pub fn unique_params<T: serde::de::DeserializeOwned>(raw: &[u8]) -> Result<T, WebError> {
    let mut map = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(raw).into_owned() {
        if map.insert(k.clone(), serde_json::Value::String(v)).is_some() {
            return Err(WebError::BadRequest(format!("The parameter {k:?} is sent more than once.")));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|_| WebError::BadRequest("A parameter of the request is malformed.".into()))
}

/// The parameters of a GET (query) or POST (form body) request.
pub fn request_params<T: serde::de::DeserializeOwned>(
    method: &axum::http::Method,
    query: Option<&str>,
    body: &[u8],
) -> Result<T, WebError> {
    if method == axum::http::Method::POST {
        unique_params(body)
    } else {
        unique_params(query.unwrap_or("").as_bytes())
    }
}

/// A `return_to` we may redirect to after sign-in: a local path only (no scheme, no host, no
/// `//` or `/\` tricks), else `/`.
pub fn safe_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && p.len() <= 2048
                && !p.chars().any(|c| c.is_control() || c == '\\') =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;

    #[test]
    fn return_to_stays_local() {
        assert_eq!(safe_return_to(Some("/account?x=1")), "/account?x=1");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", "/a\nb", ""] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
