//! What the library adds on top of the unavoidable Argon2id work: one raw Argon2id verify
//! at the default parameters, beside one full `start_login` + `verify_otp` cycle through
//! `Portal` with `MemoryStore` (issue target: cycle ≤ 1.03 × raw verify).
//!
//! Run: `cargo bench --bench login`

// Benchmark code may panic: a failed unwrap, expect, index or panic! aborts the run.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// A bench crate has no public API, and criterion's macros generate undocumented `pub fn`s.
#![allow(unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Argon2, password_hash::phc::PasswordHash};
use criterion::{Criterion, criterion_group, criterion_main};
use kenpo_auth::domain::{BirthDate, CardNumber, KanaName, Password};
use kenpo_auth::flow::IdentityClaim;
use kenpo_auth::mail::{MailMessage, RecordingMailer};
use kenpo_auth::portal::NewCredentials;
use kenpo_auth::ports::{MemberId, MemberRecord, Relation, Store};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::{ManualClock, MemoryDirectory};
use kenpo_auth::{InsurerProfile, Policy, Portal};
use time::macros::datetime;

const PASSWORD: &str = "さくらの花が咲く春の午後に散歩";
const EMAIL: &str = "taro.yamada@example.jp";

struct Setup {
    portal: Portal,
    mailer: RecordingMailer,
    clock: ManualClock,
    store: MemoryStore,
}

async fn setup() -> Setup {
    let directory = MemoryDirectory::new();
    directory.insert(MemberRecord::new(
        MemberId::new("M001"),
        CardNumber::parse("999-123456-00").unwrap(),
        BirthDate::parse("1985-04-12").unwrap(),
        Some(KanaName::parse("ヤマダ タロウ").unwrap()),
        Relation::Insured,
        true,
    ));
    let mailer = RecordingMailer::new();
    let clock = ManualClock::new(datetime!(2026-11-24 09:00 UTC));
    let store = MemoryStore::new();
    // The strict default policy: Argon2id m=19456 KiB, t=2, p=1.
    let portal = Portal::builder()
        .store(store.clone())
        .shared_mailer(Arc::new(mailer.clone()))
        .directory(directory)
        .clock(Arc::new(clock.clone()))
        .policy(Policy::default())
        .insurer(InsurerProfile::new(
            "さくら健康保険組合",
            "さくらけんぽWeb",
            "no-reply@sakura-kenpo.example.jp",
            "03-0000-0000",
            "https://portal.sakura-kenpo.example.jp",
        ))
        .secret_key(1, [7u8; 32])
        .build()
        .unwrap();
    portal.start_registration(EMAIL).await.unwrap();
    let link = match mailer.take().pop().unwrap().message {
        MailMessage::RegistrationLink(l) => l.token,
        _ => unreachable!(),
    };
    let h = portal.open_registration_link(&link).await.unwrap();
    let shown = portal
        .verify_identity(
            &h,
            IdentityClaim {
                card_number: CardNumber::parse("999-123456-00").unwrap(),
                birth_date: BirthDate::parse("1985-04-12").unwrap(),
                kana_name: None,
            },
        )
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
    portal
        .complete_registration(
            &h,
            NewCredentials {
                login_id: "taro-sakura".into(),
                password: Password::new(PASSWORD).unwrap(),
                password_confirmation: Password::new(PASSWORD).unwrap(),
                nickname: None,
            },
        )
        .await
        .unwrap();
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
                        .start_login(
                            "taro-sakura",
                            &kenpo_auth::domain::Password::new(PASSWORD).unwrap(),
                        )
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
