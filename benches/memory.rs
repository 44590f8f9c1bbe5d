//! Memory per pending registration flow in `MemoryStore`: inserts 1 000 000
//! `AwaitingLinkOpen` flows (R1 done, link 1 mailed) through `Store::commit`, one commit
//! per flow as the portal makes them, and reports the growth of the process's resident
//! set (`VmRSS` in `/proc/self/status`) divided by the number of flows.
//!
//! Each flow is what R1 stores: a fresh address (`member{i}@example.jp`, 22–28 bytes), the
//! HMAC digest of a freshly drawn link token, a deadline, and a random `FlowId`.
//!
//! `-- --via-portal` instead calls `Portal::start_registration` a million times (with a
//! mailer that drops the mail), so each pending R1 also holds its per-address mail
//! counter, exactly as the portal leaves it.
//!
//! RSS moves in pages and the hash tables grow by doubling, so the figure depends a
//! little on where the count falls between two growths; the intermediate lines show it.
//!
//! Run: `cargo bench --bench memory` (about 10 s) or
//! `cargo bench --bench memory -- --via-portal` (about a minute).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use kenpo_auth::Policy;
use kenpo_auth::domain::EmailAddress;
use kenpo_auth::flow::{Env, FlowState, RegistrationState, registration};
use kenpo_auth::mail::OutgoingMail;
use kenpo_auth::model::Expect;
use kenpo_auth::ports::{
    Commit, CommitOutcome, FlowId, FlowRecord, FlowWrite, MailError, Mailer, Store, Versioned,
};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::MemoryDirectory;
use kenpo_auth::testkit::fixtures;
use kenpo_auth::token::TokenDigest;

const FLOWS: u64 = 1_000_000;

/// The resident set of this process in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("VmRSS line")
        * 1024
}

struct DropMailer;

#[async_trait]
impl Mailer for DropMailer {
    async fn send(&self, _mail: &OutgoingMail) -> Result<(), MailError> {
        Ok(())
    }
}

fn report(label: &str, n: u64, before: u64, started: Instant) {
    let now = rss_bytes();
    let delta = now.saturating_sub(before);
    println!(
        "{label}: {n:>9} flows  RSS +{:>8.1} MiB  {:>6.0} bytes/flow  ({:.1} s)",
        delta as f64 / (1024.0 * 1024.0),
        delta as f64 / n as f64,
        started.elapsed().as_secs_f64()
    );
}

fn checkpoint(i: u64) -> bool {
    i == FLOWS || i.is_multiple_of(200_000)
}

async fn via_commit(store: &MemoryStore, before: u64) {
    let policy = Policy::default();
    let keys = fixtures::test_keyring();
    let env = Env {
        now: fixtures::START,
        policy: &policy,
        keys: &keys,
    };
    let rng = &mut rand::rng();
    let started = Instant::now();
    for i in 1..=FLOWS {
        let email = EmailAddress::parse(&format!("member{i}@example.jp")).unwrap();
        let (state, _link1) = registration::start(email, env, rng);
        let commit = Commit {
            flows: vec![FlowWrite {
                expect: Expect::Absent,
                record: FlowRecord {
                    id: FlowId::generate(rng),
                    state: FlowState::Registration(RegistrationState::AwaitingLinkOpen(state)),
                },
            }],
            ..Commit::default()
        };
        assert_eq!(
            store.commit(commit).await.unwrap(),
            CommitOutcome::Committed
        );
        if checkpoint(i) {
            report("Store::commit", i, before, started);
        }
    }
}

async fn via_portal(store: &MemoryStore) {
    // The test-minimum policy, sample insurer and key of `fixtures::portal_builder`; an
    // empty roster (R1 never reads it).
    let portal = fixtures::portal_builder()
        .store(store.clone())
        .mailer(DropMailer)
        .directory(MemoryDirectory::new())
        .clock(Arc::new(fixtures::sample_clock()))
        .build()
        .unwrap();
    // After the portal is built (its dummy hash and templates are not the flows').
    let before = rss_bytes();
    let started = Instant::now();
    for i in 1..=FLOWS {
        portal
            .start_registration(&format!("member{i}@example.jp"))
            .await
            .unwrap();
        if checkpoint(i) {
            report("start_registration", i, before, started);
        }
    }
}

fn main() {
    let via_portal_mode = std::env::args().any(|a| a == "--via-portal");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    println!(
        "sizes: FlowState {} B, Versioned<FlowRecord> {} B, TokenDigest {} B, EmailAddress {} B",
        size_of::<FlowState>(),
        size_of::<Versioned<FlowRecord>>(),
        size_of::<TokenDigest>(),
        size_of::<EmailAddress>()
    );
    let store = MemoryStore::new();
    println!(
        "RSS before: {:.1} MiB",
        rss_bytes() as f64 / (1024.0 * 1024.0)
    );
    if via_portal_mode {
        rt.block_on(via_portal(&store));
    } else {
        rt.block_on(via_commit(&store, rss_bytes()));
    }
    assert_eq!(store.flow_count() as u64, FLOWS);
}
