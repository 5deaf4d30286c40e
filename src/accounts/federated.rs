//! Accounts of people an organization's identity provider vouched for (the federation service
//! decided they are admitted): linked before, found by email, or created now — always as members
//! of the organization, with the link to the identity, in one transaction.

use super::*;
use crate::domain::federation::FederatedIdentity;
use crate::domain::org::OrgRole;
use crate::domain::OrgId;

impl AccountService {
    /// The account of an admitted identity. `linked`: the account the identity was linked to.
    /// A suspended account stays out; a pending one is activated (the IdP verified the address).
    pub async fn federated_account(
        &self,
        identity: &FederatedIdentity,
        linked: Option<UserId>,
        org: OrgId,
        roles: &(Vec<crate::domain::RoleId>, Vec<crate::domain::RoleId>),
    ) -> AccountResult<User> {
        let raw = identity.email.as_deref().ok_or(AccountError::Invalid("register.email_invalid"))?;
        let email = Email::parse(raw).map_err(|_| AccountError::Invalid("register.email_invalid"))?;
        let link = |user: UserId| AccountOp::LinkIdentity {
            connection: identity.connection,
            subject: identity.subject.clone(),
            user,
            email: Some(email.to_string()),
        };
        let join = |user: UserId| AccountOp::JoinOrg { org, user, role: OrgRole::Member };
        // The roles the IdP's groups map to follow the groups, in the same transaction.
        let role_ops = |user: UserId| {
            let grants = roles.0.iter().map(move |r| AccountOp::GrantRole { org, user, role: *r });
            let revokes = roles.1.iter().map(move |r| AccountOp::RevokeRole { org, user, role: *r });
            grants.chain(revokes).collect::<Vec<_>>()
        };
        let existing = match linked {
            Some(id) => self.stores.users.user_by_id(id).await?,
            None => self.user_by_email(email.as_str()).await?,
        };
        if let Some(u) = existing {
            if u.status == UserStatus::Suspended {
                return Err(AccountError::NotAllowed("login.suspended"));
            }
            let mut ops = vec![link(u.id), join(u.id)];
            ops.extend(role_ops(u.id));
            if u.status == UserStatus::Pending {
                ops.push(AccountOp::SetStatus { user: u.id, status: UserStatus::Active });
            }
            if !u.email_verified && u.email.lookup_key() == email.lookup_key() {
                ops.push(AccountOp::SetEmailVerified { user: u.id });
            }
            self.stores.accounts.apply(ops).await.map_err(Self::map_conflict)?;
            return self.user(u.id).await;
        }
        let id = UserId::new_random();
        let name = identity.name.as_deref().and_then(|n| parse_display_name(n).ok().flatten());
        let new =
            NewUser { email: email.clone(), name, password_hash: None, status: UserStatus::Active, is_admin: false };
        let mut ops = vec![AccountOp::SetEmailVerified { user: id }, join(id), link(id)];
        ops.extend(role_ops(id));
        match self.stores.accounts.create_account(id, new, &SignupConsents::default(), ops).await {
            Ok(_) => {}
            // Created meanwhile by another sign-in: link to it.
            Err(StoreError::Conflict { constraint: "users_email" }) => {
                return Box::pin(self.federated_account(identity, None, org, roles)).await;
            }
            Err(e) => return Err(Self::map_conflict(e)),
        }
        tracing::info!(user_id = %id, connection = %identity.connection, "account created by federated sign-in");
        let data = serde_json::json!({"user": id, "email": email.as_str(), "via": "federation", "connection": identity.connection});
        self.events.emit(id, "user.created", data);
        self.user(id).await
    }
}
