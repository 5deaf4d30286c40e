//! Domain names an organisation can claim ("parse, don't validate").
//!
//! Normalised once: surrounding white space trimmed, one trailing dot dropped, lowercase ASCII.
//! Internationalised names are kept in their A-label form (`bücher.example` becomes
//! `xn--bcher-kva.example`, through the IDNA processing of the `url` crate). What is left must
//! be a host name (RFC 1123): at least two labels, each 1 to 63 letters, digits or hyphens, not
//! starting or ending with a hyphen, 253 characters in all, and the last label not all digits
//! (an IP address is not a domain).

use std::fmt;
use std::str::FromStr;

/// The label under which an organisation publishes its verification TXT record.
pub const CHALLENGE_LABEL: &str = "_guichet-challenge";

/// Longest input looked at (a valid name is at most 253 characters; U-labels take more bytes).
const MAX_INPUT_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("domain name is empty")]
    Empty,
    #[error("domain name is too long (at most 253 characters)")]
    TooLong,
    #[error("an IP address is not a domain name")]
    IpAddress,
    #[error("a domain name has at least two labels, such as example.com")]
    SingleLabel,
    #[error("invalid label {0:?}: 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen")]
    BadLabel(String),
    #[error("the last label of a domain name cannot be all digits")]
    NumericTld,
    #[error("not a valid domain name")]
    Invalid,
}

/// A normalised domain name: lowercase ASCII (A-labels), no trailing dot.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(DomainError::Empty);
        }
        if s.len() > MAX_INPUT_BYTES {
            return Err(DomainError::TooLong);
        }
        // `url::Host::parse` percent-decodes and takes bracketed IPv6: neither is a domain name.
        if s.contains(['%', '[', ']']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::Invalid);
        }
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Err(DomainError::Empty);
        }
        let ascii = if s.is_ascii() && !s.split('.').any(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case("xn--")) {
            s.to_ascii_lowercase()
        } else {
            // U-labels to A-labels (UTS #46, non-transitional); A-labels are checked to decode.
            match url::Host::parse(s) {
                Ok(url::Host::Domain(d)) => d,
                Ok(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => return Err(DomainError::IpAddress),
                Err(_) => return Err(DomainError::Invalid),
            }
        };
        Self::check_ascii(ascii)
    }

    fn check_ascii(name: String) -> Result<Self, DomainError> {
        if name.len() > 253 {
            return Err(DomainError::TooLong);
        }
        let labels: Vec<&str> = name.split('.').collect();
        let all_digits = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit());
        if labels.len() == 4 && labels.iter().all(|l| all_digits(l)) {
            return Err(DomainError::IpAddress);
        }
        for label in &labels {
            let ok = (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(DomainError::BadLabel((*label).to_owned()));
            }
        }
        if labels.len() < 2 {
            return Err(DomainError::SingleLabel);
        }
        if labels.last().is_some_and(|l| all_digits(l)) {
            return Err(DomainError::NumericTld);
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The name of the TXT record that proves ownership: `_guichet-challenge.<domain>`.
    pub fn challenge_name(&self) -> String {
        format!("{CHALLENGE_LABEL}.{}", self.0)
    }
}

impl FromStr for DomainName {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for DomainName {
    type Error = DomainError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<DomainName> for String {
    fn from(d: DomainName) -> Self {
        d.0
    }
}

impl AsRef<str> for DomainName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str) -> String {
        DomainName::parse(raw).unwrap_or_else(|e| panic!("{raw:?}: {e}")).into_string()
    }

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(ok("o1.test"), "o1.test");
        assert_eq!(ok("example.com"), "example.com");
        assert_eq!(ok("sub.example.co.uk"), "sub.example.co.uk");
        assert_eq!(ok("  Example.COM.  "), "example.com");
        assert_eq!(ok("a-b.c0m"), "a-b.c0m");
        assert_eq!(ok("123.example"), "123.example");
        assert_eq!(ok("ab--cd.example"), "ab--cd.example");
        assert_eq!(ok(&format!("{}.com", "a".repeat(63))), format!("{}.com", "a".repeat(63)));
    }

    #[test]
    fn idns_become_a_labels() {
        assert_eq!(ok("Bücher.example"), "xn--bcher-kva.example");
        assert_eq!(ok("xn--bcher-kva.example"), "xn--bcher-kva.example");
        assert_eq!(ok("XN--BCHER-KVA.Example"), "xn--bcher-kva.example");
        assert_eq!(ok("straße.de"), "xn--strae-oqa.de");
        assert_eq!(DomainName::parse("xn--zz.example"), Err(DomainError::Invalid));
    }

    #[test]
    fn rejects() {
        let long = format!("{0}.{0}.{0}.{0}.{0}.com", "a".repeat(60));
        for (bad, want) in [
            ("", DomainError::Empty),
            ("  ", DomainError::Empty),
            (".", DomainError::Empty),
            ("localhost", DomainError::SingleLabel),
            ("com.", DomainError::SingleLabel),
            ("example.com..", DomainError::BadLabel(String::new())),
            ("a..b", DomainError::BadLabel(String::new())),
            (".example.com", DomainError::BadLabel(String::new())),
            ("-a.com", DomainError::BadLabel("-a".into())),
            ("a-.com", DomainError::BadLabel("a-".into())),
            ("a_b.example", DomainError::BadLabel("a_b".into())),
            ("_guichet-challenge.example.com", DomainError::BadLabel("_guichet-challenge".into())),
            ("*.example.com", DomainError::BadLabel("*".into())),
            ("a/b.com", DomainError::BadLabel("a/b".into())),
            ("user@example.com", DomainError::BadLabel("user@example".into())),
            (&format!("{}.com", "a".repeat(64)), DomainError::BadLabel("a".repeat(64))),
            (&long, DomainError::TooLong),
            ("192.0.2.1", DomainError::IpAddress),
            ("1.2.3", DomainError::NumericTld),
            ("example.123", DomainError::NumericTld),
            ("ex%61mple.com", DomainError::Invalid),
            ("[::1]", DomainError::Invalid),
            ("ex ample.com", DomainError::Invalid),
            ("exa\u{0}mple.com", DomainError::Invalid),
            ("bü cher.example", DomainError::Invalid),
        ] {
            assert_eq!(DomainName::parse(bad), Err(want), "{bad:?}");
        }
        assert!(DomainName::parse(&"a".repeat(2000)).is_err());
    }

    #[test]
    fn challenge_name_and_serde() {
        let d = DomainName::parse("Example.com").unwrap();
        assert_eq!(d.challenge_name(), "_guichet-challenge.example.com");
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"example.com\"");
        let back: DomainName = serde_json::from_str("\"EXAMPLE.com.\"").unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<DomainName>("\"localhost\"").is_err());
        assert_eq!("o1.test".parse::<DomainName>().unwrap().to_string(), "o1.test");
    }
}
