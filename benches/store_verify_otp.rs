//! L2 (`Portal::verify_otp`) through each store, in one run: MemoryStore, SqliteStore
//! (a file in a temporary directory, WAL, synchronous=NORMAL) and PostgresStore (a fresh
//! schema on `KENPO_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`;
//! once as deployed and once with `synchronous_commit = off`).
//!
//! Each iteration gets a fresh challenge (issued and stored outside the timed part, one
//! at a time: the purge before each would remove a batch's other open challenges), so
//! every timed call does the real work of the step:
//! - `right_code`: find flow, find account, commit the ended challenge (one write);
//! - `wrong_code`: find flow, find account, commit the challenge and the account's
//!   failure counter together (two writes). Every tenth wrong code in a row reaches the
//!   account's limit (SEC-29): that one also ends the challenge, cools the account down
//!   and mails the abort notice, so the figure is the mean over that mix.
//!
//! `cargo bench --bench store_verify_otp --features sqlite,postgres`

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use kenpo_auth::Portal;
use kenpo_auth::flow::{Env, FlowState, LoginState, login};
use kenpo_auth::mail::RecordingMailer;
use kenpo_auth::model::Expect;
use kenpo_auth::ports::{AccountId, Commit, CommitOutcome, FlowId, FlowRecord, FlowWrite, Store};
use kenpo_auth::store::{MemoryStore, PostgresStore, SqliteStore};
use kenpo_auth::testkit::fixtures::{self, PASSWORD, TARO_BIRTH, TARO_CARD, TARO_EMAIL as EMAIL};
use kenpo_auth::token::DigestKeyring;
use sqlx::Executor;
use time::macros::datetime;

/// A portal over `store` with one registered member.
struct Fixture {
    portal: Portal,
    store: Arc<dyn Store>,
    account: AccountId,
    keys: DigestKeyring,
}

async fn fixture(store: Arc<dyn Store>) -> Fixture {
    let inbox = RecordingMailer::new();
    // The test-minimum policy, sample insurer and key of `fixtures::portal_builder`.
    let portal = fixtures::portal_builder()
        .shared_store(store.clone())
        .shared_mailer(Arc::new(inbox.clone()))
        .directory(fixtures::roster_of([fixtures::taro()]))
        .clock(Arc::new(fixtures::sample_clock()))
        .build()
        .expect("portal");
    portal.start_registration(EMAIL).await.expect("R1");
    let link1 = inbox.last_registration_link(EMAIL).expect("link 1");
    let handle = portal
        .open_registration_link(&link1.token)
        .await
        .expect("R2");
    let shown = portal
        .verify_identity(&handle, fixtures::claim(TARO_CARD, TARO_BIRTH))
        .await
        .expect("R3");
    let link2 = inbox.last_verification_link(EMAIL).expect("link 2");
    let handle = portal
        .confirm_auth_key(&link2.token, &shown.auth_key)
        .await
        .expect("R4");
    let mut credentials = fixtures::credentials("yamada-portal", PASSWORD);
    credentials.nickname = None;
    let registered = portal
        .complete_registration(&handle, credentials)
        .await
        .expect("R5");
    Fixture {
        portal,
        store,
        account: registered.account_id,
        keys: fixtures::test_keyring(),
    }
}

impl Fixture {
    /// A fresh open challenge for the member, stored as L1 would store it; returns the
    /// challenge handle and the right code. First purges the challenges earlier
    /// iterations left — ended ones (kept 1 h) and those a wrong code left open (kept
    /// 24 h after their 10 minutes), as L1 would have superseded them — so every store
    /// works at the same small steady size.
    async fn challenge(&self) -> (String, String) {
        self.store
            .purge_expired(datetime!(2026-11-25 12:00 UTC), 100_000)
            .await
            .expect("purge");
        let policy = self.portal.policy().clone();
        let (state, challenge, code) = {
            let env = Env {
                now: fixtures::START,
                policy: &policy,
                keys: &self.keys,
            };
            login::issue(self.account.clone(), env, &mut rand::rng())
        };
        let commit = Commit {
            flows: vec![FlowWrite {
                expect: Expect::Absent,
                record: FlowRecord {
                    id: FlowId::generate(&mut rand::rng()),
                    state: FlowState::Login(LoginState::AwaitingOtp(state)),
                },
            }],
            ..Commit::default()
        };
        assert_eq!(
            self.store.commit(commit).await.expect("commit"),
            CommitOutcome::Committed
        );
        (
            challenge.expose_secret().to_owned(),
            code.expose_secret().to_owned(),
        )
    }
}

fn bench_store(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, f: &Fixture) {
    let mut group = c.benchmark_group(format!("verify_otp/{name}"));
    group.sample_size(40);
    group.bench_function("right_code", |b| {
        b.iter_batched(
            || rt.block_on(f.challenge()),
            |(challenge, code)| {
                rt.block_on(
                    f.portal
                        .verify_otp(&challenge.parse().unwrap(), &code.parse().unwrap()),
                )
                .expect("right code accepted");
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("wrong_code", |b| {
        b.iter_batched(
            || rt.block_on(f.challenge()),
            |(challenge, code)| {
                let wrong = if code == "000000" { "111111" } else { "000000" };
                let r = rt.block_on(
                    f.portal
                        .verify_otp(&challenge.parse().unwrap(), &wrong.parse().unwrap()),
                );
                assert!(r.is_err(), "wrong code refused");
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

fn verify_otp(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    let memory = rt.block_on(fixture(Arc::new(MemoryStore::new())));
    bench_store(c, &rt, "memory", &memory);

    let dir = tempfile::tempdir().expect("temporary directory");
    let sqlite = rt.block_on(async {
        let store = SqliteStore::open(dir.path().join("bench.db").to_str().expect("path"))
            .await
            .expect("sqlite");
        fixture(Arc::new(store)).await
    });
    bench_store(c, &rt, "sqlite_file", &sqlite);

    let url = std::env::var("KENPO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut b = [0u8; 8];
    rand::fill(&mut b);
    let schema = format!(
        "kenpo_bench_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    );
    // As deployed (synchronous_commit = on: every commit waits for the WAL flush), and
    // with synchronous_commit = off, which shows the store's own cost without the
    // disk's flush latency.
    let sep = if url.contains('?') { '&' } else { '?' };
    let async_commit = format!("{url}{sep}options=-c%20synchronous_commit%3Doff");
    for (name, url) in [("postgres", &url), ("postgres_async_commit", &async_commit)] {
        let (store, f) = rt.block_on(async {
            let store = PostgresStore::connect_with_schema(url, &schema)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL must be reachable at {url}: {e:?}"));
            store.migrate().await.expect("migrate");
            store
                .danger_pool()
                .execute("TRUNCATE kenpo_flows, kenpo_flow_keys, kenpo_accounts, kenpo_counters")
                .await
                .expect("truncate");
            (store.clone(), fixture(Arc::new(store)).await)
        });
        bench_store(c, &rt, name, &f);
        rt.block_on(store.danger_pool().close());
    }
    rt.block_on(async {
        let store = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .expect("connect");
        store.danger_drop_schema().await.expect("drop schema");
    });
}

criterion_group!(benches, verify_otp);
criterion_main!(benches);
