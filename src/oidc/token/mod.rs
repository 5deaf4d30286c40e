//! Token endpoint (RFC 6749 §3.2, OIDC Core §3.1.3): authenticate the client, then dispatch on
//! the parsed grant type to one handler per grant.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use serde::Deserialize;

use super::client_auth::PresentedCredentials;
use super::error::OAuthError;
use super::tokens::TokenResponse;
use super::OidcProvider;
use crate::domain::GrantType;

/// Token request parameters (all grants), as posted.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

impl TokenParams {
    pub fn credentials(&self, basic: Option<(String, String)>) -> PresentedCredentials {
        PresentedCredentials {
            basic,
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            client_assertion_type: self.client_assertion_type.clone(),
            client_assertion: self.client_assertion.clone(),
        }
    }
}

impl OidcProvider {
    pub async fn token(&self, p: &TokenParams, creds: PresentedCredentials) -> Result<TokenResponse, OAuthError> {
        let grant_type = match p.grant_type.as_deref().filter(|g| !g.is_empty()) {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some(g) => g
                .parse::<GrantType>()
                .map_err(|_| OAuthError::unsupported_grant_type(format!("grant_type {g:?} is not supported")))?,
        };
        let client = self.authenticate_client(&creds).await?;
        if !client.allows(grant_type) {
            return Err(OAuthError::unauthorized_client(format!("this client may not use {grant_type}")));
        }
        match grant_type {
            GrantType::AuthorizationCode => self.grant_authorization_code(&client, p).await,
            GrantType::RefreshToken => self.grant_refresh_token(&client, p).await,
            GrantType::ClientCredentials => self.grant_client_credentials(&client, p).await,
        }
    }
}
