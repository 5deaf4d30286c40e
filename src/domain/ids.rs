//! Identifier newtypes: a user id is never a bare `String` or `Uuid` past the edge.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
            pub fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// A user account. Also the OIDC `sub` (stable, never reassigned).
    UserId
);

uuid_id!(
    /// One authorization given to one client (see `domain::grant`).
    GrantId
);

uuid_id!(
    /// An organization (a customer company).
    OrgId
);

uuid_id!(
    /// A role: a named set of one client's permissions.
    RoleId
);

uuid_id!(
    /// A connection to an organization's identity provider (SAML or upstream OIDC).
    ConnectionId
);

uuid_id!(
    /// A webhook: an organization's callback URL and the events it wants.
    WebhookId
);
