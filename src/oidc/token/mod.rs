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
use crate::domain::{Client, Grant, GrantType, NewRefresh, UnixTime, User, UserId, UserStatus};
use crate::oidc::types::Scope;

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
    #[serde(flatten)]
    pub auth: PresentedCredentials,
}

impl OidcProvider {
    pub async fn token(&self, p: &TokenParams) -> Result<TokenResponse, OAuthError> {
        let grant_type = match p.grant_type.as_deref().filter(|g| !g.is_empty()) {
            None => return Err(OAuthError::invalid_request("grant_type is required")),
            Some(g) => g
                .parse::<GrantType>()
                .map_err(|_| OAuthError::unsupported_grant_type(format!("grant_type {g:?} is not supported")))?,
        };
        let client = self.authenticate_client(&p.auth).await?;
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

/// What a user grant (code or refresh) answers with.
pub(super) struct UserTokens<'a> {
    pub client: &'a Client,
    pub grant: &'a Grant,
    pub user: &'a User,
    /// Scope of this access token (may be narrower than the grant's on refresh).
    pub scope: &'a Scope,
    pub nonce: Option<&'a str>,
    /// Scope the new refresh token carries, if one is issued.
    pub refresh_scope: Option<&'a Scope>,
    pub now: UnixTime,
}

impl OidcProvider {
    /// The user behind a grant, if they may still sign in (suspended users get invalid_grant).
    pub(crate) async fn active_user(
        &self,
        user_id: Option<UserId>,
        err: fn(String) -> OAuthError,
    ) -> Result<User, OAuthError> {
        let id = user_id.ok_or_else(|| err("this authorization has no user".into()))?;
        self.stores
            .users
            .user_by_id(id)
            .await?
            .filter(|u| u.status == UserStatus::Active)
            .ok_or_else(|| err("the user can no longer sign in".into()))
    }

    /// `active_user` for a user read together with its grant (`refresh_grant`,
    /// `access_token_grant_user`): the same answers, without a statement of its own.
    pub(crate) fn active_user_of(
        grant: &Grant,
        user: Option<User>,
        err: fn(String) -> OAuthError,
    ) -> Result<User, OAuthError> {
        let id = grant.user_id.ok_or_else(|| err("this authorization has no user".into()))?;
        user.filter(|u| u.id == id && u.status == UserStatus::Active)
            .ok_or_else(|| err("the user can no longer sign in".into()))
    }

    /// A grant for an organization needs the user to be a member still (removing a member
    /// revokes their grants too; this covers a removal racing with the request).
    pub(super) async fn check_membership(&self, grant: &Grant, user: &User) -> Result<(), OAuthError> {
        if let Some(org) = grant.org_id {
            if self.stores.orgs.membership(org, user.id).await?.is_none() {
                return Err(OAuthError::invalid_grant("the user is no longer a member of the organization"));
            }
        }
        Ok(())
    }

    /// A single-use artefact (code, refresh token) presented again: it was replayed or leaked,
    /// so its grant and every token issued from it are revoked (RFC 6749 §4.1.2, RFC 9700
    /// §4.14.2).
    pub(super) async fn replayed(
        &self,
        client: &Client,
        grant_id: crate::domain::GrantId,
        now: UnixTime,
        what: &'static str,
    ) -> Result<TokenResponse, OAuthError> {
        tracing::warn!(client_id = %client.client_id, %grant_id, what, "presented again: revoking its grant");
        self.stores.grants.revoke_grant(grant_id, now).await?;
        Err(OAuthError::invalid_grant(format!("{what} already used; the tokens issued from it are revoked")))
    }

    /// The response of a user grant, and the refresh token to store with it (if any). Nothing is
    /// written here: the caller stores the refresh token in the transaction that consumes the
    /// code or the previous refresh token, so a failure leaves the client able to retry.
    pub(super) async fn user_token_response(
        &self,
        t: UserTokens<'_>,
    ) -> Result<(TokenResponse, Option<NewRefresh>), OAuthError> {
        let extra = self.claims_hook.extra_claims(t.user, t.client, t.grant, t.scope).await?;
        let access_token = self.mint_access_token(t.client, t.grant, Some(t.user), t.scope, &extra, t.now)?;
        let id_token = if t.scope.contains("openid") {
            Some(self.mint_id_token(t.client, t.grant, t.user, t.scope, t.nonce, &access_token, &extra, t.now).await?)
        } else {
            None
        };
        let (refresh_token, record) = match t.refresh_scope {
            Some(rs) => {
                let (token, rec) = self.new_refresh_token(t.grant, rs, t.now);
                (Some(token), Some(rec))
            }
            None => (None, None),
        };
        let res = TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.cfg.access_token_ttl_secs,
            scope: t.scope.joined(),
            id_token,
            refresh_token,
        };
        Ok((res, record))
    }
}
