//! SEC-23 / SEC-07 timing: does an answer's latency reveal whether a login ID or an
//! address is known? 1 000 samples per case at the default Argon2id cost; prints the
//! medians, their difference as a share of the hash time, and a two-sample
//! Kolmogorov–Smirnov test (the checklist asks for a median difference under 5 % of the
//! hash time and KS p > 0.01).
//!
//! Run: `cargo bench --bench timing` (about a minute). Plain `main`, not criterion: the
//! statistic here is a comparison of two distributions, not a throughput.

use std::sync::Arc;
use std::time::Instant;

use kenpo_auth::Policy;
use kenpo_auth::mail::{MailMessage, RecordingMailer};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::fixtures::{self, PASSWORD, TARO_BIRTH, TARO_CARD};
const SAMPLES: usize = 1000;

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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Taro without a kana name.
    let mut taro = fixtures::taro();
    taro.kana_name = None;
    let directory = fixtures::roster_of([taro]);
    let mailer = RecordingMailer::new();
    let clock = fixtures::sample_clock();
    // This bench's insurer has the short support contact.
    let mut insurer = fixtures::sample_profile();
    insurer.support_contact = "03-0000-0000".to_owned();
    let portal = fixtures::portal_builder()
        .store(MemoryStore::new())
        .shared_mailer(Arc::new(mailer.clone()))
        .directory(directory)
        .clock(Arc::new(clock.clone()))
        // The strict default policy: the default Argon2id cost is what is measured.
        .policy(Policy::default())
        .insurer(insurer)
        .build()
        .unwrap();
    rt.block_on(async {
        portal.start_registration("taro@example.jp").await.unwrap();
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
        let mut credentials = fixtures::credentials("taro-sakura", PASSWORD);
        credentials.nickname = None;
        portal.complete_registration(&h, credentials).await.unwrap();
    });

    let mut unknown = Vec::with_capacity(SAMPLES);
    let mut wrong = Vec::with_capacity(SAMPLES);
    let mut known_addr = Vec::with_capacity(SAMPLES);
    let mut new_addr = Vec::with_capacity(SAMPLES);
    rt.block_on(async {
        // Interleave the cases so drift in machine load hits both alike.
        for i in 0..SAMPLES {
            clock.advance(time::Duration::hours(2));
            let unknown_first = i % 2 == 1;
            for case in 0..2 {
                let unknown_id = (case == 0) == unknown_first;
                let id = if unknown_id {
                    "nobody-here"
                } else {
                    "taro-sakura"
                };
                let t = Instant::now();
                let r = portal
                    .start_login(id, &fixtures::password("wrong password 123"))
                    .await;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                assert!(r.is_err());
                if unknown_id {
                    unknown.push(ms);
                } else {
                    wrong.push(ms);
                }
            }
            // Alternate which registration case runs first, so neither always follows
            // the Argon2 work above (which flushes the caches).
            let known_first = i % 2 == 0;
            for case in 0..2 {
                let known = (case == 0) == known_first;
                let t = Instant::now();
                if known {
                    portal.start_registration("taro@example.jp").await.unwrap();
                    known_addr.push(t.elapsed().as_secs_f64() * 1e3);
                } else {
                    portal
                        .start_registration(&format!("new{i}@example.jp"))
                        .await
                        .unwrap();
                    new_addr.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            mailer.take();
        }
    });
    let (mu, mw) = (median(&mut unknown), median(&mut wrong));
    let (d, p) = ks(&mut unknown, &mut wrong);
    println!(
        "SEC-23 login: unknown ID median {mu:.3} ms, wrong password median {mw:.3} ms, \
         difference {:.2} % of the hash time; KS D = {d:.3}, p = {p:.3}",
        (mu - mw).abs() / mw * 100.0
    );
    let (mk, mn) = (median(&mut known_addr), median(&mut new_addr));
    let (d, p) = ks(&mut known_addr, &mut new_addr);
    println!(
        "SEC-07 registration: known address median {:.1} µs, new address median {:.1} µs; \
         KS D = {d:.3}, p = {p:.3}",
        mk * 1e3,
        mn * 1e3
    );
}
