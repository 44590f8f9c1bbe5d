//! What [`SqliteStore`](super::SqliteStore) and [`PostgresStore`](super::PostgresStore)
//! share: how records become rows (JSON plus the indexed columns), and how rows and
//! errors come back.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::{
    Account, AccountWrite, Commit, CommitOutcome, Counter, CounterWrite, FlowRecord, FlowWrite,
    StoreError, Version,
};

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
fn version_to_db(v: Version) -> Option<i64> {
    i64::try_from(v.0).ok()
}

/// What a flow write puts in the database, computed before the transaction starts so
/// that the transaction only talks to the database.
pub(crate) struct FlowRow {
    pub(crate) id: String,
    /// `None`: insert. `Some(v)`: replace the row at version `v`.
    pub(crate) expected: Option<i64>,
    pub(crate) account_id: Option<String>,
    pub(crate) purge_after: time::OffsetDateTime,
    pub(crate) state: String,
    /// The lookup keys, without duplicates.
    pub(crate) keys: Vec<[u8; 32]>,
}

pub(crate) struct CounterRow {
    pub(crate) key: String,
    pub(crate) expected: Option<i64>,
    pub(crate) expires_at: time::OffsetDateTime,
    pub(crate) data: String,
}

pub(crate) struct AccountRow {
    pub(crate) id: String,
    pub(crate) expected: Option<i64>,
    pub(crate) login_id: String,
    pub(crate) email: Option<String>,
    pub(crate) member: String,
    pub(crate) data: String,
}

/// A [`Commit`] turned into rows.
pub(crate) struct Rows {
    pub(crate) flows: Vec<FlowRow>,
    pub(crate) counters: Vec<CounterRow>,
    pub(crate) accounts: Vec<AccountRow>,
}

impl Rows {
    /// Encodes every write. `Ok(None)` when a write names a version no row can have, so
    /// the commit can only be a conflict.
    pub(crate) fn new(commit: &Commit) -> Result<Option<Rows>, StoreError> {
        let mut rows = Rows {
            flows: Vec::with_capacity(commit.flows.len()),
            counters: Vec::with_capacity(commit.counters.len()),
            accounts: Vec::with_capacity(commit.accounts.len()),
        };
        for FlowWrite { expected, record } in &commit.flows {
            let expected = match expected.map(version_to_db) {
                None => None,
                Some(Some(v)) => Some(v),
                Some(None) => return Ok(None),
            };
            rows.flows.push(flow_row(record, expected)?);
        }
        for CounterWrite { expected, counter } in &commit.counters {
            let expected = match expected.map(version_to_db) {
                None => None,
                Some(Some(v)) => Some(v),
                Some(None) => return Ok(None),
            };
            rows.counters.push(counter_row(counter, expected)?);
        }
        for write in &commit.accounts {
            let (account, expected) = match write {
                AccountWrite::Create(a) => (a, None),
                AccountWrite::Update { expected, account } => match version_to_db(*expected) {
                    Some(v) => (account, Some(v)),
                    None => return Ok(None),
                },
            };
            rows.accounts.push(account_row(account, expected)?);
        }
        Ok(Some(rows))
    }
}

fn flow_row(record: &FlowRecord, expected: Option<i64>) -> Result<FlowRow, StoreError> {
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for k in record.state.lookup_keys() {
        let bytes = *k.as_bytes();
        if !keys.contains(&bytes) {
            keys.push(bytes);
        }
    }
    Ok(FlowRow {
        id: record.id.as_str().to_owned(),
        expected,
        account_id: record.state.account().map(|a| a.as_str().to_owned()),
        purge_after: record.state.purge_after(),
        state: to_json(&record.state)?,
        keys,
    })
}

fn counter_row(counter: &Counter, expected: Option<i64>) -> Result<CounterRow, StoreError> {
    Ok(CounterRow {
        key: counter.key.clone(),
        expected,
        expires_at: counter.expires_at,
        data: to_json(counter)?,
    })
}

fn account_row(account: &Account, expected: Option<i64>) -> Result<AccountRow, StoreError> {
    Ok(AccountRow {
        id: account.id.as_str().to_owned(),
        expected,
        login_id: account.login_id.as_str().to_owned(),
        email: account.email.as_ref().map(|e| e.canonical().to_owned()),
        member: account.member.as_str().to_owned(),
        data: to_json(account)?,
    })
}

/// Why a statement of a commit did not go through.
pub(crate) enum Refused {
    /// The commit cannot be applied: roll back and report this outcome.
    Outcome(CommitOutcome),
    /// The backend failed: roll back and report the error.
    Failed(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Refused::Failed(e)
    }
}

/// Maps an error of a write statement to the outcome it stands for, using `classify` on
/// database errors (constraint or code → outcome); anything else is a backend failure.
pub(crate) fn refused(
    e: sqlx::Error,
    classify: impl FnOnce(&dyn sqlx::error::DatabaseError) -> Option<CommitOutcome>,
) -> Refused {
    if let sqlx::Error::Database(db) = &e
        && let Some(outcome) = classify(db.as_ref())
    {
        return Refused::Outcome(outcome);
    }
    Refused::Failed(backend(e))
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

/// Lower-case hex, for test dumps.
#[cfg(all(feature = "testkit", feature = "sqlite"))]
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
