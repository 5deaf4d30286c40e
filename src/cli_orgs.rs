//! CLI of organizations, RBAC and domains: `org`, `permission`, `role`, `domain`. Every command
//! goes through the organizations service as the platform (the operator), and prints `--json`.

use std::io::{BufRead, IsTerminal};
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli_accounts::Accounts;
use crate::config::Settings;
use crate::domain::org::{Member, Org, OrgDomain, OrgRole, Role};
use crate::domain::Clock;
use crate::orgs::{Actor, OrgError, OrgSettingsUpdate};

const P: Actor = Actor::Platform;

/// An organization named by a positional argument or `--org` (id or slug).
#[derive(Debug, Args)]
pub struct OrgRef {
    /// Organization id or slug.
    #[arg(value_name = "ORG", required_unless_present = "org")]
    pub target: Option<String>,
    /// Organization id or slug (same as the positional argument).
    #[arg(long, conflicts_with = "target")]
    pub org: Option<String>,
}

impl OrgRef {
    fn get(&self) -> &str {
        self.target.as_deref().or(self.org.as_deref()).unwrap_or_default()
    }
}

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an organization (the slug defaults to one made from the name).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        slug: Option<String>,
        /// Email of an existing account to make its first owner.
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List organizations.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show an organization: settings, members, domains, roles.
    Show {
        #[command(flatten)]
        org: OrgRef,
        #[arg(long)]
        json: bool,
    },
    /// Change the name, slug or settings.
    Update {
        #[command(flatten)]
        org: OrgRef,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        slug: Option<String>,
        /// Refuse password sign-in for emails of the organization's verified domains.
        #[arg(long)]
        require_sso: Option<bool>,
        /// Members need a second factor.
        #[arg(long)]
        mfa_required: Option<bool>,
        /// `#rrggbb` (white text on it must be readable); empty to remove.
        #[arg(long)]
        accent_color: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete an organization: memberships, roles, domains and its grants go; members'
    /// accounts remain. Type the slug again with --confirm (or on standard input).
    Delete {
        #[command(flatten)]
        org: OrgRef,
        /// The organization's slug, typed again.
        #[arg(long)]
        confirm: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Members: add (or change the org role of), remove, list.
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Add an existing account as a member, or change a member's org role.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// owner, admin or member.
        #[arg(long, default_value = "member")]
        role: OrgRole,
        #[arg(long)]
        json: bool,
    },
    /// Remove a member (their account remains; their tokens for the organization stop working).
    Remove {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PermissionCommand {
    /// Declare permissions of a client, e.g. `orders:read billing:manage`.
    Add {
        #[arg(long)]
        client: String,
        #[arg(required = true)]
        permissions: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a permission from a client (and from every role holding it).
    Remove {
        #[arg(long)]
        client: String,
        permission: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        client: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role (a named set of one client's permissions), for every organization or, with
    /// --org, for one.
    Create {
        #[arg(long)]
        client: String,
        #[arg(long)]
        name: String,
        #[arg(long = "permission", num_args = 1.., required = true)]
        permissions: Vec<String>,
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List roles (with --org: those grantable in it).
    List {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delete a role (by id).
    Delete {
        id: crate::domain::RoleId,
        #[arg(long)]
        json: bool,
    },
    /// Grant a role (id, name, or client/name) to a member.
    Grant(RoleGrant),
    /// Take a role away from a member.
    Revoke(RoleGrant),
}

#[derive(Debug, Args)]
pub struct RoleGrant {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub role: String,
    /// The client of the role, when several clients have a role of that name.
    #[arg(long)]
    pub client: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Claim a domain: prints the TXT record to publish.
    Add {
        #[arg(long)]
        org: String,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        json: bool,
    },
    /// Check the TXT record now (exit status 1 when the domain is not verified).
    Verify {
        #[arg(long)]
        org: String,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    Remove {
        #[arg(long)]
        org: String,
        #[arg(long)]
        domain: String,
        #[arg(long)]
        json: bool,
    },
}

fn explain(e: OrgError) -> anyhow::Error {
    match e {
        OrgError::NotFound => anyhow::anyhow!("not found (check the organization, user, role or domain)"),
        other => anyhow::anyhow!("{other}"),
    }
}

pub fn org_json(o: &Org, issuer: &str) -> Value {
    json!({
        "id": o.id, "slug": o.slug, "name": o.name, "require_sso": o.require_sso, "mfa_required": o.mfa_required,
        "accent_color": o.accent_color,
        "logo_url": o.logo_digest.as_ref().map(|d| format!("{issuer}/orgs/{}/logo?v={d}", o.slug)),
        "created_at": o.created_at.0, "updated_at": o.updated_at.0,
    })
}

pub fn member_json(m: &Member) -> Value {
    json!({
        "user_id": m.user_id, "email": m.email, "name": m.name, "role": m.role, "joined_at": m.joined_at.0,
        "roles": m.roles.iter().map(|r| json!({"id": r.id, "client_id": r.client_id, "name": r.name})).collect::<Vec<_>>(),
    })
}

pub fn role_json(r: &Role) -> Value {
    json!({"id": r.id, "client_id": r.client_id, "org_id": r.org, "name": r.name, "permissions": r.permissions, "created_at": r.created_at.0})
}

pub fn domain_json(d: &OrgDomain) -> Value {
    json!({
        "org_id": d.org, "domain": d.domain, "status": if d.verified() { "verified" } else { "pending" },
        "verified": d.verified(),
        "record": {"type": "TXT", "name": d.record_name(), "value": d.challenge},
        "type": "TXT", "name": d.record_name(), "value": d.challenge, "challenge": d.challenge,
        "txt_name": d.record_name(), "txt_value": d.challenge,
        "verified_at": d.verified_at.map(|t| t.0), "last_checked_at": d.last_checked_at.map(|t| t.0),
        "last_error": d.last_error, "created_at": d.created_at.0,
    })
}

fn print(json: bool, v: &Value, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

pub async fn org(cmd: OrgCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let s = &a.orgs;
    let iss = settings.server.issuer.as_str();
    match cmd {
        OrgCommand::Create { name, slug, owner, json } => {
            let owner = match owner {
                Some(e) => Some(
                    a.service
                        .user_by_email(&e)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .ok_or_else(|| anyhow::anyhow!("no account has the address {}", e.trim()))?
                        .id,
                ),
                None => None,
            };
            let o = s.create(P, &name, slug.as_deref(), owner).await.map_err(explain)?;
            print(json, &org_json(&o, iss), || format!("created organization {} ({})", o.slug, o.id))
        }
        OrgCommand::List { json } => {
            let list = s.list(P).await.map_err(explain)?;
            let v: Vec<Value> = list.iter().map(|m| org_json(&m.org, iss)).collect();
            print(json, &json!(v), || {
                list.iter()
                    .map(|m| format!("{}  {:<24} {}", m.org.id, m.org.slug, m.org.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        OrgCommand::Show { org, json } => {
            let (o, members) = s.members(P, org.get()).await.map_err(explain)?;
            let (_, domains) = s.domains(P, &o.id.to_string()).await.map_err(explain)?;
            let roles = s.roles(P, Some(&o.id.to_string())).await.map_err(explain)?;
            let mut v = org_json(&o, iss);
            v["members"] = json!(members.iter().map(member_json).collect::<Vec<_>>());
            v["domains"] = json!(domains.iter().map(domain_json).collect::<Vec<_>>());
            v["roles"] = json!(roles.iter().map(role_json).collect::<Vec<_>>());
            print(json, &v, || {
                let mut out = format!("{} ({}) {}\n", o.name, o.slug, o.id);
                for m in &members {
                    out.push_str(&format!("  member {:<40} {}\n", m.email, m.role));
                }
                for d in &domains {
                    out.push_str(&format!(
                        "  domain {:<40} {}\n",
                        d.domain,
                        if d.verified() { "verified" } else { "pending" }
                    ));
                }
                out.trim_end().to_owned()
            })
        }
        OrgCommand::Update { org, name, slug, require_sso, mfa_required, accent_color, json } => {
            let o = s
                .update_settings(
                    P,
                    org.get(),
                    OrgSettingsUpdate { name, slug, require_sso, mfa_required, accent_color },
                )
                .await
                .map_err(explain)?;
            print(json, &org_json(&o, iss), || format!("updated organization {}", o.slug))
        }
        OrgCommand::Delete { org, confirm, json } => {
            let confirm = match confirm {
                Some(c) => c,
                None if !std::io::stdin().is_terminal() => {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim().to_owned()
                }
                None => {
                    eprint!("type the slug of the organization to delete it for good: ");
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line)?;
                    line.trim().to_owned()
                }
            };
            let o = s.delete(P, org.get(), &confirm).await.map_err(explain)?;
            print(json, &json!({"id": o.id, "slug": o.slug, "deleted": true}), || {
                format!("deleted organization {}", o.slug)
            })
        }
        OrgCommand::Member(MemberCommand::Add { org, email, role, json }) => {
            let m = s.set_member(P, &org, &email, role).await.map_err(explain)?;
            print(json, &member_json(&m), || format!("{} is {} of {org}", m.email, m.role))
        }
        OrgCommand::Member(MemberCommand::Remove { org, email, json }) => {
            s.remove_member(P, &org, &email).await.map_err(explain)?;
            print(json, &json!({"org": org, "email": email.trim(), "removed": true}), || {
                format!("removed {} from {org}", email.trim())
            })
        }
        OrgCommand::Member(MemberCommand::List { org, json }) => {
            let (_, members) = s.members(P, &org).await.map_err(explain)?;
            let v: Vec<Value> = members.iter().map(member_json).collect();
            print(json, &json!(v), || {
                members
                    .iter()
                    .map(|m| format!("{}  {:<40} {}", m.user_id, m.email, m.role))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

pub async fn permission(cmd: PermissionCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let s = &a.orgs;
    match cmd {
        PermissionCommand::Add { client, permissions, json } => {
            let all = s.add_permissions(P, &client, &permissions).await.map_err(explain)?;
            print(json, &json!({"client_id": client, "permissions": all}), || all.join("\n"))
        }
        PermissionCommand::Remove { client, permission, json } => {
            if !s.remove_permission(P, &client, &permission).await.map_err(explain)? {
                anyhow::bail!("the client {client} has no permission {permission:?}");
            }
            print(json, &json!({"client_id": client, "permission": permission, "removed": true}), || {
                format!("removed {permission} from {client}")
            })
        }
        PermissionCommand::List { client, json } => {
            let all = s.permissions(&client).await.map_err(explain)?;
            print(json, &json!({"client_id": client, "permissions": all}), || all.join("\n"))
        }
    }
}

pub async fn role(cmd: RoleCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let s = &a.orgs;
    match cmd {
        RoleCommand::Create { client, name, permissions, org, json } => {
            let r = s.create_role(P, &client, &name, &permissions, org.as_deref()).await.map_err(explain)?;
            print(json, &role_json(&r), || format!("created role {} ({}) of {}", r.name, r.id, r.client_id))
        }
        RoleCommand::List { org, json } => {
            let list = s.roles(P, org.as_deref()).await.map_err(explain)?;
            let v: Vec<Value> = list.iter().map(role_json).collect();
            print(json, &json!(v), || {
                list.iter()
                    .map(|r| format!("{}  {:<22} {:<20} {}", r.id, r.client_id, r.name, r.permissions.join(" ")))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        RoleCommand::Delete { id, json } => {
            s.delete_role(P, None, id).await.map_err(explain)?;
            print(json, &json!({"id": id, "deleted": true}), || format!("deleted role {id}"))
        }
        RoleCommand::Grant(g) => {
            let r = s.grant_role(P, &g.org, &g.email, &g.role, g.client.as_deref()).await.map_err(explain)?;
            print(
                g.json,
                &json!({"org": g.org, "email": g.email.trim(), "role": role_json(&r), "granted": true}),
                || format!("granted {} to {}", r.name, g.email.trim()),
            )
        }
        RoleCommand::Revoke(g) => {
            let done = s.revoke_role(P, &g.org, &g.email, &g.role, g.client.as_deref()).await.map_err(explain)?;
            print(g.json, &json!({"org": g.org, "email": g.email.trim(), "role": g.role, "revoked": done}), || {
                if done {
                    format!("revoked {} from {}", g.role, g.email.trim())
                } else {
                    format!("{} did not have {}", g.email.trim(), g.role)
                }
            })
        }
    }
}

pub async fn domain(cmd: DomainCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let s = &a.orgs;
    match cmd {
        DomainCommand::Add { org, domain, json } => {
            let (_, d) = s.add_domain(P, &org, &domain).await.map_err(explain)?;
            print(json, &domain_json(&d), || {
                format!(
                    "publish this TXT record, then run `guichet domain verify`:\n{}. TXT \"{}\"",
                    d.record_name(),
                    d.challenge
                )
            })
        }
        DomainCommand::Verify { org, domain, json } => {
            let d = s.verify_domain(P, &org, &domain).await.map_err(explain)?;
            print(json, &domain_json(&d), || {
                if d.verified() {
                    format!("{} is verified", d.domain)
                } else {
                    format!("{} is not verified: {}", d.domain, d.last_error.as_deref().unwrap_or("unknown"))
                }
            })?;
            if !d.verified() {
                anyhow::bail!("{} is not verified: {}", d.domain, d.last_error.as_deref().unwrap_or("unknown"));
            }
            Ok(())
        }
        DomainCommand::List { org, json } => {
            let (_, list) = s.domains(P, &org).await.map_err(explain)?;
            let v: Vec<Value> = list.iter().map(domain_json).collect();
            print(json, &json!(v), || {
                list.iter()
                    .map(|d| format!("{:<40} {}", d.domain, if d.verified() { "verified" } else { "pending" }))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        DomainCommand::Remove { org, domain, json } => {
            s.remove_domain(P, &org, &domain).await.map_err(explain)?;
            print(json, &json!({"org": org, "domain": domain.trim(), "removed": true}), || {
                format!("removed {}", domain.trim())
            })
        }
    }
}
