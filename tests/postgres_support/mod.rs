//! What the PostgreSQL suites share: a fresh schema per test, and a world of roster,
//! clock and mail (one `RecordingMailer` inbox) that several portals (web servers) share.

#![allow(dead_code)]

use std::sync::Arc;

use kenpo_auth::flow::{FlowState, LoginState};
use kenpo_auth::mail::RecordingMailer;
use kenpo_auth::portal::NewCredentials;
use kenpo_auth::ports::{Store, StoreError};
use kenpo_auth::store::PostgresStore;
use kenpo_auth::testkit::fixtures::{
    self, PASSWORD, TARO_BIRTH as BIRTH, TARO_CARD as CARD, TARO_EMAIL as EMAIL,
};
use kenpo_auth::testkit::{ManualClock, MemoryDirectory};
use kenpo_auth::token::{OtpChallengeId, TokenDigest};
use kenpo_auth::{Error, Portal};
use sqlx::Executor;

pub fn url() -> String {
    std::env::var("KENPO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn random_schema() -> String {
    let mut b = [0u8; 8];
    rand::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("kenpo_test_{hex}")
}

/// A migrated store in `schema`, on a pool of its own.
pub async fn store_in(schema: &str, url: &str) -> PostgresStore {
    let store = PostgresStore::connect_with_schema(url, schema)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {url}: {e:?}"));
    store.migrate().await.expect("migrate");
    store
}

/// A migrated store in a fresh schema.
pub async fn fresh() -> PostgresStore {
    store_in(&random_schema(), &url()).await
}

/// Drops the store's schema and closes its pool.
pub async fn drop_schema(store: Arc<PostgresStore>) {
    store.danger_drop_schema().await.expect("drop schema");
}

/// Drops a test's schema when the test ends, passed or failed.
pub struct SchemaGuard(pub String);

impl SchemaGuard {
    pub fn new() -> Self {
        SchemaGuard(random_schema())
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let schema = self.0.clone();
        // Drop runs inside the test's runtime: do the async work on a thread of its own.
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url())
                    .await
                    .expect("connect to drop the test schema");
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
                )))
                .await
                .expect("drop schema");
            });
        })
        .join();
        if done.is_err() && !std::thread::panicking() {
            panic!("could not drop test schema {}", self.0);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Portals over PostgreSQL
// ---------------------------------------------------------------------------------------

pub const LOGIN_ID: &str = "yamada-portal";

pub struct World {
    /// Every mail both portals send, as one mail system would see them.
    pub inbox: RecordingMailer,
    pub directory: MemoryDirectory,
    pub clock: ManualClock,
}

impl World {
    pub fn new() -> Self {
        World {
            inbox: RecordingMailer::new(),
            directory: fixtures::roster_of([fixtures::taro()]),
            clock: fixtures::sample_clock(),
        }
    }

    /// A portal (one web server) over `store`, sharing the roster, clock, mail system
    /// and secret key with every other portal of this world.
    pub fn portal(&self, store: PostgresStore) -> Portal {
        fixtures::portal_builder()
            .store(store)
            .shared_mailer(Arc::new(self.inbox.clone()))
            .directory(self.directory.clone())
            .clock(Arc::new(self.clock.clone()))
            .build()
            .expect("portal")
    }

    /// Link 1 of the latest registration mail, as the browser sends it back.
    pub fn link1(&self) -> String {
        let link = self.inbox.last_registration_link(EMAIL).expect("link 1");
        link.token.expose_secret().to_owned()
    }

    /// Link 2 of the latest identity-verified mail, as the browser sends it back.
    pub fn link2(&self) -> String {
        let link = self.inbox.last_verification_link(EMAIL).expect("link 2");
        link.token.expose_secret().to_owned()
    }

    /// The latest 暗証キー, as the member types it.
    pub fn otp(&self) -> String {
        let code = self.inbox.last_otp(EMAIL).expect("a 暗証キー mail");
        code.expose_secret().to_owned()
    }

    /// R1–R4 through `portal`; returns the handle R5 needs.
    pub async fn register_until_credentials(&self, portal: &Portal) -> String {
        portal.start_registration(EMAIL).await.expect("R1");
        let handle = portal
            .open_registration_link(&self.link1().parse().unwrap())
            .await
            .expect("R2");
        let shown = portal
            .verify_identity(&handle, fixtures::claim(CARD, BIRTH))
            .await
            .expect("R3");
        let handle = portal
            .confirm_auth_key(&self.link2().parse().unwrap(), &shown.auth_key)
            .await
            .expect("R4");
        handle.expose_secret().to_owned()
    }
}

pub fn credentials() -> NewCredentials {
    fixtures::credentials(LOGIN_ID, PASSWORD)
}

/// Whether `e` is a store error with a `sqlx::Error` in its source chain.
pub fn is_sqlx_store_error(e: &Error) -> bool {
    if !matches!(e, Error::Store(StoreError::Backend(_))) {
        return false;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<sqlx::Error>().is_some() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// The login challenge found by `challenge` (through a connection of `store`).
pub async fn challenge_state(store: &PostgresStore, challenge: &str) -> (u64, LoginState) {
    let keys = fixtures::test_keyring();
    let digest: TokenDigest = OtpChallengeId::parse(challenge)
        .expect("challenge")
        .digest(&keys);
    let found = store
        .find_flow(&digest)
        .await
        .expect("find_flow")
        .expect("challenge stored");
    match found.value.state {
        FlowState::Login(s) => (found.version.0, s),
        other => panic!("expected a login flow, got {other:?}"),
    }
}
