//! Password policy after NIST SP 800-63B §5.1.1.2: a minimum length (8 by default), no
//! composition rules, and refusal of passwords found in a list of common and breached ones
//! (`src/crypto/common-passwords.txt`, 167 000 entries, see its LICENSE file), compared after
//! NFC and lowercasing. The list is embedded and searched in place (binary search over its
//! sorted lines): no allocation, nothing loaded at start.

use unicode_normalization::UnicodeNormalization;

const COMMON: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/crypto/common-passwords.txt"));

/// Why a new password is refused (catalogue keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyError {
    TooShort,
    TooLong,
    Common,
    LikeEmail,
}

impl PolicyError {
    pub fn key(self) -> &'static str {
        match self {
            PolicyError::TooShort => "password.too_short",
            PolicyError::TooLong => "password.too_long",
            PolicyError::Common => "password.common",
            PolicyError::LikeEmail => "password.like_email",
        }
    }
}

/// The line of `COMMON` that starts at or before `pos`.
fn line_at(pos: usize) -> (usize, &'static [u8]) {
    let start = COMMON[..pos].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let end = COMMON[start..].iter().position(|&b| b == b'\n').map_or(COMMON.len(), |i| start + i);
    (start, &COMMON[start..end])
}

/// Whether the password (normalised) is on the list.
pub fn is_common(password: &str) -> bool {
    let needle: String = password.trim().nfc().collect::<String>().to_lowercase();
    let needle = needle.as_bytes();
    let (mut lo, mut hi) = (0usize, COMMON.len());
    // Invariant: every line starting before `lo` is < needle; every line starting at or after
    // `hi` is > needle.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let (start, line) = line_at(mid);
        match line.cmp(needle) {
            std::cmp::Ordering::Equal => return true,
            std::cmp::Ordering::Less => lo = start + line.len() + 1,
            std::cmp::Ordering::Greater => hi = start,
        }
    }
    false
}

pub fn list_len() -> usize {
    COMMON.iter().filter(|&&b| b == b'\n').count()
}

pub fn check(password: &str, email: &str, min_chars: usize, max_bytes: usize) -> Result<(), PolicyError> {
    if password.chars().count() < min_chars {
        return Err(PolicyError::TooShort);
    }
    if password.len() > max_bytes {
        return Err(PolicyError::TooLong);
    }
    let lower = password.trim().to_lowercase();
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or("");
    if lower == email || (!local.is_empty() && lower == local) {
        return Err(PolicyError::LikeEmail);
    }
    if is_common(password) {
        return Err(PolicyError::Common);
    }
    Ok(())
}

/// A rough strength score 0..=4 for the meter (a hint, never a rule): length and variety of
/// characters, 0 for listed passwords.
pub fn strength(password: &str) -> u8 {
    if password.is_empty() || is_common(password) {
        return 0;
    }
    let n = password.chars().count();
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_numeric()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    let distinct = {
        let mut v: Vec<char> = password.chars().collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let score = match n {
        0..=7 => 0,
        8..=10 => 1,
        11..=14 => 2,
        15..=19 => 3,
        _ => 4,
    } + usize::from(classes >= 3 && n >= 10);
    let score = if distinct * 2 < n { score.saturating_sub(1) } else { score };
    u8::try_from(score.min(4)).unwrap_or(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_large_sorted_and_searchable() {
        assert!(list_len() >= 100_000, "{}", list_len());
        let lines: Vec<&[u8]> = COMMON.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        for p in ["password", "123456", "qwerty", "iloveyou", "PassWord", "  trustno1 "] {
            assert!(is_common(p), "{p}");
        }
        // Every listed entry is found (first, last and a sample).
        for l in [lines[0], lines[lines.len() - 1], lines[lines.len() / 3], lines[lines.len() / 2]] {
            assert!(is_common(std::str::from_utf8(l).unwrap()));
        }
        for p in ["correct horse battery staple 42", "zz-not-a-listed-password-zz", ""] {
            assert!(!is_common(p) || p.is_empty(), "{p}");
        }
    }

    #[test]
    fn policy() {
        assert_eq!(check("short", "a@b.c", 8, 4096), Err(PolicyError::TooShort));
        assert_eq!(check("password123", "a@b.c", 8, 4096), Err(PolicyError::Common));
        assert_eq!(check("alice.martin@example.com", "Alice.Martin@example.com", 8, 4096), Err(PolicyError::LikeEmail));
        assert_eq!(check(&"x".repeat(5000), "a@b.c", 8, 4096), Err(PolicyError::TooLong));
        assert_eq!(check("plain words but long enough", "a@b.c", 8, 4096), Ok(()));
        assert!(strength("password") == 0);
        assert!(strength("Tr0ub4dor&3x") >= 2);
        assert!(strength("correct horse battery staple") >= 3);
    }
}
