//! The one place errors become HTTP responses.
//!
//! Handlers return `Result<_, WebError>`. `IntoResponse` only records *what* to show (status,
//! a stable error code, a client-safe message, an error id for 5xx) in a response extension;
//! the `render_errors` middleware, which has the templates, turns it into an HTML page for
//! browsers or a JSON body for API clients, and logs 5xx causes. A 5xx never shows its cause.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::state::AppState;
use crate::auth::AuthError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A page error whose message is a catalogue key (shown in the user's language).
    #[error("{key}")]
    Page { status: StatusCode, key: &'static str },
    /// A refusal whose reason was logged under `error_id`: the page shows the id (for the
    /// administrator), never the reason.
    #[error("{key} ({error_id})")]
    Refused { status: StatusCode, key: &'static str, error_id: String },
    /// The form's CSRF token does not match the session's (or the request is cross-site).
    #[error("csrf")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("request body too slow")]
    RequestTimeout,
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: i64, message: String },
    #[error("{0}")]
    Unavailable(String),
    /// A backing store (database, Redis) cannot answer: 503 + Retry-After, cause logged.
    #[error("store unavailable: {0:#}")]
    StoreUnavailable(#[source] anyhow::Error),
    #[error("internal error: {0:#}")]
    Internal(#[source] anyhow::Error),
}

/// What the error middleware renders. Safe to show: built only from client-facing fields.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ErrorPayload {
    #[serde(skip)]
    pub status: u16,
    pub error: &'static str,
    pub error_description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// The catalogue key of the message, for pages in the user's language.
    #[serde(skip)]
    pub message_key: Option<&'static str>,
}

/// The cause of a 5xx, for the log only.
#[derive(Debug, Clone)]
pub struct ErrorCause(pub Arc<anyhow::Error>);

impl WebError {
    pub fn csrf() -> Self {
        WebError::Csrf
    }

    pub fn page(status: StatusCode, key: &'static str) -> Self {
        WebError::Page { status, key }
    }

    /// A refusal with a fresh error id; log the reason with [`WebError::error_id`].
    pub fn refused(status: StatusCode, key: &'static str) -> Self {
        WebError::Refused { status, key, error_id: new_error_id() }
    }

    pub fn error_id(&self) -> Option<&str> {
        match self {
            WebError::Refused { error_id, .. } => Some(error_id),
            _ => None,
        }
    }

    /// The catalogue key of the message, where there is one.
    fn message_key(&self) -> Option<&'static str> {
        Some(match self {
            WebError::Page { key, .. } | WebError::Refused { key, .. } => key,
            WebError::Csrf => "error.csrf",
            WebError::NotFound => "error.not_found",
            WebError::PayloadTooLarge => "error.too_large",
            WebError::StoreUnavailable(_) => "error.unavailable",
            WebError::Internal(_) => "error.internal",
            _ => return None,
        })
    }

    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            WebError::Page { status, key } | WebError::Refused { status, key, .. } => {
                (*status, "invalid_request", (*key).to_owned())
            }
            WebError::Csrf => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "This form has expired or did not come from this site. Go back, reload the page and try again.".into(),
            ),
            WebError::BadRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", m.clone()),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
            WebError::NotFound => (StatusCode::NOT_FOUND, "not_found", "There is nothing at this address.".into()),
            WebError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
            WebError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "The request body is too large.".into())
            }
            WebError::RequestTimeout => {
                (StatusCode::REQUEST_TIMEOUT, "invalid_request", "The request body did not arrive in time.".into())
            }
            WebError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "invalid_request", m.clone()),
            WebError::TooManyRequests { message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message.clone())
            }
            WebError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "temporarily_unavailable", m.clone()),
            WebError::StoreUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "The service is temporarily unavailable. Please try again in a moment.".into(),
            ),
            WebError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "Something went wrong on our side. Please try again; if it persists, quote the error id.".into(),
            ),
        }
    }
}

fn new_error_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        let message_key = self.message_key();
        let error_id = match &self {
            WebError::Refused { error_id, .. } => Some(error_id.clone()),
            _ => status.is_server_error().then(new_error_id),
        };
        let mut res = status.into_response();
        if let WebError::TooManyRequests { retry_after_secs, .. } = &self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(&1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
        }
        if let WebError::Internal(cause) | WebError::StoreUnavailable(cause) = self {
            res.extensions_mut().insert(ErrorCause(Arc::new(cause)));
        }
        res.extensions_mut().insert(ErrorPayload {
            status: status.as_u16(),
            error: code,
            error_description: message,
            error_id,
            message_key,
        });
        res
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => WebError::NotFound,
            // The constraint's name is for logs, never for clients.
            StoreError::Conflict { constraint } => {
                tracing::info!(constraint, "conflict");
                WebError::Conflict("This already exists.".into())
            }
            StoreError::Unavailable(e) => WebError::StoreUnavailable(e),
        }
    }
}

impl From<AuthError> for WebError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => s.into(),
            AuthError::Busy => {
                WebError::Unavailable("Too many sign-ins are being processed. Try again in a moment.".into())
            }
            AuthError::Internal(m) => WebError::Internal(anyhow::anyhow!(m)),
            other => WebError::BadRequest(other.to_string()),
        }
    }
}

impl From<FormRejection> for WebError {
    fn from(r: FormRejection) -> Self {
        match r {
            FormRejection::InvalidFormContentType(_) => {
                WebError::UnsupportedMediaType("Send the form as application/x-www-form-urlencoded.".into())
            }
            // Library wording (serde's, hyper's) never reaches the client.
            _ => WebError::BadRequest("The form could not be read: a field is repeated or malformed.".into()),
        }
    }
}

impl From<axum::extract::rejection::RawFormRejection> for WebError {
    fn from(_: axum::extract::rejection::RawFormRejection) -> Self {
        WebError::UnsupportedMediaType("Send the form as application/x-www-form-urlencoded.".into())
    }
}

impl From<tera::Error> for WebError {
    fn from(e: tera::Error) -> Self {
        WebError::Internal(anyhow::Error::new(e).context("template"))
    }
}

fn wants_html(req_accept: Option<&HeaderValue>) -> bool {
    req_accept.and_then(|v| v.to_str().ok()).map(|a| a.contains("text/html")).unwrap_or(false)
}

/// Renders [`ErrorPayload`]s (HTML for browsers, JSON otherwise) and logs 5xx causes.
pub async fn render_errors<F, Fut>(state: &AppState, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let html = wants_html(req.headers().get(header::ACCEPT));
    let ui = if html { Some(super::ui::ui_of_request(req.headers(), req.uri(), None)) } else { None };
    let mut res = next(req).await;
    let Some(payload) = res.extensions_mut().remove::<ErrorPayload>() else {
        return res;
    };
    if let Some(ErrorCause(cause)) = res.extensions_mut().remove::<ErrorCause>() {
        // The line carries the request id, as every line logged while a request runs.
        tracing::error!(error_id = payload.error_id.as_deref().unwrap_or(""), error = ?cause, "request failed");
    }
    let (mut parts, _) = res.into_parts();
    let body = if let Some(ui) = &ui {
        let title = StatusCode::from_u16(payload.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
        match state.templates.error_page(
            ui,
            payload.status,
            title,
            payload.message_key,
            &payload.error_description,
            payload.error_id.as_deref(),
        ) {
            Ok(page) => Html(page).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    } else {
        // A page error's description is its catalogue key: JSON clients get the English text.
        let mut payload = payload;
        if let Some(key) = payload.message_key.filter(|k| payload.error_description == *k) {
            payload.error_description = state.templates.t(crate::i18n::Lang::En, key).to_owned();
        }
        axum::Json(&payload).into_response()
    };
    let (bparts, body) = body.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        bparts.headers.get(header::CONTENT_TYPE).cloned().unwrap_or(HeaderValue::from_static("text/plain")),
    );
    parts.headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, body)
}
