//! Where web sessions are kept: in memory (one process, gone at a restart), or in the
//! library's own database — two tables of the example's, `portal_sessions` and
//! `portal_session_handovers`, next to the `kenpo_` tables, written through the store's
//! pool (`danger_pool`, which the library offers for exactly this: a host's own tables;
//! the `kenpo_` tables are never touched).
//!
//! With sessions in the database, several portal processes behind a plain load balancer
//! (no sticky sessions) serve one journey between them, and a restart keeps every
//! member's place: a half-done registration, the 暗証キー screen, a login.
//!
//! A row holds the SHA-256 of the session id (never the id), its expiry, and the
//! session as JSON: flow handles and the R3 認証キー while they are needed, a masked
//! address, the login's account id. Treat the table like the library's: it is as
//! sensitive as a live session. A forwarding address (see `Session::rotate_with_handover`)
//! holds the new id sealed with the old one, so the table alone never yields a live id.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::session::{Handover, Record};

/// What went wrong in the session store (logged; the member gets the 503 page).
pub(crate) type BackendError = String;

/// A place for session records, keyed by the SHA-256 of the session id.
#[async_trait]
pub(crate) trait SessionBackend: Send + Sync + 'static {
    /// The record, if there is one (expired or not: the caller decides).
    async fn load(&self, key: &[u8; 32]) -> Result<Option<Record>, BackendError>;
    /// Writes the record (insert or replace); it may be dropped after `expires_at`.
    async fn save(
        &self,
        key: &[u8; 32],
        record: &Record,
        expires_at: OffsetDateTime,
    ) -> Result<(), BackendError>;
    /// Removes the record, if any.
    async fn delete(&self, key: &[u8; 32]) -> Result<(), BackendError>;
    /// How many records are held.
    async fn count(&self) -> Result<usize, BackendError>;
    /// Drops records and forwarding addresses that are over at `now`.
    async fn purge(&self, now: OffsetDateTime) -> Result<(), BackendError>;
    /// Keeps a forwarding address for the session that was `old`.
    async fn put_handover(&self, old: &[u8; 32], handover: &Handover) -> Result<(), BackendError>;
    /// Takes (removes and returns) the forwarding address of `old`.
    async fn take_handover(&self, old: &[u8; 32]) -> Result<Option<Handover>, BackendError>;
    /// Every key held (tests: only digests are stored).
    #[cfg_attr(not(test), allow(dead_code))]
    async fn keys(&self) -> Result<Vec<Vec<u8>>, BackendError>;
}

/// Most sessions the memory store keeps: only form posts (limited per IP) create
/// sessions, so filling it takes many machines; beyond it, new sessions get the 503 page.
const MAX_SESSIONS: usize = 100_000;

/// Sessions in this process only: lost at a restart, not shared between servers.
#[derive(Default)]
pub(crate) struct MemorySessions {
    records: Mutex<HashMap<[u8; 32], (Record, OffsetDateTime)>>,
    handovers: Mutex<HashMap<[u8; 32], Handover>>,
}

#[async_trait]
impl SessionBackend for MemorySessions {
    async fn load(&self, key: &[u8; 32]) -> Result<Option<Record>, BackendError> {
        let map = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).map(|(r, _)| r.clone()))
    }

    async fn save(
        &self,
        key: &[u8; 32],
        record: &Record,
        expires_at: OffsetDateTime,
    ) -> Result<(), BackendError> {
        let mut map = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_SESSIONS && !map.contains_key(key) {
            let now = OffsetDateTime::now_utc().min(expires_at);
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= MAX_SESSIONS {
                return Err("the session table is full".to_owned());
            }
        }
        map.insert(*key, (record.clone(), expires_at));
        Ok(())
    }

    async fn delete(&self, key: &[u8; 32]) -> Result<(), BackendError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        Ok(())
    }

    async fn count(&self) -> Result<usize, BackendError> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len())
    }

    async fn purge(&self, now: OffsetDateTime) -> Result<(), BackendError> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (_, until)| *until > now);
        self.handovers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, h| h.until > now);
        Ok(())
    }

    async fn put_handover(&self, old: &[u8; 32], handover: &Handover) -> Result<(), BackendError> {
        self.handovers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(*old, handover.clone());
        Ok(())
    }

    async fn take_handover(&self, old: &[u8; 32]) -> Result<Option<Handover>, BackendError> {
        Ok(self
            .handovers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(old))
    }

    async fn keys(&self) -> Result<Vec<Vec<u8>>, BackendError> {
        Ok(self
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .map(|k| k.to_vec())
            .collect())
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn from_micros(m: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn array32(v: &[u8]) -> Result<[u8; 32], BackendError> {
    v.try_into()
        .map_err(|_| "a stored session digest is not 32 bytes".to_owned())
}

/// The same SQL for SQLite and PostgreSQL (`$n` parameters, `ON CONFLICT`, `RETURNING`),
/// with the column types each names differently.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! sql_sessions {
    ($(#[$doc:meta])* $name:ident, $pool:ty, $blob:literal, $int:literal) => {
        $(#[$doc])*
        pub(crate) struct $name {
            pool: $pool,
        }

        impl $name {
            /// Creates the two tables if they are not there yet.
            pub(crate) async fn new(pool: $pool) -> Result<Self, BackendError> {
                sqlx::query(concat!(
                    "CREATE TABLE IF NOT EXISTS portal_sessions (id_hash ", $blob,
                    " PRIMARY KEY, expires_at ", $int, " NOT NULL, record TEXT NOT NULL)"
                ))
                .execute(&pool)
                .await
                .map_err(|e| e.to_string())?;
                sqlx::query(
                    "CREATE INDEX IF NOT EXISTS portal_sessions_expiry ON portal_sessions (expires_at)",
                )
                .execute(&pool)
                .await
                .map_err(|e| e.to_string())?;
                sqlx::query(concat!(
                    "CREATE TABLE IF NOT EXISTS portal_session_handovers (old_hash ", $blob,
                    " PRIMARY KEY, sealed ", $blob, " NOT NULL, proof ", $blob,
                    " NOT NULL, until_at ", $int, " NOT NULL)"
                ))
                .execute(&pool)
                .await
                .map_err(|e| e.to_string())?;
                Ok($name { pool })
            }
        }

        #[async_trait]
        impl SessionBackend for $name {
            async fn load(&self, key: &[u8; 32]) -> Result<Option<Record>, BackendError> {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT record FROM portal_sessions WHERE id_hash = $1")
                        .bind(key.to_vec())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| e.to_string())?;
                // A row this version cannot read (written by an older portal whose
                // session data differed) is no session: the member starts again, as
                // after a timeout, instead of every page answering 503.
                Ok(row.and_then(|(json,)| match serde_json::from_str(&json) {
                    Ok(record) => Some(record),
                    Err(e) => {
                        tracing::warn!(error = %e, "an unreadable session row is ignored");
                        None
                    }
                }))
            }

            async fn save(
                &self,
                key: &[u8; 32],
                record: &Record,
                expires_at: OffsetDateTime,
            ) -> Result<(), BackendError> {
                let json = serde_json::to_string(record).map_err(|e| e.to_string())?;
                sqlx::query(
                    "INSERT INTO portal_sessions (id_hash, expires_at, record) VALUES ($1, $2, $3) \
                     ON CONFLICT (id_hash) DO UPDATE SET expires_at = excluded.expires_at, \
                     record = excluded.record",
                )
                .bind(key.to_vec())
                .bind(micros(expires_at))
                .bind(json)
                .execute(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
                Ok(())
            }

            async fn delete(&self, key: &[u8; 32]) -> Result<(), BackendError> {
                sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1")
                    .bind(key.to_vec())
                    .execute(&self.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            }

            async fn count(&self) -> Result<usize, BackendError> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM portal_sessions")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(usize::try_from(n).unwrap_or(0))
            }

            async fn purge(&self, now: OffsetDateTime) -> Result<(), BackendError> {
                sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1")
                    .bind(micros(now))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query("DELETE FROM portal_session_handovers WHERE until_at <= $1")
                    .bind(micros(now))
                    .execute(&self.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            }

            async fn put_handover(
                &self,
                old: &[u8; 32],
                handover: &Handover,
            ) -> Result<(), BackendError> {
                sqlx::query(
                    "INSERT INTO portal_session_handovers (old_hash, sealed, proof, until_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (old_hash) DO UPDATE SET \
                     sealed = excluded.sealed, proof = excluded.proof, until_at = excluded.until_at",
                )
                .bind(old.to_vec())
                .bind(handover.sealed.to_vec())
                .bind(handover.proof.to_vec())
                .bind(micros(handover.until))
                .execute(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
                Ok(())
            }

            async fn take_handover(
                &self,
                old: &[u8; 32],
            ) -> Result<Option<Handover>, BackendError> {
                let row: Option<(Vec<u8>, Vec<u8>, i64)> = sqlx::query_as(
                    "DELETE FROM portal_session_handovers WHERE old_hash = $1 \
                     RETURNING sealed, proof, until_at",
                )
                .bind(old.to_vec())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
                row.map(|(sealed, proof, until)| {
                    Ok(Handover {
                        sealed: array32(&sealed)?,
                        proof: array32(&proof)?,
                        until: from_micros(until),
                    })
                })
                .transpose()
            }

            async fn keys(&self) -> Result<Vec<Vec<u8>>, BackendError> {
                let rows: Vec<(Vec<u8>,)> = sqlx::query_as("SELECT id_hash FROM portal_sessions")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(rows.into_iter().map(|(k,)| k).collect())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
sql_sessions!(
    /// Sessions in the SQLite file of the `SqliteStore`: a restart keeps them.
    SqliteSessions,
    sqlx::SqlitePool,
    "BLOB",
    "INTEGER"
);

#[cfg(feature = "postgres")]
sql_sessions!(
    /// Sessions in the PostgreSQL database of the `PostgresStore`: every server behind
    /// the load balancer sees them, and a restart keeps them.
    PostgresSessions,
    sqlx::PgPool,
    "BYTEA",
    "BIGINT"
);
