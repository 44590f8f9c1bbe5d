//! Writes: a [`Commit`] encoded into the rows a backend writes, and how a refused
//! statement becomes an outcome.
//!
//! [`Rows`] also serialize as the JSON document a backend can apply in one statement
//! (PostgreSQL's `kenpo_commit_with_mails` around `kenpo_commit`, see
//! `migrations/postgres/0002_kenpo_commit.sql` and `0004_kenpo_outbox.sql`):
//! timestamps as RFC 3339 rounded up to the microsecond, digests as lower-case hex,
//! record JSON as text.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use super::{backend, to_json, version_to_db};
use crate::model::{Delivery, Expect, OutboxMail};
use crate::ports::{Account, Commit, CommitOutcome, Counter, FlowRecord, StoreError, Version};

/// What a flow write puts in the database, computed before the transaction starts so
/// that the transaction only talks to the database.
#[derive(Serialize)]
pub(crate) struct FlowRow {
    pub(crate) id: String,
    /// `None`: insert. `Some(v)`: replace the row at version `v`.
    pub(crate) expected: Option<i64>,
    pub(crate) account_id: Option<String>,
    #[serde(serialize_with = "micros_up")]
    pub(crate) purge_after: OffsetDateTime,
    pub(crate) state: String,
    /// The lookup keys, without duplicates.
    #[serde(serialize_with = "hex_keys")]
    pub(crate) keys: Vec<[u8; 32]>,
}

#[derive(Serialize)]
pub(crate) struct CounterRow {
    pub(crate) key: String,
    pub(crate) expected: Option<i64>,
    #[serde(serialize_with = "micros_up")]
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) data: String,
}

#[derive(Serialize)]
pub(crate) struct AccountRow {
    pub(crate) id: String,
    pub(crate) expected: Option<i64>,
    pub(crate) login_id: String,
    pub(crate) email: Option<String>,
    pub(crate) member: String,
    pub(crate) data: String,
}

/// What an outbox write puts in the database.
#[derive(Serialize)]
pub(crate) struct MailRow {
    pub(crate) id: String,
    pub(crate) expected: Option<i64>,
    /// The next try, while the mail is pending; `None` once it is settled.
    #[serde(serialize_with = "micros_up_opt")]
    pub(crate) due_at: Option<OffsetDateTime>,
    #[serde(serialize_with = "micros_up_opt")]
    pub(crate) leased_until: Option<OffsetDateTime>,
    #[serde(serialize_with = "micros_up")]
    pub(crate) purge_after: OffsetDateTime,
    pub(crate) data: String,
}

/// A [`Commit`] turned into rows.
#[derive(Serialize)]
pub(crate) struct Rows {
    pub(crate) flows: Vec<FlowRow>,
    pub(crate) counters: Vec<CounterRow>,
    pub(crate) accounts: Vec<AccountRow>,
    pub(crate) mails: Vec<MailRow>,
}

impl Rows {
    /// Encodes every write. `Ok(None)` when a write names a version no row can have, so
    /// the commit can only be a conflict.
    pub(crate) fn new(commit: &Commit) -> Result<Option<Rows>, StoreError> {
        match Rows::encode(commit) {
            Ok(rows) => Ok(Some(rows)),
            Err(Unencoded::NoSuchVersion) => Ok(None),
            Err(Unencoded::Failed(e)) => Err(e),
        }
    }

    /// Encodes the writes in order, stopping at the first that cannot be.
    fn encode(commit: &Commit) -> Result<Rows, Unencoded> {
        Ok(Rows {
            flows: rows_of(&commit.flows, |w| w.expect, |w, e| flow_row(&w.record, e))?,
            counters: rows_of(
                &commit.counters,
                |w| w.expect,
                |w, e| counter_row(&w.counter, e),
            )?,
            accounts: rows_of(
                &commit.accounts,
                |w| w.expect,
                |w, e| account_row(&w.account, e),
            )?,
            mails: rows_of(&commit.mails, |w| w.expect, |w, e| mail_row(&w.mail, e))?,
        })
    }
}

/// Why [`Rows::encode`] stopped.
enum Unencoded {
    /// A write names a version no row can have.
    NoSuchVersion,
    /// A record did not encode.
    Failed(StoreError),
}

/// One row per write, in order: `expect` gives the version a write expects, `row`
/// encodes the write with that version as a column value.
fn rows_of<W, R>(
    writes: &[W],
    expect: impl Fn(&W) -> Expect,
    row: impl Fn(&W, Option<i64>) -> Result<R, StoreError>,
) -> Result<Vec<R>, Unencoded> {
    writes
        .iter()
        .map(|w| {
            let expected = expected_in_db(expect(w).version()).ok_or(Unencoded::NoSuchVersion)?;
            row(w, expected).map_err(Unencoded::Failed)
        })
        .collect()
}

/// `t` rounded up to the microsecond (PostgreSQL's precision), so a stored expiry is
/// never earlier than the real one (a record is never purged early).
pub(crate) fn ceil_micros(t: OffsetDateTime) -> OffsetDateTime {
    let rem = t.nanosecond() % 1_000;
    if rem == 0 {
        t
    } else {
        t.saturating_add(time::Duration::nanoseconds(i64::from(1_000 - rem)))
    }
}

/// A timestamp as RFC 3339, rounded up to the microsecond.
fn micros_up<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    let text = ceil_micros(*t)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(serde::ser::Error::custom)?;
    s.serialize_str(&text)
}

/// An optional timestamp as RFC 3339 rounded up to the microsecond, or `null`.
fn micros_up_opt<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => micros_up(t, s),
        None => s.serialize_none(),
    }
}

/// Digests as lower-case hex.
fn hex_keys<S: Serializer>(keys: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(keys.iter().map(|k| super::hex(k)))
}

/// The expected version of a write as a column value: `Some(None)` for an insert,
/// `Some(Some(v))` for a compare-and-set, `None` for a version no row can have.
fn expected_in_db(expected: Option<Version>) -> Option<Option<i64>> {
    match expected {
        None => Some(None),
        Some(v) => version_to_db(v).map(Some),
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

fn mail_row(mail: &OutboxMail, expected: Option<i64>) -> Result<MailRow, StoreError> {
    Ok(MailRow {
        id: mail.id.to_hex(),
        expected,
        due_at: (mail.delivery == Delivery::Pending).then_some(mail.due_at),
        leased_until: mail.leased_until,
        purge_after: mail.purge_after,
        data: to_json(mail)?,
    })
}

/// Why a statement of a commit did not go through.
pub(crate) enum Refused {
    /// The commit cannot be applied: roll back and report this outcome.
    Outcome(CommitOutcome),
    /// The backend failed: roll back and report the error.
    Failed(StoreError),
}

/// The outcome a one-statement commit names (`kenpo_commit`'s answer).
#[cfg(feature = "postgres")]
pub(crate) fn outcome_named(name: &str) -> Result<CommitOutcome, StoreError> {
    match name {
        "committed" => Ok(CommitOutcome::Committed),
        "conflict" => Ok(CommitOutcome::Conflict),
        "login_id_taken" => Ok(CommitOutcome::LoginIdTaken),
        "email_taken" => Ok(CommitOutcome::EmailTaken),
        "member_taken" => Ok(CommitOutcome::MemberTaken),
        _ => Err(super::corrupt("unknown commit outcome")),
    }
}

impl Refused {
    /// What the commit answers: the outcome, or the backend's error.
    pub(crate) fn outcome(self) -> Result<CommitOutcome, StoreError> {
        match self {
            Refused::Outcome(outcome) => Ok(outcome),
            Refused::Failed(e) => Err(e),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    // kenpo_commit's answers (0002; kenpo_commit_with_mails of 0004 passes them on and
    // adds only 'committed' and 'conflict') map one to one; anything else is not trusted.
    #[test]
    fn commit_outcomes_by_name() {
        use CommitOutcome as O;
        let sql = include_str!("../../../migrations/postgres/0002_kenpo_commit.sql");
        let names = [
            "committed",
            "conflict",
            "login_id_taken",
            "email_taken",
            "member_taken",
        ];
        for name in names {
            assert!(
                sql.contains(&format!("'{name}'")),
                "kenpo_commit answers {name}"
            );
        }
        let outcomes = [
            O::Committed,
            O::Conflict,
            O::LoginIdTaken,
            O::EmailTaken,
            O::MemberTaken,
        ];
        assert_eq!(names.map(|n| outcome_named(n).ok()), outcomes.map(Some));
        assert!(matches!(outcome_named("yes"), Err(StoreError::Corrupt(_))));
    }

    // The JSON form rounds expiries up to the microsecond and spells digests in hex.
    #[test]
    fn json_rows_round_up_and_use_hex() {
        let rows = Rows {
            flows: vec![FlowRow {
                id: "f".to_owned(),
                expected: None,
                account_id: None,
                purge_after: datetime!(2026-11-24 09:00:00.000_000_500 UTC),
                state: "{}".to_owned(),
                keys: vec![[0xab; 32]],
            }],
            counters: Vec::new(),
            accounts: Vec::new(),
            mails: Vec::new(),
        };
        let json = serde_json::to_value(&rows).expect("serializes");
        assert_eq!(
            json["flows"][0]["purge_after"],
            "2026-11-24T09:00:00.000001Z"
        );
        assert_eq!(json["flows"][0]["keys"][0], "ab".repeat(32));
        assert_eq!(json["flows"][0]["expected"], serde_json::Value::Null);
    }
}
