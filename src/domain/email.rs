//! Email addresses, parsed once ("parse, don't validate").
//!
//! Normalisation: surrounding white space trimmed, Unicode NFC. The address is kept as the
//! user typed it (after that) for display and mail; uniqueness and look-ups use
//! [`Email::lookup_key`], the NFC lowercase form, so `Alice@Example.com` and
//! `alice@example.com` are the same account.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address is too long (at most 254 characters)")]
    TooLong,
    #[error("email address must look like name@domain")]
    Malformed,
}

#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let s: String = raw.trim().nfc().collect();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.chars().count() > 254 {
            return Err(EmailError::TooLong);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(EmailError::Malformed)?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"".contains(c);
        if local.is_empty()
            || local.chars().count() > 64
            || local.chars().any(bad_char)
            || local.contains('@')
            || domain.is_empty()
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || !domain.contains('.')
            || domain.chars().any(|c| bad_char(c) || c == '@')
        {
            return Err(EmailError::Malformed);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes addresses unique: NFC, then Unicode lowercase.
    pub fn lookup_key(&self) -> String {
        lookup_key(&self.0)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

/// Look-up key for any raw input, valid address or not (login throttling keys on it, so an
/// unknown or malformed address is throttled exactly like a known one).
pub fn lookup_key(raw: &str) -> String {
    raw.trim().nfc().collect::<String>().to_lowercase()
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_case_for_display() {
        let e = Email::parse("  Alice@Example.COM \n").unwrap();
        assert_eq!(e.as_str(), "Alice@Example.COM");
        assert_eq!(e.lookup_key(), "alice@example.com");
        assert_eq!(e.domain(), "Example.COM");
    }

    #[test]
    fn nfc_makes_composed_and_decomposed_equal() {
        let composed = Email::parse("h\u{e9}l\u{e8}ne@example.fr").unwrap();
        let decomposed = Email::parse("he\u{301}le\u{300}ne@example.fr").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(composed.lookup_key(), decomposed.lookup_key());
        assert_eq!(Email::parse("HÉLÈNE@example.fr").unwrap().lookup_key(), composed.lookup_key());
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "   ",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@example.com",
            "alice@exa..mple.com",
            "alice@.example.com",
            "<a>@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(Email::parse(&format!("{}@example.com", "a".repeat(250))), Err(EmailError::TooLong));
    }
}
