//! CLI of an organization's developer tools: webhooks (`webhook
//! create|list|delete|rotate-secret|deliveries|redeliver`) and developer keys (`devkey
//! create|list|reset|delete`), every command with `--json`. Secrets are printed once.

use std::sync::Arc;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::cli_accounts::Accounts;
use crate::config::Settings;
use crate::domain::Clock;
use crate::orgs::Actor;
use crate::webhooks::{webhook_json, WebhookError};

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Add a webhook: the URL gets a signed validation request and must echo its `challenge` in a
    /// 2xx answer before it is saved.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        url: String,
        /// Event types (repeatable, or comma-separated), e.g. --event membership.changed.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        id: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// A new secret (printed once); the previous one still signs for a day.
    RotateSecret {
        id: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// The latest delivery attempts, newest first.
    Deliveries {
        id: String,
        #[arg(long)]
        org: String,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Send a logged delivery's event again (same event id).
    Redeliver {
        delivery: i64,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
}

fn explain(e: WebhookError) -> anyhow::Error {
    match e {
        WebhookError::Org(crate::orgs::OrgError::NotFound) => anyhow::anyhow!("no such organization"),
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

pub async fn webhook(cmd: WebhookCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let a = Accounts::open(settings, clock).await?;
    let w = &a.webhooks;
    let p = Actor::Platform;
    match cmd {
        WebhookCommand::Create { org, url, events, json } => {
            let (hook, secret) = w.create(p, &org, &url, &events).await.map_err(explain)?;
            let mut v = webhook_json(&hook);
            v["secret"] = json!(secret);
            print(json, &v, || format!("created webhook {} → {}\nsecret (shown once): {secret}", hook.id, hook.url))
        }
        WebhookCommand::List { org, json } => {
            let list = w.list(p, &org).await.map_err(explain)?;
            let v: Vec<Value> = list.iter().map(webhook_json).collect();
            print(json, &json!(v), || {
                list.iter()
                    .map(|h| format!("{}  {}  {}", h.id, h.url, h.events.join(",")))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        WebhookCommand::Delete { id, org, json } => {
            w.delete(p, &org, &id).await.map_err(explain)?;
            print(json, &json!({"id": id, "deleted": true}), || format!("deleted webhook {id}"))
        }
        WebhookCommand::RotateSecret { id, org, json } => {
            let (hook, secret) = w.rotate_secret(p, &org, &id).await.map_err(explain)?;
            let mut v = webhook_json(&hook);
            v["secret"] = json!(secret);
            print(json, &v, || format!("new secret (shown once): {secret}\nthe previous one still signs for a day"))
        }
        WebhookCommand::Deliveries { id, org, limit, json } => {
            let list = w.deliveries(p, &org, &id, limit).await.map_err(explain)?;
            print(json, &json!(list), || {
                list.iter()
                    .map(|d| {
                        let outcome = d.status.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
                        format!(
                            "{}  {}  {}  attempt {}  {}  {}",
                            d.id,
                            d.event_type,
                            d.event_id,
                            d.attempt,
                            outcome,
                            d.error.as_deref().unwrap_or("ok")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        WebhookCommand::Redeliver { delivery, org, json } => {
            w.redeliver(p, &org, delivery).await.map_err(explain)?;
            a.deliver().await;
            print(json, &json!({"delivery": delivery, "queued": true}), || format!("delivery {delivery} queued again"))
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DevkeyCommand {
    /// A new key: prints the DevKey and its DevSecret (shown once).
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        /// read or write (repeatable or comma-separated).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        #[arg(long)]
        expires_days: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    List {
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    /// A new DevSecret (printed once); the old one stops working at once.
    Reset {
        key: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
    Delete {
        key: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
    },
}

fn explain_key(e: crate::devkeys::DevKeyError) -> anyhow::Error {
    match e {
        crate::devkeys::DevKeyError::Org(crate::orgs::OrgError::NotFound) => anyhow::anyhow!("no such organization"),
        other => anyhow::anyhow!("{other}"),
    }
}

pub async fn devkey(cmd: DevkeyCommand, settings: &Settings, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    use crate::devkeys::devkey_json;
    let a = Accounts::open(settings, clock).await?;
    let k = &a.devkeys;
    let p = Actor::Platform;
    match cmd {
        DevkeyCommand::Create { org, name, scopes, expires_days, json } => {
            let (key, secret) = k.create(p, &org, &name, &scopes, expires_days).await.map_err(explain_key)?;
            let mut v = devkey_json(&key);
            v["secret"] = json!(secret);
            print(json, &v, || format!("DevKey: {}\nDevSecret (shown once): {secret}", key.id))
        }
        DevkeyCommand::List { org, json } => {
            let list = k.list(p, &org).await.map_err(explain_key)?;
            let v: Vec<Value> = list.iter().map(devkey_json).collect();
            print(json, &json!(v), || {
                list.iter()
                    .map(|x| format!("{}  {}  {}", x.id, x.scopes.join(","), x.name))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        DevkeyCommand::Reset { key, org, json } => {
            let (d, secret) = k.reset(p, &org, &key).await.map_err(explain_key)?;
            let mut v = devkey_json(&d);
            v["secret"] = json!(secret);
            print(json, &v, || format!("new DevSecret (shown once): {secret}"))
        }
        DevkeyCommand::Delete { key, org, json } => {
            k.delete(p, &org, &key).await.map_err(explain_key)?;
            print(json, &json!({"key": key, "deleted": true}), || format!("deleted key {key}"))
        }
    }
}
