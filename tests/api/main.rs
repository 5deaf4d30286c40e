//! One black-box test binary (STYLE habit 7). Each module is one feature.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account_console;
mod account_links;
mod accounts;
mod admin_api;
mod cli;
mod devkey_pages;
mod dns;
mod dns_server;
mod events;
mod federation;
mod hardening;
mod helpers;
mod login;
mod mfa;
mod multi_node;
mod oidc_authorize;
mod oidc_helpers;
mod oidc_interop;
mod oidc_keys;
mod oidc_logout;
mod oidc_resources;
mod oidc_token;
mod ops;
mod org_pages;
mod orgs;
mod outbound;
mod saml;
mod saml_idp;
mod saml_pages;
mod store_contract;
mod store_contract_oidc;
mod throttle;
mod webhook_pages;
mod webhooks;
