//! Messages per second to a real SMTP server on loopback (`tests/support/smtp_sink.py`,
//! aiosmtpd, discarding), one message at a time: stock lettre
//! (`AsyncSmtpTransport::builder_dangerous(host).port(p)`) against `SmtpMailer`, in
//! plain SMTP and in implicit TLS.
//!
//! Stock lettre's sockets keep Nagle's algorithm on, so each message waits for the
//! server's delayed ACK (~40 ms on Linux); ours set `TCP_NODELAY`. lettre is built with
//! the crate's features, without its `pool` feature, so stock lettre opens a connection
//! per message here; with `pool` on (tried by adding it to lettre's features) it
//! measured the same ~44.7 ms per message, because the delay is per message, not per
//! connection. Run with `cargo bench --features smtp --bench smtp`; needs python3 with
//! aiosmtpd.

#[path = "../tests/support/sink.rs"]
mod sink;

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kenpo_auth::domain::EmailAddress;
use kenpo_auth::mail::{MailMessage, OutgoingMail, RenderedMail, SmtpConfig, SmtpMailer};
use kenpo_auth::ports::Mailer;
use kenpo_auth::{InsurerProfile, Lang};
use lettre::message::{Mailbox, Message, SinglePart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sink::{Sink, SinkOptions, SinkTls};

const SUBJECT: &str = "【さくら健康保険組合】暗証キーのご案内";
const BODY: &str = "さくらけんぽWebのログインに必要な暗証キーをお知らせします。\n暗証キー：123456\n※暗証キーの有効期限は10分です。\n";

fn profile() -> InsurerProfile {
    InsurerProfile::new(
        "さくら健康保険組合",
        "さくらけんぽWeb",
        "no-reply@sakura-kenpo.example.jp",
        "03-0000-0000",
        "https://portal.sakura-kenpo.example.jp",
    )
}

fn ca() -> Vec<u8> {
    std::fs::read(format!("{}/ca.pem", sink::TLS_DIR)).expect("test CA")
}

fn our_mail() -> OutgoingMail {
    OutgoingMail {
        to: EmailAddress::parse("taro@example.jp").expect("address"),
        lang: Lang::Ja,
        message: MailMessage::PasswordChanged {
            at: time::OffsetDateTime::UNIX_EPOCH,
        },
        rendered: RenderedMail {
            subject: SUBJECT.into(),
            body: BODY.into(),
        },
    }
}

fn stock_message() -> Message {
    Message::builder()
        .from(
            "さくら健康保険組合 <no-reply@sakura-kenpo.example.jp>"
                .parse::<Mailbox>()
                .expect("from"),
        )
        .to("taro@example.jp".parse::<Mailbox>().expect("to"))
        .subject(SUBJECT)
        .singlepart(SinglePart::plain(BODY.to_owned()))
        .expect("message")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // lettre's pool (when its `pool` feature is on) starts a task when built.
    let _in_runtime = rt.enter();
    let mut group = c.benchmark_group("smtp_send_one_message_loopback");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(6));

    for tls in [SinkTls::Plain, SinkTls::Implicit] {
        let sink = Sink::start(SinkOptions {
            tls,
            discard: true,
            ..Default::default()
        });
        let tag = if tls == SinkTls::Plain {
            "plain"
        } else {
            "implicit_tls"
        };

        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(sink.port);
        if tls == SinkTls::Implicit {
            let params = TlsParameters::builder("127.0.0.1".into())
                .add_root_certificate(Certificate::from_pem(&ca()).expect("CA"))
                .build()
                .expect("TLS parameters");
            builder = builder.tls(Tls::Wrapper(params));
        }
        let stock = builder.build();
        let message = stock_message();
        group.bench_function(format!("stock_lettre/{tag}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        stock.send(message.clone()).await.expect("stock send");
                    }
                    start.elapsed()
                })
            })
        });

        let url = match tls {
            SinkTls::Plain => format!("smtp://127.0.0.1:{}", sink.port),
            _ => format!("smtps://127.0.0.1:{}", sink.port),
        };
        let config = SmtpConfig::from_url(&url)
            .expect("url")
            .add_root_certificate_pem(ca());
        let ours = SmtpMailer::new(config, &profile()).expect("mailer");
        let mail = our_mail();
        group.bench_function(format!("smtp_mailer/{tag}"), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        ours.send(&mail).await.expect("our send");
                    }
                    start.elapsed()
                })
            })
        });
        rt.block_on(ours.close());
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
