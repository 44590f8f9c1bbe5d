//! What the library adds on top of the unavoidable Argon2id work: one raw Argon2id verify
//! at the default parameters, beside one full `start_login` + `verify_otp` cycle through
//! `Portal` with `MemoryStore` (issue target: cycle ≤ 1.03 × raw verify).
//!
//! Run: `cargo bench --bench login`

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Argon2, password_hash::phc::PasswordHash};
use criterion::{Criterion, criterion_group, criterion_main};
use kenpo_auth::mail::{MailMessage, RecordingMailer};
use kenpo_auth::ports::Store;
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::ManualClock;
use kenpo_auth::testkit::fixtures::{self, PASSWORD, TARO_BIRTH, TARO_CARD, TARO_EMAIL as EMAIL};
use kenpo_auth::{Policy, Portal};
use time::macros::datetime;

struct Setup {
    portal: Portal,
    mailer: RecordingMailer,
    clock: ManualClock,
    store: MemoryStore,
}

async fn setup() -> Setup {
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
        // The strict default policy: Argon2id m=19456 KiB, t=2, p=1.
        .policy(Policy::default())
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

fn login_cycle(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(setup());

    let argon = Argon2::default();
    let phc = argon
        .hash_password(PASSWORD.as_bytes())
        .unwrap()
        .to_string();

    let mut group = c.benchmark_group("login");
    group.sample_size(40);
    group.measurement_time(StdDuration::from_secs(15));

    group.bench_function("raw_argon2id_verify", |b| {
        b.iter(|| {
            let parsed = PasswordHash::new(&phc).unwrap();
            argon.verify_password(PASSWORD.as_bytes(), &parsed).unwrap();
        })
    });

    group.bench_function("portal_start_login_verify_otp", |b| {
        b.iter_custom(|iters| {
            let mut total = StdDuration::ZERO;
            for _ in 0..iters {
                // Outside the timing: move past the hourly 暗証キー cap and purge the
                // finished challenges and counters, as a host's maintenance job would.
                s.clock.advance(time::Duration::hours(2));
                rt.block_on(
                    s.store
                        .purge_expired(datetime!(2100-01-01 00:00 UTC), 10_000),
                )
                .unwrap();
                let start = Instant::now();
                rt.block_on(async {
                    let ch = s
                        .portal
                        .start_login("taro-sakura", &fixtures::password(PASSWORD))
                        .await
                        .unwrap();
                    let code = match s.mailer.take().pop().unwrap().message {
                        MailMessage::LoginOtp { code, .. } => code,
                        _ => unreachable!(),
                    };
                    s.portal.verify_otp(&ch.challenge, &code).await.unwrap();
                });
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, login_cycle);
criterion_main!(benches);
