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
#[cfg(test)]
pub use port::MockStore;
pub use port::{
    AccountLoad, AccountLookup, AccountWrite, Commit, CommitOutcome, CounterWrite, FlowWrite, Load,
    Loaded, Store, StoreError,
};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteStore;
