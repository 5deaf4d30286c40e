//! One time source for every expiry, skew and window check (STYLE habit 8).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch. Protocol timestamps (JWT `exp`, `iat`) are whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    pub fn plus_secs(self, secs: i64) -> Self {
        UnixTime(self.0.saturating_add(secs))
    }
    pub fn secs_until(self, later: UnixTime) -> i64 {
        later.0.saturating_sub(self.0)
    }

    /// RFC 3339 in UTC, e.g. `2026-11-30T08:05:00Z`.
    pub fn rfc3339(self) -> String {
        let (y, m, d, rem) = self.civil();
        format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
    }

    /// For people: `2026-11-30 08:05 UTC`.
    pub fn display_utc(self) -> String {
        let (y, m, d, rem) = self.civil();
        format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60)
    }

    /// (year, month, day, seconds into the day), proleptic Gregorian (H. Hinnant's algorithm).
    pub(crate) fn civil(self) -> (i64, i64, i64, i64) {
        let (days, rem) = (self.0.div_euclid(86_400), self.0.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d, rem)
    }
}

#[cfg(test)]
mod calendar_tests {
    use super::UnixTime;

    #[test]
    fn dates() {
        assert_eq!(UnixTime(0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime(1_795_000_000).rfc3339(), "2026-11-18T11:06:40Z");
        assert_eq!(UnixTime(1_795_000_000).display_utc(), "2026-11-18 11:06 UTC");
        assert_eq!(UnixTime(951_782_400).rfc3339(), "2000-02-29T00:00:00Z");
    }
}

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> UnixTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        UnixTime(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// The wall clock shifted by an adjustable offset: tests move time forward with it
/// (expiry, throttling windows) while the rest of the system keeps running for real.
#[derive(Debug, Default, Clone)]
pub struct OffsetClock {
    offset: Arc<AtomicI64>,
}

impl OffsetClock {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> UnixTime {
        SystemClock.now().plus_secs(self.offset.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_clock_moves_forward() {
        let c = OffsetClock::new();
        let t0 = c.now();
        c.advance(3600);
        assert!(c.now().0 >= t0.0 + 3600);
    }
}
