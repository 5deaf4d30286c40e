//! What the platform admin console asks of the accounts service beyond the account console's
//! use cases: the dashboard's tallies (sign-ins and failures per day, counts), the account
//! search, and ending every session of an account (audited). The pages call these; the
//! permission check (platform admins only) is the pages' extractor's.

use super::*;
use crate::store::{LoginDay, Totals};

/// Seconds in a day (UTC days of unix seconds).
const DAY: i64 = 86_400;

impl AccountService {
    /// Sign-ins and failures of the last `days` UTC days, today included, oldest first, one
    /// entry per day (zero for days without any). Failures counted are those of existing
    /// accounts: the history keeps no entry for an address without an account.
    pub async fn sign_in_days(&self, days: u32) -> AccountResult<Vec<LoginDay>> {
        let days = i64::from(days.clamp(1, 90));
        let today = self.clock.now().0.div_euclid(DAY) * DAY;
        let since = UnixTime(today - (days - 1) * DAY);
        let found = self.stores.stats.login_days(since).await?;
        Ok((0..days)
            .map(|i| {
                let day = since.plus_secs(i * DAY);
                found.iter().find(|d| d.day == day).copied().unwrap_or(LoginDay { day, succeeded: 0, failed: 0 })
            })
            .collect())
    }

    /// How many accounts of each status, organizations, clients and connections there are.
    pub async fn totals(&self) -> AccountResult<Totals> {
        Ok(self.stores.stats.totals().await?)
    }

    /// Accounts whose address or name contains `query`, optionally of one status, by address:
    /// a page of `per_page` (page 1 first) and how many match in all.
    pub async fn find_users(
        &self,
        query: &str,
        status: Option<UserStatus>,
        page: i64,
        per_page: i64,
    ) -> AccountResult<(Vec<User>, i64)> {
        let per_page = per_page.clamp(1, 200);
        let offset = page.max(1).saturating_sub(1).saturating_mul(per_page);
        let query: String = query.trim().chars().take(200).collect();
        Ok(self.stores.stats.find_users(&query, status, per_page, offset).await?)
    }
}

impl OidcProvider {
    /// Every registered client (the platform admin's list), by name.
    pub async fn all_clients(&self) -> Result<Vec<crate::domain::Client>, StoreError> {
        let mut list = self.stores.clients.list_clients().await?;
        list.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then_with(|| a.client_id.as_str().cmp(b.client_id.as_str()))
        });
        Ok(list)
    }
}
