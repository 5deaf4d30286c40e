//! `guichet keys ...` and `guichet client ...`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use crate::app::open_stores;
use crate::config::Settings;
use crate::crypto::keys;
use crate::domain::{ApplicationType, Client, ClientAuthMethod, ClientId, Clock, GrantType, SigningAlg};
use crate::oidc::clients::{Registration, RegistrationError};
use crate::oidc::{KeySet, NoExtraClaims, OidcProvider};
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their state (next, active, retired, expired).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a new signing key (published at once, signing after keys.publish_delay_secs) and
    /// retire the current one of the same algorithm when the new one starts signing.
    Rotate {
        /// RS256, ES256 or EdDSA; all three when omitted.
        #[arg(long)]
        alg: Option<SigningAlg>,
        /// Seconds until the new key signs (default: keys.publish_delay_secs). 0 = now, for a
        /// compromised key; relying parties that cached the JWKS will refetch it on an unknown kid.
        #[arg(long, value_name = "SECS")]
        activate_in: Option<u64>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a compromised key: out of the JWKS at once, tokens it signed refused; a new key
    /// of its algorithm signs from now on if it was signing. Serving nodes apply it at their
    /// next key reload (keys.reload_secs).
    Revoke {
        /// The key's kid (see `guichet keys list`).
        #[arg(value_name = "KID")]
        kid: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a key that seals factor secrets (TOTP keys, WebAuthn credentials) from now on;
    /// older seal keys stay and keep opening what they sealed.
    RotateSeal {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a relying party. Prints client_id and, once, the client secret.
    Create(CreateClient),
    /// List registered clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        #[command(flatten)]
        id: ClientIdArg,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and everything issued to it.
    Delete {
        #[command(flatten)]
        id: ClientIdArg,
        #[arg(long)]
        json: bool,
    },
    /// Replace a client's secret (the old one stops working at once). Prints the new one once.
    RotateSecret {
        #[command(flatten)]
        id: ClientIdArg,
        #[arg(long)]
        json: bool,
    },
}

/// A client id, as a positional argument or `--client-id`.
#[derive(Debug, Args)]
pub struct ClientIdArg {
    /// The client_id.
    #[arg(
        value_name = "CLIENT_ID",
        required_unless_present = "flag",
        conflicts_with = "flag",
        allow_hyphen_values = true
    )]
    positional: Option<String>,
    /// The client_id (same as the positional argument).
    #[arg(long = "client-id", id = "flag", value_name = "CLIENT_ID")]
    flag: Option<String>,
}

impl ClientIdArg {
    fn get(self) -> String {
        self.positional.or(self.flag).unwrap_or_default()
    }
}

#[derive(Debug, Args)]
pub struct CreateClient {
    /// Display name (shown on the consent screen).
    #[arg(long)]
    pub name: String,
    /// Redirect URI, exact match (repeat the flag, or give several values).
    #[arg(long = "redirect-uri", alias = "redirect-uris", value_name = "URI", num_args = 1..)]
    pub redirect_uris: Vec<String>,
    /// Public client (no secret; PKCE required). Same as --auth-method none.
    #[arg(long)]
    pub public: bool,
    /// client_secret_basic (default), client_secret_post, private_key_jwt or none.
    #[arg(long)]
    pub auth_method: Option<ClientAuthMethod>,
    /// web (default) or native (RFC 8252: loopback redirect on any port, custom schemes).
    #[arg(long)]
    pub application_type: Option<ApplicationType>,
    /// private_key_jwt: where the client publishes its JWK Set.
    #[arg(long, value_name = "URI", conflicts_with = "jwks")]
    pub jwks_uri: Option<String>,
    /// private_key_jwt: a file holding the client's public JWK Set.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// A first-party application: no consent screen.
    #[arg(long)]
    pub first_party: bool,
    /// Back-Channel Logout 1.0 endpoint of the client.
    #[arg(long, value_name = "URI")]
    pub backchannel_logout_uri: Option<String>,
    /// Allowed post_logout_redirect_uri (repeat the flag, or give several values).
    #[arg(long = "post-logout-redirect-uri", alias = "post-logout-redirect-uris", value_name = "URI", num_args = 1..)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Grant types: authorization_code, refresh_token, client_credentials (repeat the flag, give
    /// several values, or separate with commas). Default: authorization_code + refresh_token
    /// with redirect URIs, else client_credentials.
    #[arg(long = "grant", alias = "grant-type", value_name = "GRANT", num_args = 1.., value_delimiter = ',')]
    pub grants: Vec<GrantType>,
    /// ID token (and access token) signing alg: RS256 (default), ES256, EdDSA.
    #[arg(long, default_value = "RS256")]
    pub id_token_signed_response_alg: SigningAlg,
    /// Keep profile/email/... claims out of the ID token (userinfo only).
    #[arg(long)]
    pub no_id_token_claims: bool,
    /// A resource server: may introspect access tokens issued to other clients (RFC 7662 §4).
    /// Without it a client only introspects its own tokens. Confidential clients only.
    #[arg(long)]
    pub introspection: bool,
    /// Sign-ins for this client need a second factor (whatever `[mfa] policy` says).
    #[arg(long)]
    pub require_mfa: bool,
    /// Bind the client to one organization (id or slug): only its members may sign in to it,
    /// acting for it.
    #[arg(long)]
    pub org: Option<String>,
    #[arg(long)]
    pub json: bool,
}

async fn provider(settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<OidcProvider> {
    let secret = keys::server_secret(&settings.keys.dir)?;
    let keyset = Arc::new(KeySet::load_or_init(&settings.keys.dir, clock.clone(), settings.oidc.max_signed_ttl())?);
    let opened = open_stores(settings, clock.clone()).await?;
    OidcProvider::new(settings, opened.stores, keyset, clock, secret, Arc::new(NoExtraClaims))
}

pub async fn keys(cmd: KeysCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let set = KeySet::load_or_init(&settings.keys.dir, clock, settings.oidc.max_signed_ttl())?;
    match cmd {
        KeysCommand::List { json } => print_keys(&set.list(), json),
        KeysCommand::Rotate { alg, activate_in, json } => {
            let delay = i64::try_from(activate_in.unwrap_or(settings.keys.publish_delay_secs)).unwrap_or(i64::MAX / 4);
            let algs: Vec<SigningAlg> = match alg {
                Some(a) => vec![a],
                None => SigningAlg::ALL.to_vec(),
            };
            let mut created = Vec::new();
            for a in algs {
                created.push(set.rotate(a, delay)?);
            }
            print_keys(&created, json)
        }
        KeysCommand::Revoke { kid, json } => print_keys(&set.revoke(&kid)?, json),
        KeysCommand::RotateSeal { json } => {
            let kid = crate::crypto::sealed::Sealer::load_or_init(&settings.keys.dir)?.rotate()?;
            if json {
                println!("{}", serde_json::json!({ "kid": kid, "use": "seal" }));
            } else {
                println!("new seal key {kid}: seals from now on; older seal keys keep opening");
            }
            Ok(())
        }
    }
}

fn print_keys(keys: &[crate::oidc::keys::KeyInfo], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(keys)?);
    } else {
        for k in keys {
            println!(
                "{:<6} {:<8} {}  active_from={} retired_at={}",
                k.alg.as_str(),
                k.state,
                k.kid,
                k.active_from.0,
                k.retired_at.map(|r| r.0.to_string()).unwrap_or_else(|| "-".into())
            );
        }
    }
    Ok(())
}

fn client_json(c: &Client, secret: Option<&str>) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(s) = secret {
        v["client_secret"] = serde_json::json!(s);
    }
    v
}

fn print_client(c: &Client, secret: Option<&str>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&client_json(c, secret))?);
    } else {
        println!("client_id: {}", c.client_id);
        if let Some(s) = secret {
            println!("client_secret: {s}   (shown once: store it now)");
        }
        println!("name: {}", c.name);
        println!("auth method: {}", c.token_endpoint_auth_method);
        println!("grants: {}", c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", "));
        for r in &c.redirect_uris {
            println!("redirect_uri: {r}");
        }
    }
    Ok(())
}

fn store_msg(e: RegistrationError, id: &str) -> anyhow::Error {
    match e {
        RegistrationError::Store(StoreError::NotFound) => anyhow::anyhow!("no client {id}"),
        RegistrationError::Invalid(m) => anyhow::anyhow!(m),
        RegistrationError::Store(e) => e.into(),
    }
}

pub async fn client(cmd: ClientCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let p = provider(settings, clock).await?;
    match cmd {
        ClientCommand::Create(a) => {
            let auth_method = match (a.public, a.auth_method) {
                (true, Some(m)) if m != ClientAuthMethod::None => {
                    anyhow::bail!("--public conflicts with --auth-method {m}")
                }
                (true, _) => ClientAuthMethod::None,
                (false, Some(m)) => m,
                (false, None) => ClientAuthMethod::ClientSecretBasic,
            };
            let jwks = match &a.jwks {
                Some(path) => {
                    let raw = std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("cannot read --jwks {}: {e}", path.display()))?;
                    Some(
                        serde_json::from_str(&raw)
                            .map_err(|e| anyhow::anyhow!("--jwks {} is not JSON: {e}", path.display()))?,
                    )
                }
                None => None,
            };
            let grant_types = if !a.grants.is_empty() {
                let mut g = a.grants.clone();
                g.sort();
                g.dedup();
                g
            } else if a.redirect_uris.is_empty() {
                vec![GrantType::ClientCredentials]
            } else {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            };
            let org_id = match &a.org {
                Some(r) => {
                    let slug_or_id = r.trim();
                    let found = match slug_or_id.parse::<crate::domain::OrgId>() {
                        Ok(id) => p.stores.orgs.org(id).await?,
                        Err(_) => p.stores.orgs.org_by_slug(slug_or_id).await?,
                    };
                    Some(found.ok_or_else(|| anyhow::anyhow!("no organization {slug_or_id}"))?.id)
                }
                None => None,
            };
            let reg = Registration {
                name: a.name,
                redirect_uris: a.redirect_uris,
                post_logout_redirect_uris: a.post_logout_redirect_uris,
                auth_method,
                application_type: a.application_type.unwrap_or(ApplicationType::Web),
                grant_types,
                jwks_uri: a.jwks_uri,
                jwks,
                first_party: a.first_party,
                backchannel_logout_uri: a.backchannel_logout_uri,
                id_token_signed_response_alg: a.id_token_signed_response_alg,
                id_token_claims: !a.no_id_token_claims,
                introspection: a.introspection,
                require_mfa: a.require_mfa,
                org_id,
            };
            let (c, secret) = p.register_client(reg).await.map_err(|e| store_msg(e, ""))?;
            print_client(&c, secret.as_deref(), a.json)
        }
        ClientCommand::List { json } => {
            let list = p.stores.clients.list_clients().await?;
            if json {
                let v: Vec<serde_json::Value> = list.iter().map(|c| client_json(c, None)).collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for c in &list {
                    println!("{}  {:<30} {}", c.client_id, c.name, c.token_endpoint_auth_method);
                }
            }
            Ok(())
        }
        ClientCommand::Show { id, json } => {
            let client_id = id.get();
            let c = p.stores.clients.client(&ClientId::new(client_id.as_str())).await?;
            let c = c.ok_or_else(|| anyhow::anyhow!("no client {client_id}"))?;
            print_client(&c, None, json)
        }
        ClientCommand::Delete { id, json } => {
            let client_id = id.get();
            p.delete_client(&ClientId::new(client_id.as_str())).await.map_err(|e| store_msg(e.into(), &client_id))?;
            if json {
                println!("{}", serde_json::json!({ "deleted": client_id }));
            } else {
                println!("deleted client {client_id}");
            }
            Ok(())
        }
        ClientCommand::RotateSecret { id, json } => {
            let client_id = id.get();
            let secret = p
                .rotate_client_secret(&ClientId::new(client_id.as_str()))
                .await
                .map_err(|e| store_msg(e, &client_id))?;
            if json {
                println!("{}", serde_json::json!({ "client_id": client_id, "client_secret": secret }));
            } else {
                println!("client_secret: {secret}   (shown once: store it now)");
            }
            Ok(())
        }
    }
}
