//! Everything a handler may use, passed explicitly (no globals).

use std::sync::Arc;

use crate::auth::AuthService;
use crate::config::Settings;
use crate::domain::Clock;
use crate::oidc::OidcProvider;
use crate::store::Stores;

use super::metrics::Metrics;
use super::session::Sessions;
use super::templates::Templates;

/// Shared by one `Arc`: a request clones one pointer, not each service's.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub settings: Arc<Settings>,
    pub stores: Stores,
    pub auth: Arc<AuthService>,
    pub accounts: Arc<crate::accounts::AccountService>,
    pub mfa: Arc<crate::auth::mfa::MfaService>,
    pub orgs: Arc<crate::orgs::OrgService>,
    pub federation: Arc<crate::federation::FederationService>,
    pub webhooks: Arc<crate::webhooks::WebhookService>,
    pub devkeys: Arc<crate::devkeys::DevKeyService>,
    /// Wakes the live event streams (Redis pub/sub across nodes when Redis is configured).
    pub bus: Arc<crate::events::EventBus>,
    pub audit: Arc<crate::audit::AuditService>,
    pub sessions: Arc<Sessions>,
    pub templates: Arc<Templates>,
    pub metrics: Arc<Metrics>,
    pub oidc: Arc<OidcProvider>,
    pub clock: Arc<dyn Clock>,
}
