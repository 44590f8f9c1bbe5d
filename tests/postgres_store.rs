//! `PostgresStore` against a real PostgreSQL server: the conformance suite, two portals
//! (two pools, as two web servers) over one database, and lost connections.
//!
//! Server: `postgres://postgres@127.0.0.1:5432/postgres` unless `KENPO_TEST_DATABASE_URL`
//! says otherwise. Every test works in a fresh schema of its own (dropped afterwards), so
//! the tests run in parallel. Without a reachable server these tests fail; they never
//! skip.
#![cfg(all(feature = "postgres", feature = "testkit"))]
// Test code may panic: a failed unwrap, expect, index or panic! is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// A test crate has no public API; `pub` only shares helpers between its modules.
#![allow(unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kenpo_auth::domain::EmailAddress;
use kenpo_auth::flow::{FlowState, LoginState, RegistrationState};
use kenpo_auth::mail::{MailMessage, OutgoingMail};
use kenpo_auth::portal::NewCredentials;
use kenpo_auth::ports::{AccountLookup, MailError, Mailer, MemberId, Store, StoreError};
use kenpo_auth::store::PostgresStore;
use kenpo_auth::testkit::fixtures::{
    self, PASSWORD, TARO_BIRTH as BIRTH, TARO_CARD as CARD, TARO_EMAIL as EMAIL,
};
use kenpo_auth::testkit::{ManualClock, MemoryDirectory};
use kenpo_auth::token::{OtpChallengeId, TokenDigest};
use kenpo_auth::{Error, Portal};
use sqlx::Executor;

fn url() -> String {
    std::env::var("KENPO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn random_schema() -> String {
    let mut b = [0u8; 8];
    rand::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("kenpo_test_{hex}")
}

/// A migrated store in `schema`, on a pool of its own.
async fn store_in(schema: &str, url: &str) -> PostgresStore {
    let store = PostgresStore::connect_with_schema(url, schema)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {url}: {e:?}"));
    store.migrate().await.expect("migrate");
    store
}

/// A migrated store in a fresh schema.
async fn fresh() -> PostgresStore {
    store_in(&random_schema(), &url()).await
}

/// Drops the store's schema and closes its pool.
async fn drop_schema(store: Arc<PostgresStore>) {
    let (schema,): (String,) = sqlx::query_as("SELECT current_schema()::text")
        .fetch_one(store.pool())
        .await
        .expect("current schema");
    store
        .pool()
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .await
        .expect("drop schema");
    store.pool().close().await;
}

/// Drops a test's schema when the test ends, passed or failed.
struct SchemaGuard(String);

impl SchemaGuard {
    fn new() -> Self {
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

mod conformance {
    kenpo_auth::store_conformance_tests!(super::fresh(), super::drop_schema);
}

// ---------------------------------------------------------------------------------------
// Portals over PostgreSQL
// ---------------------------------------------------------------------------------------

/// Every mail both portals send, as one mail system would see them.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<OutgoingMail>>>);

#[async_trait]
impl Mailer for Inbox {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(mail.clone());
        Ok(())
    }
}

impl Inbox {
    fn to(&self, to: &str) -> Vec<MailMessage> {
        let to = EmailAddress::parse(to).expect("address");
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|m| m.to.canonical() == to.canonical())
            .map(|m| m.message.clone())
            .collect()
    }

    fn last(&self, to: &str) -> MailMessage {
        self.to(to).pop().expect("a mail to this address")
    }
}

const LOGIN_ID: &str = "yamada-portal";

struct World {
    inbox: Inbox,
    directory: MemoryDirectory,
    clock: ManualClock,
}

impl World {
    fn new() -> Self {
        World {
            inbox: Inbox::default(),
            directory: fixtures::roster_of([fixtures::taro()]),
            clock: fixtures::sample_clock(),
        }
    }

    /// A portal (one web server) over `store`, sharing the roster, clock, mail system
    /// and secret key with every other portal of this world.
    fn portal(&self, store: PostgresStore) -> Portal {
        fixtures::portal_builder()
            .store(store)
            .shared_mailer(Arc::new(self.inbox.clone()))
            .directory(self.directory.clone())
            .clock(Arc::new(self.clock.clone()))
            .build()
            .expect("portal")
    }

    fn link1(&self) -> String {
        match self.inbox.last(EMAIL) {
            MailMessage::RegistrationLink(l) => l.token.expose_secret().to_owned(),
            other => panic!("expected link 1, got {other:?}"),
        }
    }

    fn link2(&self) -> String {
        match self.inbox.last(EMAIL) {
            MailMessage::IdentityVerified(l) => l.token.expose_secret().to_owned(),
            other => panic!("expected link 2, got {other:?}"),
        }
    }

    fn otp(&self) -> String {
        match self.inbox.last(EMAIL) {
            MailMessage::LoginOtp { code, .. } => code.expose_secret().to_owned(),
            other => panic!("expected a 暗証キー mail, got {other:?}"),
        }
    }

    /// R1–R4 through `portal`; returns the handle R5 needs.
    async fn register_until_credentials(&self, portal: &Portal) -> String {
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

fn credentials() -> NewCredentials {
    fixtures::credentials(LOGIN_ID, PASSWORD)
}

/// Whether `e` is a store error with a `sqlx::Error` in its source chain.
fn is_sqlx_store_error(e: &Error) -> bool {
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
async fn challenge_state(store: &PostgresStore, challenge: &str) -> (u64, LoginState) {
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

/// Two web servers (two pools) over one database: a member registers and logs in
/// through A, the 暗証キー is accepted by B, a second use through A is refused, and the
/// throttles (mail interval, 暗証キー tries) count requests of both servers together.
#[tokio::test(flavor = "multi_thread")]
async fn two_portals_share_one_database() {
    let (schema, url) = (SchemaGuard::new(), url());
    let (store_a, store_b) = (
        store_in(&schema.0, &url).await,
        store_in(&schema.0, &url).await,
    );
    let world = World::new();
    let a = world.portal(store_a.clone());
    let b = world.portal(store_b.clone());

    let handle = world.register_until_credentials(&a).await;
    let registered = a
        .complete_registration(&handle.parse().unwrap(), credentials())
        .await
        .expect("R5 through A");
    let account = store_b
        .find_account(AccountLookup::Id(registered.account_id.clone()))
        .await
        .expect("find_account")
        .expect("B sees the account A created");
    assert_eq!(account.value.login_id.as_str(), LOGIN_ID);

    // L1 through A, L2 through B.
    let challenge = a
        .start_login(LOGIN_ID, &fixtures::password(PASSWORD))
        .await
        .expect("L1 through A");
    let code = world.otp();
    let ok = b
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await
        .expect("B accepts the 暗証キー A mailed");
    assert_eq!(ok.account_id, registered.account_id);
    // The same code again, through A: the challenge is spent.
    let again = a
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await
        .expect_err("a 暗証キー works once, whichever server sees it");
    assert!(
        matches!(again, Error::Rejected(_)),
        "refused as a member error: {again:?}"
    );

    // Mail throttle (SEC-13): a second R1 right after the first, through the other
    // server, sends no second mail.
    let other = "hanako@example.jp";
    a.start_registration(other).await.expect("R1 through A");
    b.start_registration(other).await.expect("R1 through B");
    assert_eq!(
        world.inbox.to(other).len(),
        1,
        "the mail interval holds across servers"
    );

    // 暗証キー tries (SEC-29): wrong codes through A and B count on one challenge.
    world.clock.advance(time::Duration::minutes(2));
    let challenge = b
        .start_login(LOGIN_ID, &fixtures::password(PASSWORD))
        .await
        .expect("L1 through B");
    let code = world.otp();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let tries = a.policy().otp_tries_per_challenge;
    for i in 0..tries {
        let portal = if i % 2 == 0 { &a } else { &b };
        let r = portal
            .verify_otp(&challenge.challenge, &wrong.parse().unwrap())
            .await;
        assert!(matches!(r, Err(Error::Rejected(_))), "wrong code refused");
    }
    let (_, state) = challenge_state(&store_a, challenge.challenge.expose_secret()).await;
    assert!(
        !state.is_open(),
        "the challenge ended after {tries} wrong codes across both servers"
    );
    let late = a
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await;
    assert!(
        matches!(late, Err(Error::Rejected(_))),
        "the right code no longer works: {late:?}"
    );

    store_a.pool().close().await;
    store_b.pool().close().await;
}

/// Terminates every backend of the pools whose connections carry `application_name`,
/// from a separate connection, and waits until they are gone.
async fn kill_backends(application_name: &str) -> usize {
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url())
        .await
        .expect("separate connection");
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND application_name = $1",
    )
    .bind(application_name)
    .fetch_all(&mut conn)
    .await
    .expect("pg_terminate_backend");
    for _ in 0..200 {
        let (left,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = $1",
        )
        .bind(application_name)
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_activity");
        if left == 0 {
            return killed.len();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("backends still alive after pg_terminate_backend");
}

/// The URL with an `application_name` that names this test's pool, so that only its
/// backends are terminated (other tests run in parallel on the same database).
fn url_named(name: &str) -> String {
    let base = url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}application_name={name}")
}

/// A lost connection mid-journey: the step fails with `Error::Store` whose source chain
/// holds the `sqlx::Error`, nothing is half-written, and the next attempt succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn lost_connections_fail_one_step_and_write_nothing() {
    let schema = SchemaGuard::new();
    let url = url_named(&schema.0);
    let store = store_in(&schema.0, &url).await;
    let world = World::new();
    let portal = world.portal(store.clone());
    let handle = world.register_until_credentials(&portal).await;
    portal
        .complete_registration(&handle.parse().unwrap(), credentials())
        .await
        .expect("R5");
    let challenge = portal
        .start_login(LOGIN_ID, &fixtures::password(PASSWORD))
        .await
        .expect("L1");
    let code = world.otp();
    let before = challenge_state(&store, challenge.challenge.expose_secret()).await;

    // Every backend of the store's pool dies between L1 and L2.
    assert!(kill_backends(&schema.0).await >= 1, "the pool had backends");
    let err = portal
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await
        .expect_err("L2 on a dead connection fails");
    assert!(
        is_sqlx_store_error(&err),
        "Error::Store with a sqlx::Error in its source chain, got {err:?}"
    );
    let after = challenge_state(&store, challenge.challenge.expose_secret()).await;
    assert_eq!(after, before, "the failed step wrote nothing");

    // The member tries again: it works.
    let ok = portal
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await
        .expect("the next attempt succeeds");
    let account = store
        .find_account(AccountLookup::LoginId(
            kenpo_auth::domain::LoginId::parse(LOGIN_ID).expect("login ID"),
        ))
        .await
        .expect("find_account")
        .expect("account");
    assert_eq!(ok.account_id, account.value.id);
    store.pool().close().await;
}

/// The connection dies inside R5's transaction, after the flow row was updated and
/// while the account row is being inserted: PostgreSQL rolls the whole commit back — no
/// account, the flow still waiting for credentials — and the member's retry with the
/// same handle creates the account.
#[tokio::test(flavor = "multi_thread")]
async fn connection_lost_inside_a_commit_leaves_no_half_made_account() {
    let schema = SchemaGuard::new();
    let url = url_named(&schema.0);
    let store = store_in(&schema.0, &url).await;
    let world = World::new();
    let portal = world.portal(store.clone());
    let handle = world.register_until_credentials(&portal).await;

    // A trigger that kills its own backend when an account row is inserted.
    store
        .pool()
        .execute(
            "CREATE FUNCTION kenpo_test_die() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); \
             PERFORM pg_sleep(5); RETURN NEW; END $$; \
             CREATE TRIGGER kenpo_test_die BEFORE INSERT ON kenpo_accounts \
             FOR EACH ROW EXECUTE FUNCTION kenpo_test_die();",
        )
        .await
        .expect("install trigger");

    let err = portal
        .complete_registration(&handle.parse().unwrap(), credentials())
        .await
        .expect_err("R5 fails when its connection dies mid-commit");
    assert!(
        is_sqlx_store_error(&err),
        "Error::Store with a sqlx::Error in its source chain, got {err:?}"
    );
    let member = AccountLookup::Member(MemberId::new("M001"));
    assert!(
        store
            .find_account(member.clone())
            .await
            .expect("find_account")
            .is_none(),
        "no half-made account"
    );
    let (accounts,): (i64,) = sqlx::query_as("SELECT count(*) FROM kenpo_accounts")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert_eq!(accounts, 0);

    store
        .pool()
        .execute("DROP TRIGGER kenpo_test_die ON kenpo_accounts")
        .await
        .expect("drop trigger");
    let registered = portal
        .complete_registration(&handle.parse().unwrap(), credentials())
        .await
        .expect("the retry with the same handle succeeds");
    let account = store
        .find_account(member)
        .await
        .expect("find_account")
        .expect("account created once");
    assert_eq!(account.value.id, registered.account_id);
    let flows = store
        .flows_of_account(&registered.account_id)
        .await
        .expect("flows_of_account");
    assert!(
        flows.iter().any(|f| matches!(
            f.value.state,
            FlowState::Registration(RegistrationState::Completed(_))
        )),
        "the registration flow completed with the account"
    );
    store.pool().close().await;
}

/// `connect` (without a schema) reaches the server, and `migrate` is idempotent.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent() {
    let schema = SchemaGuard::new();
    let store = store_in(&schema.0, &url()).await;
    store.migrate().await.expect("second migrate is a no-op");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM kenpo_auth_migrations")
        .fetch_one(store.pool())
        .await
        .expect("migrations table");
    assert_eq!(n, 2, "one row per embedded migration");
    let plain = PostgresStore::connect(&url()).await.expect("connect");
    plain.pool().close().await;
    store.pool().close().await;
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

/// Counts the statements sqlx sends (one `sqlx::query` event each) on the thread it is
/// the default subscriber of. Over a warm connection each is one round trip: sqlx
/// prepares a statement once per connection and reuses it.
struct StatementCounter(Arc<std::sync::atomic::AtomicUsize>);

impl tracing::Subscriber for StatementCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "sqlx::query"
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if event.metadata().target() == "sqlx::query" {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Round trips per call, counted: every portal step is one `load` and one commit (R3 and
/// a reset request also read what the first read named); a `load` of every part is one
/// statement, a
/// commit of one write or of ten writes (flows, counters, an account) is one, a refused
/// commit is one.
#[test]
fn round_trips_per_call() {
    use kenpo_auth::flow::{Env, login};
    use kenpo_auth::ports::{
        AccountLoad, AccountWrite, Commit, CommitOutcome, Counter, CounterWrite, FlowId,
        FlowRecord, FlowWrite, Load,
    };
    use std::sync::atomic::{AtomicUsize, Ordering};

    let schema = SchemaGuard::new();
    let statements = Arc::new(AtomicUsize::new(0));
    let dispatch = tracing::Dispatch::new(StatementCounter(statements.clone()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Every future runs on this thread, so every sqlx event reaches this subscriber
    // and no other test's does.
    tracing::dispatcher::with_default(&dispatch, || {
        rt.block_on(async {
            let store = store_in(&schema.0, &url()).await;
            let world = World::new();
            let portal = world.portal(store.clone());
            let count = |before: usize| statements.load(Ordering::SeqCst) - before;
            // Every portal step, counted: one load and one commit at most, except where
            // what to read next depends on the roster's answer (R3).
            let mut steps: Vec<(&str, usize)> = Vec::new();
            let before = statements.load(Ordering::SeqCst);
            portal.start_registration(EMAIL).await.expect("R1");
            steps.push(("R1 start_registration", count(before)));
            let link1 = world.link1().parse().unwrap();
            let before = statements.load(Ordering::SeqCst);
            let _ = portal
                .inspect_registration_link(&link1)
                .await
                .expect("R2 GET");
            steps.push(("R2 inspect_registration_link (GET)", count(before)));
            let before = statements.load(Ordering::SeqCst);
            let handle = portal.open_registration_link(&link1).await.expect("R2");
            steps.push(("R2 open_registration_link", count(before)));
            let before = statements.load(Ordering::SeqCst);
            let shown = portal
                .verify_identity(&handle, fixtures::claim(CARD, BIRTH))
                .await
                .expect("R3");
            steps.push(("R3 verify_identity", count(before)));
            let before = statements.load(Ordering::SeqCst);
            let handle = portal
                .confirm_auth_key(&world.link2().parse().unwrap(), &shown.auth_key)
                .await
                .expect("R4");
            steps.push(("R4 confirm_auth_key", count(before)));
            let before = statements.load(Ordering::SeqCst);
            let registered = portal
                .complete_registration(&handle, credentials())
                .await
                .expect("R5");
            steps.push(("R5 complete_registration", count(before)));
            let before = statements.load(Ordering::SeqCst);
            let challenge = portal
                .start_login(LOGIN_ID, &fixtures::password(PASSWORD))
                .await
                .expect("L1");
            steps.push(("L1 start_login", count(before)));
            world.clock.advance(time::Duration::seconds(61));
            let before = statements.load(Ordering::SeqCst);
            portal.resend_otp(&challenge.challenge).await.expect("L4");
            steps.push(("L4 resend_otp", count(before)));
            let code = world.otp();
            let wrong = if code == "000000" { "111111" } else { "000000" };
            let before = statements.load(Ordering::SeqCst);
            let _ = portal
                .verify_otp(&challenge.challenge, &wrong.parse().unwrap())
                .await;
            steps.push(("L2 verify_otp, wrong code", count(before)));
            let before = statements.load(Ordering::SeqCst);
            portal
                .verify_otp(&challenge.challenge, &code.parse().unwrap())
                .await
                .expect("L2");
            steps.push(("L2 verify_otp, right code", count(before)));
            let challenge = portal
                .start_login(LOGIN_ID, &fixtures::password(PASSWORD))
                .await
                .expect("L1 again");
            let before = statements.load(Ordering::SeqCst);
            portal
                .close_otp_screen(&challenge.challenge)
                .await
                .expect("L3");
            steps.push(("L3 close_otp_screen", count(before)));
            world.clock.advance(time::Duration::seconds(61));
            let before = statements.load(Ordering::SeqCst);
            portal
                .request_password_reset(LOGIN_ID)
                .await
                .expect("reset");
            steps.push(("request_password_reset", count(before)));
            for (step, n) in &steps {
                eprintln!("round trips: {step}: {n}");
            }
            for (step, n) in &steps {
                // R3 reads what the roster named (the member's budget and account) and
                // whether the address was taken meanwhile; a reset request reads the mail
                // counter of the address the account names.
                let most = match *step {
                    s if s.starts_with("R3") => 4,
                    "request_password_reset" => 3,
                    _ => 2,
                };
                assert!(*n <= most, "{step}: {n} round trips (at most {most})");
            }
            let keys = kenpo_auth::token::DigestKeyring::new(
                kenpo_auth::token::DigestKey::new(1, [7u8; 32]).expect("key"),
            );
            let policy = portal.policy().clone();
            let now = fixtures::START;
            let new_flow = || {
                let env = Env {
                    now,
                    policy: &policy,
                    keys: &keys,
                };
                let (state, _, _) =
                    login::issue(registered.account_id.clone(), env, &mut rand::rng());
                FlowRecord {
                    id: FlowId::generate(&mut rand::rng()),
                    state: FlowState::Login(LoginState::AwaitingOtp(state)),
                }
            };
            let counter = |key: String| Counter {
                key,
                window_start: now,
                count: 1,
                last_at: now,
                expires_at: now + time::Duration::hours(1),
            };

            let flow = new_flow();
            let one = Commit {
                flows: vec![FlowWrite {
                    expected: None,
                    record: flow.clone(),
                }],
                ..Commit::default()
            };
            let before = statements.load(Ordering::SeqCst);
            assert_eq!(
                store.commit(one).await.expect("commit"),
                CommitOutcome::Committed
            );
            assert_eq!(count(before), 1, "a commit of one write");

            let account = store
                .find_account(AccountLookup::Id(registered.account_id.clone()))
                .await
                .expect("find_account")
                .expect("account");
            let mut changed = account.value.clone();
            changed.otp_failures += 1;
            let ten = Commit {
                flows: (0..6)
                    .map(|_| FlowWrite {
                        expected: None,
                        record: new_flow(),
                    })
                    .collect(),
                counters: (0..3)
                    .map(|i| CounterWrite {
                        expected: None,
                        counter: counter(format!("c{i}:{}", registered.account_id)),
                    })
                    .collect(),
                accounts: vec![AccountWrite::Update {
                    expected: account.version,
                    account: changed,
                }],
            };
            let before = statements.load(Ordering::SeqCst);
            assert_eq!(
                store.commit(ten.clone()).await.expect("commit"),
                CommitOutcome::Committed
            );
            assert_eq!(count(before), 1, "a commit of ten writes");
            let before = statements.load(Ordering::SeqCst);
            assert_eq!(
                store.commit(ten).await.expect("commit"),
                CommitOutcome::Conflict
            );
            assert_eq!(count(before), 1, "a refused commit");

            let digest = flow.state.lookup_keys().into_iter().next().expect("key");
            let load = Load::new()
                .flow([TokenDigest::from_bytes([0; 32]), digest])
                .account(AccountLoad::OfFlow)
                .account_flows()
                .counter("c0:nobody")
                .account_counter("c0:")
                .account_counter("c1:");
            let before = statements.load(Ordering::SeqCst);
            let loaded = store.load(&load).await.expect("load");
            assert_eq!(count(before), 1, "a load of every part");
            assert!(loaded.flow.is_some() && loaded.account.is_some());
            assert_eq!(
                loaded.account_flows.len(),
                11,
                "R5's flow, the journey's two challenges and reset, and seven challenges"
            );
            assert!(loaded.account_counters.iter().all(Option::is_some));

            store.pool().close().await;
        })
    });
}
