//! The sign-in as a small state machine: a first factor (password, emailed link, invitation,
//! activation; a passkey with the WebAuthn work) → a second factor when the user has one and
//! the policy asks → done; or, when a second factor is required and the user has none,
//! enrolment before anything else. The state between steps (`PendingSignIn`) is kept in the
//! server-side session, so any node continues it. What the finished sign-in records — methods
//! (amr), level (acr), auth_time — is what the ID token says.

use crate::config::MfaPolicy;

use super::Amr;

/// What comes after a factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ask the second factor (the sign-in stays pending).
    SecondFactor,
    /// Signed in; a second factor must be enrolled before going on.
    Enrol,
    /// Signed in.
    Done,
}

/// The next step of a sign-in that used `amr` so far.
pub fn next_step(policy: MfaPolicy, has_factor: bool, amr: &[Amr]) -> Step {
    let second_done = amr.contains(&Amr::Otp);
    match policy {
        MfaPolicy::Off => Step::Done,
        _ if has_factor && !second_done => Step::SecondFactor,
        MfaPolicy::Required if !has_factor => Step::Enrol,
        _ => Step::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        use MfaPolicy::*;
        assert_eq!(next_step(Optional, true, &[Amr::Pwd]), Step::SecondFactor);
        assert_eq!(next_step(Optional, true, &[Amr::Email]), Step::SecondFactor);
        assert_eq!(next_step(Optional, true, &[Amr::Pwd, Amr::Otp, Amr::Mfa]), Step::Done);
        assert_eq!(next_step(Optional, false, &[Amr::Pwd]), Step::Done);
        assert_eq!(next_step(Required, false, &[Amr::Pwd]), Step::Enrol);
        assert_eq!(next_step(Required, true, &[Amr::Pwd]), Step::SecondFactor);
        assert_eq!(next_step(Off, true, &[Amr::Pwd]), Step::Done);
    }
}
