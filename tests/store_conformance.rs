//! The store conformance suite (DESIGN §4) against every store the crate ships on this
//! machine: `MemoryStore` always, `SqliteStore` (a file in a temporary directory, and in
//! memory) with the `sqlite` feature. `PostgresStore` runs it in `tests/postgres_store.rs`.
#![cfg(feature = "testkit")]
// Test code may panic: a failed unwrap, expect, index or panic! is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// A test crate has no public API; `pub` only shares helpers between its modules.
#![allow(unreachable_pub)]

mod memory {
    kenpo_auth::store_conformance_tests!(async { kenpo_auth::store::MemoryStore::new() });
}

#[cfg(feature = "sqlite")]
mod sqlite_file {
    use std::sync::Arc;

    use kenpo_auth::store::SqliteStore;

    /// A store in a fresh file of its own temporary directory.
    async fn fresh() -> SqliteStore {
        let dir = tempfile::tempdir().expect("temporary directory").keep();
        SqliteStore::open(dir.join("kenpo.db").to_str().expect("utf-8 path"))
            .await
            .expect("open")
    }

    /// Closes the store and removes its directory.
    async fn remove(store: Arc<SqliteStore>) {
        let file = store.pool().connect_options().get_filename().to_owned();
        store.pool().close().await;
        if let Some(dir) = file.parent() {
            std::fs::remove_dir_all(dir).expect("remove temporary directory");
        }
    }

    kenpo_auth::store_conformance_tests!(fresh(), remove);
}

#[cfg(feature = "sqlite")]
mod sqlite_memory {
    kenpo_auth::store_conformance_tests!(async {
        kenpo_auth::store::SqliteStore::in_memory()
            .await
            .expect("in-memory store")
    });
}
