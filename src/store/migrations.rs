//! Schema migrations, embedded in the binary. `migrations/sqlite` and `migrations/postgres` hold
//! the same numbered steps with the same intent, each in its own dialect; a unit test checks the
//! two folders and the lists below stay in step. sqlx's migrator records them in
//! `_sqlx_migrations` (checksums, and an advisory lock on PostgreSQL so several nodes starting at
//! once apply each step exactly once).

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

pub struct Embedded {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! embed {
    ($dir:literal: $($version:literal $name:literal),* $(,)?) => {
        &[$(Embedded {
            version: $version,
            name: $name,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/", $dir, "/", stringify!($version), "_", $name, ".sql")),
        }),*]
    };
}

// File names are `<version>_<name>.sql`; versions are plain integers so they sort and parse alike.
pub const SQLITE: &[Embedded] = embed!("sqlite": 1 "init", 2 "oidc", 3 "hardening", 4 "accounts", 5 "mfa", 6 "orgs", 7 "federation", 8 "webhooks", 9 "devkeys", 10 "org_events", 11 "audit_subject", 12 "user_keys", 13 "audit_context", 14 "refresh_rotation");
pub const POSTGRES: &[Embedded] = embed!("postgres": 1 "init", 2 "oidc", 3 "hardening", 4 "accounts", 5 "mfa", 6 "orgs", 7 "federation", 8 "webhooks", 9 "devkeys", 10 "org_events", 11 "audit_subject", 12 "user_keys", 13 "audit_context", 14 "refresh_rotation");

pub fn migrator(list: &'static [Embedded]) -> Migrator {
    let migrations: Vec<Migration> = list
        .iter()
        .map(|m| Migration::new(m.version, Cow::Borrowed(m.name), MigrationType::Simple, Cow::Borrowed(m.sql), false))
        .collect();
    Migrator { migrations: Cow::Owned(migrations), ignore_missing: false, locking: true, no_tx: false }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &str) -> Vec<String> {
        let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
        let mut v: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        // By version number (10 after 9), as they are applied.
        v.sort_by_key(|n| n.split('_').next().and_then(|x| x.parse::<i64>().ok()).unwrap_or(i64::MAX));
        v
    }

    #[test]
    fn both_backends_have_the_same_steps_and_all_are_embedded() {
        let names = |l: &[Embedded]| l.iter().map(|m| format!("{}_{}.sql", m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(files("sqlite"), files("postgres"), "migration folders differ");
        assert_eq!(files("sqlite"), names(SQLITE), "a sqlite migration is not embedded");
        assert_eq!(files("postgres"), names(POSTGRES), "a postgres migration is not embedded");
    }
}
