//! Claims of organizations and RBAC (the `ClaimsHook` of the OpenID Provider):
//! - scope `org`: `org: {id, slug, name}` — the organization the grant was given for;
//! - scope `roles`: `roles` (names) and `permissions` (their union, sorted) — only the roles of
//!   the requesting client, in that organization.
//!
//! Read when each token is issued: a change of roles shows in the next token. A grant whose
//! user is no longer a member gets none (and its refresh is refused by the token endpoint).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;

use crate::domain::{Client, Grant, User};
use crate::oidc::jwt::Claims;
use crate::oidc::types::Scope;
use crate::oidc::ClaimsHook;
use crate::store::{OrgStore, StoreError};

pub struct OrgClaims {
    pub orgs: Arc<dyn OrgStore>,
}

#[async_trait]
impl ClaimsHook for OrgClaims {
    async fn extra_claims(
        &self,
        user: &User,
        client: &Client,
        grant: &Grant,
        scope: &Scope,
    ) -> Result<Claims, StoreError> {
        let mut c = Claims::new();
        let (wants_org, wants_roles) = (scope.contains("org"), scope.contains("roles"));
        let Some(org_id) = grant.org_id.filter(|_| wants_org || wants_roles) else { return Ok(c) };
        if self.orgs.membership(org_id, user.id).await?.is_none() {
            return Ok(c);
        }
        if wants_org {
            if let Some(org) = self.orgs.org(org_id).await? {
                c.insert("org".into(), json!({ "id": org.id, "slug": org.slug, "name": org.name }));
            }
        }
        if wants_roles {
            let roles = self.orgs.member_roles(org_id, user.id, &client.client_id).await?;
            let mut permissions: Vec<&str> =
                roles.iter().flat_map(|r| r.permissions.iter().map(String::as_str)).collect();
            permissions.sort_unstable();
            permissions.dedup();
            let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
            c.insert("roles".into(), json!(names));
            c.insert("permissions".into(), json!(permissions));
        }
        Ok(c)
    }
}
