//! CLI of federation connections: `connection create|list|show|delete|associate|dissociate`.
//! `--type oidc` (an upstream OpenID Provider) or `--type saml` (a SAML 2.0 IdP, from its
//! metadata; Guichet is the service provider).

use std::io::Read;
use std::sync::Arc;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::cli_accounts::Accounts;
use crate::config::Settings;
use crate::domain::federation::{Connection, ConnectionConfig, ConnectionKind};
use crate::domain::Clock;
use crate::federation::saml::{SamlOptions, SamlSource};
use crate::federation::{FederationError, FederationService};
use crate::orgs::Actor;

#[derive(Debug, Subcommand)]
pub enum ConnectionCommand {
    /// Connect an organization's identity provider. `--type oidc --issuer U --client-id C
    /// --client-secret-stdin`: register the printed `redirect_uri` at the provider. `--type saml
    /// (--metadata-file F | --metadata-url U)`: give the IdP the printed `sp_entity_id` and
    /// `acs_url` (or the SP metadata at `metadata_url`).
    Create {
        /// The organization(s) the connection serves (id or slug; repeatable).
        #[arg(long = "org", required = true)]
        orgs: Vec<String>,
        #[arg(long = "type")]
        kind: ConnectionKind,
        #[arg(long)]
        name: Option<String>,
        /// OIDC: the provider's issuer (its discovery document is fetched now).
        #[arg(long)]
        issuer: Option<String>,
        /// OIDC: the client id registered at the provider.
        #[arg(long)]
        client_id: Option<String>,
        /// OIDC: read the client secret from standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        /// OIDC: also ask the provider's userinfo endpoint.
        #[arg(long)]
        userinfo: bool,
        /// SAML: the IdP metadata (file).
        #[arg(long)]
        metadata_file: Option<std::path::PathBuf>,
        /// SAML: the IdP metadata (URL; fetched again daily, the last good copy kept).
        #[arg(long)]
        metadata_url: Option<String>,
        /// SAML: refuse responses whose assertion is not itself signed.
        #[arg(long)]
        want_assertions_signed: bool,
        /// SAML: accept IdP-initiated (unsolicited) responses.
        #[arg(long)]
        allow_idp_initiated: bool,
        /// SAML: accept SHA-1 signatures and digests (refused by default).
        #[arg(long)]
        allow_sha1: bool,
        /// SAML: sign AuthnRequests (RSA-SHA256, HTTP-Redirect binding).
        #[arg(long)]
        sign_requests: bool,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        json: bool,
    },
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Let the connection serve another organization too.
    Associate {
        id: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    Dissociate {
        id: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// The scopes asked of the provider, the claims or attributes read, and a SAML connection's
    /// switches.
    Update {
        id: String,
        /// OIDC: scopes asked besides openid (repeatable; replaces the list), e.g. --scope email --scope groups.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The claim (OIDC) or attribute (SAML) holding the user's groups (default `groups`;
        /// SAML also reads memberOf and the claims URIs).
        #[arg(long)]
        groups_claim: Option<String>,
        /// The claim or attribute holding the email address (SAML: read first, before the defaults).
        #[arg(long)]
        email_claim: Option<String>,
        /// The claim or attribute holding the display name.
        #[arg(long)]
        name_claim: Option<String>,
        /// SAML: refuse responses whose assertion is not itself signed.
        #[arg(long)]
        want_assertions_signed: Option<bool>,
        /// SAML: accept IdP-initiated responses.
        #[arg(long)]
        allow_idp_initiated: Option<bool>,
        /// SAML: accept SHA-1 signatures and digests.
        #[arg(long)]
        allow_sha1: Option<bool>,
        /// SAML: sign AuthnRequests.
        #[arg(long)]
        sign_requests: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// SAML: fetch the IdP metadata again now (connections created with --metadata-url).
    RefreshMetadata {
        #[arg(long)]
        json: bool,
    },
    /// Map an IdP group to a role: at each sign-in the role follows the group (granted when the
    /// IdP sends the group, taken away when it does not).
    MapGroup {
        id: String,
        #[arg(long)]
        group: String,
        /// Role id, name or client/name.
        #[arg(long)]
        role: String,
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove the mappings of a group (the roles they granted stay until changed).
    UnmapGroup {
        id: String,
        #[arg(long)]
        group: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn connection_json(c: &Connection, f: &FederationService) -> Value {
    let mut v = json!({
        "id": c.id, "name": c.name, "type": c.config.kind(), "orgs": c.orgs,
        "login_url": f.login_url(c.id),
        "sp_entity_id": Value::Null, "acs_url": Value::Null, "metadata_url": Value::Null,
        "created_at": c.created_at.0,
    });
    match &c.config {
        ConnectionConfig::Oidc(o) => {
            v["redirect_uri"] = json!(f.oidc_redirect_uri());
            v["issuer"] = json!(o.issuer);
            v["client_id"] = json!(o.client_id);
            v["scopes"] = json!(o.scopes);
            v["userinfo"] = json!(o.userinfo);
            v["groups_claim"] = json!(o.mapping.groups);
            v["group_roles"] = json!(o.group_roles);
            v["restricted"] = json!(o.restricted);
        }
        ConnectionConfig::Saml(s) => {
            v["sp_entity_id"] = json!(f.sp_entity_id(c.id));
            v["metadata_url"] = json!(f.sp_entity_id(c.id));
            v["acs_url"] = json!(f.acs_url(c.id));
            v["redirect_uri"] = Value::Null;
            v["idp_entity_id"] = json!(s.idp_entity_id);
            v["idp_sso_url"] = json!(s.sso_url);
            v["idp_certificates"] = json!(s.certs.len());
            v["idp_metadata_url"] = json!(s.metadata_url);
            v["metadata_refreshed_at"] = json!(s.metadata_refreshed_at.map(|t| t.0));
            v["metadata_error"] = json!(s.metadata_error);
            v["want_assertions_signed"] = json!(s.want_assertions_signed);
            v["allow_idp_initiated"] = json!(s.allow_idp_initiated);
            v["allow_sha1"] = json!(s.allow_sha1);
            v["sign_requests"] = json!(s.sign_requests);
            v["attribute_mapping"] = json!(s.mapping);
            v["group_roles"] = json!(s.group_roles);
            v["restricted"] = json!(s.restricted);
        }
    }
    v
}

fn explain(e: FederationError) -> anyhow::Error {
    match e {
        FederationError::NotFound => anyhow::anyhow!("no such connection"),
        other => anyhow::anyhow!("{other}"),
    }
}

fn print(json: bool, v: &Value, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

pub async fn connection(cmd: ConnectionCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let f = &a.federation;
    match cmd {
        ConnectionCommand::Create {
            orgs,
            kind,
            name,
            issuer,
            client_id,
            client_secret_stdin,
            userinfo,
            metadata_file,
            metadata_url,
            want_assertions_signed,
            allow_idp_initiated,
            allow_sha1,
            sign_requests,
            json,
        } => {
            let c = match kind {
                ConnectionKind::Oidc => {
                    if metadata_file.is_some() || metadata_url.is_some() {
                        anyhow::bail!("--metadata-file and --metadata-url are for --type saml");
                    }
                    let issuer = issuer.ok_or_else(|| anyhow::anyhow!("--type oidc needs --issuer"))?;
                    let client_id = client_id.ok_or_else(|| anyhow::anyhow!("--type oidc needs --client-id"))?;
                    if !client_secret_stdin {
                        anyhow::bail!(
                            "--type oidc needs --client-secret-stdin (the secret is read from standard input)"
                        );
                    }
                    let mut raw = String::new();
                    std::io::stdin().read_to_string(&mut raw)?;
                    let secret = raw.trim_end_matches(['\n', '\r']);
                    f.create_oidc(Actor::Platform, name.as_deref(), &issuer, &client_id, secret, &orgs, userinfo)
                        .await
                        .map_err(explain)?
                }
                ConnectionKind::Saml => {
                    if issuer.is_some() || client_id.is_some() || client_secret_stdin || userinfo {
                        anyhow::bail!(
                            "--issuer, --client-id, --client-secret-stdin and --userinfo are for --type oidc"
                        );
                    }
                    let source = match (metadata_file, metadata_url) {
                        (Some(path), None) => {
                            let xml = std::fs::read_to_string(&path)
                                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                            SamlSource::Xml(xml)
                        }
                        (None, Some(u)) => SamlSource::Url(u),
                        _ => anyhow::bail!("--type saml needs --metadata-file F or --metadata-url U (one of them)"),
                    };
                    let opts = SamlOptions { want_assertions_signed, allow_idp_initiated, allow_sha1, sign_requests };
                    f.create_saml(Actor::Platform, &orgs, name.as_deref(), source, opts).await.map_err(explain)?
                }
            };
            print(json, &connection_json(&c, f), || {
                match c.config {
                ConnectionConfig::Saml(_) => format!(
                    "created connection {} ({})\nat the IdP, entityID (audience): {}\nACS URL (HTTP-POST): {}\nSP metadata: {}",
                    c.name,
                    c.id,
                    f.sp_entity_id(c.id),
                    f.acs_url(c.id),
                    f.sp_entity_id(c.id)
                ),
                ConnectionConfig::Oidc(_) => format!(
                    "created connection {} ({})\nregister this redirect URI at the provider: {}",
                    c.name,
                    c.id,
                    f.oidc_redirect_uri()
                ),
            }
            })
        }
        ConnectionCommand::List { json } => {
            let list = f.connections().await.map_err(explain)?;
            let v: Vec<Value> = list.iter().map(|c| connection_json(c, f)).collect();
            print(json, &json!(v), || {
                list.iter()
                    .map(|c| format!("{}  {:<5} {}", c.id, c.config.kind(), c.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ConnectionCommand::Show { id, json } => {
            let c = f.connection(&id).await.map_err(explain)?;
            print(json, &connection_json(&c, f), || format!("{} ({}) {}", c.name, c.config.kind(), c.id))
        }
        ConnectionCommand::Delete { id, json } => {
            f.delete(Actor::Platform, &id).await.map_err(explain)?;
            print(json, &json!({"id": id.trim(), "deleted": true}), || format!("deleted connection {}", id.trim()))
        }
        ConnectionCommand::Associate { id, org, json } => {
            let c = f.associate(Actor::Platform, &id, &org, true).await.map_err(explain)?;
            print(json, &connection_json(&c, f), || format!("{} now serves {org}", c.name))
        }
        ConnectionCommand::Update {
            id,
            scopes,
            groups_claim,
            email_claim,
            name_claim,
            want_assertions_signed,
            allow_idp_initiated,
            allow_sha1,
            sign_requests,
            json,
        } => {
            let scopes = if scopes.is_empty() { None } else { Some(scopes) };
            let mut c = f.set_claims(Actor::Platform, &id, scopes, groups_claim).await.map_err(explain)?;
            if email_claim.is_some() || name_claim.is_some() {
                c = f.set_mapping(Actor::Platform, &id, email_claim, name_claim).await.map_err(explain)?;
            }
            let switches = [want_assertions_signed, allow_idp_initiated, allow_sha1, sign_requests];
            if switches.iter().any(Option::is_some) {
                let ConnectionConfig::Saml(cfg) = &c.config else {
                    anyhow::bail!("--want-assertions-signed, --allow-idp-initiated, --allow-sha1 and --sign-requests are for SAML connections");
                };
                let opts = SamlOptions {
                    want_assertions_signed: want_assertions_signed.unwrap_or(cfg.want_assertions_signed),
                    allow_idp_initiated: allow_idp_initiated.unwrap_or(cfg.allow_idp_initiated),
                    allow_sha1: allow_sha1.unwrap_or(cfg.allow_sha1),
                    sign_requests: sign_requests.unwrap_or(cfg.sign_requests),
                };
                c = f.set_saml_options(Actor::Platform, &id, opts).await.map_err(explain)?;
            }
            print(json, &connection_json(&c, f), || format!("updated {}", c.name))
        }
        ConnectionCommand::RefreshMetadata { json } => {
            f.refresh_saml_metadata().await;
            let list = f.connections().await.map_err(explain)?;
            let v: Vec<Value> = list
                .iter()
                .filter(|c| matches!(&c.config, ConnectionConfig::Saml(s) if s.metadata_url.is_some()))
                .map(|c| connection_json(c, f))
                .collect();
            print(json, &json!(v), || {
                v.iter()
                    .map(|c| {
                        format!(
                            "{}  {}",
                            c["id"].as_str().unwrap_or_default(),
                            c["metadata_error"].as_str().unwrap_or("ok")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ConnectionCommand::MapGroup { id, group, role, client, json } => {
            let c =
                f.map_group(Actor::Platform, &id, &group, Some((&role, client.as_deref()))).await.map_err(explain)?;
            print(json, &connection_json(&c, f), || format!("group {group} now grants {role}"))
        }
        ConnectionCommand::UnmapGroup { id, group, json } => {
            let c = f.map_group(Actor::Platform, &id, &group, None).await.map_err(explain)?;
            print(json, &connection_json(&c, f), || format!("group {group} grants nothing any more"))
        }
        ConnectionCommand::Dissociate { id, org, json } => {
            let c = f.associate(Actor::Platform, &id, &org, false).await.map_err(explain)?;
            print(json, &connection_json(&c, f), || format!("{} no longer serves {org}", c.name))
        }
    }
}
