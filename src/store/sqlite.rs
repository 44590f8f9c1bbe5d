//! `SqliteStore`: the embedded durable store (feature `sqlite`), for hosts that run on
//! one machine and for the example portal.
//!
//! # How the guarantees are kept
//!
//! - **Compare-and-set.** Every change is `UPDATE … SET version = version + 1 WHERE id = ?
//!   AND version = ?`; a row count other than one rolls the whole commit back and
//!   answers [`CommitOutcome::Conflict`]. Inserts rely on primary keys.
//! - **Atomic commits.** A commit is one `BEGIN IMMEDIATE` transaction: it takes the
//!   write lock first, so two commits never interleave and a commit never fails halfway
//!   on a lock upgrade. Concurrent writers wait up to the busy timeout (5 s).
//! - **Uniqueness by constraint.** Unique indexes on the canonical login ID, canonical
//!   e-mail (nullable) and member; a violation inside the transaction becomes
//!   `LoginIdTaken`, `EmailTaken` or `MemberTaken` (by the index's column), never a
//!   read followed by a write.
//! - **Lookups by digest only.** `kenpo_flow_keys` maps each 32-byte digest (its primary
//!   key) to one flow; the JSON of a flow holds digests, never secrets.
//! - **Bounded purge.** `DELETE … WHERE id IN (SELECT … LIMIT ?)`, flows first, then
//!   counters, in one transaction.
//!
//! The file runs in WAL mode with `synchronous = NORMAL`: a commit survives a crash of
//! the process; a power loss may undo the last commits, never corrupt the file or leave
//! half of one.
//!
//! # Statements per portal step
//!
//! SQLite runs in-process, so a "round trip" is a hop to sqlx's worker thread (tens of
//! microseconds), not a network exchange. Each read ([`Store::find_flow`],
//! [`Store::find_account`], [`Store::load_counter`], [`Store::flows_of_account`]) is one
//! statement. A commit is `BEGIN IMMEDIATE`, then per flow write one statement per lookup
//! key plus one (insert) or two (compare-and-set update, delete the old keys), one per
//! counter or account write, then `COMMIT`. L2 (`verify_otp`) is thus two reads and one
//! transaction of five statements (right code) or six (wrong code: the account's
//! failure counter too). The store calls per portal step are those listed for
//! [`PostgresStore`](super::PostgresStore) (feature `postgres`).
//!
//! # Schema
//!
//! `migrations/sqlite/*.sql` in the crate, embedded and applied by [`SqliteStore::open`]
//! (recorded in the table `kenpo_auth_migrations`). Tables are prefixed `kenpo_`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use time::OffsetDateTime;

use super::sql::{self, Refused, Rows, backend, from_json, version_from_db};
use crate::ports::{
    Account, AccountId, AccountLookup, Commit, CommitOutcome, Counter, FlowId, FlowRecord, Store,
    StoreError, Versioned,
};
use crate::token::TokenDigest;

const MIGRATIONS: &[(i64, &str, &str)] = &[(
    1,
    "kenpo_auth_init",
    include_str!("../../migrations/sqlite/0001_kenpo_auth_init.sql"),
)];

/// How long a writer waits for another writer's transaction before giving up with
/// [`StoreError::Backend`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] in one SQLite database file (or in memory, for tests and demos).
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("connections", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url_or_path` — a path such as
    /// `/var/lib/portal/kenpo.db` or a URL such as `sqlite:///var/lib/portal/kenpo.db` —
    /// in WAL mode with `synchronous = NORMAL` and a 5 s busy timeout, and applies the
    /// embedded migrations.
    ///
    /// `sqlite::memory:` (or any URL naming an in-memory database) gives the same store
    /// as [`SqliteStore::in_memory`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or migrated (the source is
    /// the `sqlx::Error` or `sqlx::migrate::MigrateError`).
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        if url_or_path.contains(":memory:") || url_or_path.contains("mode=memory") {
            let options = SqliteConnectOptions::from_str(url_or_path).map_err(backend)?;
            return Self::memory_with(options).await;
        }
        let options = if url_or_path.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url_or_path).map_err(backend)?
        } else {
            SqliteConnectOptions::new().filename(url_or_path)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .map_err(backend)?;
        Self::migrated(pool).await
    }

    /// A fresh database in memory, for tests and demos: nothing survives the store (and
    /// its clones) being dropped.
    ///
    /// It is one connection that every request takes in turn, so it is correct under
    /// concurrency but serialises all access.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if SQLite cannot start (the source is the sqlx error).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(backend)?;
        Self::memory_with(options).await
    }

    async fn memory_with(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        // One connection that is never closed: an in-memory database lives exactly as
        // long as its connection. No test-before-acquire, so a cancelled request cannot
        // make the pool drop it (see `sqlx::Pool::acquire`).
        let options = options.busy_timeout(BUSY_TIMEOUT).foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options)
            .await
            .map_err(backend)?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self, StoreError> {
        sql::migrator(MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(SqliteStore { pool })
    }

    /// The connection pool, for hosts that keep their own tables in the same file or
    /// take online backups (`VACUUM INTO`).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Every row of every table as text (blobs as hex), for tests that check no
    /// plaintext secret reaches the database (SEC-03, SEC-04).
    #[cfg(feature = "testkit")]
    pub async fn dump_text(&self) -> Result<String, StoreError> {
        use sqlx::{AssertSqlSafe, Row};
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut out = String::new();
        for (table,) in tables {
            let quoted = format!("\"{}\"", table.replace('"', "\"\""));
            let rows = sqlx::query(AssertSqlSafe(format!("SELECT * FROM {quoted}")))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
            out.push_str(&format!("-- {table}\n"));
            for row in rows {
                let mut cells = Vec::new();
                for i in 0..row.len() {
                    let cell = if let Ok(v) = row.try_get::<Option<String>, _>(i) {
                        v.unwrap_or_else(|| "NULL".to_owned())
                    } else if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
                        v.map(|v| v.to_string())
                            .unwrap_or_else(|| "NULL".to_owned())
                    } else if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
                        v.map(|v| sql::hex(&v)).unwrap_or_else(|| "NULL".to_owned())
                    } else {
                        "?".to_owned()
                    };
                    cells.push(cell);
                }
                out.push_str(&cells.join(" | "));
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// Unix time in nanoseconds, saturating at the limits of `i64` (years 1677 and 2262).
fn nanos(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// Maps a failed write statement: unique indexes to their outcome (SQLite names the
/// column: `UNIQUE constraint failed: kenpo_accounts.email`), anything else to a backend
/// failure.
fn refused(e: sqlx::Error) -> Refused {
    sql::refused(e, |db| match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => {
            let msg = db.message();
            let column = msg.rsplit(": ").next().unwrap_or(msg);
            Some(sql::unique_outcome(column))
        }
        _ => None,
    })
}

const CONFLICT: Refused = Refused::Outcome(CommitOutcome::Conflict);

/// Applies every row of a commit inside the caller's transaction.
async fn apply(conn: &mut SqliteConnection, rows: &Rows) -> Result<(), Refused> {
    for f in &rows.flows {
        match f.expected {
            None => {
                sqlx::query(
                    "INSERT INTO kenpo_flows (id, version, account_id, purge_after, state) \
                     VALUES (?1, 1, ?2, ?3, ?4)",
                )
                .bind(&f.id)
                .bind(&f.account_id)
                .bind(nanos(f.purge_after))
                .bind(&f.state)
                .execute(&mut *conn)
                .await
                .map_err(refused)?;
            }
            Some(expected) => {
                let done = sqlx::query(
                    "UPDATE kenpo_flows SET version = version + 1, account_id = ?3, \
                     purge_after = ?4, state = ?5 WHERE id = ?1 AND version = ?2",
                )
                .bind(&f.id)
                .bind(expected)
                .bind(&f.account_id)
                .bind(nanos(f.purge_after))
                .bind(&f.state)
                .execute(&mut *conn)
                .await
                .map_err(refused)?;
                if done.rows_affected() != 1 {
                    return Err(CONFLICT);
                }
                sqlx::query("DELETE FROM kenpo_flow_keys WHERE flow_id = ?1")
                    .bind(&f.id)
                    .execute(&mut *conn)
                    .await
                    .map_err(refused)?;
            }
        }
        // A digest held by another flow violates the primary key: a conflict.
        for key in &f.keys {
            sqlx::query("INSERT INTO kenpo_flow_keys (digest, flow_id) VALUES (?1, ?2)")
                .bind(key.as_slice())
                .bind(&f.id)
                .execute(&mut *conn)
                .await
                .map_err(refused)?;
        }
    }
    for c in &rows.counters {
        let done = match c.expected {
            None => sqlx::query(
                "INSERT INTO kenpo_counters (key, version, expires_at, data) \
                 VALUES (?1, 1, ?2, ?3)",
            )
            .bind(&c.key)
            .bind(nanos(c.expires_at))
            .bind(&c.data)
            .execute(&mut *conn)
            .await
            .map_err(refused)?,
            Some(expected) => sqlx::query(
                "UPDATE kenpo_counters SET version = version + 1, expires_at = ?3, data = ?4 \
                 WHERE key = ?1 AND version = ?2",
            )
            .bind(&c.key)
            .bind(expected)
            .bind(nanos(c.expires_at))
            .bind(&c.data)
            .execute(&mut *conn)
            .await
            .map_err(refused)?,
        };
        if done.rows_affected() != 1 {
            return Err(CONFLICT);
        }
    }
    for a in &rows.accounts {
        let done = match a.expected {
            None => sqlx::query(
                "INSERT INTO kenpo_accounts (id, version, login_id, email, member, data) \
                 VALUES (?1, 1, ?2, ?3, ?4, ?5)",
            )
            .bind(&a.id)
            .bind(&a.login_id)
            .bind(&a.email)
            .bind(&a.member)
            .bind(&a.data)
            .execute(&mut *conn)
            .await
            .map_err(refused)?,
            Some(expected) => sqlx::query(
                "UPDATE kenpo_accounts SET version = version + 1, login_id = ?3, email = ?4, \
                 member = ?5, data = ?6 WHERE id = ?1 AND version = ?2",
            )
            .bind(&a.id)
            .bind(expected)
            .bind(&a.login_id)
            .bind(&a.email)
            .bind(&a.member)
            .bind(&a.data)
            .execute(&mut *conn)
            .await
            .map_err(refused)?,
        };
        if done.rows_affected() != 1 {
            return Err(CONFLICT);
        }
    }
    Ok(())
}

fn flow(id: String, version: i64, state: &str) -> Result<Versioned<FlowRecord>, StoreError> {
    Ok(Versioned {
        version: version_from_db(version)?,
        value: FlowRecord {
            id: FlowId::from_stored(id),
            state: from_json(state)?,
        },
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn find_flow(
        &self,
        key: &TokenDigest,
    ) -> Result<Option<Versioned<FlowRecord>>, StoreError> {
        let row: Option<(String, i64, String)> = sqlx::query_as(
            "SELECT f.id, f.version, f.state FROM kenpo_flow_keys k \
             JOIN kenpo_flows f ON f.id = k.flow_id WHERE k.digest = ?1",
        )
        .bind(key.as_bytes().as_slice())
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|(id, version, state)| flow(id, version, &state))
            .transpose()
    }

    async fn flows_of_account(
        &self,
        account: &AccountId,
    ) -> Result<Vec<Versioned<FlowRecord>>, StoreError> {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(
            "SELECT id, version, state FROM kenpo_flows WHERE account_id = ?1 ORDER BY rowid",
        )
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.into_iter()
            .map(|(id, version, state)| flow(id, version, &state))
            .collect()
    }

    async fn find_account(
        &self,
        by: AccountLookup,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        let (sql, value): (&'static str, String) = match by {
            AccountLookup::Id(id) => (
                "SELECT version, data FROM kenpo_accounts WHERE id = ?1",
                id.as_str().to_owned(),
            ),
            AccountLookup::LoginId(l) => (
                "SELECT version, data FROM kenpo_accounts WHERE login_id = ?1",
                l.as_str().to_owned(),
            ),
            AccountLookup::Email(e) => (
                "SELECT version, data FROM kenpo_accounts WHERE email = ?1",
                e.canonical().to_owned(),
            ),
            AccountLookup::Member(m) => (
                "SELECT version, data FROM kenpo_accounts WHERE member = ?1",
                m.as_str().to_owned(),
            ),
        };
        let row: Option<(i64, String)> = sqlx::query_as(sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        row.map(|(version, data)| {
            Ok(Versioned {
                version: version_from_db(version)?,
                value: from_json(&data)?,
            })
        })
        .transpose()
    }

    async fn load_counter(&self, key: &str) -> Result<Option<Versioned<Counter>>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT version, data FROM kenpo_counters WHERE key = ?1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        row.map(|(version, data)| {
            Ok(Versioned {
                version: version_from_db(version)?,
                value: from_json(&data)?,
            })
        })
        .transpose()
    }

    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
        if commit.is_empty() {
            return Ok(CommitOutcome::Committed);
        }
        let Some(rows) = Rows::new(&commit)? else {
            return Ok(CommitOutcome::Conflict);
        };
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        match apply(&mut tx, &rows).await {
            Ok(()) => {
                tx.commit().await.map_err(backend)?;
                Ok(CommitOutcome::Committed)
            }
            Err(refusal) => {
                // Nothing of this commit may stay. If the rollback itself fails, the
                // transaction is rolled back when its connection is dropped.
                let _ = tx.rollback().await;
                match refusal {
                    Refused::Outcome(outcome) => Ok(outcome),
                    Refused::Failed(e) => Err(e),
                }
            }
        }
    }

    async fn purge_expired(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        if limit == 0 {
            return Ok(0);
        }
        let now = nanos(now);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend)?;
        // Lookup keys go with their flow (ON DELETE CASCADE).
        let flows = sqlx::query(
            "DELETE FROM kenpo_flows WHERE id IN (SELECT id FROM kenpo_flows \
             WHERE purge_after <= ?1 ORDER BY purge_after LIMIT ?2)",
        )
        .bind(now)
        .bind(limit)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        let left = limit.saturating_sub(i64::try_from(flows).unwrap_or(i64::MAX));
        let counters = if left > 0 {
            sqlx::query(
                "DELETE FROM kenpo_counters WHERE key IN (SELECT key FROM kenpo_counters \
                 WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
            )
            .bind(now)
            .bind(left)
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected()
        } else {
            0
        };
        tx.commit().await.map_err(backend)?;
        Ok(usize::try_from(flows + counters).unwrap_or(usize::MAX))
    }
}
