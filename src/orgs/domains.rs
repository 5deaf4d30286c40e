//! Verified domains: an organization claims a domain and proves it by publishing a TXT record
//! `_guichet-challenge.<domain>` whose value is the claim's random challenge. Checked on demand
//! and by an outbox job written with the claim (retried with backoff, at most `[dns]
//! recheck_interval_secs` apart, for a week; any node runs it). A domain is
//! verified by one organization at most (the store's unique index decides a race).

use async_trait::async_trait;

use super::{Actor, OrgError, OrgResult, OrgService};
use crate::crypto::tokens;
use crate::domain::account::{AccountOp, DomainCheckJob, OutboxMessage};
use crate::domain::org::{Org, OrgDomain, OrgRole};
use crate::domain::DomainName;
use crate::store::StoreError;

/// TXT look-ups (the DNS resolver; tests point it at a server on loopback).
#[async_trait]
pub trait TxtResolver: Send + Sync {
    /// The TXT strings at `name`; empty when there is none; Err when DNS could not answer.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String>;
}

#[async_trait]
impl TxtResolver for crate::dns::Resolver {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        crate::dns::Resolver::txt(self, name).await.map_err(|e| e.to_string())
    }
}

/// A claim's first check is this long after it (at most).
const FIRST_CHECK_SECS: u64 = 60;
/// A claim is checked by its job for a week; then only on demand.
const DOMAIN_CHECK_DAYS: i64 = 7;

/// Prefix of the challenge value, so the record says what it is for.
const CHALLENGE_PREFIX: &str = "guichet-verification=";

impl OrgService {
    /// Claims `domain` for the organization; the returned claim says which TXT record to
    /// publish. Refused when another organization verified it already.
    pub async fn add_domain(&self, actor: Actor, org_ref: &str, domain: &str) -> OrgResult<(Org, OrgDomain)> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let name = DomainName::parse(domain).map_err(|_| OrgError::DomainInvalid(domain.trim().to_owned()))?;
        if let Some(owner) = self.stores.orgs.verified_owner(name.as_str()).await? {
            if owner.id != org.id {
                return Err(OrgError::DomainTaken(name.to_string()));
            }
        }
        let d = OrgDomain {
            org: org.id,
            domain: name.to_string(),
            challenge: format!("{CHALLENGE_PREFIX}{}", tokens::random_token()),
            verified_at: None,
            last_checked_at: None,
            last_error: None,
            created_at: self.clock.now(),
        };
        // The claim, the job that checks it until it is verified, and the audit entry: together.
        let job = OutboxMessage::DomainCheck(DomainCheckJob {
            org: org.id,
            domain: d.domain.clone(),
            claimed_at: d.created_at.0,
        });
        // The first check gives the admin time to publish the record.
        let first = i64::try_from(self.recheck_interval_secs().min(FIRST_CHECK_SECS)).unwrap_or(60);
        let mut then = vec![AccountOp::EnqueueAt(job, self.clock.now().plus_secs(first))];
        then.extend(
            self.audit_ops("org.domain_added", org.id, actor, Some(serde_json::json!({"domain": d.domain}))).await,
        );
        let has_event = crate::webhooks::has_event(&then);
        match self.stores.orgs.add_domain(&d, then).await {
            Err(StoreError::Conflict { .. }) => return Err(OrgError::DomainClaimed(d.domain)),
            r => r?,
        }
        self.after_commit(true, has_event, org.id);
        tracing::info!(org = %org.id, domain = %d.domain, "domain claimed");
        Ok((org, d))
    }

    pub async fn domains(&self, actor: Actor, org_ref: &str) -> OrgResult<(Org, Vec<OrgDomain>)> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let list = self.stores.orgs.domains(org.id).await?;
        Ok((org, list))
    }

    pub async fn remove_domain(&self, actor: Actor, org_ref: &str, domain: &str) -> OrgResult<()> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let name = DomainName::parse(domain).map_err(|_| OrgError::NotFound)?;
        if !self.stores.orgs.remove_domain(org.id, name.as_str()).await? {
            return Err(OrgError::NotFound);
        }
        self.audit("org.domain_removed", &org, actor, Some(serde_json::json!({"domain": name.as_str()}))).await;
        Ok(())
    }

    /// Checks the TXT record now; returns the claim as it stands after the check (verified, or
    /// with the reason it is not).
    pub async fn verify_domain(&self, actor: Actor, org_ref: &str, domain: &str) -> OrgResult<OrgDomain> {
        let org = self.authorize(actor, org_ref, OrgRole::Admin).await?;
        let name = DomainName::parse(domain).map_err(|_| OrgError::NotFound)?;
        let claim = self.stores.orgs.domain(org.id, name.as_str()).await?.ok_or(OrgError::NotFound)?;
        let verified_before = claim.verified();
        let after = self.check_claim(&claim).await?;
        if after.verified() && !verified_before {
            self.audit("org.domain_verified", &org, actor, Some(serde_json::json!({"domain": after.domain}))).await;
        }
        Ok(after)
    }

    /// One check of one claim: looks the record up and records the outcome.
    async fn check_claim(&self, claim: &OrgDomain) -> OrgResult<OrgDomain> {
        let now = self.clock.now();
        let outcome = match self.resolver.txt(&claim.record_name()).await {
            Err(e) => Err(format!("DNS lookup failed: {e}")),
            Ok(values) if values.is_empty() => Err(format!("no TXT record at {}", claim.record_name())),
            Ok(values) => {
                let want = claim.challenge.as_bytes();
                if values.iter().any(|v| tokens::constant_time_eq(v.trim().as_bytes(), want)) {
                    Ok(())
                } else {
                    Err(format!("the TXT record at {} does not hold the expected value", claim.record_name()))
                }
            }
        };
        match outcome {
            Ok(()) => match self.stores.orgs.domain_checked(claim.org, &claim.domain, true, None, now).await {
                Err(StoreError::Conflict { .. }) => {
                    let msg = "verified by another organization first";
                    self.stores.orgs.domain_checked(claim.org, &claim.domain, false, Some(msg), now).await?;
                    return Err(OrgError::DomainTaken(claim.domain.clone()));
                }
                r => r?,
            },
            Err(reason) => {
                tracing::info!(org = %claim.org, domain = %claim.domain, %reason, "domain not verified");
                self.stores.orgs.domain_checked(claim.org, &claim.domain, false, Some(&reason), now).await?;
            }
        }
        self.stores.orgs.domain(claim.org, &claim.domain).await?.ok_or(OrgError::NotFound)
    }

    /// One run of a claim's check job (the outbox worker's): done when the claim is verified,
    /// gone, taken by another organization, or a week old (the claim stays pending; "Verify"
    /// still checks it); else an error, and the job runs again after a backoff capped at
    /// `[dns] recheck_interval_secs` ([`crate::mail::RetryAfter`]).
    pub async fn run_domain_check(&self, job: &DomainCheckJob, attempts: i64) -> anyhow::Result<()> {
        let Some(claim) = self.stores.orgs.domain(job.org, &job.domain).await? else { return Ok(()) };
        if claim.verified() {
            return Ok(());
        }
        let after = match self.check_claim(&claim).await {
            Ok(d) => d,
            Err(OrgError::DomainTaken(_)) => return Ok(()),
            Err(e) => return Err(anyhow::anyhow!("{e}")),
        };
        if after.verified() {
            tracing::info!(org = %after.org, domain = %after.domain, attempts, "domain verified by its check job");
            if let Some(org) = self.stores.orgs.org(after.org).await? {
                self.audit(
                    "org.domain_verified",
                    &org,
                    Actor::Platform,
                    Some(serde_json::json!({"domain": after.domain})),
                )
                .await;
            }
            return Ok(());
        }
        if self.clock.now().0 - job.claimed_at > DOMAIN_CHECK_DAYS * 86_400 {
            tracing::info!(org = %after.org, domain = %after.domain, "domain still not verified after a week: checks stop");
            return Ok(());
        }
        let cap = i64::try_from(self.recheck_interval_secs()).unwrap_or(3600);
        let wait = crate::mail::backoff_secs(attempts).min(cap.max(1));
        Err(anyhow::Error::new(crate::mail::RetryAfter(wait)).context(after.last_error.unwrap_or_default()))
    }
}

// ---------------------------------------------------------------------- managed accounts

impl OrgService {
    /// The organization that manages `user`: the one that verified the domain of their address,
    /// when they are its member (an address of a verified domain alone is not enough, nor is
    /// membership alone).
    pub async fn managing_org(&self, user: &crate::domain::User) -> OrgResult<Option<Org>> {
        let super::Realm::Org { org } = self.realm_of(user.email.as_str()).await? else { return Ok(None) };
        Ok(self.stores.orgs.membership(org.id, user.id).await?.map(|_| org))
    }

    /// The members of `org` it manages (their address is of one of its verified domains).
    pub async fn managed_members(&self, org: crate::domain::OrgId) -> OrgResult<Vec<crate::domain::UserId>> {
        let verified: Vec<String> =
            self.stores.orgs.domains(org).await?.into_iter().filter(|d| d.verified()).map(|d| d.domain).collect();
        if verified.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .stores
            .orgs
            .members(org)
            .await?
            .into_iter()
            .filter(|m| {
                m.email.rsplit_once('@').is_some_and(|(_, d)| verified.iter().any(|v| v.eq_ignore_ascii_case(d)))
            })
            .map(|m| m.user_id)
            .collect())
    }

    /// The organizations `user` administers (admin or owner).
    pub async fn administered_by(&self, user: crate::domain::UserId) -> OrgResult<Vec<Org>> {
        Ok(self
            .stores
            .orgs
            .memberships_of(user)
            .await?
            .into_iter()
            .filter(|m| m.role >= OrgRole::Admin)
            .map(|m| m.org)
            .collect())
    }
}
