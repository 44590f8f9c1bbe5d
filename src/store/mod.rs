//! Store adapters.
//!
//! [`MemoryStore`] always; [`SqliteStore`] with the `sqlite` feature; [`PostgresStore`]
//! with the `postgres` feature. All three pass the same conformance suite
//! (`testkit::conformance`).

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
