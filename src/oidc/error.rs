//! OAuth 2.0 / OIDC error codes (RFC 6749 §4.1.2.1 and §5.2, OIDC Core §3.1.2.6, RFC 6750 §3.1,
//! RFC 7009 §2.2.1). The description is the client-facing hint; details for operators go to
//! logs via `tracing`, never into the response.

#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
    /// What went wrong on our side (5xx only), for the one log line with the error id; never
    /// sent to the client.
    pub cause: Option<std::sync::Arc<anyhow::Error>>,
}

impl PartialEq for OAuthError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.description == other.description
    }
}

impl Eq for OAuthError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    AccountSelectionRequired,
    InvalidRequestObject,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    InsufficientScope,
    UnsupportedTokenType,
}

impl std::fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        use OAuthErrorCode::*;
        match self {
            InvalidRequest => "invalid_request",
            InvalidClient => "invalid_client",
            InvalidGrant => "invalid_grant",
            UnauthorizedClient => "unauthorized_client",
            UnsupportedGrantType => "unsupported_grant_type",
            UnsupportedResponseType => "unsupported_response_type",
            InvalidScope => "invalid_scope",
            AccessDenied => "access_denied",
            ServerError => "server_error",
            TemporarilyUnavailable => "temporarily_unavailable",
            LoginRequired => "login_required",
            ConsentRequired => "consent_required",
            InteractionRequired => "interaction_required",
            AccountSelectionRequired => "account_selection_required",
            InvalidRequestObject => "invalid_request_object",
            RequestNotSupported => "request_not_supported",
            RequestUriNotSupported => "request_uri_not_supported",
            InvalidToken => "invalid_token",
            InsufficientScope => "insufficient_scope",
            UnsupportedTokenType => "unsupported_token_type",
        }
    }

    /// HTTP status at the token, introspection, revocation and userinfo endpoints.
    pub fn status(self) -> u16 {
        use OAuthErrorCode::*;
        match self {
            InvalidClient | InvalidToken => 401,
            InsufficientScope => 403,
            ServerError => 500,
            TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

macro_rules! ctor {
    ($($fn:ident => $code:ident),* $(,)?) => {
        impl OAuthError {
            $(pub fn $fn(description: impl Into<String>) -> Self {
                Self { code: OAuthErrorCode::$code, description: description.into(), cause: None }
            })*
        }
    };
}

ctor! {
    invalid_request => InvalidRequest,
    invalid_client => InvalidClient,
    invalid_grant => InvalidGrant,
    unauthorized_client => UnauthorizedClient,
    unsupported_grant_type => UnsupportedGrantType,
    unsupported_response_type => UnsupportedResponseType,
    invalid_scope => InvalidScope,
    access_denied => AccessDenied,
    server_error => ServerError,
    temporarily_unavailable => TemporarilyUnavailable,
    login_required => LoginRequired,
    consent_required => ConsentRequired,
    interaction_required => InteractionRequired,
    request_not_supported => RequestNotSupported,
    request_uri_not_supported => RequestUriNotSupported,
    invalid_token => InvalidToken,
    insufficient_scope => InsufficientScope,
}

impl OAuthError {
    /// Attaches the cause of a 5xx (logged once, with the error id, by the HTTP layer).
    pub fn with_cause(mut self, cause: anyhow::Error) -> Self {
        self.cause = Some(std::sync::Arc::new(cause));
        self
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        let err = match e {
            crate::store::StoreError::Unavailable(_) => OAuthError::temporarily_unavailable("try again shortly"),
            _ => OAuthError::server_error("internal error"),
        };
        err.with_cause(anyhow::Error::new(e))
    }
}

impl From<crate::crypto::keys::KeyError> for OAuthError {
    fn from(e: crate::crypto::keys::KeyError) -> Self {
        OAuthError::server_error("internal error").with_cause(anyhow::Error::new(e).context("signing failed"))
    }
}

/// An `error_description` as RFC 6749 §5.2 allows it: printable ASCII except `"` and `\\`
/// (%x20-21 / %x23-5B / %x5D-7E). Anything else (echoed input included) becomes `?`, and the
/// text is cut at 300 characters.
pub fn safe_description(d: &str) -> String {
    d.chars().take(300).map(|c| if (' '..='~').contains(&c) && c != '"' && c != '\\' { c } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn descriptions_stay_in_the_rfc_6749_character_set() {
        assert_eq!(super::safe_description("bad \"x\"\n\u{e9}\\"), "bad ?x????");
        assert_eq!(super::safe_description(&"a".repeat(400)).len(), 300);
    }
}
