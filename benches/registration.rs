//! The registration journey R1–R5 through `Portal`, with `MemoryStore` and test-minimum
//! Argon2 (`HashParams::danger_test_minimum()`, allowed by `Deviation::WeakPasswordHashing`),
//! so the figures show the library's own cost rather than the hash's.
//!
//! Every journey registers a new member with a new address, as in production (one account
//! per member and per address). The roster is a `HashMap` behind `MemberDirectory`, so a
//! growing roster costs nothing here (the testkit's `MemoryDirectory` scans a `Vec`).
//! `journey` times R1–R5 together; `R1` … `R5` run the same journey and time one step.
//! The store keeps every earlier iteration's flows, counters and accounts, as a host
//! does between purges.
//!
//! Run: `cargo bench --bench registration`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use kenpo_auth::Portal;
use kenpo_auth::domain::{BirthDate, CardNumber};
use kenpo_auth::mail::RecordingMailer;
use kenpo_auth::ports::{DirectoryError, MemberDirectory, MemberId, MemberRecord, Relation};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::fixtures::{self, PASSWORD, TARO_BIRTH as BIRTH};

/// A roster keyed by card number and by member ID (R3 finds by card, R5 gets by ID).
#[derive(Clone, Default)]
struct Roster(Arc<Mutex<RosterMaps>>);

#[derive(Default)]
struct RosterMaps {
    by_card: HashMap<String, MemberRecord>,
    by_id: HashMap<MemberId, MemberRecord>,
}

#[async_trait]
impl MemberDirectory for Roster {
    async fn find(&self, card: &CardNumber) -> Result<Option<MemberRecord>, DirectoryError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .by_card
            .get(&card.canonical())
            .cloned())
    }

    async fn get(&self, id: &MemberId) -> Result<Option<MemberRecord>, DirectoryError> {
        Ok(self.0.lock().unwrap().by_id.get(id).cloned())
    }
}

fn card(i: u64) -> String {
    format!("{}-{:06}-00", 1000 + i / 1_000_000, i % 1_000_000)
}

struct Bench {
    portal: Portal,
    mailer: RecordingMailer,
    roster: Roster,
    next: u64,
}

impl Bench {
    fn new() -> Self {
        let mailer = RecordingMailer::new();
        let roster = Roster::default();
        // The test-minimum policy, sample insurer and key of `fixtures::portal_builder`.
        let portal = fixtures::portal_builder()
            .store(MemoryStore::new())
            .shared_mailer(Arc::new(mailer.clone()))
            .directory(roster.clone())
            .clock(Arc::new(fixtures::sample_clock()))
            .build()
            .unwrap();
        Bench {
            portal,
            mailer,
            roster,
            next: 0,
        }
    }

    /// Adds the next member to the roster (untimed) and returns its number.
    fn new_member(&mut self) -> u64 {
        let i = self.next;
        self.next += 1;
        let card_number = CardNumber::parse(&card(i)).unwrap();
        let record = MemberRecord::new(
            MemberId::new(format!("M{i:08}")),
            card_number.clone(),
            BirthDate::parse(BIRTH).unwrap(),
            None,
            Relation::Insured,
            true,
        );
        let mut roster = self.roster.0.lock().unwrap();
        roster
            .by_id
            .insert(record.member_id.clone(), record.clone());
        roster.by_card.insert(card_number.canonical(), record);
        i
    }

    /// What `read` finds in the mails so far, which are then forgotten (a long run keeps
    /// no mail it has read).
    fn read_mail<T>(&self, read: impl FnOnce(&RecordingMailer) -> Option<T>) -> T {
        let found = read(&self.mailer).expect("the step's mail");
        self.mailer.take();
        found
    }

    /// One journey R1–R5 for member `i`; the time each step took.
    async fn journey(&self, i: u64) -> [Duration; 5] {
        let mut t = [Duration::ZERO; 5];
        let email = format!("member{i}@example.jp");

        let s = Instant::now();
        self.portal.start_registration(&email).await.unwrap();
        t[0] = s.elapsed();
        let link1 = self.read_mail(|m| m.last_registration_link(&email));

        let s = Instant::now();
        let handle = self
            .portal
            .open_registration_link(&link1.token)
            .await
            .unwrap();
        t[1] = s.elapsed();

        let claim = fixtures::claim(&card(i), BIRTH);
        let s = Instant::now();
        let shown = self.portal.verify_identity(&handle, claim).await.unwrap();
        t[2] = s.elapsed();
        let link2 = self.read_mail(|m| m.last_verification_link(&email));

        let s = Instant::now();
        let handle = self
            .portal
            .confirm_auth_key(&link2.token, &shown.auth_key)
            .await
            .unwrap();
        t[3] = s.elapsed();

        let mut credentials = fixtures::credentials(&format!("kumiai-{i:04}"), PASSWORD);
        credentials.nickname = None;
        let s = Instant::now();
        self.portal
            .complete_registration(&handle, credentials)
            .await
            .unwrap();
        t[4] = s.elapsed();
        self.mailer.take();
        t
    }
}

fn registration(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut bench = Bench::new();
    let mut g = c.benchmark_group("registration");
    g.sample_size(50);
    // `None`: the whole journey; `Some(k)`: step R(k+1) only.
    let cases: [(&str, Option<usize>); 6] = [
        ("journey R1-R5", None),
        ("R1 start_registration", Some(0)),
        ("R2 open_registration_link", Some(1)),
        ("R3 verify_identity", Some(2)),
        ("R4 confirm_auth_key", Some(3)),
        ("R5 complete_registration", Some(4)),
    ];
    for (name, step) in cases {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let i = bench.new_member();
                    let t = rt.block_on(bench.journey(i));
                    total += match step {
                        None => t.iter().sum(),
                        Some(k) => t[k],
                    };
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, registration);
criterion_main!(benches);
