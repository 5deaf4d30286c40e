//! Federation: a connection to an organization's own identity provider (upstream OIDC or SAML
//! 2.0), the organizations it serves, and the rules that admit a federated identity.
//!
//! Admission (JIT provisioning and linking) is decided here, without I/O: an identity is
//! admitted only with an email address of a domain verified by one of the connection's
//! organizations; it then becomes (or is linked to) an account that is a member of that
//! organization. Anything else is refused — a company's IdP vouches for its own domains only.

use std::fmt;

use super::{ConnectionId, OrgId, UnixTime, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    Oidc,
    Saml,
}

impl ConnectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Oidc => "oidc",
            ConnectionKind::Saml => "saml",
        }
    }
}

impl fmt::Display for ConnectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ConnectionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oidc" => Ok(ConnectionKind::Oidc),
            "saml" => Ok(ConnectionKind::Saml),
            other => Err(format!("unknown connection type {other:?} (oidc or saml)")),
        }
    }
}

/// An upstream OpenID Provider (the company's IdP).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OidcUpstream {
    pub issuer: String,
    pub client_id: String,
    /// The client secret, sealed.
    pub client_secret_sealed: String,
    /// Scopes asked for (openid is always asked).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Ask userinfo as well as reading the ID token.
    #[serde(default)]
    pub userinfo: bool,
    /// ID token signature algorithms accepted.
    #[serde(default = "default_algs")]
    pub algs: Vec<String>,
    /// Claim names read for the email, the name and the groups.
    #[serde(default)]
    pub mapping: ClaimMapping,
    /// Set up by an organization admin (not the operator): every request to the provider goes
    /// through the outbound-URL policy (public addresses only, pinned, no redirects).
    #[serde(default)]
    pub restricted: bool,
    /// IdP groups that grant roles: at each sign-in, the mapped roles follow the groups the IdP
    /// sends (granted when in the group, taken away when not); other roles are left alone.
    #[serde(default)]
    pub group_roles: Vec<GroupRole>,
}

/// An IdP group granting a role (of the organization the identity is admitted into).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupRole {
    pub group: String,
    pub role: super::RoleId,
}

/// Which mapped roles to grant and which to take away, for the groups an identity has.
pub fn role_changes(mapping: &[GroupRole], groups: &[String]) -> (Vec<super::RoleId>, Vec<super::RoleId>) {
    let mut grant: Vec<super::RoleId> = mapping.iter().filter(|m| groups.contains(&m.group)).map(|m| m.role).collect();
    grant.sort();
    grant.dedup();
    let mut revoke: Vec<super::RoleId> = mapping.iter().map(|m| m.role).filter(|r| !grant.contains(r)).collect();
    revoke.sort();
    revoke.dedup();
    (grant, revoke)
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

fn default_algs() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into(), "PS256".into()]
}

/// Which upstream claims carry what.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClaimMapping {
    pub email: String,
    pub name: String,
    pub groups: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self { email: "email".into(), name: "name".into(), groups: "groups".into() }
    }
}

/// A SAML 2.0 identity provider (Guichet is the service provider).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SamlUpstream {
    /// The IdP's entityID: the Issuer of its responses and assertions.
    pub idp_entity_id: String,
    /// Its SingleSignOnService for the HTTP-Redirect binding.
    pub sso_url: String,
    /// Its signing certificates (base64 DER); several at once during a rollover. Signatures are
    /// checked with these only, never with a key the response carries.
    pub certs: Vec<String>,
    /// Where its metadata comes from, when it was given by URL (refreshed daily).
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// When the metadata was last fetched and read successfully.
    #[serde(default)]
    pub metadata_refreshed_at: Option<UnixTime>,
    /// Why the last refresh failed (the last good metadata stays in use).
    #[serde(default)]
    pub metadata_error: Option<String>,
    /// Refuse responses whose assertion is not itself signed (a signed Response is not enough).
    #[serde(default)]
    pub want_assertions_signed: bool,
    /// Accept responses that answer no request of ours (IdP-initiated sign-in).
    #[serde(default)]
    pub allow_idp_initiated: bool,
    /// Accept SHA-1 signatures and digests (refused by default).
    #[serde(default)]
    pub allow_sha1: bool,
    /// Sign AuthnRequests (HTTP-Redirect binding signature, RSA-SHA256).
    #[serde(default)]
    pub sign_requests: bool,
    /// The SP key of this connection (PKCS#8 PEM, sealed): signs requests, decrypts assertions.
    pub sp_key_sealed: String,
    /// Its self-signed certificate (base64 DER), published in the SP metadata.
    pub sp_cert: String,
    /// Which attributes carry what.
    #[serde(default)]
    pub mapping: AttributeMapping,
    /// Set up by an organization admin: metadata URLs go through the outbound-URL policy.
    #[serde(default)]
    pub restricted: bool,
    #[serde(default)]
    pub group_roles: Vec<GroupRole>,
}

/// SAML attribute names read for the email, the name and the groups (the first present wins;
/// names compare exactly, or with the attribute's FriendlyName).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttributeMapping {
    pub email: Vec<String>,
    pub name: Vec<String>,
    pub given_name: Vec<String>,
    pub family_name: Vec<String>,
    pub groups: Vec<String>,
}

impl Default for AttributeMapping {
    fn default() -> Self {
        let v = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect();
        Self {
            email: v(&[
                "email",
                "mail",
                "emailAddress",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "urn:oid:0.9.2342.19200300.100.1.3",
            ]),
            name: v(&[
                "displayName",
                "name",
                "http://schemas.microsoft.com/identity/claims/displayname",
                "urn:oid:2.16.840.1.113730.3.1.241",
            ]),
            given_name: v(&[
                "givenName",
                "firstName",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
                "urn:oid:2.5.4.42",
            ]),
            family_name: v(&[
                "sn",
                "surname",
                "lastName",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
                "urn:oid:2.5.4.4",
            ]),
            groups: v(&[
                "groups",
                "memberOf",
                "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                "http://schemas.xmlsoap.org/claims/Group",
                "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",
            ]),
        }
    }
}

/// What a connection is: its kind and settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ConnectionConfig {
    Oidc(OidcUpstream),
    Saml(SamlUpstream),
}

impl ConnectionConfig {
    pub fn kind(&self) -> ConnectionKind {
        match self {
            ConnectionConfig::Oidc(_) => ConnectionKind::Oidc,
            ConnectionConfig::Saml(_) => ConnectionKind::Saml,
        }
    }

    /// The IdP groups that grant roles.
    pub fn group_roles(&self) -> &[GroupRole] {
        match self {
            ConnectionConfig::Oidc(o) => &o.group_roles,
            ConnectionConfig::Saml(s) => &s.group_roles,
        }
    }

    pub fn group_roles_mut(&mut self) -> &mut Vec<GroupRole> {
        match self {
            ConnectionConfig::Oidc(o) => &mut o.group_roles,
            ConnectionConfig::Saml(s) => &mut s.group_roles,
        }
    }

    /// Set up by an organization admin: the provider's URLs go through the outbound policy.
    pub fn restricted(&self) -> bool {
        match self {
            ConnectionConfig::Oidc(o) => o.restricted,
            ConnectionConfig::Saml(s) => s.restricted,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: ConnectionId,
    pub name: String,
    pub config: ConnectionConfig,
    /// The organizations it serves.
    pub orgs: Vec<OrgId>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

/// What an identity provider said about someone, after its signature and bindings were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedIdentity {
    pub connection: ConnectionId,
    /// The IdP's stable subject (`sub`, or the SAML NameID).
    pub subject: String,
    pub email: Option<String>,
    /// The IdP says it verified the address (OIDC `email_verified`; SAML IdPs assert their
    /// own directory's addresses).
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

/// An account linked to an identity of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityLink {
    pub connection: ConnectionId,
    pub subject: String,
    pub user_id: UserId,
    pub email: Option<String>,
    pub created_at: UnixTime,
    pub last_login_at: UnixTime,
}

/// Why an identity is not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    #[error("the identity provider sent no email address")]
    NoEmail,
    #[error("the identity provider did not verify the email address")]
    EmailNotVerified,
    #[error("the email's domain is not a verified domain of an organization of this connection")]
    DomainNotAllowed,
}

/// The organization an identity is admitted into: the one of the connection's organizations that
/// verified the email's domain. `verified_owner` is the organization that verified the domain (if
/// any organization did).
pub fn admit(
    identity: &FederatedIdentity,
    connection_orgs: &[OrgId],
    verified_owner: Option<OrgId>,
) -> Result<OrgId, AdmissionError> {
    let email = identity.email.as_deref().ok_or(AdmissionError::NoEmail)?;
    if !email.contains('@') {
        return Err(AdmissionError::NoEmail);
    }
    if !identity.email_verified {
        return Err(AdmissionError::EmailNotVerified);
    }
    match verified_owner {
        Some(o) if connection_orgs.contains(&o) => Ok(o),
        _ => Err(AdmissionError::DomainNotAllowed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_drive_the_mapped_roles_only() {
        let (a, b) = (super::super::RoleId::new_random(), super::super::RoleId::new_random());
        let m = vec![
            GroupRole { group: "sales".into(), role: a },
            GroupRole { group: "buyers".into(), role: a },
            GroupRole { group: "admins".into(), role: b },
        ];
        assert_eq!(role_changes(&m, &["buyers".into()]), (vec![a], vec![b]));
        assert_eq!(role_changes(&m, &[]).0, vec![]);
        let (g, r) = role_changes(&m, &["admins".into(), "sales".into()]);
        assert_eq!(g.len(), 2);
        assert!(r.is_empty());
    }

    fn id(email: Option<&str>, verified: bool) -> FederatedIdentity {
        FederatedIdentity {
            connection: ConnectionId::new_random(),
            subject: "s".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: None,
            groups: vec![],
        }
    }

    #[test]
    fn only_verified_domains_of_the_connection_are_admitted() {
        let (a, b) = (OrgId::new_random(), OrgId::new_random());
        assert_eq!(admit(&id(Some("x@a.test"), true), &[a], Some(a)), Ok(a));
        assert_eq!(admit(&id(Some("x@a.test"), true), &[a], Some(b)), Err(AdmissionError::DomainNotAllowed));
        assert_eq!(admit(&id(Some("x@a.test"), true), &[a], None), Err(AdmissionError::DomainNotAllowed));
        assert_eq!(admit(&id(Some("x@a.test"), false), &[a], Some(a)), Err(AdmissionError::EmailNotVerified));
        assert_eq!(admit(&id(None, true), &[a], Some(a)), Err(AdmissionError::NoEmail));
    }
}
