//! The SQL layer [`SqliteStore`](super::SqliteStore) and
//! [`PostgresStore`](super::PostgresStore) share.
//!
//! - [`read`]: every lookup is one [`Load`](crate::ports::Load), sent to the database as
//!   one JSON request and answered by **one statement** of the dialect with one JSON
//!   document, decoded here into typed records.
//! - [`write`]: a [`Commit`](crate::ports::Commit) encoded into rows (JSON plus the
//!   indexed columns), and how refusals map to outcomes.
//! - [`dialect`]: what a backend supplies (its read statement, how it applies rows,
//!   how it purges) and the [`Store`](crate::ports::Store) implementation built on it.
//!
//! The backends keep only what differs: connection setup, SQL text, time encoding and
//! error codes.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::{CommitOutcome, StoreError, Version};

pub(crate) mod dialect;
pub(crate) mod read;
pub(crate) mod write;

pub(crate) use dialect::{Claim, Dead, Dialect, MailRead, impl_store};
#[cfg(feature = "postgres")]
pub(crate) use write::outcome_named;
pub(crate) use write::{Refused, Rows, refused};

/// A stored row that cannot be what the store wrote (negative version, wrong-sized
/// digest …). Wrapped in [`StoreError::Corrupt`].
#[derive(Debug, thiserror::Error)]
#[error("malformed stored row: {0}")]
pub(crate) struct MalformedRow(pub(crate) &'static str);

/// A backend failure, keeping `sqlx::Error` reachable through `source()`.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

pub(crate) fn corrupt(what: &'static str) -> StoreError {
    StoreError::Corrupt(Box::new(MalformedRow(what)))
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

/// A version read from a `BIGINT` column.
pub(crate) fn version_from_db(v: i64) -> Result<Version, StoreError> {
    u64::try_from(v)
        .ok()
        .filter(|v| *v >= Version::FIRST.0)
        .map(Version)
        .ok_or_else(|| corrupt("version out of range"))
}

/// A version to compare with a `BIGINT` column; `None` when no stored row can have it
/// (so the compare-and-set can only fail).
pub(crate) fn version_to_db(v: Version) -> Option<i64> {
    i64::try_from(v.0).ok()
}

/// Which account outcome a unique violation on `name` (a constraint or column name)
/// stands for: anything but the three account keys is a conflict on an identifier.
pub(crate) fn unique_outcome(name: &str) -> CommitOutcome {
    if !name.starts_with("kenpo_accounts") {
        CommitOutcome::Conflict
    } else if name.contains("login_id") {
        CommitOutcome::LoginIdTaken
    } else if name.contains("email") {
        CommitOutcome::EmailTaken
    } else if name.contains("member") {
        CommitOutcome::MemberTaken
    } else {
        CommitOutcome::Conflict
    }
}

/// Implements a store's `Debug`: its name and how many connections its pool holds
/// (never a record or a URL with a password).
macro_rules! debug_store {
    ($store:ident) => {
        impl std::fmt::Debug for $store {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($store))
                    .field("connections", &self.pool.size())
                    .finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use debug_store;

/// Lower-case hex, for digests in JSON and test dumps.
pub(crate) fn hex(bytes: &[u8]) -> String {
    crate::model::hex(bytes)
}

/// The embedded migrations of one backend, recorded in `kenpo_auth_migrations` so they
/// never mix with a host's own sqlx migrations in the same database.
pub(crate) fn migrator(files: &[(i64, &'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let migrations = files
        .iter()
        .map(|(version, description, sql)| {
            Migration::new(
                *version,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    let mut m = Migrator::with_migrations(migrations);
    m.dangerous_set_table_name("kenpo_auth_migrations");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    // DESIGN §4: each unique key maps to its own outcome; anything else is a conflict.
    #[test]
    fn unique_violations_map_to_their_outcome() {
        let table = [
            ("kenpo_accounts_login_id_key", CommitOutcome::LoginIdTaken),
            ("kenpo_accounts.login_id", CommitOutcome::LoginIdTaken),
            ("kenpo_accounts_email_key", CommitOutcome::EmailTaken),
            ("kenpo_accounts.email", CommitOutcome::EmailTaken),
            ("kenpo_accounts_member_key", CommitOutcome::MemberTaken),
            ("kenpo_accounts.member", CommitOutcome::MemberTaken),
            ("kenpo_accounts_pkey", CommitOutcome::Conflict),
            ("kenpo_accounts.id", CommitOutcome::Conflict),
            ("kenpo_flow_keys_pkey", CommitOutcome::Conflict),
            ("kenpo_flow_keys.digest", CommitOutcome::Conflict),
            ("kenpo_counters.key", CommitOutcome::Conflict),
        ];
        for (name, outcome) in table {
            assert_eq!(unique_outcome(name), outcome, "{name}");
        }
    }

    // A corrupted version column is reported as corruption, never as a version.
    #[test]
    fn versions_below_one_are_corrupt() {
        assert_eq!(version_from_db(1).unwrap(), Version::FIRST);
        assert!(matches!(version_from_db(0), Err(StoreError::Corrupt(_))));
        assert!(matches!(version_from_db(-5), Err(StoreError::Corrupt(_))));
        assert_eq!(version_to_db(Version(u64::MAX)), None);
    }
}
