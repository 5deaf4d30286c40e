//! Claims of the account lifecycle released to relying parties: `resources` (what invitations
//! gave access to, e.g. `["gallery:123"]`) under scope `resources`.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::domain::{Client, Grant, User};
use crate::oidc::jwt::Claims;
use crate::oidc::types::Scope;
use crate::oidc::ClaimsHook;
use crate::store::AccountStore;

pub struct ResourceClaims {
    pub accounts: Arc<dyn AccountStore>,
}

#[async_trait]
impl ClaimsHook for ResourceClaims {
    async fn extra_claims(
        &self,
        user: &User,
        _client: &Client,
        _grant: &Grant,
        scope: &Scope,
    ) -> Result<Claims, crate::store::StoreError> {
        let mut c = Claims::new();
        if scope.contains("resources") {
            c.insert("resources".into(), json!(self.accounts.resources_of(user.id).await?));
        }
        Ok(c)
    }
}
