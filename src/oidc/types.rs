//! Protocol values parsed once at the edge (STYLE habit 2).

use std::collections::BTreeSet;
use std::fmt;

/// A set of scope tokens (RFC 6749 §3.3): order-insensitive, duplicates collapse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// The space-separated form (what `to_string` gives, without the formatting machinery: it
    /// is made twice per token response).
    pub fn joined(&self) -> String {
        let mut out = String::with_capacity(self.0.iter().map(|s| s.len() + 1).sum());
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(s);
        }
        out
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for t in raw.split(' ').filter(|t| !t.is_empty()) {
            // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
            if !t.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
                return Err(format!("invalid scope token {t:?}"));
            }
            set.insert(t.to_owned());
        }
        Ok(Self(set))
    }
    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    pub fn retain(&mut self, f: impl Fn(&str) -> bool) {
        self.0.retain(|s| f(s));
    }
    pub fn insert(&mut self, s: &str) {
        self.0.insert(s.to_owned());
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.joined())
    }
}

/// Scopes this provider knows. Others requested by a client are ignored (RFC 6749 §3.3 lets
/// the server grant less than asked), except that an *unknown* scope in client_credentials is
/// refused with invalid_scope.
pub const SUPPORTED_SCOPES: &[&str] =
    &["openid", "profile", "email", "phone", "address", "offline_access", "resources", "org", "roles"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

impl ResponseMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "query" => Some(ResponseMode::Query),
            "form_post" => Some(ResponseMode::FormPost),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    None,
    Login,
    Consent,
    SelectAccount,
}

impl Prompt {
    pub fn parse_list(raw: &str) -> Result<Vec<Prompt>, String> {
        let mut out = Vec::new();
        for p in raw.split(' ').filter(|p| !p.is_empty()) {
            let v = match p {
                "none" => Prompt::None,
                "login" => Prompt::Login,
                "consent" => Prompt::Consent,
                "select_account" => Prompt::SelectAccount,
                other => return Err(format!("unsupported prompt value {other:?}")),
            };
            if !out.contains(&v) {
                out.push(v);
            }
        }
        if out.contains(&Prompt::None) && out.len() > 1 {
            return Err("prompt=none cannot be combined with other values".into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_parsing() {
        let s = Scope::parse("openid  email openid profile").unwrap();
        assert_eq!(s.to_string(), "email openid profile");
        assert!(Scope::parse("openid \"bad").is_err());
        assert!(Scope::parse("email").unwrap().is_subset(&s));
    }

    #[test]
    fn prompt_parsing() {
        assert_eq!(Prompt::parse_list("login consent").unwrap(), vec![Prompt::Login, Prompt::Consent]);
        assert!(Prompt::parse_list("none login").is_err());
        assert!(Prompt::parse_list("sometimes").is_err());
    }
}
