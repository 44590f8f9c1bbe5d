//! `PostgresStore`: the store for hosts that run several web servers over one
//! PostgreSQL database (feature `postgres`).
//!
//! # How the guarantees are kept
//!
//! Everything is decided by the database, so any number of web servers (and pools) can
//! share one database:
//!
//! - **Compare-and-set.** Every change is `UPDATE … SET version = version + 1 WHERE id =
//!   … AND version = …`; a row count other than one undoes the commit and answers
//!   [`CommitOutcome::Conflict`]. Under `READ COMMITTED`, a racing writer waits for the
//!   first one and then finds the version changed, so exactly one of them wins.
//! - **Atomic commits.** A commit, whatever its size, is one call of the PL/pgSQL
//!   function `kenpo_commit_with_mails` (`migrations/postgres/0004_kenpo_outbox.sql`,
//!   around `kenpo_commit` of `0002_kenpo_commit.sql`): one
//!   statement, atomic by itself. A refused write raises inside the function's inner
//!   block, whose exception handler undoes every write of the commit and returns the
//!   outcome. A lost connection means PostgreSQL rolls the statement back: never half
//!   an account.
//! - **Uniqueness by constraint.** `kenpo_accounts_login_id_key`,
//!   `kenpo_accounts_email_key` and `kenpo_accounts_member_key` (canonical forms; e-mail
//!   nullable); `kenpo_commit` maps a violation by constraint name to `LoginIdTaken`,
//!   `EmailTaken` or `MemberTaken` (any other key, e.g. a taken digest, to `Conflict`).
//!   Deadlocks and serialization failures (which roll the statement back) are reported
//!   as `Conflict`.
//! - **Lookups by digest only.** `kenpo_flow_keys` maps each 32-byte digest (its primary
//!   key) to one flow; the JSON of a flow holds digests, never secrets.
//! - **Bounded purge.** `DELETE … USING (SELECT … LIMIT $n FOR UPDATE SKIP LOCKED)`, so
//!   several servers can purge at once without waiting on each other.
//!
//! # Round trips per portal step
//!
//! Each single read ([`Store::find_flow`] — one join over the key table —,
//! [`Store::find_account`], [`Store::load_counter`], [`Store::flows_of_account`]) is
//! one statement, so one round trip, and a commit is one statement whatever its size.
//! [`Store::load`] reads everything a step needs (flow by candidate digests, account
//! by lookup or of the flow, the account's flows, counters by key and by account,
//! whether an address is taken) in one statement, so a portal step that calls `load`
//! then `commit` costs **two round trips**, whatever it reads and writes. Every step
//! does, but R3, which reads once more after the roster answered (three).
//!
//! A lost compare-and-set race repeats the step's reads and commit; during a
//! digest-key rotation, a link issued under the previous key costs one more lookup.
//! sqlx prepares each statement once per connection (one more round trip, the first
//! time a connection runs it) and reuses it afterwards.
//!
//! Pools made by [`PostgresStore::connect`] do not ping a connection before every use
//! (sqlx's `test_before_acquire`), which would add a round trip to every read. Instead,
//! once a request has failed because its connection was lost (server restart,
//! failover, `pg_terminate_backend`), every connection opened before that moment is
//! pinged before its next use and replaced if dead. So a lost connection costs the one
//! request that found it an [`StoreError::Backend`] — nothing written, the member can
//! retry — and the next request gets a working connection. sqlx itself also pings a
//! connection when it is released to the pool, off the request's path.
//!
//! # Schema
//!
//! `migrations/postgres/*.sql` in the crate, embedded and applied by
//! [`PostgresStore::migrate`] (recorded in the table `kenpo_auth_migrations` of the
//! current schema; sqlx takes an advisory lock, so several servers may call it at
//! start-up). Tables are prefixed `kenpo_`.
//!
//! [`Store::find_flow`]: crate::ports::Store::find_flow
//! [`Store::find_account`]: crate::ports::Store::find_account
//! [`Store::load_counter`]: crate::ports::Store::load_counter
//! [`Store::flows_of_account`]: crate::ports::Store::flows_of_account
//! [`Store::load`]: crate::ports::Store::load

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor};
use time::OffsetDateTime;

use super::Timeouts;
use super::sql::{self, Claim, Dead, Dialect, MailRead, Refused, Rows};
use crate::ports::{CommitOutcome, StoreError};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "kenpo_auth_init",
        include_str!("../../migrations/postgres/0001_kenpo_auth_init.sql"),
    ),
    (
        2,
        "kenpo_commit",
        include_str!("../../migrations/postgres/0002_kenpo_commit.sql"),
    ),
    (
        3,
        "kenpo_flow_contents",
        include_str!("../../migrations/postgres/0003_kenpo_flow_contents.sql"),
    ),
    (
        4,
        "kenpo_outbox",
        include_str!("../../migrations/postgres/0004_kenpo_outbox.sql"),
    ),
];

/// When this store last saw a connection die, so that older connections are checked
/// before their next use.
#[derive(Debug, Default)]
struct Health {
    lost_at: Mutex<Option<Instant>>,
}

impl Health {
    fn lost(&self) {
        *self.lost_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// Whether a connection of this age was opened before the last loss.
    fn suspect(&self, age: Duration) -> bool {
        let lost_at = *self.lost_at.lock().unwrap_or_else(|p| p.into_inner());
        match (lost_at, Instant::now().checked_sub(age)) {
            (None, _) => false,
            (Some(lost), Some(opened)) => opened <= lost,
            (Some(_), None) => true,
        }
    }

    /// Wraps a sqlx error, noting a lost connection.
    fn backend(&self, e: sqlx::Error) -> StoreError {
        if is_connection_loss(&e) {
            self.lost();
        }
        sql::backend(e)
    }
}

/// Whether `e` means the connection (or the server) is gone rather than that the
/// statement was refused.
fn is_connection_loss(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01–57P03: admin/crash shutdown, cannot
        // connect now.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// A [`Store`](crate::ports::Store) in a PostgreSQL database, shared by any number of web servers.
///
/// Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    health: Arc<Health>,
    timeouts: Timeouts,
}

sql::debug_store!(PostgresStore);

impl PostgresStore {
    /// Connects to `url` (e.g. `postgres://portal@db.internal/portal`) with a pool of up
    /// to 10 connections and the default [`Timeouts`] (2 s to get a connection, 2 s per
    /// statement). Does not migrate: call [`PostgresStore::migrate`] (or apply
    /// `migrations/postgres/*.sql` with the host's own tool) before use.
    ///
    /// # Errors
    /// [`StoreError::Backend`] (source: `sqlx::Error`) if the URL is malformed or the
    /// server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with_timeouts(url, None, Timeouts::default()).await
    }

    /// Like [`PostgresStore::connect`] (or [`PostgresStore::connect_with_schema`] when
    /// `schema` is given), with the host's own [`Timeouts`]. When the server stops
    /// answering, each step fails with [`StoreError::Timeout`] within about
    /// `acquire + statement`.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`] and [`PostgresStore::connect_with_schema`].
    pub async fn connect_with_timeouts(
        url: &str,
        schema: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(sql::backend)?;
        let options = match schema {
            None => options,
            Some(schema) => Self::create_schema(options, schema).await?,
        };
        Self::connect_with(options, timeouts).await
    }

    /// Like [`PostgresStore::connect`], but in the schema `schema`, which is created if
    /// missing; every connection of the pool has it as its `search_path`. For test
    /// isolation (one schema per test) and for hosts that keep the store's tables apart.
    ///
    /// # Errors
    /// [`StoreError::Backend`] (source: `sqlx::Error`) if the server cannot be reached or
    /// the schema cannot be created.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<Self, StoreError> {
        Self::connect_with_timeouts(url, Some(schema), Timeouts::default()).await
    }

    /// Creates `schema` if missing; the options put every connection in it.
    async fn create_schema(
        options: PgConnectOptions,
        schema: &str,
    ) -> Result<PgConnectOptions, StoreError> {
        let ident = quote_ident(schema);
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(sql::backend)?;
        conn.execute(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {ident}"
        )))
        .await
        .map_err(sql::backend)?;
        conn.close().await.map_err(sql::backend)?;
        // A startup parameter rather than a `SET` after connecting: no extra round trip.
        Ok(options.options([("search_path", ident)]))
    }

    async fn connect_with(
        options: PgConnectOptions,
        timeouts: Timeouts,
    ) -> Result<Self, StoreError> {
        let health = Arc::new(Health::default());
        let check = health.clone();
        // The server cancels a statement that outlives the timeout too, so a stuck query
        // does not hold its connection after the step has given up on it.
        let options = options.options([(
            "statement_timeout",
            timeouts.statement.as_millis().to_string(),
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(timeouts.acquire)
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let suspect = check.suspect(meta.age);
                Box::pin(async move {
                    if suspect {
                        // An error closes the connection; the pool opens another.
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(sql::backend)?;
        Ok(PostgresStore {
            pool,
            health,
            timeouts,
        })
    }

    /// A store over a pool the host configured itself (size, timeouts, TLS). Such a pool
    /// keeps its own `test_before_acquire` setting (sqlx's default pings every
    /// connection before use). Does not migrate.
    pub fn from_pool(pool: PgPool) -> Self {
        PostgresStore {
            pool,
            health: Arc::new(Health::default()),
            timeouts: Timeouts::default(),
        }
    }

    /// Runs one statement within the store's [`Timeouts`] (`acquire + statement` in
    /// all, measured here, so a backend that stops answering — a silent network, a
    /// stopped server — cannot hold the step longer).
    async fn within<T>(
        &self,
        statement: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = self.timeouts.acquire + self.timeouts.statement;
        match tokio::time::timeout(limit, statement).await {
            // No connection within the acquire timeout: the same outage, told the same way.
            Ok(Err(StoreError::Backend(source)))
                if source
                    .downcast_ref::<sqlx::Error>()
                    .is_some_and(|e| matches!(e, sqlx::Error::PoolTimedOut)) =>
            {
                Err(StoreError::Timeout(self.timeouts.acquire))
            }
            Ok(answer) => answer,
            Err(_) => {
                // Whatever connection the statement held is suspect now.
                self.health.lost();
                Err(StoreError::Timeout(limit))
            }
        }
    }

    /// Applies the embedded migrations that are not applied yet (idempotent; safe to
    /// call from several servers at once).
    ///
    /// # Errors
    /// [`StoreError::Backend`] with the `sqlx::migrate::MigrateError` as source.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sql::migrator(MIGRATIONS)
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))
    }

    /// The connection pool, for hosts that keep their own tables in the same database.
    ///
    /// # Danger
    ///
    /// The raw pool bypasses every compare-and-set and uniqueness rule of [`Store`](crate::store::Store):
    /// never write the `kenpo_` tables through it.
    pub fn danger_pool(&self) -> &PgPool {
        &self.pool
    }

    /// Drops the schema this store works in — every table in it — and closes the pool.
    ///
    /// # Danger
    ///
    /// For tests and benchmarks that made a throwaway schema
    /// ([`PostgresStore::connect_with_schema`]); on a real deployment's schema it deletes
    /// every account.
    pub async fn danger_drop_schema(&self) -> Result<(), StoreError> {
        let backend = |e: sqlx::Error| StoreError::Backend(Box::new(e));
        let (schema,): (String,) = sqlx::query_as("SELECT current_schema()::text")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        let quoted = schema.replace('"', "\"\"");
        self.pool
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{quoted}\" CASCADE"
            )))
            .await
            .map_err(backend)?;
        self.pool.close().await;
        Ok(())
    }

    /// Every row of every table of the current schema as text (`bytea` as hex), for
    /// tests that check no plaintext secret reaches the database (SEC-03, SEC-04).
    #[cfg(feature = "testkit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
    pub async fn dump_text(&self) -> Result<String, StoreError> {
        let tables: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             ORDER BY table_name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.health.backend(e))?;
        let mut out = String::new();
        for (table,) in tables {
            let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT t::text FROM {} t",
                quote_ident(&table)
            )))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.health.backend(e))?;
            out.push_str(&format!("-- {table}\n"));
            for (row,) in rows {
                out.push_str(&row);
                out.push('\n');
            }
        }
        Ok(out)
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `t` rounded down to the microsecond.
fn floor_micros(t: OffsetDateTime) -> OffsetDateTime {
    t - time::Duration::nanoseconds(i64::from(t.nanosecond() % 1_000))
}

impl PostgresStore {
    /// Maps a failed statement: deadlocks and serialization failures (which roll the
    /// statement back) to a conflict, anything else to a backend failure, noting a lost
    /// connection.
    fn refused(&self, e: sqlx::Error) -> Refused {
        if is_connection_loss(&e) {
            self.health.lost();
        }
        sql::refused(e, |db| match db.code().as_deref() {
            // A unique violation `kenpo_commit` did not catch (it catches them all).
            Some("23505") => Some(sql::unique_outcome(db.constraint().unwrap_or(""))),
            // The statement was rolled back to break a deadlock or a serialization
            // failure: nothing was written; reload and decide again.
            Some("40001" | "40P01") => Some(CommitOutcome::Conflict),
            _ => None,
        })
    }
}

/// The shared read statement (see `super::sql::read` for the request and answer
/// documents), with PostgreSQL's JSON functions: one statement, one round trip. Each
/// part is an indexed lookup; a part the request leaves empty finds nothing.
const READ: &str = "\
WITH fl AS ( \
  SELECT c.i - 1 AS i, f.id, f.version, f.state, f.account_id \
  FROM jsonb_array_elements_text($1::jsonb -> 'flow') WITH ORDINALITY AS c (d, i) \
  JOIN kenpo_flow_keys AS k ON k.digest = decode(c.d, 'hex') \
  JOIN kenpo_flows AS f ON f.id = k.flow_id \
  ORDER BY c.i LIMIT 1 \
), acc AS ( \
  (SELECT id, version, data FROM kenpo_accounts WHERE id = ( \
     CASE $1::jsonb ->> 'by' WHEN 'id' THEN $1::jsonb ->> 'value' \
                             WHEN 'of_flow' THEN (SELECT account_id FROM fl) END)) \
  UNION ALL \
  (SELECT id, version, data FROM kenpo_accounts WHERE login_id = ( \
     CASE WHEN $1::jsonb ->> 'by' = 'login_id' THEN $1::jsonb ->> 'value' END)) \
  UNION ALL \
  (SELECT id, version, data FROM kenpo_accounts WHERE email = ( \
     CASE WHEN $1::jsonb ->> 'by' = 'email' THEN $1::jsonb ->> 'value' END)) \
  UNION ALL \
  (SELECT id, version, data FROM kenpo_accounts WHERE member = ( \
     CASE WHEN $1::jsonb ->> 'by' = 'member' THEN $1::jsonb ->> 'value' END)) \
  LIMIT 1 \
) \
SELECT jsonb_build_object( \
  'flow', (SELECT jsonb_build_object('i', i, 'id', id, 'version', version, 'state', state) \
           FROM fl), \
  'account', (SELECT jsonb_build_object('version', version, 'data', data) FROM acc), \
  'account_flows', (SELECT jsonb_agg(jsonb_build_object('id', f.id, 'version', f.version, \
                                                        'state', f.state) ORDER BY f.seq) \
           FROM kenpo_flows AS f WHERE ($1::jsonb ->> 'account_flows')::boolean \
           AND f.account_id = coalesce($1::jsonb ->> 'flows_of', (SELECT id FROM acc))), \
  'counters', (SELECT jsonb_agg(jsonb_build_object('i', c.i - 1, 'version', k.version, \
                                                   'data', k.data)) \
           FROM jsonb_array_elements_text($1::jsonb -> 'counters') WITH ORDINALITY AS c (key, i) \
           JOIN kenpo_counters AS k ON k.key = c.key), \
  'account_counters', (SELECT jsonb_agg(jsonb_build_object('i', c.i - 1, \
                                                           'version', k.version, 'data', k.data)) \
           FROM jsonb_array_elements_text($1::jsonb -> 'account_counters') \
                WITH ORDINALITY AS c (prefix, i) \
           JOIN kenpo_counters AS k ON k.key = c.prefix || (SELECT id FROM acc)), \
  'address_taken', EXISTS (SELECT 1 FROM kenpo_accounts \
           WHERE email = $1::jsonb ->> 'taken_email') \
)::text";

#[async_trait]
impl Dialect for PostgresStore {
    async fn read(&self, request: String) -> Result<String, StoreError> {
        let (answer,): (String,) = self
            .within(async {
                sqlx::query_as(READ)
                    .bind(request)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.health.backend(e))
            })
            .await?;
        Ok(answer)
    }

    async fn apply(&self, rows: &Rows) -> Result<CommitOutcome, StoreError> {
        // The whole commit is one statement, atomic by itself: one round trip. A
        // connection lost while it runs leaves the outcome unknown to us; the member's
        // retry is safe either way, because it re-reads and compares-and-sets again.
        let document = sql::to_json(rows)?;
        self.within(async {
            let answer: Result<(String,), _> =
                sqlx::query_as("SELECT kenpo_commit_with_mails($1::jsonb)")
                    .bind(document)
                    .fetch_one(&self.pool)
                    .await;
            match answer {
                Ok((outcome,)) => sql::outcome_named(&outcome),
                Err(e) => self.refused(e).outcome(),
            }
        })
        .await
    }

    async fn purge(&self, dead: Dead, now: OffsetDateTime, limit: i64) -> Result<u64, StoreError> {
        // Lookup keys go with their flow (ON DELETE CASCADE). Each statement commits on
        // its own: a purge need not be atomic, only bounded.
        let sql = match dead {
            Dead::Flows => {
                "WITH dead AS ( \
                   SELECT id FROM kenpo_flows WHERE purge_after <= $1 \
                   ORDER BY purge_after LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ) DELETE FROM kenpo_flows f USING dead WHERE f.id = dead.id"
            }
            Dead::Counters => {
                "WITH dead AS ( \
                   SELECT key FROM kenpo_counters WHERE expires_at <= $1 \
                   ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ) DELETE FROM kenpo_counters c USING dead WHERE c.key = dead.key"
            }
            Dead::Mails => {
                "WITH dead AS ( \
                   SELECT id FROM kenpo_outbox WHERE purge_after <= $1 \
                   ORDER BY purge_after LIMIT $2 FOR UPDATE SKIP LOCKED \
                 ) DELETE FROM kenpo_outbox o USING dead WHERE o.id = dead.id"
            }
        };
        let done = self
            .within(async {
                sqlx::query(sql)
                    .bind(floor_micros(now))
                    .bind(limit)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| self.health.backend(e))
            })
            .await?;
        Ok(done.rows_affected())
    }

    async fn mail_row(&self, id: &str) -> Result<Option<MailRead>, StoreError> {
        let row: Option<(i64, Option<OffsetDateTime>, String)> = self
            .within(async {
                sqlx::query_as(
                    "SELECT version, leased_until, data::text FROM kenpo_outbox WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.health.backend(e))
            })
            .await?;
        Ok(row.map(|(version, leased_until, data)| MailRead {
            version,
            leased_until,
            data,
        }))
    }

    async fn claim_rows(&self, claim: &Claim) -> Result<Vec<MailRead>, StoreError> {
        // SKIP LOCKED: servers claiming at once take different rows instead of waiting
        // for each other; the UPDATE's own row lock makes each row one claimant's.
        let rows: Vec<(i64, Option<OffsetDateTime>, String)> = self
            .within(async {
                sqlx::query_as(
                    "UPDATE kenpo_outbox o SET version = o.version + 1, leased_until = $2 \
                     FROM (SELECT id FROM kenpo_outbox WHERE due_at <= $1 \
                           AND (leased_until IS NULL OR leased_until <= $1) \
                           ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) d \
                     WHERE o.id = d.id RETURNING o.version, o.leased_until, o.data::text",
                )
                .bind(floor_micros(claim.now))
                .bind(sql::write::ceil_micros(claim.leased_until))
                .bind(claim.limit)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.health.backend(e))
            })
            .await?;
        Ok(rows
            .into_iter()
            .map(|(version, leased_until, data)| MailRead {
                version,
                leased_until,
                data,
            })
            .collect())
    }
}

sql::impl_store!(PostgresStore);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::write::ceil_micros;
    use time::macros::datetime;

    // Stored expiries round up and `now` rounds down, so nothing is purged early.
    #[test]
    fn expiry_rounding_never_purges_early() {
        let t = datetime!(2026-11-24 09:00:00.000_000_500 UTC);
        assert_eq!(ceil_micros(t), datetime!(2026-11-24 09:00:00.000_001 UTC));
        assert_eq!(floor_micros(t), datetime!(2026-11-24 09:00:00 UTC));
        let whole = datetime!(2026-11-24 09:00:00.000_001 UTC);
        assert_eq!(ceil_micros(whole), whole);
        assert_eq!(floor_micros(whole), whole);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("kenpo_test"), "\"kenpo_test\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    // Connections opened before a loss are suspect; later ones are not.
    #[test]
    fn connections_older_than_a_loss_are_checked() {
        let h = Health::default();
        assert!(!h.suspect(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(5));
        h.lost();
        assert!(h.suspect(Duration::from_secs(1)));
        assert!(!h.suspect(Duration::ZERO));
    }
}
