//! What the library adds on top of the unavoidable Argon2id work, against the fastest
//! Argon2id this machine has: in one run, each implementation's raw hash and verify at the
//! library's default cost (m = 19 456 KiB, t = 2, p = 1, 32-byte tag), the library's own
//! `PasswordHasher::verify_blocking` (and, interleaved, its async `verify`: the same work
//! plus the hop to Tokio's blocking pool and back), and one full `start_login` +
//! `verify_otp` cycle
//! through `Portal` with `MemoryStore` — with Argon2 on the blocking pool (the default),
//! on pinned threads, and in place on the calling thread (`Offload::InPlace`, interleaved
//! and parts tables). At the end it prints every figure as a ratio to
//! the **fastest raw verify measured in the run** (issue target: cycle ≤ 1.03 × that).

//!
//! The implementations, all verifying the same PHC string (checked before timing):
//!
//! - `rustcrypto` — RustCrypto `argon2` 0.6, `verify_password` (19 MiB allocated per call);
//! - `rustcrypto_reused` — RustCrypto `argon2` 0.6 on a reused block buffer
//!   (`hash_password_into_with_memory`, what `PasswordHasher` did until issue 18);
//! - `argon2_rust` — `argon2-rust` 1.1, `Argon2::verify_encoded` (arena mapped per call);
//! - `argon2_rust_pooled` — `argon2-rust` 1.1, `Hasher::verify_encoded` (arena kept).
//!
//! Criterion runs the benchmarks one after another, so a drift of the machine between
//! them (or another tenant of a shared machine) moves the ratios of its summary. The run
//! therefore ends with an **interleaved** measurement — 150 rounds (`KENPO_LOGIN_ROUNDS`)
//! in which every verify and the cycle run once each, in rotating order — whose table is
//! the one to quote for ratios. Both tables print the load average.
//!
//! A last table, "parts", takes the cycle apart — raw verify, the library's blocking and
//! async verify, `start_login`, `verify_otp`, `start_login` at test-minimum cost — each
//! measured after a verify on memory of its own, so every part starts equally cold.
//!
//! Run: `cargo bench --bench login` (about 90 s of criterion, 20 samples of ~5 s each,
//! then ~15 s interleaved), or only the verifies and the cycle in criterion:
//! `cargo bench --bench login -- 'verify|cycle'`.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Argon2, Block, Params};
use criterion::{Criterion, criterion_group, criterion_main};
use kenpo_auth::domain::Password;
use kenpo_auth::mail::{MailMessage, RecordingMailer};
use kenpo_auth::password_hash::{
    HashParams, Offload, PasswordHashString, PasswordHasher, Verification,
};
use kenpo_auth::ports::Store;
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::ManualClock;
use kenpo_auth::testkit::fixtures::{self, PASSWORD, TARO_BIRTH, TARO_CARD, TARO_EMAIL as EMAIL};
use kenpo_auth::token::OtpCode;
use kenpo_auth::{Policy, Portal};
use time::macros::datetime;

/// Samples per benchmark, and the time criterion spreads them over.
const SAMPLES: usize = 20;
const MEASUREMENT: StdDuration = StdDuration::from_secs(5);
const WARM_UP: StdDuration = StdDuration::from_secs(1);

/// A fixed 16-byte salt for the raw hashes (the verifies read theirs from the PHC string).
const SALT: &[u8; 16] = b"kenpo-bench-salt";

/// What each benchmark measured, per iteration, as criterion's samples gave it: the
/// routines time themselves (`iter_custom`) and record each sample here too, so the
/// summary can put every figure of this run over the fastest raw verify of this run.
#[derive(Default)]
struct Recorder {
    samples: RefCell<Vec<(&'static str, Vec<f64>)>>,
}

impl Recorder {
    fn record(&self, name: &'static str, iters: u64, total: StdDuration) {
        let per_iter = total.as_secs_f64() / iters.max(1) as f64;
        let mut all = self.samples.borrow_mut();
        match all.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => v.push(per_iter),
            None => all.push((name, vec![per_iter])),
        }
    }

    /// The median of the last `SAMPLES` samples (the earlier calls are criterion's
    /// warm-up), per benchmark, in recording order.
    fn medians(&self) -> Vec<(&'static str, f64)> {
        self.samples
            .borrow()
            .iter()
            .map(|(name, v)| {
                let mut last: Vec<f64> = v[v.len().saturating_sub(SAMPLES)..].to_vec();
                last.sort_by(f64::total_cmp);
                (*name, last[last.len() / 2])
            })
            .collect()
    }
}

/// Times `iters` calls of `f` and records the sample under `name`.
fn timed(rec: &Recorder, name: &'static str, iters: u64, mut f: impl FnMut()) -> StdDuration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    let total = start.elapsed();
    rec.record(name, iters, total);
    total
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Setup {
    portal: Portal,
    mailer: RecordingMailer,
    clock: ManualClock,
    store: MemoryStore,
}

async fn setup(policy: Policy, offload: Offload) -> Setup {
    let directory = fixtures::roster_of([fixtures::taro()]);
    let mailer = RecordingMailer::new();
    let clock = fixtures::sample_clock();
    let store = MemoryStore::new();
    // This bench's insurer has the short support contact.
    let mut insurer = fixtures::sample_profile();
    insurer.support_contact = "03-0000-0000".to_owned();
    let portal = fixtures::portal_builder()
        .store(store.clone())
        .shared_mailer(Arc::new(mailer.clone()))
        .directory(directory)
        .clock(Arc::new(clock.clone()))
        .policy(policy)
        .hash_offload(offload)
        .insurer(insurer)
        .build()
        .unwrap();
    portal.start_registration(EMAIL).await.unwrap();
    let link = match mailer.take().pop().unwrap().message {
        MailMessage::RegistrationLink(l) => l.token,
        _ => unreachable!(),
    };
    let h = portal.open_registration_link(&link).await.unwrap();
    let shown = portal
        .verify_identity(&h, fixtures::claim(TARO_CARD, TARO_BIRTH))
        .await
        .unwrap();
    let link2 = match mailer.take().pop().unwrap().message {
        MailMessage::IdentityVerified(l) => l.token,
        _ => unreachable!(),
    };
    let h = portal
        .confirm_auth_key(&link2, &shown.auth_key)
        .await
        .unwrap();
    let mut credentials = fixtures::credentials("taro-sakura", PASSWORD);
    credentials.nickname = None;
    portal.complete_registration(&h, credentials).await.unwrap();
    mailer.take();
    Setup {
        portal,
        mailer,
        clock,
        store,
    }
}

/// Outside the timing: moves past the hourly 暗証キー cap and purges the finished
/// challenges and counters, as a host's maintenance job would.
fn between_cycles(rt: &tokio::runtime::Runtime, s: &Setup) {
    s.clock.advance(time::Duration::hours(2));
    rt.block_on(
        s.store
            .purge_expired(datetime!(2100-01-01 00:00 UTC), 10_000),
    )
    .unwrap();
}

/// `start_login` + reading the mailed 暗証キー + `verify_otp`.
async fn cycle(portal: &Portal, mailer: &RecordingMailer) {
    let ch = portal
        .start_login("taro-sakura", &fixtures::password(PASSWORD))
        .await
        .unwrap();
    portal
        .verify_otp(&ch.challenge, &mailed_code(mailer))
        .await
        .unwrap();
}

/// The 暗証キー of the last mail.
fn mailed_code(mailer: &RecordingMailer) -> OtpCode {
    match mailer.take().pop().unwrap().message {
        MailMessage::LoginOtp { code, .. } => code,
        _ => unreachable!(),
    }
}

/// `start_login` alone, timed, after [`between_cycles`]; then its `verify_otp`, not
/// timed, so that the next round starts from a finished login.
fn timed_start_login(rt: &tokio::runtime::Runtime, s: &Setup) -> StdDuration {
    between_cycles(rt, s);
    let password = fixtures::password(PASSWORD);
    let started = Instant::now();
    let ch = rt
        .block_on(s.portal.start_login("taro-sakura", &password))
        .unwrap();
    let took = started.elapsed();
    rt.block_on(s.portal.verify_otp(&ch.challenge, &mailed_code(&s.mailer)))
        .unwrap();
    took
}

/// One timed cycle, driven by `block_on` from the bench's thread (the hash goes to
/// Tokio's blocking pool and back).
fn timed_cycle(rt: &tokio::runtime::Runtime, s: &Setup) -> StdDuration {
    between_cycles(rt, s);
    let start = Instant::now();
    rt.block_on(cycle(&s.portal, &s.mailer));
    start.elapsed()
}

fn login_cycle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The strict default policy: Argon2id m=19456 KiB, t=2, p=1.
    let s = rt.block_on(setup(Policy::default(), Offload::BlockingPool));
    // The same on the hasher's pinned threads (`Offload::PinnedThreads`).
    let pinned = rt.block_on(setup(Policy::default(), Offload::PinnedThreads));
    // The same computing on the calling thread (`Offload::InPlace`).
    let in_place = rt.block_on(setup(Policy::default(), Offload::InPlace));
    // The same portal at the test-minimum cost (m = 8 KiB, t = 1): what the library does
    // around the hash, for the interleaved table.
    let cheap = rt.block_on(setup(
        fixtures::danger_test_minimum_policy(),
        Offload::BlockingPool,
    ));
    let rec = Recorder::default();
    let load_before = loadavg();

    // One PHC string at the default cost, verified by every implementation.
    let argon = Argon2::default();
    let phc = argon
        .hash_password_with_salt(PASSWORD.as_bytes(), SALT)
        .unwrap()
        .to_string();
    let parsed = PasswordHash::new(&phc).unwrap();
    let expected = parsed.hash.unwrap();
    let fast = argon2_rust::Argon2::new(
        argon2_rust::Algorithm::Argon2id,
        argon2_rust::Version::V0x13,
        argon2_rust::Params::builder()
            .memory(argon2_rust::params::Memory::kib(19_456))
            .passes(2)
            .lanes(1)
            .threads(1)
            .build()
            .unwrap(),
    );
    let id = argon2_rust::Algorithm::Argon2id;
    let mut pooled = fast.hasher();
    let mut blocks = vec![Block::default(); Params::DEFAULT.block_count()];
    // Same answer everywhere, before anything is timed.
    argon.verify_password(PASSWORD.as_bytes(), &parsed).unwrap();
    argon2_rust::Argon2::verify_encoded(&phc, PASSWORD.as_bytes(), id).unwrap();
    pooled
        .verify_encoded(&phc, PASSWORD.as_bytes(), id)
        .unwrap();
    assert_eq!(
        fast.hash(PASSWORD.as_bytes(), SALT).unwrap(),
        expected.as_bytes(),
        "argon2-rust and RustCrypto disagree"
    );
    let library = PasswordHasher::new(HashParams::DEFAULT, None, vec![], 1).unwrap();
    let password = fixtures::password(PASSWORD);
    let stored = PasswordHashString::parse(&phc).unwrap();
    assert_eq!(
        library.verify_blocking(&password, &stored).unwrap(),
        Verification::Match {
            needs_rehash: false
        }
    );

    let mut group = c.benchmark_group("login");
    group.sample_size(SAMPLES);
    group.warm_up_time(WARM_UP);
    group.measurement_time(MEASUREMENT);

    group.bench_function("verify/rustcrypto", |b| {
        b.iter_custom(|n| {
            timed(&rec, "verify/rustcrypto", n, || {
                let parsed = PasswordHash::new(&phc).unwrap();
                argon.verify_password(PASSWORD.as_bytes(), &parsed).unwrap();
            })
        })
    });
    group.bench_function("verify/rustcrypto_reused", |b| {
        b.iter_custom(|n| {
            timed(&rec, "verify/rustcrypto_reused", n, || {
                let parsed = PasswordHash::new(&phc).unwrap();
                let (salt, hash) = (parsed.salt.unwrap(), parsed.hash.unwrap());
                let mut out = [0u8; 32];
                argon
                    .hash_password_into_with_memory(
                        PASSWORD.as_bytes(),
                        &salt,
                        &mut out,
                        &mut blocks,
                    )
                    .unwrap();
                assert_eq!(&out[..], hash.as_bytes());
            })
        })
    });
    group.bench_function("verify/argon2_rust", |b| {
        b.iter_custom(|n| {
            timed(&rec, "verify/argon2_rust", n, || {
                argon2_rust::Argon2::verify_encoded(&phc, PASSWORD.as_bytes(), id).unwrap();
            })
        })
    });
    group.bench_function("verify/argon2_rust_pooled", |b| {
        b.iter_custom(|n| {
            timed(&rec, "verify/argon2_rust_pooled", n, || {
                pooled
                    .verify_encoded(&phc, PASSWORD.as_bytes(), id)
                    .unwrap();
            })
        })
    });
    group.bench_function("verify/library_verify_blocking", |b| {
        b.iter_custom(|n| {
            timed(&rec, "verify/library_verify_blocking", n, || {
                let outcome = library.verify_blocking(&password, &stored).unwrap();
                assert!(matches!(outcome, Verification::Match { .. }));
            })
        })
    });

    group.bench_function("hash/rustcrypto", |b| {
        b.iter_custom(|n| {
            timed(&rec, "hash/rustcrypto", n, || {
                let mut out = [0u8; 32];
                argon
                    .hash_password_into(PASSWORD.as_bytes(), SALT, &mut out)
                    .unwrap();
            })
        })
    });
    group.bench_function("hash/rustcrypto_reused", |b| {
        b.iter_custom(|n| {
            timed(&rec, "hash/rustcrypto_reused", n, || {
                let mut out = [0u8; 32];
                argon
                    .hash_password_into_with_memory(
                        PASSWORD.as_bytes(),
                        SALT,
                        &mut out,
                        &mut blocks,
                    )
                    .unwrap();
            })
        })
    });
    group.bench_function("hash/argon2_rust", |b| {
        b.iter_custom(|n| {
            timed(&rec, "hash/argon2_rust", n, || {
                let mut out = [0u8; 32];
                fast.hash_into(PASSWORD.as_bytes(), SALT, &mut out).unwrap();
            })
        })
    });
    group.bench_function("hash/argon2_rust_pooled", |b| {
        b.iter_custom(|n| {
            timed(&rec, "hash/argon2_rust_pooled", n, || {
                let mut out = [0u8; 32];
                pooled
                    .hash_into(PASSWORD.as_bytes(), SALT, &mut out)
                    .unwrap();
            })
        })
    });
    group.bench_function("hash/library_hash_blocking", |b| {
        b.iter_custom(|n| {
            timed(&rec, "hash/library_hash_blocking", n, || {
                library.hash_blocking(&password).unwrap();
            })
        })
    });

    group.bench_function("cycle/portal_start_login_verify_otp", |b| {
        b.iter_custom(|iters| {
            let mut total = StdDuration::ZERO;
            for _ in 0..iters {
                total += timed_cycle(&rt, &s);
            }
            rec.record("cycle/portal_start_login_verify_otp", iters, total);
            total
        })
    });
    group.finish();
    summary(&rec, &load_before);

    // Interleaved: every round runs each arm once, starting from a different arm each
    // round, so drift and the other tenants of a shared machine hit every arm alike.
    let rounds: usize = std::env::var("KENPO_LOGIN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let load_before = loadavg();
    let timed_once = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let mut arms: Vec<Arm<'_>> = vec![
        (
            "verify/rustcrypto_reused",
            Box::new(|| {
                timed_once(&mut || {
                    let parsed = PasswordHash::new(&phc).unwrap();
                    let (salt, hash) = (parsed.salt.unwrap(), parsed.hash.unwrap());
                    let mut out = [0u8; 32];
                    argon
                        .hash_password_into_with_memory(
                            PASSWORD.as_bytes(),
                            &salt,
                            &mut out,
                            &mut blocks,
                        )
                        .unwrap();
                    assert_eq!(&out[..], hash.as_bytes());
                })
            }),
        ),
        (
            "verify/argon2_rust",
            Box::new(|| {
                timed_once(&mut || {
                    argon2_rust::Argon2::verify_encoded(&phc, PASSWORD.as_bytes(), id).unwrap();
                })
            }),
        ),
    ];
    arms.extend(verify_arms(
        [
            "verify/argon2_rust_pooled",
            "verify/library_verify_blocking",
            "verify/library_verify_async",
        ],
        &mut pooled,
        (&phc, id),
        (&library, &password, &stored),
        &rt,
    ));
    // The cycle on each portal: the default (blocking pool), pinned threads, in place,
    // and the default at test-minimum cost (what surrounds the hash).
    for (name, setup) in [
        ("cycle/portal_start_login_verify_otp", &s),
        ("cycle/same_on_pinned_threads", &pinned),
        ("cycle/same_in_place", &in_place),
        ("cycle/same_at_test_minimum_cost", &cheap),
    ] {
        let rt = &rt;
        arms.push((name, Box::new(move || timed_cycle(rt, setup))));
    }
    let times = rotate(&mut arms, rounds, || {});
    let names: Vec<&str> = arms.iter().map(|a| a.0).collect();
    drop(arms);
    paired_summary(&names, &times, &load_before);

    // Where the cycle's time goes. In the table above an arm may follow one that used the
    // same Argon2 memory (the async verify follows the blocking one, on the same arena),
    // and find it warm. Here every measured part first waits for a verify on memory of
    // its own (a 19 MiB sweep, as a busy server's previous login would leave the caches),
    // so each starts equally cold.
    let mut sweep = fast.hasher();
    // Between a part's `start_login` and its timed `verify_otp`.
    let mut between = fast.hasher();
    let load_before = loadavg();
    let mut parts = verify_arms(
        [
            "raw verify (argon2-rust, kept arena), bench thread",
            "PasswordHasher::verify_blocking, bench thread",
            "PasswordHasher::verify (async: blocking pool and back)",
        ],
        &mut pooled,
        (&phc, id),
        (&library, &password, &stored),
        &rt,
    );
    parts.extend::<Vec<Arm<'_>>>(vec![
        (
            "start_login through Portal",
            Box::new(|| timed_start_login(&rt, &s)),
        ),
        (
            "start_login through Portal, pinned threads",
            Box::new(|| timed_start_login(&rt, &pinned)),
        ),
        (
            "start_login through Portal, in place",
            Box::new(|| timed_start_login(&rt, &in_place)),
        ),
        (
            "verify_otp through Portal (after its start_login)",
            Box::new(|| {
                between_cycles(&rt, &s);
                let ch = rt
                    .block_on(s.portal.start_login("taro-sakura", &password))
                    .unwrap();
                let code = mailed_code(&s.mailer);
                raw_verify(&mut between, &phc, id);
                let started = Instant::now();
                rt.block_on(s.portal.verify_otp(&ch.challenge, &code))
                    .unwrap();
                started.elapsed()
            }),
        ),
        (
            "start_login at test-minimum cost (what surrounds the hash)",
            Box::new(|| timed_start_login(&rt, &cheap)),
        ),
    ]);
    let times = rotate(&mut parts, rounds, || raw_verify(&mut sweep, &phc, id));
    let floor = median(&times[0]);
    println!();
    println!(
        "login, parts (each after a 19 MiB sweep): {rounds} rounds; load average {load_before} before, {} after",
        loadavg()
    );
    println!("| part | median | p10–p90 | ÷ raw verify | − raw verify |");
    println!("|---|---|---|---|---|");
    for (i, (name, _)) in parts.iter().enumerate() {
        let mut sorted = times[i].clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
        let m = median(&times[i]);
        println!(
            "| {name} | {:.3} ms | {:.2}–{:.2} ms | {:.3} | {:+.3} ms |",
            m * 1e3,
            pct(0.1) * 1e3,
            pct(0.9) * 1e3,
            m / floor,
            (m - floor) * 1e3
        );
    }
}

/// A timed arm of the interleaved tables: its name, and one timed run.
type Arm<'a> = (&'static str, Box<dyn FnMut() -> StdDuration + 'a>);

/// `rounds` rounds in which every arm runs once, each round starting from a different
/// arm, `before` run (untimed) before each: every arm's times, in seconds.
fn rotate(arms: &mut [Arm<'_>], rounds: usize, mut before: impl FnMut()) -> Vec<Vec<f64>> {
    let n = arms.len();
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); n];
    for r in 0..rounds {
        for k in 0..n {
            let a = (r + k) % n;
            before();
            times[a].push((arms[a].1)().as_secs_f64());
        }
    }
    times
}

/// Runs `f` once and says how long it took.
fn time_once(f: impl FnOnce()) -> StdDuration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The raw floor (argon2-rust on a kept arena) and the library's blocking and async
/// verifies, as timed arms named `names`.
fn verify_arms<'a>(
    names: [&'static str; 3],
    pooled: &'a mut argon2_rust::Hasher,
    (phc, id): (&'a str, argon2_rust::Algorithm),
    (library, password, stored): (&'a PasswordHasher, &'a Password, &'a PasswordHashString),
    rt: &'a tokio::runtime::Runtime,
) -> Vec<Arm<'a>> {
    let [raw, blocking, asynchronous] = names;
    vec![
        (
            raw,
            Box::new(move || time_once(|| raw_verify(pooled, phc, id))),
        ),
        (
            blocking,
            Box::new(move || time_once(|| verify_blocking(library, password, stored))),
        ),
        (
            asynchronous,
            Box::new(move || time_once(|| verify_async(rt, library, password, stored))),
        ),
    ]
}

/// The library's blocking verify of the right password.
fn verify_blocking(library: &PasswordHasher, password: &Password, stored: &PasswordHashString) {
    let outcome = library.verify_blocking(password, stored).unwrap();
    assert!(matches!(outcome, Verification::Match { .. }));
}

/// The library's async verify of the right password, driven by `block_on`.
fn verify_async(
    rt: &tokio::runtime::Runtime,
    library: &PasswordHasher,
    password: &Password,
    stored: &PasswordHashString,
) {
    let outcome = rt.block_on(library.verify(password, stored)).unwrap();
    assert!(matches!(outcome, Verification::Match { .. }));
}

/// One raw default-cost verify on argon2-rust's kept arena: the floor, and (on memory no
/// measured part uses) the sweep that leaves the caches as a server's previous login
/// would.
fn raw_verify(sweep: &mut argon2_rust::Hasher, phc: &str, id: argon2_rust::Algorithm) {
    sweep.verify_encoded(phc, PASSWORD.as_bytes(), id).unwrap();
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The interleaved rounds: each arm's median, and its ratio to the fastest raw verify —
/// both as a ratio of medians and as the median of per-round ratios (each round's arm
/// over the same round's fastest-implementation verify).
fn paired_summary(names: &[&str], times: &[Vec<f64>], load_before: &str) {
    let rounds = times.first().map_or(0, Vec::len);
    let raw: Vec<usize> = (0..names.len())
        .filter(|&i| names[i].starts_with("verify/") && !names[i].contains("library"))
        .collect();
    let Some(&fastest) = raw
        .iter()
        .min_by(|&&a, &&b| median(&times[a]).total_cmp(&median(&times[b])))
    else {
        return;
    };
    let floor = median(&times[fastest]);
    println!();
    println!(
        "login, interleaved: {rounds} rounds, each arm once per round; load average {load_before} before, {} after",
        loadavg()
    );
    println!(
        "| arm | median | p10–p90 | ÷ fastest raw verify ({}), medians | median of per-round ratios |",
        names[fastest]
    );
    println!("|---|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let mut sorted = times[i].clone();
        sorted.sort_by(f64::total_cmp);
        let pct = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
        let per_round: Vec<f64> = times[i]
            .iter()
            .zip(&times[fastest])
            .map(|(a, f)| a / f)
            .collect();
        let m = median(&times[i]);
        let target = if name.starts_with("cycle/") {
            if m / floor <= 1.03 {
                " (target ≤ 1.03: met)"
            } else {
                " (target ≤ 1.03: MISSED)"
            }
        } else {
            ""
        };
        println!(
            "| {name} | {:.2} ms | {:.2}–{:.2} ms | {:.3}{target} | {:.3} |",
            m * 1e3,
            pct(0.1) * 1e3,
            pct(0.9) * 1e3,
            m / floor,
            median(&per_round)
        );
    }
}

/// Every median of this run over the fastest raw verify of this run.
fn summary(rec: &Recorder, load_before: &str) {
    let medians = rec.medians();
    let floor = medians
        .iter()
        .filter(|(name, _)| name.starts_with("verify/") && !name.contains("library"))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    println!();
    println!(
        "login summary: medians of {SAMPLES} samples; load average {load_before} before, {} after",
        loadavg()
    );
    let Some(&(floor_name, floor)) = floor else {
        println!("(no raw verify ran in this run: no ratios)");
        return;
    };
    println!("| benchmark | median | × fastest raw verify ({floor_name}) |");
    println!("|---|---|---|");
    for (name, m) in &medians {
        let target = if name.starts_with("cycle/") {
            if m / floor <= 1.03 {
                " (target ≤ 1.03: met)"
            } else {
                " (target ≤ 1.03: MISSED)"
            }
        } else {
            ""
        };
        println!("| {name} | {:.2} ms | {:.3}{target} |", m * 1e3, m / floor);
    }
}

criterion_group!(benches, login_cycle);
criterion_main!(benches);
