//! The core: pure types and rules. No axum, sqlx, tera or redis in here.

pub mod account;
pub mod client;
pub mod clock;
pub mod devkey;
pub mod dns_name;
pub mod email;
pub mod events;
pub mod federation;
pub mod grant;
pub mod ids;
pub mod mfa;
pub mod org;
pub mod user;
pub mod webhook;

pub use client::{ApplicationType, Client, ClientAuthMethod, ClientId, GrantType, SigningAlg};
pub use clock::{Clock, SystemClock, UnixTime};
pub use dns_name::{DomainError, DomainName};
pub use email::{Email, EmailError};
pub use grant::{AuthCode, AuthSessionRecord, Grant, NewAuthCode, NewRefresh, RefreshRecord};
pub use ids::{ConnectionId, GrantId, OrgId, RoleId, UserId, WebhookId};
pub use user::{NewUser, User, UserStatus};
