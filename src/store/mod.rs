//! The [`Store`] port — where flows, accounts and throttle counters live — and its
//! adapters.
//!
//! The port lives here, with its implementations, rather than in [`crate::ports`]
//! (which re-exports it): it persists the core's own records ([`crate::flow::FlowRecord`]),
//! so it sits above the core, while the other ports (mail, roster, clock, audit) know
//! nothing of it. The layers are `model` ← `flow` ← `store` ← `portal`, and `ports` ←
//! `portal`, with no cycle.
//!
//! [`MemoryStore`] always; [`SqliteStore`] with the `sqlite` feature; [`PostgresStore`]
//! with the `postgres` feature. All three pass the same conformance suite
//! (`testkit::conformance`).
//!
#![cfg_attr(not(feature = "sqlite"), doc = "[`SqliteStore`]: crate#features")]
#![cfg_attr(not(feature = "postgres"), doc = "[`PostgresStore`]: crate#features")]

pub mod memory;
mod port;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

pub use crate::flow::FlowRecord;
pub use memory::MemoryStore;

/// How long an SQL store waits for its backend before a step gives up with
/// [`StoreError::Timeout`], so an outage answers every request quickly (the host's
/// 503 page with `Retry-After`) instead of holding it and a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Waiting for a connection from the pool (or for a new one to open).
    pub acquire: std::time::Duration,
    /// Waiting for one statement's answer, once it has a connection; also set as the
    /// server's `statement_timeout` on PostgreSQL.
    pub statement: std::time::Duration,
}

impl Timeouts {
    /// `acquire` and `statement`, as described on the fields.
    pub const fn new(acquire: std::time::Duration, statement: std::time::Duration) -> Self {
        Timeouts { acquire, statement }
    }
}

impl Default for Timeouts {
    /// Two seconds each: far above a healthy step (BENCHMARKS.md: milliseconds), far
    /// below what a member waits before reloading.
    fn default() -> Self {
        Timeouts::new(
            std::time::Duration::from_secs(2),
            std::time::Duration::from_secs(2),
        )
    }
}
pub(crate) use port::CommitProbe;
#[cfg(test)]
pub use port::MockStore;
pub use port::{
    AccountLoad, AccountLookup, AccountWrite, Commit, CommitOutcome, CounterWrite, FlowWrite, Load,
    Loaded, MailWrite, Store, StoreError,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;
