//! Command line: `serve`, `migrate`, `user create|list`. Every command that prints data takes
//! `--json`; every failure prints one `error: ...` line and exits non-zero.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::app::{open_stores, shutdown_signal, App};
use crate::config::Settings;
use crate::domain::{Clock, SystemClock};

#[derive(Debug, Parser)]
#[command(name = "guichet", version, about = "Guichet: identity provider and SSO hub")]
pub struct Cli {
    /// Configuration file (TOML). Default: ./guichet.toml when present.
    #[arg(long, global = true, env = "GUICHET_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage OIDC signing keys.
    #[command(subcommand)]
    Keys(crate::cli_oidc::KeysCommand),
    /// Manage OAuth/OIDC clients (relying parties).
    #[command(subcommand)]
    Client(crate::cli_oidc::ClientCommand),
    /// Manage invitations.
    #[command(subcommand)]
    Invite(crate::cli_accounts::InviteCommand),
    /// Manage organizations and their members.
    #[command(subcommand)]
    Org(crate::cli_orgs::OrgCommand),
    /// Declare the permissions of a client.
    #[command(subcommand)]
    Permission(crate::cli_orgs::PermissionCommand),
    /// Manage roles (named sets of a client's permissions) and grant them to members.
    #[command(subcommand)]
    Role(crate::cli_orgs::RoleCommand),
    /// Claim and verify an organization's domains (DNS TXT record).
    #[command(subcommand)]
    Domain(crate::cli_orgs::DomainCommand),
    /// Connect organizations' identity providers (federation).
    #[command(subcommand)]
    Connection(crate::cli_federation::ConnectionCommand),
    /// Webhooks of an organization: create (the URL must echo a signed challenge), list, delete,
    /// rotate-secret, deliveries, redeliver.
    #[command(subcommand)]
    Webhook(crate::cli_webhooks::WebhookCommand),
    /// Developer keys of an organization (admin API credentials): create, list, reset, delete.
    #[command(subcommand)]
    Devkey(crate::cli_webhooks::DevkeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. Without --password-stdin the account is created pending and an activation
    /// link is mailed: the user chooses the password.
    Create(CreateUser),
    /// Issue (and mail) a new activation link for a pending account.
    ActivateLink(crate::cli_accounts::ActivateLink),
    /// Delete an account for good (personal data, credentials, sessions, grants, tokens).
    Delete(crate::cli_accounts::UserByEmail),
    /// Suspend an account: every session and refresh token ends, sign-in is refused.
    Suspend(crate::cli_accounts::UserByEmail),
    /// Resume a suspended account.
    Resume(crate::cli_accounts::UserByEmail),
    /// Remove a user's second factors and recovery codes (audited; the user is told by mail).
    MfaReset(crate::cli_accounts::UserByEmail),
    /// List users.
    List {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// At most this many users.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// Skip this many users.
        #[arg(long, default_value_t = 0)]
        offset: i64,
    },
}

#[derive(Debug, Args)]
pub struct CreateUser {
    /// Email address (trimmed, NFC; unique case-insensitively).
    #[arg(long)]
    pub email: String,
    /// Read the password from standard input (one trailing newline is removed).
    #[arg(long)]
    pub password_stdin: bool,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    /// Make the user a Guichet administrator.
    #[arg(long)]
    pub admin: bool,
    /// Print the created user as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_process_env(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let serving = matches!(cli.command, Command::Serve);
    // Held to the end of main: dropping it flushes the queued log lines.
    let _log = if serving {
        crate::telemetry::init(&settings.log)
    } else {
        crate::telemetry::init(&crate::config::LogSettings { level: "warn".into(), ..settings.log.clone() })
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the outermost context and its causes.
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match command {
        Command::Serve => {
            let app = App::build(settings, None, clock).await?;
            app.run(shutdown_signal()).await;
            Ok(())
        }
        Command::Migrate { json } => {
            let opened = open_stores(&settings, clock).await?;
            let applied = opened.applied_migrations;
            if json {
                println!("{}", serde_json::json!({ "backend": opened.stores.backend, "applied": applied }));
            } else if applied.is_empty() {
                println!("database is up to date ({})", opened.stores.backend);
            } else {
                println!("applied {} migration(s) to {}: {:?}", applied.len(), opened.stores.backend, applied);
            }
            Ok(())
        }
        Command::User(UserCommand::Create(args)) => crate::cli_accounts::create_user(args, &settings, clock).await,
        Command::User(UserCommand::ActivateLink(args)) => {
            crate::cli_accounts::activate_link(args, &settings, clock).await
        }
        Command::User(UserCommand::Delete(args)) => crate::cli_accounts::delete_user(args, &settings, clock).await,
        Command::User(UserCommand::Suspend(args)) => {
            crate::cli_accounts::suspend_user(args, true, &settings, clock).await
        }
        Command::User(UserCommand::Resume(args)) => {
            crate::cli_accounts::suspend_user(args, false, &settings, clock).await
        }
        Command::User(UserCommand::MfaReset(args)) => crate::cli_accounts::mfa_reset(args, &settings, clock).await,
        Command::Invite(cmd) => crate::cli_accounts::invite(cmd, &settings, clock).await,
        Command::Connection(cmd) => crate::cli_federation::connection(cmd, &settings, clock).await,
        Command::Webhook(cmd) => crate::cli_webhooks::webhook(cmd, &settings, clock).await,
        Command::Devkey(cmd) => crate::cli_webhooks::devkey(cmd, &settings, clock).await,
        Command::Org(cmd) => crate::cli_orgs::org(cmd, &settings, clock).await,
        Command::Permission(cmd) => crate::cli_orgs::permission(cmd, &settings, clock).await,
        Command::Role(cmd) => crate::cli_orgs::role(cmd, &settings, clock).await,
        Command::Domain(cmd) => crate::cli_orgs::domain(cmd, &settings, clock).await,
        Command::Keys(cmd) => crate::cli_oidc::keys(cmd, &settings, clock).await,
        Command::Client(cmd) => crate::cli_oidc::client(cmd, &settings, clock).await,
        Command::User(UserCommand::List { json, limit, offset }) => {
            let accounts = crate::cli_accounts::Accounts::open(&settings, clock).await?;
            let users = accounts.service.list(limit, offset).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut listed = Vec::with_capacity(users.len());
            for u in users {
                let factors = accounts.mfa.factor_kinds(u.id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                listed.push((u, factors));
            }
            if json {
                let v: Vec<serde_json::Value> = listed
                    .iter()
                    .map(|(u, f)| {
                        let mut v = serde_json::to_value(u).unwrap_or_default();
                        v["factors"] = serde_json::json!(f);
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (u, f) in &listed {
                    println!(
                        "{}  {:<40} {:<9} {}{}{}",
                        u.id,
                        u.email,
                        u.status,
                        u.name.as_deref().unwrap_or(""),
                        if u.is_admin { " [admin]" } else { "" },
                        if f.is_empty() { String::new() } else { format!(" [{}]", f.join(",")) }
                    );
                }
            }
            Ok(())
        }
    }
}

/// NIST SP 800-63B: a length rule, no composition rules.
pub fn check_password_policy(pw: &str, settings: &Settings) -> anyhow::Result<()> {
    let n = pw.chars().count();
    if n < settings.password.min_length {
        anyhow::bail!("password too short: at least {} characters", settings.password.min_length);
    }
    if pw.len() > settings.password.max_length {
        anyhow::bail!("password too long: at most {} bytes", settings.password.max_length);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every command's definition is valid (clap checks names, ids and conflicts only when a
    /// command is built: this builds them all).
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
