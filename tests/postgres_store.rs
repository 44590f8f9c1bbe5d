//! `PostgresStore` against a real PostgreSQL server: the conformance suite, two portals
//! (two pools, as two web servers) over one database, and lost connections.
//!
//! Server: `postgres://postgres@127.0.0.1:5432/postgres` unless `KENPO_TEST_DATABASE_URL`
//! says otherwise. Every test works in a fresh schema of its own (dropped afterwards), so
//! the tests run in parallel. Without a reachable server these tests fail; they never
//! skip.
#![cfg(all(feature = "postgres", feature = "testkit"))]

mod postgres_support;

use std::time::Duration;

use kenpo_auth::Error;
use kenpo_auth::flow::{FlowState, RegistrationState};
use kenpo_auth::ports::{AccountLookup, MemberId, Store};
use kenpo_auth::store::PostgresStore;
use kenpo_auth::testkit::fixtures::{self, PASSWORD};
use sqlx::Executor;

use postgres_support::*;

mod conformance {
    kenpo_auth::store_conformance_tests!(super::fresh(), super::drop_schema);
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
    // The same code again, through A, at once: told of the same login (a repeat,
    // #14), never a second one, whichever server sees it.
    let again = a
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await
        .expect("a repeat within the window");
    assert!(again.is_repeat() && again.authenticated_at == ok.authenticated_at);
    // After the repeat window, the challenge is spent on both servers.
    world.clock.advance(time::Duration::seconds(31));
    let late = a
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await
        .expect_err("a 暗証キー makes one login, whichever server sees it");
    assert!(
        matches!(late, Error::Rejected(_)),
        "refused as a member error: {late:?}"
    );

    // Mail throttle (SEC-13): a second R1 right after the first, through the other
    // server, sends no second mail.
    let other = "hanako@example.jp";
    a.start_registration(other).await.expect("R1 through A");
    b.start_registration(other).await.expect("R1 through B");
    assert_eq!(
        world.inbox.kinds_to(other).len(),
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

    store_a.danger_pool().close().await;
    store_b.danger_pool().close().await;
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
    store.danger_pool().close().await;
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
        .danger_pool()
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
        .fetch_one(store.danger_pool())
        .await
        .expect("count");
    assert_eq!(accounts, 0);

    store
        .danger_pool()
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
    store.danger_pool().close().await;
}

/// `connect` (without a schema) reaches the server, and `migrate` is idempotent.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_is_idempotent() {
    let schema = SchemaGuard::new();
    let store = store_in(&schema.0, &url()).await;
    store.migrate().await.expect("second migrate is a no-op");
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM kenpo_auth_migrations")
        .fetch_one(store.danger_pool())
        .await
        .expect("migrations table");
    assert_eq!(n, 4, "one row per embedded migration");
    // SEC-45: the schema says what a stored flow holds (migration 0003).
    let (comment,): (Option<String>,) = sqlx::query_as(
        "SELECT col_description(to_regclass('kenpo_flows'), \
         (SELECT attnum FROM pg_attribute \
          WHERE attrelid = to_regclass('kenpo_flows') AND attname = 'state'))",
    )
    .fetch_one(store.danger_pool())
    .await
    .expect("column comment");
    assert!(comment.is_some_and(|c| c.contains("SEC-45") && c.contains("member ID")));
    let plain = PostgresStore::connect(&url()).await.expect("connect");
    plain.danger_pool().close().await;
    store.danger_pool().close().await;
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

/// Copies `r` to `w` until either closes; once `silent` is set, holds every byte.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if silent.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A TCP relay to the PostgreSQL server that can go silent: once cut, it forwards
/// nothing either way and new connections get no answer — a network that drops packets,
/// the case in which a client would wait longest. Returns its port and the switch.
async fn relay(to: &str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (to, flag) = (to.to_owned(), silent.clone());
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (to, flag) = (to.clone(), flag.clone());
            tokio::spawn(async move {
                if flag.load(std::sync::atomic::Ordering::SeqCst) {
                    // Accepted, never answered: the socket stays open, silent.
                    return std::future::pending::<()>().await;
                }
                let server = tokio::net::TcpStream::connect(&to).await.unwrap();
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, flag.clone()));
                pump(sr, cw, flag).await;
            });
        }
    });
    (port, silent)
}

/// Fail fast (#14): when PostgreSQL stops answering mid-service, a step answers
/// `Error::Store(StoreError::Timeout)` — retryable — within the store's timeouts,
/// instead of holding the request (sqlx's default would wait 30 s for a connection).
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_answers_a_timeout_not_a_hang() {
    use kenpo_auth::ports::StoreError;
    use kenpo_auth::store::Timeouts;
    let schema = SchemaGuard::new();
    // Migrate directly, then reach the server only through the relay.
    store_in(&schema.0, &url())
        .await
        .danger_pool()
        .close()
        .await;
    let (port, silent) = relay("127.0.0.1:5432").await;
    let through = url().replace("127.0.0.1:5432", &format!("127.0.0.1:{port}"));
    let timeouts = Timeouts::new(Duration::from_millis(300), Duration::from_millis(300));
    let store = PostgresStore::connect_with_timeouts(&through, Some(&schema.0), timeouts)
        .await
        .expect("connect through the relay");
    let world = World::new();
    let portal = world.portal(store);
    portal
        .start_registration("before.cut@example.jp")
        .await
        .expect("a step while the database answers");

    silent.store(true, std::sync::atomic::Ordering::SeqCst);
    let began = std::time::Instant::now();
    let e = portal
        .start_registration("during.cut@example.jp")
        .await
        .expect_err("no answer from the database");
    eprintln!("fail fast: Error::Store after {:?}", began.elapsed());
    assert!(
        matches!(e, Error::Store(StoreError::Timeout(_))),
        "a timeout, not a hang or another error: {e:?}"
    );
    assert!(e.is_retryable(), "the member is told to try again");
}
