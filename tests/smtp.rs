//! `SmtpMailer` and `QueuedMailer` against a real SMTP server on loopback
//! (`tests/support/smtp_sink.py`, aiosmtpd), which each test starts on a free port and
//! kills at the end. Mails are checked as a mail client decodes them (Python's `email`
//! package, independent of the Rust code under test), and the member journeys read
//! their links and 暗証キー from the received text.
//!
//! Needs `python3` with aiosmtpd (`python3 -m pip install aiosmtpd`); without it these
//! tests fail with that command in the message.
#![cfg(feature = "smtp")]

#[path = "support/sink.rs"]
mod sink;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use kenpo_auth::domain::{BirthDate, CardNumber, EmailAddress, Password};
use kenpo_auth::flow::IdentityClaim;
#[cfg(feature = "sqlite")]
use kenpo_auth::flow::delivery::MailStatus;
use kenpo_auth::mail::{
    MailMessage, OutgoingMail, QueueConfig, QueuedMailer, SmtpConfig, SmtpError, SmtpMailer,
};
use kenpo_auth::password_hash::HashParams;
use kenpo_auth::policy::Deviation;
use kenpo_auth::portal::NewCredentials;
use kenpo_auth::ports::{
    AuditKind, Clock, MailError, Mailer, MemberId, MemberRecord, Relation, SystemClock,
};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::{ManualClock, MemoryDirectory, RecordingAudit};
use kenpo_auth::{InsurerProfile, Lang, Policy, Portal};
use sink::{Sink, SinkOptions, SinkTls};

const INSURER: &str = "さくら健康保険組合";
const SENDER: &str = "no-reply@sakura-kenpo.example.jp";
const SENDER_DOMAIN: &str = "sakura-kenpo.example.jp";
const CARD: &str = "999-123456-00";
const BIRTH: &str = "1990-04-01";
const PASSWORD: &str = "Kenpo-Test-Passphrase-9271";

fn profile() -> InsurerProfile {
    InsurerProfile::new(
        INSURER,
        "さくらけんぽWeb",
        SENDER,
        "さくら健康保険組合 お問い合わせ窓口 03-0000-0000",
        "https://portal.sakura-kenpo.example.jp",
    )
}

fn ca_pem() -> Vec<u8> {
    std::fs::read(format!("{}/ca.pem", sink::TLS_DIR)).unwrap()
}

fn outgoing(to: &str) -> OutgoingMail {
    let message = MailMessage::RegistrationCompleted {
        login_url: "https://portal.sakura-kenpo.example.jp/login".into(),
    };
    let rendered = kenpo_auth::mail::render::render(&message, &profile(), Lang::Ja);
    OutgoingMail {
        to: EmailAddress::parse(to).unwrap(),
        lang: Lang::Ja,
        message,
        rendered,
    }
}

/// The first `https://` URL in a mail text, and its `token` parameter.
fn link_token(body: &str) -> String {
    let start = body.find("https://").expect("a URL in the mail");
    let url: String = body[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    assert!(
        url.starts_with("https://portal.sakura-kenpo.example.jp/"),
        "{url}"
    );
    url.split_once("token=")
        .expect("a token in the URL")
        .1
        .to_owned()
}

/// The digits after 「暗証キー：」 in a mail text.
fn otp_code(body: &str) -> String {
    let at = body.find("暗証キー：").expect("暗証キー in the mail");
    body[at + "暗証キー：".len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect()
}

// ---------------------------------------------------------------- headers and body

// The mail arrives, and a mail client shows what the member should see: the insurer's
// name as sender, the Japanese subject and body, JST date, and headers that identify
// an automatic mail from the insurer's domain.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_delivers_japanese_mail_with_the_right_headers() {
    let sink = Sink::plain();
    let mailer =
        SmtpMailer::from_url(&format!("smtp://127.0.0.1:{}", sink.port), &profile()).unwrap();
    let mail = outgoing("taro.yamada@example.jp");
    mailer.send(&mail).await.unwrap();

    let got = sink.wait_for(1).remove(0);
    assert_eq!(got.header("X-Sink-Mail-From"), Some(SENDER));
    assert_eq!(got.header("X-Sink-Rcpt-To"), Some("taro.yamada@example.jp"));
    assert_eq!(
        got.header("From"),
        Some(format!("{INSURER} <{SENDER}>").as_str())
    );
    assert_eq!(got.header("To"), Some("taro.yamada@example.jp"));
    assert_eq!(got.header("Subject"), Some(mail.rendered.subject.as_str()));
    assert_eq!(got.header("Subject"), Some("利用登録完了のお知らせ"));
    let date = got.header("Date").unwrap();
    assert!(date.ends_with("+0900"), "{date}");
    let id = got.header("Message-ID").unwrap();
    assert!(
        id.starts_with('<') && id.ends_with(&format!("@{SENDER_DOMAIN}>")),
        "{id}"
    );
    assert_eq!(got.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(got.header("MIME-Version"), Some("1.0"));
    assert_eq!(got.header("X-Sink-Charset"), Some("utf-8"));
    assert_eq!(got.body, mail.rendered.body);
    // On the wire, nothing but ASCII: the subject and name are RFC 2047 words.
    assert!(got.raw.is_ascii());
    assert!(got.raw_header("Subject").unwrap().starts_with("=?utf-8?"));
    assert!(got.raw_header("From").unwrap().starts_with("=?utf-8?"));
    // The EHLO name defaults to the sender's domain.
    assert_eq!(sink.log()[0], format!("EHLO {SENDER_DOMAIN}"));
}

// Reply-To, when configured, shows the insurer's name and the help desk address.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_reply_to_comes_from_the_config() {
    let sink = Sink::plain();
    let config = SmtpConfig::from_url(&format!("smtp://127.0.0.1:{}", sink.port))
        .unwrap()
        .reply_to("help@sakura-kenpo.example.jp");
    let mailer = SmtpMailer::new(config, &profile()).unwrap();
    mailer.send(&outgoing("hanako@example.jp")).await.unwrap();
    let got = sink.wait_for(1).remove(0);
    assert_eq!(
        got.header("Reply-To"),
        Some(format!("{INSURER} <help@sakura-kenpo.example.jp>").as_str())
    );
}

// Connections are reused: three mails, one greeting.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_reuses_its_connection() {
    let sink = Sink::plain();
    let mailer =
        SmtpMailer::from_url(&format!("smtp://127.0.0.1:{}", sink.port), &profile()).unwrap();
    for i in 0..3 {
        mailer
            .send(&outgoing(&format!("m{i}@example.jp")))
            .await
            .unwrap();
    }
    assert_eq!(sink.wait_for(3).len(), 3);
    let greetings = sink.log().iter().filter(|l| l.starts_with("EHLO")).count();
    assert_eq!(greetings, 1, "{:?}", sink.log());
    mailer.close().await;
}

// A connection the server closed while idle is replaced, and the mail still goes.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_replaces_a_connection_closed_while_idle() {
    let sink = Sink::start(SinkOptions {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    });
    let mailer =
        SmtpMailer::from_url(&format!("smtp://127.0.0.1:{}", sink.port), &profile()).unwrap();
    mailer.send(&outgoing("a1@example.jp")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    mailer.send(&outgoing("a2@example.jp")).await.unwrap();
    assert_eq!(sink.wait_for(2).len(), 2);
    let greetings = sink.log().iter().filter(|l| l.starts_with("EHLO")).count();
    assert_eq!(greetings, 2, "{:?}", sink.log());
}

// ---------------------------------------------------------------- TLS and AUTH

// Implicit TLS (smtps://) with AUTH, verifying the server against the given CA.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_implicit_tls_with_auth_delivers() {
    let sink = Sink::start(SinkOptions {
        tls: SinkTls::Implicit,
        auth: Some(("portal".into(), "p@ss:word".into())),
        ..Default::default()
    });
    let url = format!("smtps://portal:p%40ss%3Aword@127.0.0.1:{}", sink.port);
    let config = SmtpConfig::from_url(&url)
        .unwrap()
        .add_root_certificate_pem(ca_pem());
    let mailer = SmtpMailer::new(config, &profile()).unwrap();
    mailer.test_connection().await.unwrap();
    mailer.send(&outgoing("tls@example.jp")).await.unwrap();
    mailer.send(&outgoing("tls2@example.jp")).await.unwrap();
    let got = sink.wait_for(2);
    assert_eq!(got[0].header("X-Sink-Rcpt-To"), Some("tls@example.jp"));
    assert_eq!(got[1].body, outgoing("x@example.jp").rendered.body);
}

// STARTTLS with AUTH.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_starttls_with_auth_delivers() {
    let sink = Sink::start(SinkOptions {
        tls: SinkTls::StartTls,
        auth: Some(("portal".into(), "secret".into())),
        ..Default::default()
    });
    let url = format!("smtp://portal:secret@127.0.0.1:{}?tls=starttls", sink.port);
    let config = SmtpConfig::from_url(&url)
        .unwrap()
        .add_root_certificate_pem(ca_pem());
    let mailer = SmtpMailer::new(config, &profile()).unwrap();
    mailer.send(&outgoing("starttls@example.jp")).await.unwrap();
    assert_eq!(
        sink.wait_for(1)[0].header("X-Sink-Rcpt-To"),
        Some("starttls@example.jp")
    );
}

// A certificate the client does not trust is refused: nothing is sent.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_refuses_an_untrusted_certificate() {
    let sink = Sink::start(SinkOptions {
        tls: SinkTls::Implicit,
        ..Default::default()
    });
    let mailer =
        SmtpMailer::from_url(&format!("smtps://127.0.0.1:{}", sink.port), &profile()).unwrap();
    let err = mailer.send(&outgoing("x@example.jp")).await.unwrap_err();
    let MailError::Transient(source) = &err else {
        panic!("{err:?}")
    };
    let smtp = source.downcast_ref::<SmtpError>().expect("an SmtpError");
    assert_eq!(smtp.code(), "smtp.session", "{smtp:?}");
    assert!(
        format!("{smtp:?}").to_lowercase().contains("cert"),
        "{smtp:?}"
    );
    assert!(sink.mails().is_empty());
}

// tls=starttls to a server without STARTTLS fails instead of going on in the clear.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_starttls_never_falls_back_to_plain() {
    let sink = Sink::plain();
    let url = format!("smtp://127.0.0.1:{}?tls=starttls", sink.port);
    let config = SmtpConfig::from_url(&url)
        .unwrap()
        .add_root_certificate_pem(ca_pem());
    let mailer = SmtpMailer::new(config, &profile()).unwrap();
    assert!(mailer.send(&outgoing("x@example.jp")).await.is_err());
    assert!(sink.mails().is_empty());
    assert!(sink.log().iter().all(|l| l.starts_with("EHLO")));
}

// A wrong password is a permanent failure (535), not retried forever.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_wrong_password_is_permanent() {
    let sink = Sink::start(SinkOptions {
        auth: Some(("portal".into(), "right".into())),
        ..Default::default()
    });
    let url = format!("smtp://portal:wrong@127.0.0.1:{}", sink.port);
    let mailer = SmtpMailer::from_url(&url, &profile()).unwrap();
    let err = mailer.test_connection().await.unwrap_err();
    assert!(
        matches!(err, SmtpError::PermanentReply { code: 535 }),
        "{err:?}"
    );
    let err = mailer.send(&outgoing("x@example.jp")).await.unwrap_err();
    assert!(matches!(err, MailError::Permanent(_)), "{err:?}");
}

// 4xx is transient and 5xx permanent; neither error text carries the address.
#[tokio::test(flavor = "multi_thread")]
async fn smtp_replies_sort_into_transient_and_permanent() {
    let sink = Sink::plain();
    let mailer =
        SmtpMailer::from_url(&format!("smtp://127.0.0.1:{}", sink.port), &profile()).unwrap();
    let e = mailer
        .send(&outgoing("temp-fail@example.jp"))
        .await
        .unwrap_err();
    assert!(matches!(e, MailError::Transient(_)), "{e:?}");
    assert!(!format!("{e:?}").contains("temp-fail"));
    let e = mailer
        .send(&outgoing("perm-fail@example.jp"))
        .await
        .unwrap_err();
    assert!(matches!(e, MailError::Permanent(_)), "{e:?}");
    assert!(!format!("{e:?}").contains("perm-fail"));
    // The connection broken by a refusal is not reused for the next mail.
    mailer.send(&outgoing("ok@example.jp")).await.unwrap();
    assert_eq!(sink.wait_for(1).len(), 1);
}

// ---------------------------------------------------------------- journeys

/// A portal on a manual clock with one roster member.
struct World {
    portal: Portal,
    clock: ManualClock,
    audit: RecordingAudit,
}

fn world(mailer: Arc<dyn Mailer>) -> World {
    let clock = ManualClock::new(time::macros::datetime!(2025-11-25 01:00:00 UTC));
    let audit = RecordingAudit::new();
    let directory = MemoryDirectory::new();
    directory.insert(MemberRecord::new(
        MemberId::new("M0001"),
        CardNumber::parse(CARD).unwrap(),
        BirthDate::parse(BIRTH).unwrap(),
        None,
        Relation::Insured,
        true,
    ));
    let mut policy = Policy::default();
    policy.hashing = HashParams::danger_test_minimum();
    let policy = policy.allow_deviation(Deviation::WeakPasswordHashing, "test");
    let portal = Portal::builder()
        .store(MemoryStore::new())
        .shared_mailer(mailer)
        .directory(directory)
        .clock(Arc::new(clock.clone()))
        .audit(Arc::new(audit.clone()))
        .policy(policy)
        .insurer(profile())
        .secret_key(1, vec![7u8; 32])
        .build()
        .unwrap();
    World {
        portal,
        clock,
        audit,
    }
}

/// Where a journey reads its mails from.
enum Inbox<'a> {
    /// The real SMTP server, behind the queue.
    Smtp {
        sink: &'a Sink,
        queue: &'a QueuedMailer,
    },
    /// Typed mails captured before switching to SMTP (set-up only).
    Captured(&'a Capture),
}

impl Inbox<'_> {
    /// The text of the `n`-th mail (1-based) this inbox received.
    async fn body(&self, n: usize) -> String {
        match self {
            Inbox::Smtp { sink, queue } => {
                queue.flush().await;
                sink.wait_for(n)[n - 1].body.clone()
            }
            Inbox::Captured(c) => c.0.lock().unwrap()[n - 1].rendered.body.clone(),
        }
    }
}

/// Registration R1–R5 for `email`, reading each link from the mail text.
async fn register(w: &World, inbox: &Inbox<'_>, email: &str, login_id: &str) {
    let p = &w.portal;
    p.start_registration(email).await.unwrap();
    let token = link_token(&inbox.body(1).await);
    let handle = p
        .open_registration_link(&token.parse().unwrap())
        .await
        .unwrap();
    let claim = IdentityClaim {
        card_number: CardNumber::parse(CARD).unwrap(),
        birth_date: BirthDate::parse(BIRTH).unwrap(),
        kana_name: None,
    };
    let shown = p.verify_identity(&handle, claim).await.unwrap();
    let token2 = link_token(&inbox.body(2).await);
    let handle2 = p
        .confirm_auth_key(&token2.parse().unwrap(), &shown.auth_key)
        .await
        .unwrap();
    p.complete_registration(
        &handle2,
        NewCredentials {
            login_id: login_id.into(),
            password: Password::new(PASSWORD).unwrap(),
            password_confirmation: Password::new(PASSWORD).unwrap(),
            nickname: None,
        },
    )
    .await
    .unwrap();
}

fn fast_queue() -> QueueConfig {
    QueueConfig::default()
        .max_attempts(3)
        .backoff(Duration::from_millis(10), Duration::from_millis(40))
}

// Registration and login through the portal, with every link and the 暗証キー read
// from the mails the SMTP server received.
#[tokio::test(flavor = "multi_thread")]
async fn journey_registration_and_login_over_real_smtp() {
    let sink = Sink::plain();
    let smtp =
        SmtpMailer::from_url(&format!("smtp://127.0.0.1:{}", sink.port), &profile()).unwrap();
    let audit_for_queue = RecordingAudit::new();
    let queue = QueuedMailer::start(
        Arc::new(smtp),
        Arc::new(audit_for_queue.clone()),
        Arc::new(SystemClock),
        fast_queue(),
    )
    .unwrap();
    let w = world(Arc::new(queue.clone()));
    let inbox = Inbox::Smtp {
        sink: &sink,
        queue: &queue,
    };
    register(&w, &inbox, "taro.yamada@example.jp", "taro.kenpo").await;
    queue.flush().await;
    let mails = sink.wait_for(3);
    assert_eq!(mails[0].header("Subject"), Some("利用登録手続きのご案内"));
    assert_eq!(mails[2].header("Subject"), Some("利用登録完了のお知らせ"));

    let challenge = w
        .portal
        .start_login(
            "taro.kenpo",
            &kenpo_auth::domain::Password::new(PASSWORD).unwrap(),
        )
        .await
        .unwrap();
    let body = inbox.body(4).await;
    let code = otp_code(&body);
    assert_eq!(code.len(), 6, "{body}");
    let got = &sink.wait_for(4)[3];
    assert_eq!(got.header("Subject"), Some("暗証キーのご案内"));
    assert_eq!(got.header("X-Sink-Rcpt-To"), Some("taro.yamada@example.jp"));
    let session = w
        .portal
        .verify_otp(&challenge.challenge, &code.parse().unwrap())
        .await
        .unwrap();
    assert_eq!(w.audit.count(AuditKind::LoginSucceeded), 1);
    assert!(
        w.portal
            .check_security_stamp(&session.account_id, &session.security_stamp)
            .await
            .unwrap()
    );
    assert_eq!(w.audit.count(AuditKind::MailFailed), 0);
    assert!(audit_for_queue.events().is_empty());
    queue.shutdown().await;
}

/// Keeps typed mails, for the set-up part of a journey.
#[derive(Default)]
struct Capture(Mutex<Vec<OutgoingMail>>);

#[async_trait]
impl Mailer for Capture {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.0.lock().unwrap().push(mail.clone());
        Ok(())
    }
}

/// Sends through whichever mailer is current: capture for set-up, then SMTP.
struct Switch(Mutex<Arc<dyn Mailer>>);

#[async_trait]
impl Mailer for Switch {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let current = Arc::clone(&self.0.lock().unwrap());
        current.send(mail).await
    }
}

/// A registered account at `email`, then the portal's mail switched to a queue over
/// the SMTP server at `url` (whose failures go to the returned audit).
async fn account_then_smtp(email: &str, url: &str) -> (World, QueuedMailer, RecordingAudit) {
    let capture = Arc::new(Capture::default());
    let switch = Arc::new(Switch(Mutex::new(capture.clone())));
    let w = world(switch.clone());
    register(&w, &Inbox::Captured(&capture), email, "hanako.kenpo").await;
    let smtp = SmtpMailer::from_url(url, &profile()).unwrap();
    let queue_audit = RecordingAudit::new();
    let queue = QueuedMailer::start(
        Arc::new(smtp),
        Arc::new(queue_audit.clone()),
        Arc::new(w.clock.clone()) as Arc<dyn Clock>,
        fast_queue(),
    )
    .unwrap();
    *switch.0.lock().unwrap() = Arc::new(queue.clone());
    (w, queue, queue_audit)
}

/// What every failing-server journey checks: the member's step succeeded at once, the
/// queue retried (or not) and reported exactly one failure per mail, and 暗証キー再送
/// works after the cooldown.
async fn login_survives_failing_smtp(email: &str, url: &str) -> (World, RecordingAudit) {
    let (w, queue, queue_audit) = account_then_smtp(email, url).await;
    let started = std::time::Instant::now();
    let challenge = w
        .portal
        .start_login(
            "hanako.kenpo",
            &kenpo_auth::domain::Password::new(PASSWORD).unwrap(),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request waited on SMTP"
    );
    queue.flush().await;
    let events = queue_audit.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, AuditKind::MailFailed);
    assert_eq!(events[0].detail.as_deref(), Some("login_otp"));
    let masked = EmailAddress::parse(email).unwrap().masked();
    assert_eq!(events[0].email_masked.as_deref(), Some(masked.as_str()));
    assert!(!format!("{events:?}").contains(email));
    // The queue took the mail, so the portal itself saw no failure.
    assert_eq!(w.audit.count(AuditKind::MailFailed), 0);

    // 暗証キー再送: refused inside the 60 s cooldown, accepted after it.
    assert!(w.portal.resend_otp(&challenge.challenge).await.is_err());
    w.clock.advance(time::Duration::seconds(61));
    w.portal.resend_otp(&challenge.challenge).await.unwrap();
    queue.flush().await;
    assert_eq!(queue_audit.count(AuditKind::MailFailed), 2);
    queue.shutdown().await;
    (w, queue_audit)
}

// Nothing listens: connection refused, retried, then one audit event per mail.
#[tokio::test(flavor = "multi_thread")]
async fn journey_login_with_smtp_connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    login_survives_failing_smtp("hanako@example.jp", &format!("smtp://127.0.0.1:{port}")).await;
}

// The server answers 451 for this recipient: three tries per mail, one audit event.
#[tokio::test(flavor = "multi_thread")]
async fn journey_login_with_smtp_4xx() {
    let sink = Sink::plain();
    let email = "temp-fail.hanako@example.jp";
    login_survives_failing_smtp(email, &format!("smtp://127.0.0.1:{}", sink.port)).await;
    let tries = sink.log().iter().filter(|l| l.starts_with("451 ")).count();
    assert_eq!(tries, 2 * 3, "{:?}", sink.log());
    assert!(sink.mails().is_empty());
}

// The server answers 550 for this recipient: one try per mail, one audit event.
#[tokio::test(flavor = "multi_thread")]
async fn journey_login_with_smtp_5xx() {
    let sink = Sink::plain();
    let email = "perm-fail.hanako@example.jp";
    login_survives_failing_smtp(email, &format!("smtp://127.0.0.1:{}", sink.port)).await;
    let tries = sink.log().iter().filter(|l| l.starts_with("550 ")).count();
    assert_eq!(tries, 2, "{:?}", sink.log());
}

/// #14, measured before as lost mail: the SMTP server is down for longer than the old
/// queue's 15 s of retries, and the portal process is restarted meanwhile. Every mail a
/// member's step committed arrives exactly once when the server is back, delivered by the
/// new process's worker from the durable outbox (SQLite file).
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn outbox_survives_an_smtp_outage_and_a_restart() {
    let port = sink::free_port();
    let url = format!("smtp://127.0.0.1:{port}");
    let dir = sink::temp_dir("outbox");
    let db = dir.join("portal.db");
    let db = db.to_str().unwrap().to_owned();
    let clock = ManualClock::new(time::macros::datetime!(2025-11-25 01:00:00 UTC));
    let portal_over_file = |store: kenpo_auth::store::SqliteStore| {
        let smtp = SmtpMailer::from_url(&url, &profile()).unwrap();
        Portal::builder()
            .store(store)
            .mailer(smtp)
            .directory(MemoryDirectory::new())
            .clock(Arc::new(clock.clone()))
            .insurer(profile())
            .secret_key(1, vec![7u8; 32])
            .build()
            .unwrap()
    };
    let members = ["ichiro@example.jp", "jiro@example.jp", "saburo@example.jp"];
    let mut receipts = Vec::new();
    {
        // The first process: the server is down for every try.
        let store = kenpo_auth::store::SqliteStore::open(&db).await.unwrap();
        let portal = portal_over_file(store);
        for m in members {
            receipts.push(portal.start_registration(m).await.unwrap().receipt);
        }
        let worker = portal.delivery_worker();
        for _ in 0..5 {
            clock.advance(time::Duration::seconds(5));
            let pass = worker.run_once().await.unwrap();
            assert_eq!((pass.delivered, pass.given_up), (0, 0), "{pass:?}");
        }
        for r in &receipts {
            let status = portal.mail_status(r).await.unwrap();
            assert!(
                matches!(status, Some(MailStatus::Sending { .. })),
                "{status:?}"
            );
        }
        // The process stops here (its portal and store dropped).
    }
    // 25 s of outage so far; the server comes back on its port, and a new process
    // starts over the same database file.
    let sink = Sink::start(SinkOptions {
        port: Some(port),
        ..SinkOptions::default()
    });
    let store = kenpo_auth::store::SqliteStore::open(&db).await.unwrap();
    let portal = portal_over_file(store);
    clock.advance(time::Duration::seconds(61));
    let worker = portal.delivery_worker();
    let pass = worker.run_once().await.unwrap();
    assert_eq!(pass.delivered, 3, "{pass:?}");
    let mails = sink.wait_for(3);
    let mut to: Vec<_> = mails
        .iter()
        .map(|m| m.header("X-Sink-Rcpt-To").unwrap().to_owned())
        .collect();
    to.sort();
    assert_eq!(
        to,
        ["ichiro@example.jp", "jiro@example.jp", "saburo@example.jp"]
    );
    for m in &mails {
        assert_eq!(m.header("Subject"), Some("利用登録手続きのご案内"));
        assert_eq!(link_token(&m.body).len(), 43, "a live link 1");
    }
    for r in &receipts {
        let status = portal.mail_status(r).await.unwrap();
        assert!(
            matches!(status, Some(MailStatus::Sent { .. })),
            "{status:?}"
        );
    }
    // Later passes find nothing: each mail arrived once.
    clock.advance(time::Duration::minutes(5));
    assert_eq!(worker.run_once().await.unwrap().claimed, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.mails().len(), 3, "no mail twice");
    let _ = std::fs::remove_dir_all(dir);
}
