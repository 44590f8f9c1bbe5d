//! Mails per second through the outbox's delivery worker to a real SMTP server on
//! loopback (`tests/support/smtp_sink.py`, aiosmtpd, discarding): 500 registration mails
//! committed by R1 while the server refused them (so they wait in the outbox), then one
//! `DeliveryWorker` draining them — claim, open the seal, send over `SmtpMailer`'s one
//! connection, record — on `MemoryStore` and on a `SqliteStore` file. The figure to
//! compare with: `QueuedMailer` reached ~650 mails/s in a burst of 500 (#14 asks for at
//! least 500/s).
//!
//! Run with `cargo bench --features smtp,sqlite,testkit --bench outbox`; needs python3
//! with aiosmtpd.

#[path = "../tests/support/sink.rs"]
mod sink;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kenpo_auth::Portal;
use kenpo_auth::mail::{SmtpConfig, SmtpMailer};
use kenpo_auth::ports::Store;
use kenpo_auth::store::{MemoryStore, SqliteStore};
use kenpo_auth::testkit::{FaultyMailer, MailFault, ManualClock, When, fixtures};
use sink::{Sink, SinkOptions};

const BURST: usize = 500;

/// A portal over `store` whose mail goes to `smtp` through a switch that refuses
/// (transiently) until healed, and the switch.
fn portal(
    store: Arc<dyn Store>,
    smtp: SmtpMailer,
    clock: &ManualClock,
) -> (Portal, FaultyMailer<SmtpMailer>) {
    let mailer = FaultyMailer::new(smtp);
    let portal = fixtures::portal_builder()
        .shared_store(store)
        .mailer(mailer.clone())
        .directory(fixtures::sample_roster())
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("portal");
    (portal, mailer)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let sink = Sink::start(SinkOptions {
        discard: true,
        ..Default::default()
    });
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let mut group = c.benchmark_group("outbox_worker_to_loopback_smtp");
    group.throughput(Throughput::Elements(BURST as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(20));
    let dir = sink::temp_dir("outbox-bench");
    for backend in ["memory", "sqlite_file"] {
        let mut round = 0usize;
        group.bench_function(format!("{backend}/burst_of_{BURST}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        let store: Arc<dyn Store> = match backend {
                            "memory" => Arc::new(MemoryStore::new()),
                            _ => {
                                let path = dir.join(format!("round-{round}.db"));
                                Arc::new(
                                    SqliteStore::open(path.to_str().expect("path"))
                                        .await
                                        .expect("sqlite"),
                                )
                            }
                        };
                        let smtp = SmtpMailer::new(
                            SmtpConfig::from_url(&url).expect("url"),
                            &fixtures::sample_profile(),
                        )
                        .expect("mailer");
                        let clock = fixtures::sample_clock();
                        let (portal, switch) = portal(store, smtp, &clock);
                        // Not timed: the burst committed while the server refuses.
                        switch.fail(When::Always, MailFault::Transient);
                        for i in 0..BURST {
                            portal
                                .start_registration(&format!("member{i}@example.jp"))
                                .await
                                .expect("R1");
                        }
                        switch.heal();
                        let worker = portal.delivery_worker().batch(100);
                        // Past the first retry's backoff.
                        clock.advance(time::Duration::seconds(2));
                        let start = Instant::now();
                        let mut delivered = 0;
                        while delivered < BURST {
                            let pass = worker.run_once().await.expect("pass");
                            assert_eq!(pass.given_up, 0);
                            delivered += pass.delivered;
                            if pass.claimed == 0 {
                                panic!("the outbox ran dry at {delivered} of {BURST}");
                            }
                        }
                        spent += start.elapsed();
                    }
                    spent
                })
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
