//! CLI of the account lifecycle: `user create|activate-link|delete`, `invite
//! create|list|revoke|resend`. Every command goes through the accounts service (never a store),
//! queues its mail in the outbox and delivers what is due before exiting (a running server
//! delivers it otherwise).

use std::io::Read;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::accounts::{AccountError, AccountService};
use crate::app::open_stores;
use crate::auth::{AuthService, Throttle};
use crate::config::Settings;
use crate::crypto::{keys, PasswordHasher, SecretString};
use crate::domain::{Clock, UnixTime};
use crate::i18n::Lang;
use crate::mail::Delivery;
use crate::oidc::{KeySet, NoExtraClaims, OidcProvider};
use crate::render::Templates;

#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Invite someone: prints the invitation (id, expiry, link) and mails the link.
    Create {
        #[arg(long)]
        email: String,
        /// Organization the invitee joins on accepting (slug or id).
        #[arg(long)]
        org: Option<String>,
        /// Their org role there: owner, admin or member.
        #[arg(long, default_value = "member", requires = "org")]
        role: crate::domain::org::OrgRole,
        /// What the invitee gets access to, e.g. `gallery:123` (released under scope `resources`).
        #[arg(long)]
        resource: Option<String>,
        /// The invitee's display name.
        #[arg(long)]
        name: Option<String>,
        /// Language of the mail (`en`, `fr`).
        #[arg(long, default_value = "en")]
        lang: String,
        #[arg(long)]
        json: bool,
    },
    /// List invitations, newest first.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a pending invitation (its link stops working).
    Revoke {
        id: uuid::Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Send a pending invitation again with a new link (the old link dies, the expiry restarts).
    Resend {
        id: uuid::Uuid,
        #[arg(long, default_value = "en")]
        lang: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ActivateLink {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub json: bool,
}

/// An account named by its email (delete, suspend, resume).
#[derive(Debug, Args)]
pub struct UserByEmail {
    #[arg(long)]
    pub email: String,
    #[arg(long)]
    pub json: bool,
}

pub struct Accounts {
    pub service: Arc<AccountService>,
    pub orgs: Arc<crate::orgs::OrgService>,
    pub federation: Arc<crate::federation::FederationService>,
    pub webhooks: Arc<crate::webhooks::WebhookService>,
    pub devkeys: crate::devkeys::DevKeyService,
    pub mfa: crate::auth::mfa::MfaService,
    stores: crate::store::Stores,
    delivery: Delivery,
    clock: Arc<dyn Clock>,
}

impl Accounts {
    pub async fn open(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let secret = keys::server_secret(&settings.keys.dir)?;
        let secret_bytes = *secret.bytes();
        let keyset = Arc::new(KeySet::load_or_init(&settings.keys.dir, clock.clone(), settings.oidc.max_signed_ttl())?);
        let stores = open_stores(settings, clock.clone()).await?.stores;
        let oidc = Arc::new(OidcProvider::new(
            settings,
            stores.clone(),
            keyset,
            clock.clone(),
            secret,
            Arc::new(NoExtraClaims),
        )?);
        let throttle = Throttle::new(stores.ephemeral.clone(), clock.clone(), settings.login_throttle.clone());
        let auth = Arc::new(AuthService::new(
            stores.users.clone(),
            PasswordHasher::new(&settings.password)?,
            throttle,
            clock.clone(),
        ));
        let service = Arc::new(AccountService::new(
            stores.clone(),
            auth,
            Arc::new(Templates::new()?),
            Arc::new(settings.clone()),
            clock.clone(),
            secret_bytes,
            oidc.clone(),
            Arc::new(tokio::sync::Notify::new()),
        ));
        let sealer = Arc::new(crate::crypto::sealed::Sealer::load_or_init(&settings.keys.dir)?);
        let mfa = crate::auth::mfa::MfaService::new(
            stores.clone(),
            sealer.clone(),
            clock.clone(),
            secret_bytes,
            &settings.server.issuer,
            None,
        );
        let resolver = Arc::new(crate::dns::Resolver::new(&settings.dns)?);
        let orgs = Arc::new(crate::orgs::OrgService::new(stores.clone(), service.clone(), resolver, clock.clone()));
        let federation = Arc::new(crate::federation::FederationService::new(
            stores.clone(),
            service.clone(),
            orgs.clone(),
            sealer.clone(),
            clock.clone(),
            &settings.server.issuer,
            crate::net::OutboundPolicy::new(
                crate::dns::Resolver::new(&settings.dns)?,
                settings.outbound.allow_loopback,
            )?,
        )?);
        let webhooks = Arc::new(crate::webhooks::WebhookService::new(
            stores.clone(),
            orgs.clone(),
            sealer.clone(),
            clock.clone(),
            crate::net::OutboundPolicy::new(
                crate::dns::Resolver::new(&settings.dns)?,
                settings.webhooks.allow_loopback,
            )?,
            Arc::new(tokio::sync::Notify::new()),
        ));
        let delivery = Delivery::new(&settings.mail, &settings.sms)?.with_lease(settings.outbox.lease_secs);
        delivery.set_webhooks(webhooks.clone());
        delivery.set_oidc(oidc.clone());
        let devkeys = crate::devkeys::DevKeyService::new(stores.clone(), orgs.clone(), clock.clone());
        Ok(Self { service, orgs, federation, webhooks, devkeys, mfa, stores, delivery, clock })
    }

    /// Delivers the queued messages (best effort: a running server retries what fails).
    pub async fn deliver(&self) {
        let sent = tokio::time::timeout(
            std::time::Duration::from_secs(15),
            crate::mail::deliver_due(self.stores.journal.as_ref(), &self.delivery, self.clock.as_ref()),
        )
        .await;
        if sent.is_err() {
            eprintln!("warning: mail delivery timed out; the messages stay queued for the server");
        }
    }
}

fn lang(code: &str) -> anyhow::Result<Lang> {
    Lang::parse(code).ok_or_else(|| anyhow::anyhow!("unknown --lang {code:?} (en or fr)"))
}

fn explain(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Invalid(k) => anyhow::anyhow!("invalid input ({k})"),
        AccountError::NotAllowed("exists") => anyhow::anyhow!("a user with this email already exists"),
        AccountError::NotAllowed("not_pending") => {
            anyhow::anyhow!("the account is already active (activation links are for pending accounts)")
        }
        AccountError::NotAllowed(k) => anyhow::anyhow!("not allowed ({k})"),
        AccountError::NoAccount => anyhow::anyhow!("no such user"),
        AccountError::TokenInvalid => anyhow::anyhow!("no pending invitation with this id"),
        other => anyhow::anyhow!("{other}"),
    }
}

fn invitation_json(i: &crate::domain::account::Invitation, now: UnixTime, link: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": i.id, "email": i.email, "name": i.name, "org": i.org, "org_id": i.org_id, "org_role": i.org_role, "resource": i.resource,
        "status": i.status(now), "created_at": i.created_at.0, "expires_at": i.expires_at.0,
        "expires": i.expires_at.rfc3339(), "accepted_at": i.accepted_at.map(|t| t.0), "revoked_at": i.revoked_at.map(|t| t.0),
    });
    if let Some(l) = link {
        v["link"] = serde_json::json!(l);
    }
    v
}

pub async fn invite(cmd: InviteCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock.clone()).await?;
    let now = clock.now();
    match cmd {
        InviteCommand::Create { email, org, role, resource, name, lang: l, json } => {
            let org = match org {
                Some(r) => {
                    let o = a
                        .orgs
                        .find(&r)
                        .await
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                        .ok_or_else(|| anyhow::anyhow!("no organization {r}"))?;
                    Some(crate::accounts::InviteOrg { id: o.id, name: o.name, role })
                }
                None => None,
            };
            let (inv, link) = a
                .service
                .invite(&email, name.as_deref(), org.as_ref(), resource.as_deref(), None, lang(&l)?)
                .await
                .map_err(explain)?;
            a.deliver().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&invitation_json(&inv, now, Some(&link)))?);
            } else {
                println!("invited {} (invitation {}, expires {})\n{link}", inv.email, inv.id, inv.expires_at.rfc3339());
            }
        }
        InviteCommand::List { limit, json } => {
            let list = a.service.invitations(limit.clamp(1, 10_000)).await.map_err(explain)?;
            if json {
                let v: Vec<_> = list.iter().map(|i| invitation_json(i, now, None)).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for i in &list {
                    println!("{}  {:<40} {:<9} {}", i.id, i.email, i.status(now), i.resource.as_deref().unwrap_or(""));
                }
            }
        }
        InviteCommand::Revoke { id, json } => {
            if !a.service.revoke_invitation(id).await.map_err(explain)? {
                anyhow::bail!("no pending invitation with id {id}");
            }
            if json {
                println!("{}", serde_json::json!({"id": id, "status": "revoked"}));
            } else {
                println!("revoked invitation {id}");
            }
        }
        InviteCommand::Resend { id, lang: l, json } => {
            let (inv, link) = a.service.resend_invitation(id, lang(&l)?).await.map_err(explain)?;
            a.deliver().await;
            if json {
                println!("{}", serde_json::to_string_pretty(&invitation_json(&inv, now, Some(&link)))?);
            } else {
                println!("sent invitation {} again to {}\n{link}", inv.id, inv.email);
            }
        }
    }
    Ok(())
}

/// `user create`: with `--password-stdin` the account is active; without, it is pending and an
/// activation link is mailed (and printed).
pub async fn create_user(
    args: crate::cli::CreateUser,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let password = if args.password_stdin {
        let mut raw = String::new();
        std::io::stdin()
            .read_to_string(&mut raw)
            .map_err(|e| anyhow::anyhow!("cannot read the password from stdin: {e}"))?;
        let pw = raw.strip_suffix('\n').map(|s| s.strip_suffix('\r').unwrap_or(s)).unwrap_or(&raw).to_owned();
        crate::cli::check_password_policy(&pw, settings)?;
        Some(SecretString::new(pw))
    } else {
        None
    };
    let a = Accounts::open(settings, clock).await?;
    let (user, link) = a
        .service
        .create_by_operator(&args.email, args.name.as_deref(), password.as_ref(), args.admin)
        .await
        .map_err(|e| match e {
            AccountError::Invalid("register.email_invalid") => anyhow::anyhow!("invalid --email: not an email address"),
            AccountError::Invalid("register.name_invalid") => anyhow::anyhow!("invalid --name"),
            AccountError::NotAllowed("exists") => {
                anyhow::anyhow!("a user with email {} already exists", args.email.trim())
            }
            other => explain(other),
        })?;
    a.deliver().await;
    if args.json {
        let mut v = serde_json::to_value(&user)?;
        if let Some(l) = &link {
            v["activation_link"] = serde_json::json!(l);
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("created user {} <{}> ({})", user.id, user.email, user.status);
        if let Some(l) = link {
            println!("activation link (mailed): {l}");
        }
    }
    Ok(())
}

pub async fn activate_link(args: ActivateLink, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let (user, link) = a.service.activation_link(&args.email).await.map_err(explain)?;
    a.deliver().await;
    if args.json {
        println!("{}", serde_json::json!({"id": user.id, "email": user.email.as_str(), "activation_link": link}));
    } else {
        println!("{link}");
    }
    Ok(())
}

/// `user suspend` / `user resume`.
pub async fn suspend_user(
    args: UserByEmail,
    suspended: bool,
    settings: &Settings,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let user = a
        .service
        .user_by_email(&args.email)
        .await
        .map_err(explain)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {}", args.email.trim()))?;
    let user = a.service.set_suspended(user.id, suspended, "operator").await.map_err(explain)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&user)?);
    } else {
        println!("{} is {}", user.email, user.status);
    }
    Ok(())
}

/// `user mfa-reset`.
pub async fn mfa_reset(args: UserByEmail, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let user = a
        .service
        .user_by_email(&args.email)
        .await
        .map_err(explain)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {}", args.email.trim()))?;
    a.service.reset_factors(user.id, "operator").await.map_err(explain)?;
    a.deliver().await;
    if args.json {
        println!("{}", serde_json::json!({"id": user.id, "email": user.email.as_str(), "factors": []}));
    } else {
        println!("removed every second factor of {}", user.email);
    }
    Ok(())
}

pub async fn delete_user(args: UserByEmail, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let user = a
        .service
        .user_by_email(&args.email)
        .await
        .map_err(explain)?
        .ok_or_else(|| anyhow::anyhow!("no user with email {}", args.email.trim()))?;
    a.service.delete(user.id, None, None, "operator").await.map_err(explain)?;
    a.deliver().await;
    if args.json {
        println!("{}", serde_json::json!({"deleted": true, "subject": a.service.pseudonym(user.id)}));
    } else {
        println!("deleted user {} (audit subject {})", user.email, a.service.pseudonym(user.id));
    }
    Ok(())
}
