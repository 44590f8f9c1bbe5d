//! The store conformance suite: one async function per guarantee of DESIGN §4 (see the
//! [`Store`] docs), run against every store the crate ships and available to hosts that
//! write their own.
//!
//! Each function takes a fresh, empty store and panics (with a message naming the
//! guarantee) when the store breaks it. The easy way to run them all is the
//! [`store_conformance_tests!`](crate::store_conformance_tests) macro, which expands to
//! one `#[tokio::test(flavor = "multi_thread")]` per guarantee:
//!
//! ```no_run
//! mod memory {
//!     kenpo_auth::store_conformance_tests!(async { kenpo_auth::store::MemoryStore::new() });
//! }
//! ```
//!
//! The expression is awaited once per test and must give a fresh, empty store of a type
//! that implements [`Store`] and [`DumpText`]. An optional second argument is a
//! teardown, `|store: Arc<S>| async move { … }`, run after each test even when it fails
//! (e.g. to drop a database schema). The calling crate needs `tokio` with the `macros`
//! and `rt-multi-thread` features among its dev-dependencies.
//!
//! The records are fictional; secrets are issued through the real token types and a
//! [`DigestKeyring`], so the plaintext check proves what a portal would store.
//!
//! Like `assert!`, every check reports a broken guarantee by panicking inside the host's
//! test; nothing here runs on a request path (the module exists only with `testkit`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use time::OffsetDateTime;
use time::macros::datetime;

use crate::domain::{EmailAddress, LoginId, Password};
use crate::flow::delivery::{self, Attempt, DeliverySchedule};
use crate::flow::{
    AwaitingLinkOpen, Dead, DeadReason, Env, FlowState, LoginState, RegistrationState, login,
    registration,
};
use crate::model::{Delivery, Expect, MailId, OutboxMail, Undeliverable};
use crate::password_hash::{HashParams, PasswordHashString, PasswordHasher};
use crate::policy::Policy;
use crate::ports::{
    Account, AccountId, AccountLoad, AccountLookup, AccountStatus, AccountWrite, Commit,
    CommitOutcome, Counter, CounterWrite, FlowId, FlowRecord, FlowWrite, Load, Loaded, MailWrite,
    MemberId, SecurityStamp, Store, StoreError, Version, Versioned,
};
use crate::store::MemoryStore;
use crate::token::{DigestKey, DigestKeyring, FlowHandle, RegistrationLinkToken, TokenDigest};

/// A test hook: everything a store holds, as text, so the suite can check that no
/// plaintext secret reaches any column (SEC-03, SEC-04). Binary columns must be shown
/// as hex.
#[async_trait]
pub trait DumpText: Send + Sync {
    /// Every row of every table (or every record), as text.
    async fn dump_text(&self) -> Result<String, StoreError>;
}

#[async_trait]
impl DumpText for MemoryStore {
    async fn dump_text(&self) -> Result<String, StoreError> {
        Ok(self.danger_dump())
    }
}

#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
#[async_trait]
impl DumpText for crate::store::SqliteStore {
    async fn dump_text(&self) -> Result<String, StoreError> {
        crate::store::SqliteStore::dump_text(self).await
    }
}

#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
#[async_trait]
impl DumpText for crate::store::PostgresStore {
    async fn dump_text(&self) -> Result<String, StoreError> {
        crate::store::PostgresStore::dump_text(self).await
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// The instant every record of the suite is made at.
const NOW: OffsetDateTime = datetime!(2026-11-24 09:00 UTC);

/// The flow environment at [`NOW`].
fn env<'a>(policy: &'a Policy, keys: &'a DigestKeyring) -> Env<'a> {
    Env {
        now: NOW,
        policy,
        keys,
    }
}

fn keyring() -> DigestKeyring {
    DigestKeyring::new(DigestKey::new(1, [7u8; 32]).unwrap_or_else(|_| unreachable!()))
}

/// A fresh digest, issued the way the portal issues one (a real token, keyed digest).
fn digest() -> TokenDigest {
    RegistrationLinkToken::generate(&mut rand::rng()).digest(&keyring())
}

fn flow_id() -> FlowId {
    FlowId::generate(&mut rand::rng())
}

fn account_id() -> AccountId {
    AccountId::generate(&mut rand::rng())
}

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap_or_else(|e| panic!("fixture address {s}: {e:?}"))
}

/// R1's state: link 1 mailed to `email`; found by `link`.
fn link_flow(id: FlowId, link: TokenDigest, to: &str) -> FlowRecord {
    FlowRecord {
        id,
        state: FlowState::Registration(RegistrationState::AwaitingLinkOpen(AwaitingLinkOpen {
            email: email(to),
            link,
            expires_at: NOW + time::Duration::hours(3),
        })),
    }
}

/// A finished registration found by exactly `keys`, purgeable at `at + 24 h`.
fn dead_flow(id: FlowId, keys: Vec<TokenDigest>, at: OffsetDateTime) -> FlowRecord {
    FlowRecord {
        id,
        state: FlowState::Registration(RegistrationState::Dead(Dead {
            reason: DeadReason::IdentityAttemptsExhausted,
            spent: keys,
            at,
        })),
    }
}

/// An open login challenge of `account` (L1), found by its challenge digest.
fn login_flow(id: FlowId, account: &AccountId) -> FlowRecord {
    let policy = Policy::default();
    let keys = keyring();
    let env = env(&policy, &keys);
    let (state, _challenge, _code) = login::issue(account.clone(), env, &mut rand::rng());
    FlowRecord {
        id,
        state: FlowState::Login(LoginState::AwaitingOtp(state)),
    }
}

fn password_hash() -> PasswordHashString {
    static HASH: OnceLock<PasswordHashString> = OnceLock::new();
    HASH.get_or_init(|| {
        let hasher = PasswordHasher::new(HashParams::danger_test_minimum(), None, Vec::new(), 1)
            .unwrap_or_else(|e| panic!("test hasher: {e:?}"));
        let password = Password::new("さくらの花が咲く春の午後に散歩")
            .unwrap_or_else(|e| panic!("test password: {e:?}"));
        hasher
            .hash_blocking(&password)
            .unwrap_or_else(|e| panic!("test hash: {e:?}"))
    })
    .clone()
}

/// A fictional active account: login ID `kenpo-<n>`, address `member<n>@example.jp`,
/// roster member `M<n>`.
fn account(n: u32) -> Account {
    Account {
        id: account_id(),
        login_id: LoginId::parse(&format!("kenpo-{n:04}"))
            .unwrap_or_else(|e| panic!("fixture login ID: {e:?}")),
        email: Some(email(&format!("member{n}@example.jp"))),
        member: MemberId::new(format!("M{n:04}")),
        nickname: None,
        password_hash: password_hash(),
        security_stamp: SecurityStamp::generate(&mut rand::rng()),
        status: AccountStatus::Active,
        password_failures: 0,
        last_password_failure_at: None,
        otp_failures: 0,
        otp_cooldown_until: None,
        created_at: NOW,
        factors: Default::default(),
        recent_login: None,
    }
}

fn counter(key: &str, count: u32, expires_at: OffsetDateTime) -> Counter {
    Counter {
        key: key.to_owned(),
        window_start: NOW,
        count,
        last_at: NOW,
        expires_at,
    }
}

fn insert_flow(record: FlowRecord) -> Commit {
    Commit {
        flows: vec![FlowWrite {
            expect: Expect::Absent,
            record,
        }],
        ..Commit::default()
    }
}

fn replace_flow(expected: Version, record: FlowRecord) -> Commit {
    Commit {
        flows: vec![FlowWrite {
            expect: Expect::At(expected),
            record,
        }],
        ..Commit::default()
    }
}

fn create_account(a: Account) -> Commit {
    Commit {
        accounts: vec![AccountWrite {
            expect: Expect::Absent,
            account: a,
        }],
        ..Commit::default()
    }
}

fn update_account(expected: Version, a: Account) -> Commit {
    Commit {
        accounts: vec![AccountWrite {
            expect: Expect::At(expected),
            account: a,
        }],
        ..Commit::default()
    }
}

/// One commit creating a flow, a counter and an account together.
fn create_all(record: FlowRecord, c: Counter, a: Account) -> Commit {
    Commit {
        flows: insert_flow(record).flows,
        counters: counter_write(None, c).counters,
        accounts: create_account(a).accounts,
        mails: Vec::new(),
    }
}

fn counter_write(expected: Option<Version>, c: Counter) -> Commit {
    Commit {
        counters: vec![CounterWrite {
            expect: expected.map_or(Expect::Absent, Expect::At),
            counter: c,
        }],
        ..Commit::default()
    }
}

/// A store call's result, or the test's failure naming the call.
fn ok<T>(result: Result<T, StoreError>, call: &str) -> T {
    result.unwrap_or_else(|e| panic!("{call} failed with a backend error: {e:?}"))
}

async fn commit(store: &dyn Store, c: Commit) -> CommitOutcome {
    ok(store.commit(c).await, "commit")
}

/// Commits `c` and checks that the store refused it as a lost race.
async fn assert_conflict(store: &dyn Store, c: Commit, why: &str) {
    assert_eq!(commit(store, c).await, CommitOutcome::Conflict, "{why}");
}

async fn find(store: &dyn Store, key: &TokenDigest) -> Option<Versioned<FlowRecord>> {
    ok(store.find_flow(key).await, "find_flow")
}

async fn account_by(store: &dyn Store, by: AccountLookup) -> Option<Versioned<Account>> {
    ok(store.find_account(by).await, "find_account")
}

async fn counter_of(store: &dyn Store, key: &str) -> Option<Versioned<Counter>> {
    ok(store.load_counter(key).await, "load_counter")
}

// ---------------------------------------------------------------------------------------
// The guarantees
// ---------------------------------------------------------------------------------------

/// Compare-and-set on flows: an insert is found at version 1 by its key and reads back
/// equal; a replace at the read version succeeds and bumps it; a stale replace, a
/// replace of a missing flow and a second insert of the same ID are `Conflict` and write
/// nothing.
pub async fn flow_compare_and_set(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (id, link) = (flow_id(), digest());
    let first = link_flow(id.clone(), link, "taro@example.jp");
    assert_eq!(
        commit(s, insert_flow(first.clone())).await,
        CommitOutcome::Committed
    );
    let found = find(s, &link)
        .await
        .expect("inserted flow is found by its key");
    assert_eq!(found.version, Version::FIRST);
    assert_eq!(found.value, first, "a flow reads back as written");

    let second = link_flow(id.clone(), link, "hanako@example.jp");
    assert_eq!(
        commit(s, replace_flow(Version::FIRST, second.clone())).await,
        CommitOutcome::Committed
    );
    let found = find(s, &link).await.expect("replaced flow is found");
    assert_eq!(found.version, Version::FIRST.next());
    assert_eq!(found.value, second);

    let stale = link_flow(id.clone(), link, "jiro@example.jp");
    assert_conflict(
        s,
        replace_flow(Version::FIRST, stale),
        "a replace at a stale version is a conflict",
    )
    .await;
    assert_conflict(
        s,
        insert_flow(link_flow(id.clone(), digest(), "jiro@example.jp")),
        "inserting an existing flow ID is a conflict",
    )
    .await;
    assert_conflict(
        s,
        replace_flow(
            Version::FIRST,
            link_flow(flow_id(), digest(), "x@example.jp"),
        ),
        "replacing a flow that does not exist is a conflict",
    )
    .await;
    let found = find(s, &link).await.expect("flow still there");
    assert_eq!(
        found.version,
        Version::FIRST.next(),
        "failed writes wrote nothing"
    );
    assert_eq!(found.value, second, "failed writes wrote nothing");
}

/// Inserting (or replacing into) a flow whose lookup key another flow holds is a
/// `Conflict`, and writes nothing: a digest leads to one flow at most.
pub async fn flow_lookup_keys_are_unique(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (a, b, shared, own) = (flow_id(), flow_id(), digest(), digest());
    assert_eq!(
        commit(s, insert_flow(dead_flow(a.clone(), vec![shared], NOW))).await,
        CommitOutcome::Committed
    );
    assert_conflict(
        s,
        insert_flow(dead_flow(b.clone(), vec![own, shared], NOW)),
        "inserting a flow whose lookup key exists is a conflict",
    )
    .await;
    assert!(
        find(s, &own).await.is_none(),
        "the refused insert wrote no key"
    );
    assert_eq!(find(s, &shared).await.map(|f| f.value.id), Some(a.clone()));

    assert_eq!(
        commit(s, insert_flow(dead_flow(b.clone(), vec![own], NOW))).await,
        CommitOutcome::Committed
    );
    assert_conflict(
        s,
        replace_flow(Version::FIRST, dead_flow(b.clone(), vec![own, shared], NOW)),
        "replacing into another flow's key is a conflict",
    )
    .await;
    let found = find(s, &own).await.expect("b still found by its own key");
    assert_eq!(
        found.version,
        Version::FIRST,
        "the refused replace wrote nothing"
    );
    assert_eq!(find(s, &shared).await.map(|f| f.value.id), Some(a));

    // The same key twice in one state is one key.
    let (c, twice) = (flow_id(), digest());
    assert_eq!(
        commit(
            s,
            insert_flow(dead_flow(c.clone(), vec![twice, twice], NOW))
        )
        .await,
        CommitOutcome::Committed
    );
    assert_eq!(find(s, &twice).await.map(|f| f.value.id), Some(c));
}

/// `find_flow` finds a flow by every one of its lookup keys, and after a replace that
/// changes the keys, by the new ones and by none of the removed ones.
pub async fn find_flow_by_every_lookup_key(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let id = flow_id();
    let (k1, k2, k3, k4) = (digest(), digest(), digest(), digest());
    assert_eq!(
        commit(s, insert_flow(dead_flow(id.clone(), vec![k1, k2, k3], NOW))).await,
        CommitOutcome::Committed
    );
    for k in [k1, k2, k3] {
        let f = find(s, &k).await.expect("found by each of its keys");
        assert_eq!(f.value.id, id);
    }
    assert!(
        find(s, &k4).await.is_none(),
        "no flow for an unknown digest"
    );

    // Real transition R2: link 1 stays (spent), the handle is added.
    let keys = keyring();
    let policy = Policy::default();
    let env = env(&policy, &keys);
    let (start, link) = registration::start(email("taro@example.jp"), env, &mut rand::rng());
    let reg = flow_id();
    let record = FlowRecord {
        id: reg.clone(),
        state: FlowState::Registration(RegistrationState::AwaitingLinkOpen(start.clone())),
    };
    assert_eq!(
        commit(s, insert_flow(record)).await,
        CommitOutcome::Committed
    );
    let (next, handle): (RegistrationState, FlowHandle) =
        RegistrationState::AwaitingLinkOpen(start)
            .open_link(&link.digest(&keys), env, &mut rand::rng())
            .unwrap_or_else(|r| panic!("open_link: {r:?}"));
    assert_eq!(
        commit(
            s,
            replace_flow(
                Version::FIRST,
                FlowRecord {
                    id: reg.clone(),
                    state: FlowState::Registration(next),
                }
            )
        )
        .await,
        CommitOutcome::Committed
    );
    for k in [link.digest(&keys), handle.digest(&keys)] {
        let f = find(s, &k)
            .await
            .expect("found by link 1 and by the handle");
        assert_eq!(f.value.id, reg);
        assert_eq!(f.version, Version::FIRST.next());
    }

    // Replace the keys {k1,k2,k3} by {k3,k4}: k1 and k2 lead nowhere any more.
    assert_eq!(
        commit(
            s,
            replace_flow(Version::FIRST, dead_flow(id.clone(), vec![k3, k4], NOW))
        )
        .await,
        CommitOutcome::Committed
    );
    for k in [k1, k2] {
        assert!(find(s, &k).await.is_none(), "a removed key finds nothing");
    }
    for k in [k3, k4] {
        let f = find(s, &k).await.expect("found by the new keys");
        assert_eq!((f.value.id, f.version), (id.clone(), Version::FIRST.next()));
    }
    // A removed key is free for another flow.
    assert_eq!(
        commit(s, insert_flow(dead_flow(flow_id(), vec![k1], NOW))).await,
        CommitOutcome::Committed
    );
}

/// Adds one failing write to an otherwise good commit.
type Spoiler<'a> = Box<dyn Fn(&mut Commit) + Send + Sync + 'a>;

/// A commit with one failing write writes nothing: flows, counters and accounts of the
/// same commit are applied together or not at all, whichever write fails and however
/// it fails (stale version, taken key, uniqueness).
pub async fn commit_is_all_or_nothing(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let holder = account(1);
    assert_eq!(
        commit(s, create_account(holder.clone())).await,
        CommitOutcome::Committed
    );
    let taken_key = digest();
    assert_eq!(
        commit(s, insert_flow(dead_flow(flow_id(), vec![taken_key], NOW))).await,
        CommitOutcome::Committed
    );
    assert_eq!(
        commit(s, counter_write(None, counter("held", 1, NOW))).await,
        CommitOutcome::Committed
    );

    let expires = NOW + time::Duration::hours(1);
    let good = |tag: &str| {
        let (fid, key, n) = (flow_id(), digest(), 100 + tag.len() as u32);
        let a = account(n);
        let c = counter(&format!("c-{tag}"), 1, expires);
        (fid, key, a, c)
    };

    // Each case: good writes of every kind plus one failing write of one kind.
    let cases: Vec<(&str, Spoiler<'_>, CommitOutcome)> = vec![
        (
            "a",
            Box::new(|c: &mut Commit| {
                let mut stale = holder.clone();
                stale.nickname = None;
                c.accounts.push(AccountWrite {
                    expect: Expect::At(Version(7)),
                    account: stale,
                });
            }),
            CommitOutcome::Conflict,
        ),
        (
            "bb",
            Box::new(|c: &mut Commit| {
                c.counters.push(CounterWrite {
                    expect: Expect::Absent,
                    counter: counter("held", 2, NOW),
                });
            }),
            CommitOutcome::Conflict,
        ),
        (
            "ccc",
            Box::new(|c: &mut Commit| {
                c.flows.push(FlowWrite {
                    expect: Expect::Absent,
                    record: dead_flow(flow_id(), vec![taken_key], NOW),
                });
            }),
            CommitOutcome::Conflict,
        ),
        (
            "dddd",
            Box::new(|c: &mut Commit| {
                let mut dup = account(999);
                dup.login_id = holder.login_id.clone();
                c.accounts.push(AccountWrite {
                    expect: Expect::Absent,
                    account: dup,
                });
            }),
            CommitOutcome::LoginIdTaken,
        ),
        (
            "eeeee",
            Box::new(|c: &mut Commit| {
                c.counters.push(CounterWrite {
                    expect: Expect::At(Version(3)),
                    counter: counter("held", 2, NOW),
                });
            }),
            CommitOutcome::Conflict,
        ),
    ];
    for (tag, fail, outcome) in cases {
        let (fid, key, a, c) = good(tag);
        let mut batch = create_all(dead_flow(fid, vec![key], NOW), c.clone(), a.clone());
        fail(&mut batch);
        assert_eq!(commit(s, batch).await, outcome, "case {tag}");
        assert!(
            find(s, &key).await.is_none(),
            "case {tag}: the flow of a failed commit was not written"
        );
        assert!(
            counter_of(s, &c.key).await.is_none(),
            "case {tag}: the counter of a failed commit was not written"
        );
        for by in [
            AccountLookup::Id(a.id.clone()),
            AccountLookup::LoginId(a.login_id.clone()),
            AccountLookup::Member(a.member.clone()),
        ] {
            assert!(
                account_by(s, by).await.is_none(),
                "case {tag}: the account of a failed commit was not written"
            );
        }
    }
    let held = counter_of(s, "held").await.expect("held counter");
    assert_eq!((held.version, held.value.count), (Version::FIRST, 1));
    let h = account_by(s, AccountLookup::Id(holder.id.clone()))
        .await
        .expect("holder");
    assert_eq!(h.version, Version::FIRST);

    // And the same writes without the failing one go through together.
    let (fid, key, a, c) = good("ok");
    let batch = create_all(dead_flow(fid, vec![key], NOW), c.clone(), a.clone());
    assert_eq!(commit(s, batch).await, CommitOutcome::Committed);
    assert!(find(s, &key).await.is_some());
    assert!(counter_of(s, &c.key).await.is_some());
    assert!(account_by(s, AccountLookup::Id(a.id)).await.is_some());
}

/// Creating an account whose canonical login ID, canonical e-mail or member another
/// account holds gives `LoginIdTaken`, `EmailTaken` or `MemberTaken` and writes nothing;
/// a second create of the same ID is a `Conflict`; accounts without an address do not
/// collide.
pub async fn account_create_uniqueness(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let first = account(1);
    assert_eq!(
        commit(s, create_account(first.clone())).await,
        CommitOutcome::Committed
    );
    let read = account_by(s, AccountLookup::Id(first.id.clone()))
        .await
        .expect("created account is found");
    assert_eq!(read.version, Version::FIRST);
    assert_eq!(read.value, first, "an account reads back as written");

    let mut same_login = account(2);
    same_login.login_id = LoginId::parse("KENPO-0001").expect("login ID");
    let mut same_email = account(3);
    same_email.email = Some(email("Member1@Example.JP"));
    let mut same_member = account(4);
    same_member.member = first.member.clone();
    let mut same_id = account(5);
    same_id.id = first.id.clone();
    // Several keys taken: login ID is reported before e-mail, e-mail before member.
    let mut login_and_email = same_login.clone();
    login_and_email.email = first.email.clone();
    let mut email_and_member = same_email.clone();
    email_and_member.member = first.member.clone();
    for (a, outcome) in [
        (same_login.clone(), CommitOutcome::LoginIdTaken),
        (same_email.clone(), CommitOutcome::EmailTaken),
        (same_member.clone(), CommitOutcome::MemberTaken),
        (same_id, CommitOutcome::Conflict),
        (login_and_email, CommitOutcome::LoginIdTaken),
        (email_and_member, CommitOutcome::EmailTaken),
    ] {
        assert_eq!(commit(s, create_account(a)).await, outcome);
    }
    for a in [&same_login, &same_email, &same_member] {
        assert!(
            account_by(s, AccountLookup::Id(a.id.clone()))
                .await
                .is_none(),
            "a refused create wrote nothing"
        );
    }
    let read = account_by(s, AccountLookup::Id(first.id.clone()))
        .await
        .expect("first account");
    assert_eq!(read.value, first, "a refused create changed nothing");

    // Two provisioned accounts without an address: NULL does not collide.
    for n in [6, 7] {
        let mut a = account(n);
        a.email = None;
        a.status = AccountStatus::Provisioned {
            temporary_expires_at: NOW + time::Duration::days(30),
        };
        assert_eq!(commit(s, create_account(a)).await, CommitOutcome::Committed);
    }
}

/// Updating an account into another account's login ID, e-mail or member gives its own
/// outcome and writes nothing; a stale version is a `Conflict`; a key an update gives up
/// is free for others at once.
pub async fn account_update_uniqueness(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = account(1);
    let b = account(2);
    for x in [&a, &b] {
        assert_eq!(
            commit(s, create_account(x.clone())).await,
            CommitOutcome::Committed
        );
    }
    let mut login = b.clone();
    login.login_id = a.login_id.clone();
    let mut mail = b.clone();
    mail.email = Some(email("MEMBER1@example.jp"));
    let mut member = b.clone();
    member.member = a.member.clone();
    for (x, outcome) in [
        (login, CommitOutcome::LoginIdTaken),
        (mail, CommitOutcome::EmailTaken),
        (member, CommitOutcome::MemberTaken),
    ] {
        assert_eq!(commit(s, update_account(Version::FIRST, x)).await, outcome);
    }
    let read = account_by(s, AccountLookup::Id(b.id.clone()))
        .await
        .expect("b");
    assert_eq!(
        (read.version, &read.value),
        (Version::FIRST, &b),
        "refused updates wrote nothing"
    );

    // An update that keeps its own keys is fine; a stale one is a conflict.
    let mut renamed = b.clone();
    renamed.password_failures = 3;
    renamed.email = Some(email("new-address@example.jp"));
    assert_eq!(
        commit(s, update_account(Version::FIRST, renamed.clone())).await,
        CommitOutcome::Committed
    );
    assert_conflict(
        s,
        update_account(Version::FIRST, b.clone()),
        "an update at a stale version is a conflict",
    )
    .await;
    let read = account_by(s, AccountLookup::Id(b.id.clone()))
        .await
        .expect("b");
    assert_eq!((read.version, read.value), (Version(2), renamed.clone()));
    assert!(
        account_by(s, AccountLookup::Email(email("member2@example.jp")))
            .await
            .is_none(),
        "the old address no longer finds the account"
    );
    // The address b gave up can be taken by a new account.
    let mut c = account(3);
    c.email = Some(email("member2@example.jp"));
    assert_eq!(commit(s, create_account(c)).await, CommitOutcome::Committed);
    assert_conflict(
        s,
        update_account(
            Version::FIRST,
            Account {
                id: account_id(),
                ..account(9)
            },
        ),
        "updating an account that does not exist is a conflict",
    )
    .await;
}

/// `find_account` finds an account by ID, login ID, e-mail and member, each compared in
/// canonical form, and nothing for unknown values.
pub async fn find_account_by_every_lookup(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let a = account(1);
    assert_eq!(
        commit(s, create_account(a.clone())).await,
        CommitOutcome::Committed
    );
    for by in [
        AccountLookup::Id(a.id.clone()),
        AccountLookup::LoginId(LoginId::parse("Kenpo-0001").expect("login ID")),
        AccountLookup::Email(email("MEMBER1@EXAMPLE.JP")),
        AccountLookup::Member(a.member.clone()),
    ] {
        let found = account_by(s, by.clone())
            .await
            .unwrap_or_else(|| panic!("found by {by:?}"));
        assert_eq!(found.value, a);
    }
    for by in [
        AccountLookup::Id(account_id()),
        AccountLookup::LoginId(LoginId::parse("kenpo-0002").expect("login ID")),
        AccountLookup::Email(email("member2@example.jp")),
        AccountLookup::Member(MemberId::new("M0002")),
    ] {
        assert!(account_by(s, by).await.is_none());
    }
}

/// Counters: created at version 1, compare-and-set on every change, a second create is a
/// `Conflict`, a stale update is a `Conflict` and writes nothing.
pub async fn counter_compare_and_set(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let expires = NOW + time::Duration::hours(1);
    assert!(counter_of(s, "mail:abc").await.is_none());
    assert_eq!(
        commit(s, counter_write(None, counter("mail:abc", 1, expires))).await,
        CommitOutcome::Committed
    );
    let read = counter_of(s, "mail:abc").await.expect("counter");
    assert_eq!(read.version, Version::FIRST);
    assert_eq!(read.value, counter("mail:abc", 1, expires));
    assert_eq!(
        commit(s, counter_write(None, counter("mail:abc", 5, expires))).await,
        CommitOutcome::Conflict
    );
    assert_eq!(
        commit(
            s,
            counter_write(Some(Version::FIRST), counter("mail:abc", 2, expires))
        )
        .await,
        CommitOutcome::Committed
    );
    assert_eq!(
        commit(
            s,
            counter_write(Some(Version::FIRST), counter("mail:abc", 9, expires))
        )
        .await,
        CommitOutcome::Conflict
    );
    assert_conflict(
        s,
        counter_write(Some(Version::FIRST), counter("other", 1, expires)),
        "updating a counter that does not exist is a conflict",
    )
    .await;
    let read = counter_of(s, "mail:abc").await.expect("counter");
    assert_eq!((read.version, read.value.count), (Version(2), 2));
}

/// 50 tasks each add one to the same counter (read, increment, commit at the read
/// version, retry on conflict): the counter ends at exactly 50, at version 50.
pub async fn counter_increments_are_never_lost(store: Arc<dyn Store>) {
    const TASKS: u32 = 50;
    let expires = NOW + time::Duration::hours(1);
    let key = "identity:M0001";
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10_000 {
                let current = store.load_counter(key).await.expect("load_counter");
                let (expected, next) = match current {
                    None => (None, counter(key, 1, expires)),
                    Some(v) => (Some(v.version), counter(key, v.value.count + 1, expires)),
                };
                match store
                    .commit(counter_write(expected, next))
                    .await
                    .expect("commit")
                {
                    CommitOutcome::Committed => return,
                    CommitOutcome::Conflict => tokio::task::yield_now().await,
                    other => panic!("unexpected outcome {other:?}"),
                }
            }
            panic!("an increment never got through");
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let c = counter_of(store.as_ref(), key).await.expect("counter");
    assert_eq!(c.value.count, TASKS, "no increment lost or doubled");
    assert_eq!(c.version, Version(u64::from(TASKS)));
}

/// 100 requests race to consume one secret (each replaces the flow read at the same
/// version): exactly one gets `Committed`, the other 99 `Conflict`.
pub async fn one_consumer_wins(store: Arc<dyn Store>) {
    const RACERS: usize = 100;
    let (id, link) = (flow_id(), digest());
    assert_eq!(
        commit(
            store.as_ref(),
            insert_flow(link_flow(id.clone(), link, "taro@example.jp"))
        )
        .await,
        CommitOutcome::Committed
    );
    let read = find(store.as_ref(), &link).await.expect("flow");
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for i in 0..RACERS {
        let (store, barrier, id, version) =
            (store.clone(), barrier.clone(), id.clone(), read.version);
        let next = dead_flow(
            id,
            vec![link, digest()],
            NOW + time::Duration::seconds(i as i64),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .commit(replace_flow(version, next))
                .await
                .expect("commit")
        }));
    }
    let mut committed = 0;
    for t in tasks {
        match t.await.expect("task") {
            CommitOutcome::Committed => committed += 1,
            CommitOutcome::Conflict => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(committed, 1, "exactly one consumer wins");
    let after = find(store.as_ref(), &link).await.expect("flow");
    assert_eq!(after.version, read.version.next());
}

/// Twenty requests race to create accounts with the same login ID: exactly one is
/// created, the others get `LoginIdTaken` (the unique constraint decides, not a read).
pub async fn racing_creates_one_account(store: Arc<dyn Store>) {
    const RACERS: u32 = 20;
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS as usize));
    let mut tasks = Vec::new();
    for n in 0..RACERS {
        let (store, barrier) = (store.clone(), barrier.clone());
        let mut a = account(100 + n);
        a.login_id = LoginId::parse("same-login").expect("login ID");
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.commit(create_account(a)).await.expect("commit")
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    let created = outcomes
        .iter()
        .filter(|o| **o == CommitOutcome::Committed)
        .count();
    assert_eq!(created, 1, "exactly one account per login ID: {outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, CommitOutcome::Committed | CommitOutcome::LoginIdTaken)),
        "{outcomes:?}"
    );
}

/// `flows_of_account` gives every flow whose state names the account, in the order
/// they were created, with their versions; no other account's flows.
pub async fn flows_of_account_lists_the_accounts_flows(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (x, y) = (account_id(), account_id());
    let (f1, f2, f3) = (flow_id(), flow_id(), flow_id());
    for record in [
        login_flow(f1.clone(), &x),
        login_flow(f2.clone(), &y),
        link_flow(flow_id(), digest(), "taro@example.jp"),
        login_flow(f3.clone(), &x),
    ] {
        assert_eq!(
            commit(s, insert_flow(record)).await,
            CommitOutcome::Committed
        );
    }
    let of_x = s.flows_of_account(&x).await.expect("flows_of_account");
    let ids: Vec<&FlowId> = of_x.iter().map(|f| &f.value.id).collect();
    assert_eq!(ids, vec![&f1, &f3]);
    assert!(of_x.iter().all(|f| f.version == Version::FIRST));

    // Ending one challenge keeps it listed at its new version.
    let first = of_x[0].clone();
    let FlowState::Login(state) = first.value.state.clone() else {
        panic!("login flow expected");
    };
    let ended = state
        .end_for(crate::flow::LoginEndReason::Superseded, NOW)
        .expect("an open challenge can end");
    assert_eq!(
        commit(
            s,
            replace_flow(
                first.version,
                FlowRecord {
                    id: f1.clone(),
                    state: FlowState::Login(ended.clone()),
                }
            )
        )
        .await,
        CommitOutcome::Committed
    );
    let of_x = s.flows_of_account(&x).await.expect("flows_of_account");
    assert_eq!(of_x.len(), 2);
    let again = of_x.iter().find(|f| f.value.id == f1).expect("f1 listed");
    assert_eq!(again.version, Version(2));
    assert_eq!(again.value.state, FlowState::Login(ended));
    let of_y = s.flows_of_account(&y).await.expect("flows_of_account");
    assert_eq!(of_y.len(), 1);
    assert_eq!(of_y[0].value.id, f2);
    assert!(
        s.flows_of_account(&account_id())
            .await
            .expect("flows_of_account")
            .is_empty()
    );
}

/// `purge_expired` removes only flows whose `purge_after` and counters whose
/// `expires_at` are at or before `now`, at most `limit` per call (flows and counters
/// together), and a purged flow is no longer found by any key.
pub async fn purge_is_bounded_and_only_expired(store: Arc<dyn Store>) {
    let s = store.as_ref();
    // Dead flows are purgeable at `at + 24 h`.
    let ttl = crate::flow::TOMBSTONE_TTL;
    let purge_at = NOW + ttl;
    let mut dead_keys = Vec::new();
    for i in 0..5 {
        let k = digest();
        dead_keys.push(k);
        // One exactly at the boundary (purge_after == now is purgeable).
        let at = NOW - time::Duration::minutes(i);
        assert_eq!(
            commit(s, insert_flow(dead_flow(flow_id(), vec![k, digest()], at))).await,
            CommitOutcome::Committed
        );
    }
    let mut live_keys = Vec::new();
    for i in 1..=3 {
        let k = digest();
        live_keys.push(k);
        let at = NOW + time::Duration::nanoseconds(1000 * i);
        assert_eq!(
            commit(s, insert_flow(dead_flow(flow_id(), vec![k], at))).await,
            CommitOutcome::Committed
        );
    }
    let put_counter = |key: String, expires_at| async move {
        assert_eq!(
            commit(s, counter_write(None, counter(&key, 1, expires_at))).await,
            CommitOutcome::Committed
        );
    };
    for i in 0..4 {
        put_counter(format!("dead-{i}"), purge_at - time::Duration::seconds(i)).await;
    }
    for i in 0..2 {
        put_counter(
            format!("live-{i}"),
            purge_at + time::Duration::seconds(i + 1),
        )
        .await;
    }
    let purge = |limit| async move {
        s.purge_expired(purge_at, limit)
            .await
            .expect("purge_expired")
    };
    assert_eq!(purge(0).await, 0, "limit 0 removes nothing");
    assert_eq!(purge(3).await, 3, "limit respected");
    assert_eq!(purge(3).await, 3, "limit respected");
    assert_eq!(purge(10).await, 3, "the rest of the expired records");
    assert_eq!(purge(10).await, 0, "nothing expired left");
    for k in &dead_keys {
        assert!(find(s, k).await.is_none(), "a purged flow is not found");
    }
    for k in &live_keys {
        assert!(find(s, k).await.is_some(), "a live flow is kept");
    }
    for i in 0..4 {
        assert!(counter_of(s, &format!("dead-{i}")).await.is_none());
    }
    for i in 0..2 {
        assert!(counter_of(s, &format!("live-{i}")).await.is_some());
    }
    // The purged keys are free again.
    assert_eq!(
        commit(
            s,
            insert_flow(dead_flow(flow_id(), vec![dead_keys[0]], NOW))
        )
        .await,
        CommitOutcome::Committed
    );
}

/// An outbox row carrying link 1 in its body, sealed the way the portal seals it.
fn sealed_mail(link: &RegistrationLinkToken, rng: &mut rand::rngs::ThreadRng) -> OutboxMail {
    let keys = crate::seal::SealKeyring::new(
        crate::seal::SealKey::new(1, vec![9u8; 32]).unwrap_or_else(|_| unreachable!()),
    );
    let id = MailId::generate(rng);
    let url = format!("https://portal.example.jp/r?t={}", link.expose_secret());
    let mail = crate::mail::OutgoingMail {
        to: email("taro@example.jp"),
        lang: crate::lang::Lang::Ja,
        message: crate::mail::MailMessage::AlreadyRegistered {
            login_url: url.clone(),
        },
        rendered: crate::mail::RenderedMail {
            subject: "利用登録手続きのご案内".into(),
            body: url,
        },
    };
    let sealed = crate::mail::sealed::seal(&keys, &id, Some(&mail), rng);
    let mut row = outbox_mail(NOW, None);
    row.id = id;
    row.sealed = sealed;
    row
}

/// No plaintext secret in any column: tokens issued through the real token types (link
/// 1, flow handle, 暗証キー challenge) are committed as a portal would commit them, with an outbox mail carrying link 1 (sealed); the
/// dump of every table contains neither a token's text nor its bytes in hex or base64.
pub async fn no_plaintext_secret_in_store<S: Store + DumpText + ?Sized>(store: Arc<S>) {
    use base64::Engine as _;
    let keys = keyring();
    let policy = Policy::default();
    let env = env(&policy, &keys);
    let (secrets, digests, commit_all) = {
        let mut rng = rand::rng();
        let mut secrets: Vec<String> = Vec::new();
        let a = account(1);
        // R1 → R2: link 1 and the browser handle.
        let (start, link) = registration::start(email("taro@example.jp"), env, &mut rng);
        let (opened, handle) = RegistrationState::AwaitingLinkOpen(start)
            .open_link(&link.digest(&keys), env, &mut rng)
            .unwrap_or_else(|r| panic!("open_link: {r:?}"));
        secrets.push(link.expose_secret().to_owned());
        secrets.push(handle.expose_secret().to_owned());
        // L1: the code screen's handle.
        let (otp, challenge, _code) = login::issue(a.id.clone(), env, &mut rng);
        secrets.push(challenge.expose_secret().to_owned());
        let digests = vec![
            link.digest(&keys),
            handle.digest(&keys),
            challenge.digest(&keys),
        ];
        let c = Commit {
            flows: vec![
                FlowWrite {
                    expect: Expect::Absent,
                    record: FlowRecord {
                        id: FlowId::generate(&mut rng),
                        state: FlowState::Registration(opened),
                    },
                },
                FlowWrite {
                    expect: Expect::Absent,
                    record: FlowRecord {
                        id: FlowId::generate(&mut rng),
                        state: FlowState::Login(LoginState::AwaitingOtp(otp)),
                    },
                },
            ],
            accounts: vec![AccountWrite {
                expect: Expect::Absent,
                account: a,
            }],
            counters: vec![CounterWrite {
                expect: Expect::Absent,
                counter: counter(
                    &format!("mail:{}", link.digest(&keys).to_hex()),
                    1,
                    NOW + time::Duration::hours(1),
                ),
            }],
            mails: vec![MailWrite {
                expect: Expect::Absent,
                mail: sealed_mail(&link, &mut rng),
            }],
        };
        (secrets, digests, c)
    };
    assert_eq!(
        store.commit(commit_all).await.expect("commit"),
        CommitOutcome::Committed
    );
    let dump = store.dump_text().await.expect("dump_text").to_lowercase();
    // Positive control: the dump shows what is stored, lookup digests included, so a
    // plaintext column would show too.
    for digest in &digests {
        assert!(
            dump.contains(&digest.to_hex()),
            "the dump shows every stored digest in hex"
        );
    }
    for secret in &secrets {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(secret)
            .expect("tokens are base64url");
        let forms = [
            secret.clone(),
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            base64::engine::general_purpose::STANDARD.encode(&bytes),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes),
            secret
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        ];
        for form in forms {
            assert!(
                !dump.contains(&form.to_lowercase()),
                "a plaintext secret (or its encoding) reached the store"
            );
        }
    }
}

async fn load(store: &dyn Store, l: &Load) -> Loaded {
    store
        .load(l)
        .await
        .unwrap_or_else(|e| panic!("load failed: {e:?}"))
}

/// The first lookup key of a stored flow (how the suite finds a login challenge).
fn first_key(record: &FlowRecord) -> TokenDigest {
    record
        .state
        .lookup_keys()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("fixture flow has a lookup key"))
}

/// `load` finds the flow of the first candidate digest that finds one, in the order
/// given, and says which digest found it; unknown digests and an empty list find
/// nothing; an empty load reads nothing.
pub async fn load_finds_the_first_candidate_flow(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (a, b, unknown) = (digest(), digest(), digest());
    let (fa, fb) = (
        link_flow(flow_id(), a, "taro@example.jp"),
        link_flow(flow_id(), b, "hanako@example.jp"),
    );
    for record in [fa.clone(), fb.clone()] {
        assert_eq!(
            commit(s, insert_flow(record)).await,
            CommitOutcome::Committed
        );
    }
    let found = load(s, &Load::new().flow([unknown, b, a])).await;
    let (flow, by) = found.flow.expect("a candidate finds a flow");
    assert_eq!(flow.value, fb, "the first candidate that finds a flow wins");
    assert_eq!(flow.version, Version::FIRST);
    assert!(by == b, "the digest that found it");
    let (flow, by) = load(s, &Load::new().flow([a, b]))
        .await
        .flow
        .expect("found");
    assert_eq!(flow.value, fa, "candidates are tried in order");
    assert!(by == a);
    assert!(load(s, &Load::new().flow([unknown])).await.flow.is_none());
    let nothing = load(s, &Load::new()).await;
    assert!(nothing.flow.is_none() && nothing.account.is_none());
    assert!(nothing.account_flows.is_empty());
    assert!(nothing.counters.is_empty() && nothing.account_counters.is_empty());
}

/// `load` reads the account by every lookup and, with `OfFlow`, the account of the flow
/// it found (none for a flow of no account or no flow); with `account_flows`, that
/// account's flows in creation order, as `flows_of_account` lists them.
pub async fn load_reads_the_account_and_its_flows(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let (x, y) = (account(1), account(2));
    for a in [x.clone(), y.clone()] {
        assert_eq!(commit(s, create_account(a)).await, CommitOutcome::Committed);
    }
    let (f1, f2, f3) = (
        login_flow(flow_id(), &x.id),
        login_flow(flow_id(), &y.id),
        login_flow(flow_id(), &x.id),
    );
    let link = digest();
    for record in [
        f1.clone(),
        f2.clone(),
        link_flow(flow_id(), link, "taro@example.jp"),
        f3.clone(),
    ] {
        assert_eq!(
            commit(s, insert_flow(record)).await,
            CommitOutcome::Committed
        );
    }
    for by in [
        AccountLookup::Id(x.id.clone()),
        AccountLookup::LoginId(x.login_id.clone()),
        AccountLookup::Email(email("MEMBER1@example.jp")),
        AccountLookup::Member(x.member.clone()),
    ] {
        let got = load(s, &Load::new().account(AccountLoad::By(by.clone()))).await;
        let acc = got
            .account
            .unwrap_or_else(|| panic!("{by:?} finds the account"));
        assert_eq!(acc.value, x);
        assert_eq!(acc.version, Version::FIRST);
        assert!(got.account_flows.is_empty(), "flows only when asked for");
    }
    let got = load(
        s,
        &Load::new()
            .account(AccountLoad::By(AccountLookup::LoginId(x.login_id.clone())))
            .account_flows(),
    )
    .await;
    let ids: Vec<&FlowId> = got.account_flows.iter().map(|f| &f.value.id).collect();
    assert_eq!(
        ids,
        vec![&f1.id, &f3.id],
        "the account's flows, creation order"
    );
    let listed = s.flows_of_account(&x.id).await.expect("flows_of_account");
    assert_eq!(got.account_flows, listed, "as flows_of_account lists them");

    let got = load(
        s,
        &Load::new()
            .flow([digest(), first_key(&f2)])
            .account(AccountLoad::OfFlow)
            .account_flows(),
    )
    .await;
    assert_eq!(got.flow.map(|(f, _)| f.value), Some(f2.clone()));
    assert_eq!(got.account.map(|a| a.value), Some(y.clone()), "OfFlow");
    let ids: Vec<&FlowId> = got.account_flows.iter().map(|f| &f.value.id).collect();
    assert_eq!(ids, vec![&f2.id]);

    let of_link = load(s, &Load::new().flow([link]).account(AccountLoad::OfFlow)).await;
    assert!(of_link.flow.is_some());
    assert!(of_link.account.is_none(), "a flow of no account has none");
    let of_none = load(
        s,
        &Load::new()
            .flow([digest()])
            .account(AccountLoad::OfFlow)
            .account_flows(),
    )
    .await;
    assert!(of_none.account.is_none() && of_none.account_flows.is_empty());
    let unknown = load(
        s,
        &Load::new()
            .account(AccountLoad::By(AccountLookup::Id(account_id())))
            .account_flows(),
    )
    .await;
    assert!(unknown.account.is_none() && unknown.account_flows.is_empty());
}

/// `load` reads counters by key and by prefix plus the loaded account's ID: one entry
/// per key or prefix, in the order asked, `None` where no counter exists, and every
/// account counter `None` when no account was read. It also answers whether any account
/// holds an address (by its canonical form), beside the account it reads.
pub async fn load_reads_counters_in_order(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let x = account(1);
    assert_eq!(
        commit(s, create_account(x.clone())).await,
        CommitOutcome::Committed
    );
    let later = NOW + time::Duration::hours(1);
    let otp = format!("otp:{}", x.id);
    for c in [
        counter("mail:a", 1, later),
        counter("mail:b", 2, later),
        counter(&otp, 3, later),
    ] {
        assert_eq!(
            commit(s, counter_write(None, c)).await,
            CommitOutcome::Committed
        );
    }
    let got = load(
        s,
        &Load::new()
            .counter("mail:b")
            .counter("mail:none")
            .counter("mail:a")
            .account(AccountLoad::By(AccountLookup::Id(x.id.clone())))
            .account_counter("pw:")
            .account_counter("otp:")
            .address_taken(email("Member1@EXAMPLE.jp")),
    )
    .await;
    assert!(
        got.address_taken,
        "member1's address is held (canonical form)"
    );
    let counts: Vec<Option<u32>> = got
        .counters
        .iter()
        .map(|c| c.as_ref().map(|c| c.value.count))
        .collect();
    assert_eq!(
        counts,
        vec![Some(2), None, Some(1)],
        "one per key, in order"
    );
    assert!(
        got.counters
            .iter()
            .flatten()
            .all(|c| c.version == Version::FIRST)
    );
    let counts: Vec<Option<u32>> = got
        .account_counters
        .iter()
        .map(|c| c.as_ref().map(|c| c.value.count))
        .collect();
    assert_eq!(counts, vec![None, Some(3)], "one per prefix, in order");

    let without = load(
        s,
        &Load::new()
            .account(AccountLoad::By(AccountLookup::Id(account_id())))
            .account_counter("otp:")
            .account_counter("pw:")
            .address_taken(email("nobody@example.jp")),
    )
    .await;
    assert!(!without.address_taken, "no account holds this address");
    assert_eq!(without.account_counters.len(), 2);
    assert!(
        without.account_counters.iter().all(Option::is_none),
        "no account, no account counters"
    );
    let no_account = load(s, &Load::new().account_counter("otp:")).await;
    assert!(!no_account.address_taken, "not asked, not taken");
    assert_eq!(no_account.account_counters.len(), 1);
    assert!(no_account.account_counters.iter().all(Option::is_none));
}

// ---------------------------------------------------------------------------------------
// The transactional outbox (#14)
// ---------------------------------------------------------------------------------------

/// A pending outbox mail, due at `due`, held until `leased` (if any), useful for 10
/// minutes from [`NOW`].
fn outbox_mail(due: OffsetDateTime, leased: Option<OffsetDateTime>) -> OutboxMail {
    let id = MailId::generate(&mut rand::rng());
    let sealed = crate::seal::Sealed::from_bytes(vec![1, 2, 3, 4]);
    let mut mail = delivery::enqueue(
        id,
        "login_otp",
        sealed,
        Some(NOW + time::Duration::minutes(10)),
        Vec::new(),
        NOW,
        &DeliverySchedule::default(),
    );
    mail.due_at = due;
    mail.leased_until = leased;
    mail
}

fn insert_mail(mail: OutboxMail) -> Commit {
    Commit {
        mails: vec![MailWrite {
            expect: Expect::Absent,
            mail,
        }],
        ..Commit::default()
    }
}

fn record_mail(expected: Version, mail: OutboxMail) -> Commit {
    Commit {
        mails: vec![MailWrite {
            expect: Expect::At(expected),
            mail,
        }],
        ..Commit::default()
    }
}

async fn claim(store: &dyn Store, now: OffsetDateTime, limit: usize) -> Vec<Versioned<OutboxMail>> {
    ok(
        store
            .claim_mails(now, now + time::Duration::seconds(60), limit)
            .await,
        "claim_mails",
    )
}

/// A step's mails commit with its state or not at all: a commit refused for any of its
/// writes inserts none of its mails; a mail's id is taken once; a recorded delivery is a
/// compare-and-set like any other write; the mail reads back as written.
pub async fn outbox_commits_with_the_state(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let link = digest();
    let flow = link_flow(flow_id(), link, "outbox@example.jp");
    let mail = outbox_mail(NOW, Some(NOW + time::Duration::seconds(60)));
    let with_state = Commit {
        mails: insert_mail(mail.clone()).mails,
        ..insert_flow(flow.clone())
    };
    assert_eq!(commit(s, with_state).await, CommitOutcome::Committed);
    let read = ok(s.find_mail(&mail.id).await, "find_mail").expect("committed with its flow");
    assert_eq!(read.version, Version::FIRST);
    assert_eq!(read.value, mail, "reads back as written");
    assert!(find(s, &link).await.is_some());

    // The same flow again (its id and key taken) with a new mail: neither is written.
    let orphan = outbox_mail(NOW, None);
    let refused = Commit {
        mails: insert_mail(orphan.clone()).mails,
        ..insert_flow(flow)
    };
    assert_conflict(s, refused, "flow taken").await;
    assert!(
        ok(s.find_mail(&orphan.id).await, "find_mail").is_none(),
        "a refused commit leaves no mail behind"
    );
    // A mail id is taken once — and a commit whose mail is refused writes nothing else
    // either.
    assert_conflict(s, insert_mail(mail.clone()), "mail id taken").await;
    let other_link = digest();
    let with_taken_mail = Commit {
        mails: insert_mail(mail.clone()).mails,
        ..insert_flow(link_flow(flow_id(), other_link, "outbox2@example.jp"))
    };
    assert_conflict(s, with_taken_mail, "mail id taken beside a new flow").await;
    assert!(
        find(s, &other_link).await.is_none(),
        "the flow of a commit whose mail was refused is not written"
    );
    // Recording a delivery is compare-and-set.
    let mut delivered = mail.clone();
    delivered.delivery = Delivery::Delivered { at: NOW };
    delivered.leased_until = None;
    assert_conflict(
        s,
        record_mail(Version(7), delivered.clone()),
        "stale mail version",
    )
    .await;
    assert_eq!(
        commit(s, record_mail(Version::FIRST, delivered.clone())).await,
        CommitOutcome::Committed
    );
    let read = ok(s.find_mail(&mail.id).await, "find_mail").expect("still there");
    assert_eq!(read.version, Version::FIRST.next());
    assert_eq!(read.value, delivered);
    let unknown = MailId::generate(&mut rand::rng());
    assert!(ok(s.find_mail(&unknown).await, "find_mail").is_none());
}

/// Claim once: two workers claiming side by side get every due mail exactly once
/// between them; nothing is claimed again while its lease runs; a mail whose lease ended
/// unrecorded (its worker died) is claimed again; mails held by their request, not yet
/// due, or already delivered are not claimed.
pub async fn outbox_claims_each_mail_once(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mut due = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let mail = outbox_mail(NOW, None);
        due.insert(mail.id);
        assert_eq!(commit(s, insert_mail(mail)).await, CommitOutcome::Committed);
    }
    let held = outbox_mail(NOW, Some(NOW + time::Duration::seconds(30)));
    let later = outbox_mail(NOW + time::Duration::seconds(30), None);
    let mut done = outbox_mail(NOW, None);
    done.delivery = Delivery::Delivered { at: NOW };
    for m in [held.clone(), later.clone(), done] {
        assert_eq!(commit(s, insert_mail(m)).await, CommitOutcome::Committed);
    }
    let worker = |store: Arc<dyn Store>| async move {
        let mut mine = Vec::new();
        loop {
            let got = claim(store.as_ref(), NOW, 7).await;
            if got.is_empty() {
                return mine;
            }
            for m in &got {
                assert_eq!(
                    m.value.leased_until,
                    Some(NOW + time::Duration::seconds(60))
                );
            }
            mine.extend(got.into_iter().map(|m| m.value.id));
        }
    };
    let (a, b) = (
        tokio::spawn(worker(store.clone())),
        tokio::spawn(worker(store.clone())),
    );
    let (a, b) = (a.await.expect("worker a"), b.await.expect("worker b"));
    let mut all: Vec<MailId> = a.iter().chain(b.iter()).copied().collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no mail claimed twice");
    assert_eq!(
        all.into_iter().collect::<std::collections::BTreeSet<_>>(),
        due,
        "every due mail claimed, nothing else"
    );
    assert!(
        claim(s, NOW + time::Duration::seconds(20), 100)
            .await
            .is_empty(),
        "leases run"
    );
    // Past the leases: the 40 (never recorded) and the held and later ones are due.
    let again = claim(s, NOW + time::Duration::seconds(61), 100).await;
    assert_eq!(again.len(), 42, "a dead worker's mails are claimed again");
    assert!(again.iter().any(|m| m.value.id == held.id));
    assert!(again.iter().any(|m| m.value.id == later.id));
    assert!(
        again
            .windows(2)
            .all(|w| w[0].value.due_at <= w[1].value.due_at),
        "earliest due first"
    );
    for m in &again {
        assert!(m.version > Version::FIRST, "a claim moves the version");
    }
}

/// After a transport error the mail is recorded with its next try; it is not claimed
/// before then and is claimed once it is due.
pub async fn outbox_retries_after_a_transport_error(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let schedule = DeliverySchedule::default();
    let mail = outbox_mail(NOW, None);
    assert_eq!(
        commit(s, insert_mail(mail.clone())).await,
        CommitOutcome::Committed
    );
    let claimed = claim(s, NOW, 10).await;
    assert_eq!(claimed.len(), 1);
    let first = &claimed[0];
    let settled = delivery::after_try(&first.value, Attempt::Transient, NOW, &schedule);
    assert_eq!(
        commit(s, record_mail(first.version, settled.mail.clone())).await,
        CommitOutcome::Committed
    );
    let next = settled.mail.due_at;
    assert_eq!(next, NOW + time::Duration::seconds(1));
    assert!(
        claim(s, NOW + time::Duration::milliseconds(500), 10)
            .await
            .is_empty()
    );
    let retried = claim(s, next, 10).await;
    assert_eq!(retried.len(), 1, "claimed again once due");
    assert_eq!(retried[0].value.attempts, 1);
    let delivered = delivery::after_try(&retried[0].value, Attempt::Delivered, next, &schedule);
    assert_eq!(
        commit(s, record_mail(retried[0].version, delivered.mail)).await,
        CommitOutcome::Committed
    );
    let read = ok(s.find_mail(&mail.id).await, "find_mail").expect("kept for its status");
    assert_eq!(read.value.delivery, Delivery::Delivered { at: next });
    assert_eq!(read.value.attempts, 2);
    assert!(
        claim(s, NOW + time::Duration::hours(1), 10)
            .await
            .is_empty(),
        "delivered"
    );
}

/// A mail whose use is over is given up, not sent; it stays readable for its status
/// until `purge_after`, and then the bounded purge removes it.
pub async fn outbox_gives_up_expired_mail_and_purges_it(store: Arc<dyn Store>) {
    let s = store.as_ref();
    let mail = outbox_mail(NOW, None);
    assert_eq!(
        commit(s, insert_mail(mail.clone())).await,
        CommitOutcome::Committed
    );
    let late = NOW + time::Duration::minutes(11);
    let claimed = claim(s, late, 10).await;
    assert_eq!(claimed.len(), 1);
    let given_up = delivery::before_try(&claimed[0].value, late).expect("expired");
    assert_eq!(
        commit(s, record_mail(claimed[0].version, given_up.mail)).await,
        CommitOutcome::Committed
    );
    let read = ok(s.find_mail(&mail.id).await, "find_mail").expect("status kept");
    assert!(matches!(
        read.value.delivery,
        Delivery::Failed {
            reason: Undeliverable::Expired,
            ..
        }
    ));
    assert!(
        claim(s, late + time::Duration::hours(1), 10)
            .await
            .is_empty()
    );
    let purge_at = mail.purge_after;
    assert_eq!(
        ok(
            s.purge_expired(purge_at - time::Duration::seconds(1), 10)
                .await,
            "purge"
        ),
        0
    );
    assert_eq!(ok(s.purge_expired(purge_at, 10).await, "purge"), 1);
    assert!(ok(s.find_mail(&mail.id).await, "find_mail").is_none());
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

/// One guarantee of the suite; [`run`] runs it. The macro expands to one test per
/// variant, named after it.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Case {
    /// See [`flow_compare_and_set`].
    flow_compare_and_set,
    /// See [`flow_lookup_keys_are_unique`].
    flow_lookup_keys_are_unique,
    /// See [`find_flow_by_every_lookup_key`].
    find_flow_by_every_lookup_key,
    /// See [`commit_is_all_or_nothing`].
    commit_is_all_or_nothing,
    /// See [`account_create_uniqueness`].
    account_create_uniqueness,
    /// See [`account_update_uniqueness`].
    account_update_uniqueness,
    /// See [`find_account_by_every_lookup`].
    find_account_by_every_lookup,
    /// See [`counter_compare_and_set`].
    counter_compare_and_set,
    /// See [`counter_increments_are_never_lost`].
    counter_increments_are_never_lost,
    /// See [`one_consumer_wins`].
    one_consumer_wins,
    /// See [`racing_creates_one_account`].
    racing_creates_one_account,
    /// See [`flows_of_account_lists_the_accounts_flows`].
    flows_of_account_lists_the_accounts_flows,
    /// See [`purge_is_bounded_and_only_expired`].
    purge_is_bounded_and_only_expired,
    /// See [`no_plaintext_secret_in_store`].
    no_plaintext_secret_in_store,
    /// See [`load_finds_the_first_candidate_flow`].
    load_finds_the_first_candidate_flow,
    /// See [`load_reads_the_account_and_its_flows`].
    load_reads_the_account_and_its_flows,
    /// See [`load_reads_counters_in_order`].
    load_reads_counters_in_order,
    /// See [`outbox_commits_with_the_state`].
    outbox_commits_with_the_state,
    /// See [`outbox_claims_each_mail_once`].
    outbox_claims_each_mail_once,
    /// See [`outbox_retries_after_a_transport_error`].
    outbox_retries_after_a_transport_error,
    /// See [`outbox_gives_up_expired_mail_and_purges_it`].
    outbox_gives_up_expired_mail_and_purges_it,
}

type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Case {
    fn start<S: Store + DumpText + 'static>(self, store: Arc<S>) -> CaseFuture {
        let dynamic: Arc<dyn Store> = store.clone();
        match self {
            Case::flow_compare_and_set => Box::pin(flow_compare_and_set(dynamic)),
            Case::flow_lookup_keys_are_unique => Box::pin(flow_lookup_keys_are_unique(dynamic)),
            Case::find_flow_by_every_lookup_key => Box::pin(find_flow_by_every_lookup_key(dynamic)),
            Case::commit_is_all_or_nothing => Box::pin(commit_is_all_or_nothing(dynamic)),
            Case::account_create_uniqueness => Box::pin(account_create_uniqueness(dynamic)),
            Case::account_update_uniqueness => Box::pin(account_update_uniqueness(dynamic)),
            Case::find_account_by_every_lookup => Box::pin(find_account_by_every_lookup(dynamic)),
            Case::counter_compare_and_set => Box::pin(counter_compare_and_set(dynamic)),
            Case::counter_increments_are_never_lost => {
                Box::pin(counter_increments_are_never_lost(dynamic))
            }
            Case::one_consumer_wins => Box::pin(one_consumer_wins(dynamic)),
            Case::racing_creates_one_account => Box::pin(racing_creates_one_account(dynamic)),
            Case::flows_of_account_lists_the_accounts_flows => {
                Box::pin(flows_of_account_lists_the_accounts_flows(dynamic))
            }
            Case::purge_is_bounded_and_only_expired => {
                Box::pin(purge_is_bounded_and_only_expired(dynamic))
            }
            Case::no_plaintext_secret_in_store => Box::pin(no_plaintext_secret_in_store(store)),
            Case::load_finds_the_first_candidate_flow => {
                Box::pin(load_finds_the_first_candidate_flow(dynamic))
            }
            Case::load_reads_the_account_and_its_flows => {
                Box::pin(load_reads_the_account_and_its_flows(dynamic))
            }
            Case::load_reads_counters_in_order => Box::pin(load_reads_counters_in_order(dynamic)),
            Case::outbox_commits_with_the_state => Box::pin(outbox_commits_with_the_state(dynamic)),
            Case::outbox_claims_each_mail_once => Box::pin(outbox_claims_each_mail_once(dynamic)),
            Case::outbox_retries_after_a_transport_error => {
                Box::pin(outbox_retries_after_a_transport_error(dynamic))
            }
            Case::outbox_gives_up_expired_mail_and_purges_it => {
                Box::pin(outbox_gives_up_expired_mail_and_purges_it(dynamic))
            }
        }
    }
}

/// Runs one guarantee against `store`, then `teardown(store)` — also when the check
/// fails, so a test database is cleaned up either way — and then re-raises the failure.
pub async fn run<S, F, Fut>(case: Case, store: S, teardown: F)
where
    S: Store + DumpText + 'static,
    F: FnOnce(Arc<S>) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = Arc::new(store);
    let result = tokio::spawn(case.start(store.clone())).await;
    teardown(store).await;
    if let Err(e) = result {
        match e.try_into_panic() {
            Ok(payload) => std::panic::resume_unwind(payload),
            Err(e) => panic!("conformance case {case:?} did not finish: {e}"),
        }
    }
}

/// Expands to one `#[tokio::test(flavor = "multi_thread")]` per store guarantee (see
/// [`testkit::conformance`](crate::testkit::conformance)).
///
/// `$make` is an expression whose `.await` gives a fresh, empty store (a type that
/// implements `Store` and `conformance::DumpText`); it is evaluated once per test. The
/// optional `$teardown` is called with `Arc<Store>` after each test, pass or fail.
///
/// Invoke it inside its own module, once per store:
///
/// ```no_run
/// mod sqlite_memory {
///     kenpo_auth::store_conformance_tests!(async {
///         kenpo_auth::store::SqliteStore::in_memory().await.unwrap()
///     });
/// }
/// ```
#[macro_export]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
macro_rules! store_conformance_tests {
    ($make:expr $(,)?) => {
        $crate::store_conformance_tests!($make, |_store| async {});
    };
    ($make:expr, $teardown:expr $(,)?) => {
        $crate::__store_conformance_cases!(
            ($make, $teardown)
            flow_compare_and_set
            flow_lookup_keys_are_unique
            find_flow_by_every_lookup_key
            commit_is_all_or_nothing
            account_create_uniqueness
            account_update_uniqueness
            find_account_by_every_lookup
            counter_compare_and_set
            counter_increments_are_never_lost
            one_consumer_wins
            racing_creates_one_account
            flows_of_account_lists_the_accounts_flows
            purge_is_bounded_and_only_expired
            no_plaintext_secret_in_store
            load_finds_the_first_candidate_flow
            load_reads_the_account_and_its_flows
            load_reads_counters_in_order
            outbox_commits_with_the_state
            outbox_claims_each_mail_once
            outbox_retries_after_a_transport_error
            outbox_gives_up_expired_mail_and_purges_it
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_cases {
    (($make:expr, $teardown:expr) $($case:ident)*) => {
        $(
            #[tokio::test(flavor = "multi_thread")]
            async fn $case() {
                $crate::testkit::conformance::run(
                    $crate::testkit::conformance::Case::$case,
                    $make.await,
                    $teardown,
                )
                .await;
            }
        )*
    };
}
