//! OpenID Provider Metadata (OIDC Discovery 1.0 §3, RFC 8414): exactly what is implemented.

use serde_json::{json, Value};

use super::claims::supported_claim_names;
use super::paths;
use super::types::SUPPORTED_SCOPES;
use super::OidcProvider;
use crate::domain::{ClientAuthMethod, GrantType, SigningAlg};

impl OidcProvider {
    pub fn discovery(&self) -> Value {
        let algs: Vec<&str> = SigningAlg::ALL.iter().map(|a| a.as_str()).collect();
        let auth_methods: Vec<&str> = ClientAuthMethod::ALL.iter().map(|m| m.as_str()).collect();
        let authenticated_methods: Vec<&str> =
            ClientAuthMethod::ALL.iter().filter(|m| **m != ClientAuthMethod::None).map(|m| m.as_str()).collect();
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint(paths::AUTHORIZE),
            "token_endpoint": self.endpoint(paths::TOKEN),
            "userinfo_endpoint": self.endpoint(paths::USERINFO),
            "jwks_uri": self.endpoint(paths::JWKS),
            "end_session_endpoint": self.endpoint(paths::END_SESSION),
            "introspection_endpoint": self.endpoint(paths::INTROSPECT),
            "revocation_endpoint": self.endpoint(paths::REVOKE),
            "scopes_supported": SUPPORTED_SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "form_post"],
            "grant_types_supported": GrantType::ALL.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "userinfo_signing_alg_values_supported": [],
            "token_endpoint_auth_methods_supported": auth_methods,
            "token_endpoint_auth_signing_alg_values_supported": algs,
            "introspection_endpoint_auth_methods_supported": authenticated_methods,
            "introspection_endpoint_auth_signing_alg_values_supported": algs,
            "revocation_endpoint_auth_methods_supported": auth_methods,
            "revocation_endpoint_auth_signing_alg_values_supported": algs,
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": supported_claim_names(),
            "claim_types_supported": ["normal"],
            "claims_parameter_supported": true,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "require_request_uri_registration": false,
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "acr_values_supported": crate::domain::mfa::ACR_VALUES,
            "ui_locales_supported": ["en"],
            "claims_locales_supported": ["en"],
            "authorization_response_iss_parameter_supported": true,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "frontchannel_logout_supported": false,
        })
    }
}
