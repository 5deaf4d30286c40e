//! Ending sessions: RP-Initiated Logout 1.0 (`end_session_endpoint`) and Back-Channel
//! Logout 1.0. Ending a session revokes its grants (refresh tokens and the access tokens that
//! carry their grant id) — except `offline_access` grants, which by definition outlive the
//! session (OIDC Core §11) — and sends a signed logout token to every client that took part
//! in it and registered a `backchannel_logout_uri`. The notices are outbox jobs written in the
//! transaction that ends the session: any node delivers them, retried with backoff, and a
//! node dying loses none.

use std::sync::Arc;

use serde::Deserialize;

use super::jwt;
use super::OidcProvider;
use crate::domain::account::{AccountOp, BackchannelLogoutJob, OutboxMessage};
use crate::domain::{Client, ClientId, Grant};

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct EndSessionParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub logout_hint: Option<String>,
    pub ui_locales: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EndSessionRequest {
    pub client: Option<Client>,
    /// Validated against the client's registration.
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    /// `sid` / `sub` of a valid `id_token_hint`: the relying party proved which session it means.
    pub hint_sid: Option<String>,
    pub hint_sub: Option<String>,
}

impl EndSessionRequest {
    /// Where to send the browser afterwards (with `state`), if anywhere.
    pub fn redirect_url(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_ref()?;
        let mut u = url::Url::parse(uri).ok()?;
        if let Some(s) = &self.state {
            u.query_pairs_mut().append_pair("state", s);
        }
        Some(u.to_string())
    }
}

/// Why an end-session request is refused: shown on a page, never redirected.
#[derive(Debug)]
pub enum EndSessionError {
    Page(String),
    Unavailable(crate::store::StoreError),
}

impl From<&str> for EndSessionError {
    fn from(m: &str) -> Self {
        EndSessionError::Page(m.to_owned())
    }
}

impl From<String> for EndSessionError {
    fn from(m: String) -> Self {
        EndSessionError::Page(m)
    }
}

impl OidcProvider {
    /// Validates an end-session request; errors are shown on a page (never redirected).
    pub async fn validate_end_session(&self, p: &EndSessionParams) -> Result<EndSessionRequest, EndSessionError> {
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let (mut hint_sid, mut hint_sub, mut hint_aud) = (None, None, None);
        if let Some(h) = nonempty(&p.id_token_hint) {
            // Expired hints are fine (the RP is logging out); signature and issuer are not optional.
            let c = jwt::verify_ours(&self.keys, &h, None)
                .map_err(|_| "The id_token_hint is not a valid ID token from this server.")?;
            if c.get("iss").and_then(|v| v.as_str()) != Some(self.issuer.as_str()) {
                return Err("The id_token_hint was issued by another server.".into());
            }
            hint_sid = c.get("sid").and_then(|v| v.as_str()).map(str::to_owned);
            hint_sub = c.get("sub").and_then(|v| v.as_str()).map(str::to_owned);
            hint_aud = match c.get("aud") {
                Some(serde_json::Value::String(a)) => Some(a.clone()),
                Some(serde_json::Value::Array(a)) => a.first().and_then(|v| v.as_str()).map(str::to_owned),
                _ => None,
            };
        }
        let client_id = match (nonempty(&p.client_id), hint_aud) {
            (Some(c), Some(a)) if c != a => return Err("client_id does not match the id_token_hint.".into()),
            (Some(c), _) | (None, Some(c)) => Some(c),
            (None, None) => None,
        };
        let client = match &client_id {
            Some(id) => Some(
                self.stores
                    .clients
                    .client(&ClientId::new(id.as_str()))
                    .await
                    .map_err(EndSessionError::Unavailable)?
                    .ok_or("Unknown client.")?,
            ),
            None => None,
        };
        let post_logout_redirect_uri = match nonempty(&p.post_logout_redirect_uri) {
            None => None,
            Some(uri) => match &client {
                Some(c) if c.post_logout_redirect_uri_registered(&uri) => Some(uri),
                Some(_) => return Err("The post_logout_redirect_uri is not registered for this application.".into()),
                None => {
                    return Err(
                        "A post_logout_redirect_uri needs an id_token_hint or client_id to check it against.".into()
                    )
                }
            },
        };
        Ok(EndSessionRequest { client, post_logout_redirect_uri, state: nonempty(&p.state), hint_sid, hint_sub })
    }

    /// Ends sign-in session `sid`: revokes its non-offline grants and queues, in the same
    /// transaction, a back-channel logout notice for every participating client that has a
    /// back-channel logout URI.
    pub async fn end_session(self: &Arc<Self>, sid: &str) {
        let now = self.clock.now();
        let session = match self.stores.auth_sessions.auth_session(sid).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the session that ends");
                None
            }
        };
        let grants = match self.stores.grants.session_grants(sid).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "could not list the session's clients");
                Vec::new()
            }
        };
        match session {
            Some(s) if s.ended_at.is_none() => {
                let mut ops = vec![AccountOp::EndSession { user: s.user_id, sid: sid.to_owned() }];
                ops.extend(self.logout_jobs(&grants).await.into_iter().map(AccountOp::Enqueue));
                match self.stores.accounts.apply(ops).await {
                    Ok(()) => {
                        self.session_ended(s.user_id, sid);
                        self.wake_outbox();
                    }
                    Err(e) => tracing::error!(error = %e, "could not end the session"),
                }
            }
            _ => {
                // Already ended (or unknown): make sure nothing of it is still usable.
                if let Err(e) = self.stores.grants.revoke_session_grants(sid, false, now).await {
                    tracing::error!(error = %e, "could not revoke the session's grants");
                }
            }
        }
    }

    /// The back-channel logout notices for these grants (ended by the caller's transaction,
    /// which writes them with [`AccountOp::Enqueue`]): one per client that has a back-channel
    /// logout URI and session.
    pub async fn logout_jobs(&self, grants: &[Grant]) -> Vec<OutboxMessage> {
        let mut seen = std::collections::BTreeSet::new();
        let mut jobs = Vec::new();
        for grant in grants {
            let Some(sid) = &grant.sid else { continue };
            if !seen.insert((grant.client_id.to_string(), sid.clone())) {
                continue;
            }
            match self.stores.clients.client(&grant.client_id).await {
                Ok(Some(c)) if c.backchannel_logout_uri.is_some() => {
                    jobs.push(OutboxMessage::BackchannelLogout(BackchannelLogoutJob {
                        client_id: grant.client_id.to_string(),
                        sid: sid.clone(),
                        sub: grant.user_id.map(|u| u.to_string()),
                        jti: crate::crypto::tokens::random_token(),
                    }))
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not read a client to notify of a logout"),
            }
        }
        jobs
    }

    /// After the caller's transaction ended these grants' sessions (and queued the notices
    /// from [`Self::logout_jobs`]): the organizations hear of it and the outbox wakes.
    pub fn sessions_ended(&self, grants: &[Grant]) {
        let mut ended = std::collections::BTreeSet::new();
        for grant in grants {
            if let (Some(sid), Some(user)) = (&grant.sid, grant.user_id) {
                if ended.insert(sid.clone()) {
                    self.session_ended(user, sid);
                }
            }
        }
        self.wake_outbox();
    }

    /// Ends the sign-in sessions that lapsed (idle or absolute timeout) as a logout would:
    /// grants revoked, relying parties notified. Returns how many ended.
    pub async fn end_lapsed_sessions(self: &Arc<Self>) -> Result<usize, crate::store::StoreError> {
        let now = self.clock.now();
        let lapsed = self.stores.auth_sessions.lapsed_sessions(now, 500).await?;
        for sid in &lapsed {
            tracing::info!("sign-in session lapsed: ending it");
            self.end_session(sid).await;
        }
        Ok(lapsed.len())
    }

    /// One delivery attempt of a notice (the outbox worker retries with backoff). After
    /// `[oidc] backchannel_attempts` failures the notice is dropped, logged as given up. A
    /// client deleted since has nothing to hear.
    pub async fn deliver_backchannel_logout(&self, job: &BackchannelLogoutJob, attempts: i64) -> anyhow::Result<()> {
        let client = match self.stores.clients.client(&ClientId::new(job.client_id.clone())).await? {
            Some(c) => c,
            None => return Ok(()),
        };
        let Some(uri) = &client.backchannel_logout_uri else { return Ok(()) };
        let token = self
            .mint_logout_token(&client, job.sub.as_deref(), Some(&job.sid), &job.jti)
            .map_err(|e| anyhow::anyhow!("cannot sign a logout token: {e:?}"))?;
        let failure =
            match self.client_request(&client, |h| h.post(uri).form(&[("logout_token", token.as_str())])).await {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(client_id = %client.client_id, attempts, "back-channel logout delivered");
                    return Ok(());
                }
                Ok(r) => format!("the client answered {}", r.status()),
                Err(e) => format!("cannot reach the client: {e}"),
            };
        if attempts >= i64::from(self.cfg.backchannel_attempts) {
            tracing::error!(client_id = %client.client_id, attempts, error = %failure, "back-channel logout gave up");
            return Ok(());
        }
        anyhow::bail!(failure)
    }
}
