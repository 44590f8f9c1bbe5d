//! The store conformance suite (DESIGN §4) against every store the crate ships on this
//! machine: `MemoryStore` always, `SqliteStore` (a file in a temporary directory, and in
//! memory) with the `sqlite` feature, and a host-style store that keeps `Store::load`'s
//! default implementation. `PostgresStore` runs it in `tests/postgres_store.rs`.
#![cfg(feature = "testkit")]

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
        let file = store
            .danger_pool()
            .connect_options()
            .get_filename()
            .to_owned();
        store.danger_pool().close().await;
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

/// A store that keeps `Store::load`'s default implementation (the single reads one
/// after another), as a host's own store would: the `load` cases check the default.
mod default_load {
    use async_trait::async_trait;
    use kenpo_auth::ports::{
        Account, AccountId, AccountLookup, Commit, CommitOutcome, Counter, FlowRecord, Store,
        StoreError, Versioned,
    };
    use kenpo_auth::store::MemoryStore;
    use kenpo_auth::testkit::conformance::DumpText;
    use kenpo_auth::token::TokenDigest;
    use time::OffsetDateTime;

    struct HostStore(MemoryStore);

    #[async_trait]
    impl Store for HostStore {
        async fn find_flow(
            &self,
            key: &TokenDigest,
        ) -> Result<Option<Versioned<FlowRecord>>, StoreError> {
            self.0.find_flow(key).await
        }
        async fn flows_of_account(
            &self,
            account: &AccountId,
        ) -> Result<Vec<Versioned<FlowRecord>>, StoreError> {
            self.0.flows_of_account(account).await
        }
        async fn find_account(
            &self,
            by: AccountLookup,
        ) -> Result<Option<Versioned<Account>>, StoreError> {
            self.0.find_account(by).await
        }
        async fn load_counter(&self, key: &str) -> Result<Option<Versioned<Counter>>, StoreError> {
            self.0.load_counter(key).await
        }
        async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
            self.0.commit(commit).await
        }
        async fn purge_expired(
            &self,
            now: OffsetDateTime,
            limit: usize,
        ) -> Result<usize, StoreError> {
            self.0.purge_expired(now, limit).await
        }
        async fn find_mail(
            &self,
            id: &kenpo_auth::model::MailId,
        ) -> Result<Option<Versioned<kenpo_auth::model::OutboxMail>>, StoreError> {
            self.0.find_mail(id).await
        }
        async fn claim_mails(
            &self,
            now: OffsetDateTime,
            leased_until: OffsetDateTime,
            limit: usize,
        ) -> Result<Vec<Versioned<kenpo_auth::model::OutboxMail>>, StoreError> {
            self.0.claim_mails(now, leased_until, limit).await
        }
    }

    #[async_trait]
    impl DumpText for HostStore {
        async fn dump_text(&self) -> Result<String, StoreError> {
            Ok(self.0.danger_dump())
        }
    }

    kenpo_auth::store_conformance_tests!(async { HostStore(MemoryStore::new()) });
}
