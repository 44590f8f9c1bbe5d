//! Equal work, measured (SEC-07, SEC-23, SEC-37, SEC-40): does an answer's latency
//! reveal whether a login ID or an address is known — on each store?
//!
//! For every store compiled in (MemoryStore always; SqliteStore with `--features sqlite`,
//! a file in a temporary directory; PostgresStore with `--features postgres`, a fresh
//! schema at `KENPO_TEST_DATABASE_URL` or `postgres://postgres@127.0.0.1:5432/postgres`),
//! four pairs of cases, interleaved sample by sample (the order alternates, so drift in
//! machine load hits both alike):
//!
//! | row | case A | case B |
//! |---|---|---|
//! | SEC-23 login | unknown login ID | known ID, wrong password |
//! | SEC-37 forgot password | unknown login ID | known login ID (link mailed) |
//! | SEC-40 forgot login ID | address with no account | registered address, claim matches (ID mailed) |
//! | SEC-07 registration | new address | registered address |
//!
//! Each line prints both medians and their difference, the median of the paired
//! differences (each sample of case A minus the case-B sample taken next to it), both as a
//! share of case B's median, and a two-sample Kolmogorov–Smirnov test. The target
//! (SECURITY.md) is a median difference under 5 % and KS p > 0.01 on every store; the
//! verdict uses the paired difference, which load that moves both cases does not skew.
//!
//! Between samples the clock moves on two hours, so no throttle or delay is in force,
//! and a right password (not measured) clears the wrong ones' failure count; expired flows
//! are purged every 50 samples, as a host's purge job would.
//!
//! Run: `cargo bench --bench timing --features sqlite,postgres` (about 3 minutes at the
//! default Argon2id cost). `KENPO_TIMING_SAMPLES` sets the samples per case (1 000).
//! Plain `main`, not criterion: the statistic is a comparison of two distributions.

use std::sync::Arc;
use std::time::Instant;

use kenpo_auth::Policy;
use kenpo_auth::Portal;
use kenpo_auth::mail::{MailMessage, RecordingMailer};
use kenpo_auth::ports::Store;
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::ManualClock;
use kenpo_auth::testkit::fixtures::{self, PASSWORD, TARO_BIRTH, TARO_CARD};

const LOGIN: &str = "taro-sakura";
const ADDRESS: &str = "taro@example.jp";

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Two-sample Kolmogorov–Smirnov statistic and its asymptotic p-value.
fn ks(a: &mut [f64], b: &mut [f64]) -> (f64, f64) {
    a.sort_by(|x, y| x.total_cmp(y));
    b.sort_by(|x, y| x.total_cmp(y));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    let mut p = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        p += 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * lambda * lambda).exp();
    }
    (d, p.clamp(0.0, 1.0))
}

/// Samples of one pair of cases, in milliseconds.
#[derive(Default)]
struct Pair {
    a: Vec<f64>,
    b: Vec<f64>,
}

impl Pair {
    fn report(&mut self, store: &str, row: &str, a: &str, b: &str) {
        // The samples were taken in pairs, one of each case back to back: the median of
        // the pairs' differences is the shift between the cases, robust to the machine's
        // load moving both (a median of each case alone can fall in different modes of a
        // two-humped distribution).
        let mut paired: Vec<f64> = self.a.iter().zip(&self.b).map(|(x, y)| x - y).collect();
        let shift = median(&mut paired);
        let (ma, mb) = (median(&mut self.a), median(&mut self.b));
        let (d, p) = ks(&mut self.a, &mut self.b);
        let diff = (ma - mb).abs() / mb * 100.0;
        let paired_diff = shift.abs() / mb * 100.0;
        let verdict = if p > 0.01 && paired_diff < 5.0 {
            "equal"
        } else {
            "DIFFERENT"
        };
        println!(
            "| {store} | {row} | {a} {} | {b} {} | {diff:.2} % | {paired_diff:.2} % | {d:.3} | {p:.3} | {verdict} |",
            fmt_ms(ma),
            fmt_ms(mb),
        );
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.0} µs", ms * 1e3)
    }
}

/// Times `f`, in milliseconds.
async fn timed<F: std::future::Future>(f: F) -> (f64, F::Output) {
    let t = Instant::now();
    let out = f.await;
    (t.elapsed().as_secs_f64() * 1e3, out)
}

/// Runs `case(first)` then `case(!first)`: the order alternates between samples.
async fn both<F, Fut>(i: usize, pair: &mut Pair, mut case: F)
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let a_first = i.is_multiple_of(2);
    for a in [a_first, !a_first] {
        let ms = case(a).await;
        if a {
            pair.a.push(ms);
        } else {
            pair.b.push(ms);
        }
    }
}

async fn portal_on(store: Arc<dyn Store>) -> (Portal, RecordingMailer, ManualClock) {
    let mut taro = fixtures::taro();
    taro.kana_name = None;
    let mailer = RecordingMailer::new();
    let clock = fixtures::sample_clock();
    let portal = fixtures::portal_builder()
        .shared_store(store)
        .shared_mailer(Arc::new(mailer.clone()))
        .directory(fixtures::roster_of([taro]))
        .clock(Arc::new(clock.clone()))
        // The strict default policy: the default Argon2id cost is what is measured.
        .policy(Policy::default())
        .build()
        .unwrap();
    portal.start_registration(ADDRESS).await.unwrap();
    let MailMessage::RegistrationLink(l) = mailer.take().pop().unwrap().message else {
        unreachable!()
    };
    let h = portal.open_registration_link(&l.token).await.unwrap();
    let shown = portal
        .verify_identity(&h, fixtures::claim(TARO_CARD, TARO_BIRTH))
        .await
        .unwrap();
    let MailMessage::IdentityVerified(l2) = mailer.take().pop().unwrap().message else {
        unreachable!()
    };
    let h = portal
        .confirm_auth_key(&l2.token, &shown.auth_key)
        .await
        .unwrap();
    let mut credentials = fixtures::credentials(LOGIN, PASSWORD);
    credentials.nickname = None;
    portal.complete_registration(&h, credentials).await.unwrap();
    (portal, mailer, clock)
}

async fn measure(store_name: &str, store: Arc<dyn Store>, samples: usize) {
    let (portal, mailer, clock) = portal_on(store).await;
    let portal = &portal;
    let wrong = fixtures::password("wrong password 123");
    let right = fixtures::password(PASSWORD);
    let (mut login, mut reset, mut reminder, mut registration) = Default::default();
    for i in 0..samples {
        clock.advance(time::Duration::hours(2));
        both(i, &mut login, |unknown| {
            let id = if unknown { "nobody-here" } else { LOGIN };
            let wrong = &wrong;
            async move {
                let (ms, r) = timed(portal.start_login(id, wrong)).await;
                assert!(r.is_err());
                ms
            }
        })
        .await;
        // The wrong password's failure is cleared, as a member's next right login would.
        portal.start_login(LOGIN, &right).await.unwrap();
        both(i, &mut reset, |unknown| async move {
            let id = if unknown { "nobody-here" } else { LOGIN };
            let (ms, r) = timed(portal.request_password_reset(id)).await;
            r.unwrap();
            ms
        })
        .await;
        both(i, &mut reminder, |unknown| async move {
            let to = if unknown {
                "nobody@example.jp"
            } else {
                ADDRESS
            };
            let claim = fixtures::claim(TARO_CARD, TARO_BIRTH);
            let (ms, r) = timed(portal.request_login_id_reminder(to, Some(claim))).await;
            r.unwrap();
            ms
        })
        .await;
        both(i, &mut registration, |new| async move {
            let to = if new {
                format!("new{i}@example.jp")
            } else {
                ADDRESS.to_owned()
            };
            let (ms, r) = timed(portal.start_registration(&to)).await;
            r.unwrap();
            ms
        })
        .await;
        mailer.take();
        if (i + 1).is_multiple_of(50) {
            portal.purge_expired(usize::MAX).await.unwrap();
        }
    }
    login.report(store_name, "SEC-23 login", "unknown ID", "wrong password");
    reset.report(
        store_name,
        "SEC-37 forgot password",
        "unknown ID",
        "known ID",
    );
    reminder.report(store_name, "SEC-40 forgot ID", "no account", "match");
    registration.report(store_name, "SEC-07 registration", "new", "registered");
}

fn main() {
    let samples = std::env::var("KENPO_TIMING_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("{samples} samples per case, interleaved\n");
    println!(
        "| store | row | case A median | case B median | difference of medians | median paired difference | KS D | KS p | |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    rt.block_on(async {
        measure("MemoryStore", Arc::new(MemoryStore::new()), samples).await;
        #[cfg(feature = "sqlite")]
        {
            let dir = std::env::temp_dir().join(format!("kenpo-timing-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("timing.db");
            let store = kenpo_auth::store::SqliteStore::open(path.to_str().unwrap())
                .await
                .unwrap();
            measure("SqliteStore (file)", Arc::new(store), samples).await;
            std::fs::remove_dir_all(&dir).unwrap();
        }
        #[cfg(feature = "postgres")]
        {
            let url = std::env::var("KENPO_TEST_DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let schema = format!("kenpo_timing_{}", std::process::id());
            let store = kenpo_auth::store::PostgresStore::connect_with_schema(&url, &schema)
                .await
                .unwrap();
            store.migrate().await.unwrap();
            let store = Arc::new(store);
            measure("PostgresStore", store.clone(), samples).await;
            store.danger_drop_schema().await.unwrap();
        }
    });
}
