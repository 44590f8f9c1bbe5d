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
//!   counters with what is left of the limit.
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
//! statement: the shared read statement (`super::sql::read`), here with SQLite's JSON
//! functions. A commit is `BEGIN IMMEDIATE`, then per flow write one statement per lookup
//! key plus one (insert) or two (compare-and-set update, delete the old keys), one per
//! counter or account write, then `COMMIT`. L2 (`verify_otp`) is thus two reads and one
//! transaction of five statements (right code) or six (wrong code: the account's
//! failure counter too). [`Store::load`] reads everything a step needs in that same one
//! statement. The store calls per portal step are those listed for
//! [`PostgresStore`] (feature `postgres`).
//!
//! # Schema
//!
//! `migrations/sqlite/*.sql` in the crate, embedded and applied by [`SqliteStore::open`]
//! (recorded in the table `kenpo_auth_migrations`). Tables are prefixed `kenpo_`.
//!
//! [`Store::find_flow`]: crate::ports::Store::find_flow
//! [`Store::find_account`]: crate::ports::Store::find_account
//! [`Store::load_counter`]: crate::ports::Store::load_counter
//! [`Store::flows_of_account`]: crate::ports::Store::flows_of_account
//! [`Store::load`]: crate::ports::Store::load
//!
#![cfg_attr(feature = "postgres", doc = "[`PostgresStore`]: super::PostgresStore")]
#![cfg_attr(not(feature = "postgres"), doc = "[`PostgresStore`]: crate#features")]

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteSynchronous,
};
use time::OffsetDateTime;

use super::Timeouts;
use super::sql::{self, Claim, Dead, Dialect, MailRead, Refused, Rows, backend};
use crate::ports::{CommitOutcome, StoreError};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "kenpo_auth_init",
        include_str!("../../migrations/sqlite/0001_kenpo_auth_init.sql"),
    ),
    (
        2,
        "kenpo_flow_contents",
        include_str!("../../migrations/sqlite/0002_kenpo_flow_contents.sql"),
    ),
    (
        3,
        "kenpo_outbox",
        include_str!("../../migrations/sqlite/0003_kenpo_outbox.sql"),
    ),
];

/// How long the in-memory database's one connection may be waited for: it serialises
/// every request, so a burst queues behind it rather than failing.
const MEMORY_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);

/// A [`Store`](crate::ports::Store) in one SQLite database file (or in memory, for tests and demos).
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    timeouts: Timeouts,
}

sql::debug_store!(SqliteStore);

impl SqliteStore {
    /// Opens (creating it if missing) the database at `url_or_path` — a path such as
    /// `/var/lib/portal/kenpo.db` or a URL such as `sqlite:///var/lib/portal/kenpo.db` —
    /// in WAL mode with `synchronous = NORMAL` and the default [`Timeouts`] (2 s to get a
    /// connection, 2 s waiting for another writer's lock), and applies the embedded
    /// migrations.
    ///
    /// `sqlite::memory:` (or any URL naming an in-memory database) gives the same store
    /// as [`SqliteStore::in_memory`].
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the file cannot be opened or migrated (the source is
    /// the `sqlx::Error` or `sqlx::migrate::MigrateError`).
    pub async fn open(url_or_path: &str) -> Result<Self, StoreError> {
        Self::open_with_timeouts(url_or_path, Timeouts::default()).await
    }

    /// Like [`SqliteStore::open`], with the host's own [`Timeouts`]: `acquire` bounds the
    /// wait for a connection, `statement` the wait for another writer's lock (SQLite's
    /// busy timeout). Running out answers [`StoreError::Timeout`].
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub async fn open_with_timeouts(
        url_or_path: &str,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
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
            .busy_timeout(timeouts.statement)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .acquire_timeout(timeouts.acquire)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Self::migrated(pool, timeouts).await
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
        let timeouts = Timeouts::new(MEMORY_ACQUIRE_TIMEOUT, Timeouts::default().statement);
        let options = options.busy_timeout(timeouts.statement).foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(timeouts.acquire)
            .connect_with(options)
            .await
            .map_err(backend)?;
        Self::migrated(pool, timeouts).await
    }

    async fn migrated(pool: SqlitePool, timeouts: Timeouts) -> Result<Self, StoreError> {
        sql::migrator(MIGRATIONS)
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(SqliteStore { pool, timeouts })
    }

    /// A backend error as the step sees it: no connection in time, or another writer's
    /// lock held past the busy timeout, is [`StoreError::Timeout`] (retryable, the
    /// outcome of a commit in flight unknown); anything else [`StoreError::Backend`].
    fn fail(&self, e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::PoolTimedOut => StoreError::Timeout(self.timeouts.acquire),
            // SQLITE_BUSY and its extended codes (`code & 0xff == 5`).
            sqlx::Error::Database(db)
                if db
                    .code()
                    .and_then(|c| c.parse::<u32>().ok())
                    .is_some_and(|c| c & 0xff == 5) =>
            {
                StoreError::Timeout(self.timeouts.statement)
            }
            _ => backend(e),
        }
    }

    /// The connection pool, for hosts that keep their own tables in the same file or
    /// take online backups (`VACUUM INTO`).
    ///
    /// # Danger
    ///
    /// The raw pool bypasses every compare-and-set and uniqueness rule of [`Store`](crate::store::Store):
    /// never write the `kenpo_` tables through it.
    pub fn danger_pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Every row of every table as text (blobs as hex), for tests that check no
    /// plaintext secret reaches the database (SEC-03, SEC-04).
    #[cfg(feature = "testkit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
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

/// The shared read statement (see `super::sql::read` for the request and answer
/// documents), with SQLite's JSON functions. Each part is an indexed lookup; a part the
/// request leaves empty finds nothing.
const READ: &str = "\
WITH fl AS ( \
  SELECT CAST(c.key AS INTEGER) AS i, f.id, f.version, f.state, f.account_id \
  FROM json_each(?1, '$.flow') AS c \
  JOIN kenpo_flow_keys AS k ON k.digest = unhex(c.value) \
  JOIN kenpo_flows AS f ON f.id = k.flow_id \
  ORDER BY c.key LIMIT 1 \
), q AS ( \
  SELECT ?1 ->> '$.by' AS by, ?1 ->> '$.value' AS v \
), acc AS ( \
  SELECT id, version, data FROM kenpo_accounts WHERE id = ( \
    SELECT CASE by WHEN 'id' THEN v WHEN 'of_flow' THEN (SELECT account_id FROM fl) END FROM q) \
  UNION ALL \
  SELECT id, version, data FROM kenpo_accounts \
  WHERE login_id = (SELECT v FROM q WHERE by = 'login_id') \
  UNION ALL \
  SELECT id, version, data FROM kenpo_accounts WHERE email = (SELECT v FROM q WHERE by = 'email') \
  UNION ALL \
  SELECT id, version, data FROM kenpo_accounts WHERE member = (SELECT v FROM q WHERE by = 'member') \
  LIMIT 1 \
) \
SELECT json_object( \
  'flow', json((SELECT json_object('i', i, 'id', id, 'version', version, 'state', json(state)) \
                FROM fl)), \
  'account', json((SELECT json_object('version', version, 'data', json(data)) FROM acc)), \
  'account_flows', json((SELECT json_group_array(json_object('id', f.id, 'version', f.version, \
                                 'state', json(f.state)) ORDER BY f.rowid) \
                FROM kenpo_flows AS f WHERE ?1 ->> '$.account_flows' \
                AND f.account_id = coalesce(?1 ->> '$.flows_of', (SELECT id FROM acc)))), \
  'counters', json((SELECT json_group_array(json_object('i', c.key, 'version', k.version, \
                                                    'data', json(k.data))) \
                FROM json_each(?1, '$.counters') AS c \
                JOIN kenpo_counters AS k ON k.key = c.value)), \
  'account_counters', json((SELECT json_group_array(json_object('i', c.key, \
                                 'version', k.version, 'data', json(k.data))) \
                FROM json_each(?1, '$.account_counters') AS c \
                JOIN kenpo_counters AS k ON k.key = c.value || (SELECT id FROM acc))), \
  'address_taken', json(CASE WHEN EXISTS (SELECT 1 FROM kenpo_accounts \
                WHERE email = ?1 ->> '$.taken_email') THEN 'true' ELSE 'false' END))";

// The writes of a commit. Inserts and updates take the same parameters (an insert
// leaves `?2`, the expected version, unused).
const INSERT_FLOW: &str = "INSERT INTO kenpo_flows (id, version, account_id, purge_after, state) \
     VALUES (?1, 1, ?3, ?4, ?5)";
const UPDATE_FLOW: &str = "UPDATE kenpo_flows SET version = version + 1, account_id = ?3, \
     purge_after = ?4, state = ?5 WHERE id = ?1 AND version = ?2";
const DELETE_FLOW_KEYS: &str = "DELETE FROM kenpo_flow_keys WHERE flow_id = ?1";
const INSERT_FLOW_KEY: &str = "INSERT INTO kenpo_flow_keys (digest, flow_id) VALUES (?1, ?2)";
const INSERT_COUNTER: &str = "INSERT INTO kenpo_counters (key, version, expires_at, data) \
     VALUES (?1, 1, ?3, ?4)";
const UPDATE_COUNTER: &str = "UPDATE kenpo_counters SET version = version + 1, expires_at = ?3, \
     data = ?4 WHERE key = ?1 AND version = ?2";
const INSERT_ACCOUNT: &str = "INSERT INTO kenpo_accounts (id, version, login_id, email, member, \
     data) VALUES (?1, 1, ?3, ?4, ?5, ?6)";
const INSERT_MAIL: &str = "INSERT INTO kenpo_outbox (id, version, due_at, leased_until, \
     purge_after, data) VALUES (?1, 1, ?3, ?4, ?5, ?6)";
const UPDATE_MAIL: &str = "UPDATE kenpo_outbox SET version = version + 1, due_at = ?3, \
     leased_until = ?4, purge_after = ?5, data = ?6 WHERE id = ?1 AND version = ?2";
/// One statement, under SQLite's one writer: a row is leased to one claimant.
const CLAIM_MAILS: &str = "UPDATE kenpo_outbox SET version = version + 1, leased_until = ?2 \
     WHERE id IN (SELECT id FROM kenpo_outbox WHERE due_at IS NOT NULL AND due_at <= ?1 \
     AND (leased_until IS NULL OR leased_until <= ?1) ORDER BY due_at LIMIT ?3) \
     RETURNING version, leased_until, data";
const UPDATE_ACCOUNT: &str = "UPDATE kenpo_accounts SET version = version + 1, login_id = ?3, \
     email = ?4, member = ?5, data = ?6 WHERE id = ?1 AND version = ?2";

/// The insert when `expected` is `None`, else the compare-and-set update.
fn insert_or_update(
    expected: Option<i64>,
    insert: &'static str,
    update: &'static str,
) -> &'static str {
    if expected.is_some() { update } else { insert }
}

/// Runs one write statement of a commit; how many rows it changed.
async fn run(
    conn: &mut SqliteConnection,
    statement: Query<'_, Sqlite, SqliteArguments>,
) -> Result<u64, Refused> {
    Ok(statement
        .execute(conn)
        .await
        .map_err(refused)?
        .rows_affected())
}

/// A write changed exactly one row, or the commit is a conflict.
fn one(changed: u64) -> Result<(), Refused> {
    if changed == 1 {
        Ok(())
    } else {
        Err(Refused::Outcome(CommitOutcome::Conflict))
    }
}

/// Applies every row of a commit inside the caller's transaction.
async fn apply(conn: &mut SqliteConnection, rows: &Rows) -> Result<(), Refused> {
    for f in &rows.flows {
        let row = sqlx::query(insert_or_update(f.expected, INSERT_FLOW, UPDATE_FLOW))
            .bind(&f.id)
            .bind(f.expected)
            .bind(&f.account_id)
            .bind(nanos(f.purge_after))
            .bind(&f.state);
        one(run(conn, row).await?)?;
        if f.expected.is_some() {
            run(conn, sqlx::query(DELETE_FLOW_KEYS).bind(&f.id)).await?;
        }
        // A digest held by another flow violates the primary key: a conflict.
        for key in &f.keys {
            let key = sqlx::query(INSERT_FLOW_KEY)
                .bind(key.as_slice())
                .bind(&f.id);
            run(conn, key).await?;
        }
    }
    for c in &rows.counters {
        let row = sqlx::query(insert_or_update(c.expected, INSERT_COUNTER, UPDATE_COUNTER))
            .bind(&c.key)
            .bind(c.expected)
            .bind(nanos(c.expires_at))
            .bind(&c.data);
        one(run(conn, row).await?)?;
    }
    for a in &rows.accounts {
        let row = sqlx::query(insert_or_update(a.expected, INSERT_ACCOUNT, UPDATE_ACCOUNT))
            .bind(&a.id)
            .bind(a.expected)
            .bind(&a.login_id)
            .bind(&a.email)
            .bind(&a.member)
            .bind(&a.data);
        one(run(conn, row).await?)?;
    }
    for m in &rows.mails {
        let row = sqlx::query(insert_or_update(m.expected, INSERT_MAIL, UPDATE_MAIL))
            .bind(&m.id)
            .bind(m.expected)
            .bind(m.due_at.map(nanos))
            .bind(m.leased_until.map(nanos))
            .bind(nanos(m.purge_after))
            .bind(&m.data);
        one(run(conn, row).await?)?;
    }
    Ok(())
}

/// Unix nanoseconds back into a time (`None` for a value out of range).
fn from_nanos(n: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(n)).ok()
}

/// An outbox row read back: `(version, leased_until, data)`.
fn mail_read((version, leased, data): (i64, Option<i64>, String)) -> MailRead {
    MailRead {
        version,
        leased_until: leased.and_then(from_nanos),
        data,
    }
}

#[async_trait]
impl Dialect for SqliteStore {
    async fn read(&self, request: String) -> Result<String, StoreError> {
        let (answer,): (String,) = sqlx::query_as(READ)
            .bind(request)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(answer)
    }

    async fn apply(&self, rows: &Rows) -> Result<CommitOutcome, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.fail(e))?;
        match apply(&mut tx, rows).await {
            Ok(()) => {
                tx.commit().await.map_err(|e| self.fail(e))?;
                Ok(CommitOutcome::Committed)
            }
            Err(refusal) => {
                // Nothing of this commit may stay. If the rollback itself fails, the
                // transaction is rolled back when its connection is dropped.
                let _ = tx.rollback().await;
                refusal.outcome()
            }
        }
    }

    async fn purge(&self, dead: Dead, now: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        // Lookup keys go with their flow (ON DELETE CASCADE).
        let sql = match dead {
            Dead::Flows => {
                "DELETE FROM kenpo_flows WHERE id IN (SELECT id FROM kenpo_flows \
                 WHERE purge_after <= ?1 ORDER BY purge_after LIMIT ?2)"
            }
            Dead::Counters => {
                "DELETE FROM kenpo_counters WHERE key IN (SELECT key FROM kenpo_counters \
                 WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)"
            }
            Dead::Mails => {
                "DELETE FROM kenpo_outbox WHERE id IN (SELECT id FROM kenpo_outbox \
                 WHERE purge_after <= ?1 ORDER BY purge_after LIMIT ?2)"
            }
        };
        let done = sqlx::query(sql)
            .bind(nanos(now))
            .bind(limit)
            .execute(&self.pool)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(done.rows_affected())
    }

    async fn mail_row(&self, id: &str) -> Result<Option<MailRead>, StoreError> {
        let row: Option<(i64, Option<i64>, String)> =
            sqlx::query_as("SELECT version, leased_until, data FROM kenpo_outbox WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.fail(e))?;
        Ok(row.map(mail_read))
    }

    async fn claim_rows(&self, claim: &Claim) -> Result<Vec<MailRead>, StoreError> {
        let rows: Vec<(i64, Option<i64>, String)> = sqlx::query_as(CLAIM_MAILS)
            .bind(nanos(claim.now))
            .bind(nanos(claim.leased_until))
            .bind(claim.limit)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(rows.into_iter().map(mail_read).collect())
    }
}

sql::impl_store!(SqliteStore);
