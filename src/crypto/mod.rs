//! Cryptographic building blocks: password hashing, opaque tokens, secrets.

pub mod keys;
pub mod password;
pub mod sealed;
pub mod secret;
pub mod tokens;

pub use password::{PasswordError, PasswordHasher, Verification};
pub use secret::SecretString;
