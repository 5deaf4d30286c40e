//! Guichet: identity provider and SSO hub. See docs/ARCHITECTURE.md for the module map.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accounts;
pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod cli_accounts;
pub mod cli_federation;
pub mod cli_oidc;
pub mod cli_orgs;
pub mod cli_webhooks;
pub mod config;
pub mod crypto;
pub mod devkeys;
pub mod dns;
pub mod domain;
pub mod events;
pub mod federation;
#[doc(hidden)]
pub mod fuzzing;
pub mod i18n;
pub mod mail;
pub mod net;
pub mod oidc;
pub mod orgs;
pub mod render;
pub mod store;
pub mod telemetry;
pub mod web;

pub use app::App;
pub use config::Settings;
pub mod webhooks;
