//! Resident memory of a portal that registers 2 500 members: R1–R5 through `Portal` over
//! a `SqliteStore` file (WAL, as a single-machine host runs it), at the strict default
//! policy (Argon2id m = 19 456 KiB, t = 2, p = 1 — one hash per registration, at R5),
//! with several registrations in flight at once on a multi-threaded Tokio runtime, as a
//! web server drives the library. It prints the process's resident set (`VmRSS` in
//! `/proc/self/status`) after the portal is built and the roster loaded, at checkpoints,
//! and at the end, with the peak (`VmHWM`). Issue 18 target: growth ≤ 100 MB.
//!
//! Before issue 18 the hashing path allocated Argon2's 19 MiB per call, on whichever
//! blocking-pool thread ran it, and glibc kept those per-thread arenas: the example
//! portal's resident memory reached ~645 MB after 2 500 registrations and stayed there.
//!
//! Run: `cargo bench --features sqlite --bench registration_memory` (about a minute on
//! two cores), options after `--`: `--accounts N` (default 2500), `--concurrency C`
//! (default 4).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use kenpo_auth::domain::{BirthDate, CardNumber};
use kenpo_auth::mail::{MailMessage, OutgoingMail};
use kenpo_auth::ports::{
    DirectoryError, MailError, Mailer, MemberDirectory, MemberId, MemberRecord, Relation,
};
use kenpo_auth::store::SqliteStore;
use kenpo_auth::testkit::fixtures::{self, PASSWORD, TARO_BIRTH as BIRTH};
use kenpo_auth::{Policy, Portal};

struct Options {
    accounts: usize,
    concurrency: usize,
}

fn options() -> Options {
    let mut o = Options {
        accounts: 2_500,
        concurrency: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--accounts" => o.accounts = args.next().and_then(|v| v.parse().ok()).expect("N"),
            "--concurrency" => o.concurrency = args.next().and_then(|v| v.parse().ok()).expect("C"),
            // `cargo bench` passes `--bench`; anything else is a mistake.
            "--bench" => {}
            other => panic!("unknown argument {other:?}"),
        }
    }
    o
}

/// A `/proc/self/status` field in bytes (`VmRSS`, `VmHWM`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .expect("a kB field")
        * 1024
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The roster, keyed by card number and by member ID (R3 finds by card, R5 gets by ID).
#[derive(Default)]
struct Roster {
    by_card: HashMap<String, MemberRecord>,
    by_id: HashMap<MemberId, MemberRecord>,
}

#[async_trait]
impl MemberDirectory for Roster {
    async fn find(&self, card: &CardNumber) -> Result<Option<MemberRecord>, DirectoryError> {
        Ok(self.by_card.get(&card.canonical()).cloned())
    }

    async fn get(&self, id: &MemberId) -> Result<Option<MemberRecord>, DirectoryError> {
        Ok(self.by_id.get(id).cloned())
    }
}

fn card(i: usize) -> String {
    format!("777-{i:06}-00")
}

fn roster(n: usize) -> Roster {
    let mut r = Roster::default();
    for i in 0..n {
        let card_number = CardNumber::parse(&card(i)).unwrap();
        let record = MemberRecord::new(
            MemberId::new(format!("M{i:08}")),
            card_number.clone(),
            BirthDate::parse(BIRTH).unwrap(),
            None,
            Relation::Insured,
            true,
        );
        r.by_id.insert(record.member_id.clone(), record.clone());
        r.by_card.insert(card_number.canonical(), record);
    }
    r
}

/// The mail tap: the last mail to each address.
#[derive(Clone, Default)]
struct Tap(Arc<Mutex<HashMap<String, MailMessage>>>);

#[async_trait]
impl Mailer for Tap {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.0
            .lock()
            .unwrap()
            .insert(mail.to.canonical().to_owned(), mail.message.clone());
        Ok(())
    }
}

impl Tap {
    fn take(&self, email: &str) -> MailMessage {
        self.0
            .lock()
            .unwrap()
            .remove(email)
            .unwrap_or_else(|| panic!("no mail to {email}"))
    }
}

/// R1–R5 for member `i`, links read from the tap.
async fn register(portal: &Portal, tap: &Tap, i: usize) {
    let email = format!("rss{i}@example.jp");
    portal.start_registration(&email).await.expect("R1");
    let MailMessage::RegistrationLink(link1) = tap.take(&email) else {
        panic!("link 1 expected")
    };
    let handle = portal
        .open_registration_link(&link1.token)
        .await
        .expect("R2");
    let shown = portal
        .verify_identity(&handle, fixtures::claim(&card(i), BIRTH))
        .await
        .expect("R3");
    let MailMessage::IdentityVerified(link2) = tap.take(&email) else {
        panic!("link 2 expected")
    };
    let handle = portal
        .confirm_auth_key(&link2.token, &shown.auth_key)
        .await
        .expect("R4");
    let mut credentials = fixtures::credentials(&format!("rss-{i:05}"), PASSWORD);
    credentials.nickname = None;
    portal
        .complete_registration(&handle, credentials)
        .await
        .expect("R5");
    // The registration-complete notice.
    tap.0.lock().unwrap().remove(&email);
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kenpo.db");
    let tap = Tap::default();
    let portal = rt.block_on(async {
        let store = SqliteStore::open(db.to_str().unwrap()).await.unwrap();
        Portal::builder()
            .policy(Policy::default())
            .insurer(fixtures::sample_profile())
            .secret_key(fixtures::SECRET_KEY_ID, fixtures::SECRET_KEY)
            .store(store)
            .shared_mailer(Arc::new(tap.clone()))
            .directory(roster(o.accounts))
            .clock(Arc::new(fixtures::sample_clock()))
            .build()
            .unwrap()
    });
    println!(
        "registration_memory: {} accounts, {} in flight, {} cores, SqliteStore file (WAL), \
         Policy::default() (Argon2id m=19456 t=2 p=1), load average {}",
        o.accounts,
        o.concurrency,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        loadavg()
    );
    let before = status_bytes("VmRSS");
    println!("RSS before: {:.1} MiB", mib(before));

    let started = Instant::now();
    let step = (o.accounts / 5).max(1);
    rt.block_on(async {
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..o.concurrency {
            let (portal, tap, next, done) =
                (portal.clone(), tap.clone(), next.clone(), done.clone());
            let accounts = o.accounts;
            set.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= accounts {
                        break;
                    }
                    register(&portal, &tap, i).await;
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % step == 0 {
                        let now = status_bytes("VmRSS");
                        println!(
                            "{n:>6} registered  RSS {:>7.1} MiB  (+{:.1} MB)  {:.1} s",
                            mib(now),
                            mb(now.saturating_sub(before)),
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.unwrap();
        }
    });
    let elapsed = started.elapsed();
    let after = status_bytes("VmRSS");
    let peak = status_bytes("VmHWM");
    let growth = after.saturating_sub(before);
    println!(
        "RSS after: {:.1} MiB; growth {:.1} MB [target ≤ 100 MB: {}]; peak (VmHWM) {:.1} MiB; \
         {} registrations in {:.1} s ({:.1}/s); load average {}",
        mib(after),
        mb(growth),
        if mb(growth) <= 100.0 { "met" } else { "MISSED" },
        mib(peak),
        o.accounts,
        elapsed.as_secs_f64(),
        o.accounts as f64 / elapsed.as_secs_f64(),
        loadavg()
    );
    drop(portal);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}
