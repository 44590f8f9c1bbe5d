//! `QueuedMailer`: delivery off the request path (feature `queue`, implied by `smtp`).
//!
//! The portal awaits [`Mailer::send`] inside the member's request. Wrapped in a
//! [`QueuedMailer`], that call only puts the mail in a bounded in-memory queue and
//! returns; background workers hand it to the real mailer, retry transient failures with
//! exponential backoff, and report the ones that finally fail to the [`AuditSink`]
//! (`AuditKind::MailFailed`, masked address, kind of mail — never its content).
//!
//! # Superseded by the outbox
//!
//! Every store now keeps a step's mails in its outbox until they are delivered, and a
//! [`DeliveryWorker`](crate::mail::DeliveryWorker) retries what failed, durably and
//! across servers ([`crate::mail::delivery`]). Most hosts need no `QueuedMailer`: give
//! the portal the `SmtpMailer` itself. This queue stays for a host that wants
//! [`Mailer::send`] to return before the SMTP conversation ends; the outbox then records
//! a mail as delivered when the queue took it, and what the queue holds when the process
//! dies is lost (call [`QueuedMailer::shutdown`] on a graceful stop).
//!

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::mail::OutgoingMail;
use crate::ports::{AuditEvent, AuditKind, AuditSink, Clock, MailError, Mailer};

/// How big the queue is, how many workers drain it and how failures are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Mails that may wait at once. When full, `send` fails at once with
    /// [`MailError::Transient`] (the portal audits it; the member can resend) instead of
    /// making the member's request wait.
    pub capacity: usize,
    /// Background workers, i.e. mails in flight at once.
    pub workers: usize,
    /// Tries per mail, the first included (at least 1). By default unbounded: a mail is
    /// retried for as long as it is useful — until the link or code it carries expires
    /// ([`MailMessage::useful_until`](crate::mail::MailMessage::useful_until)), or for
    /// [`Self::notice_patience`] when it carries nothing that expires.
    pub max_attempts: u32,
    /// How long a notice (a mail with nothing that expires) is retried after it was
    /// taken.
    pub notice_patience: Duration,
    /// Wait after the first transient failure; doubled after each further one.
    pub initial_backoff: Duration,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
}

impl Default for QueueConfig {
    /// 1000 mails, 2 workers; retries 1 s, 2 s, 4 s … (at most 60 s apart) for as long
    /// as the mail is useful: a 暗証キー for its 10 minutes, a link for its lifetime, a
    /// notice for an hour. (Before, five tries — about 15 s — and an SMTP outage of 40 s
    /// lost links and codes.)
    fn default() -> Self {
        QueueConfig {
            capacity: 1000,
            workers: 2,
            max_attempts: u32::MAX,
            notice_patience: Duration::from_secs(3600),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl QueueConfig {
    /// Sets [`Self::capacity`] (at least 1).
    #[must_use]
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Sets [`Self::workers`] (at least 1).
    #[must_use]
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Sets [`Self::max_attempts`] (at least 1).
    #[must_use]
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets [`Self::notice_patience`].
    #[must_use]
    pub fn notice_patience(mut self, patience: Duration) -> Self {
        self.notice_patience = patience;
        self
    }

    /// Sets the first and the longest wait between tries.
    #[must_use]
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// The wait after the `failures`-th consecutive transient failure (1-based).
    pub fn backoff_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// Why a [`QueuedMailer`] refused a mail or could not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue is full: the mail was not taken.
    #[error("mail queue is full")]
    Full,
    /// The queue was shut down.
    #[error("mail queue is shut down")]
    Closed,
    /// [`QueuedMailer::start`] was called outside a tokio runtime.
    #[error("QueuedMailer::start needs a tokio runtime")]
    NoRuntime,
}

impl QueueError {
    /// Stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::Full => "mail_queue.full",
            QueueError::Closed => "mail_queue.closed",
            QueueError::NoRuntime => "mail_queue.no_runtime",
        }
    }

    /// A text for operators (members never see mail errors).
    pub fn message(&self, lang: crate::lang::Lang) -> std::borrow::Cow<'static, str> {
        match lang {
            crate::lang::Lang::En => self.to_string().into(),
            _ => match self {
                QueueError::Full => "メール送信待ちの列が満杯です。".into(),
                QueueError::Closed => "メール送信待ちの列は停止しています。".into(),
                QueueError::NoRuntime => "tokio ランタイムの外では開始できません。".into(),
            },
        }
    }
}

/// What the workers share.
struct Worker {
    mailer: Arc<dyn Mailer>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    /// Mails taken and not yet finished (queued, being sent or waiting for a retry).
    pending: watch::Sender<usize>,
}

impl Worker {
    async fn run(self: Arc<Self>, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<OutgoingMail>>>) {
        loop {
            let next = rx.lock().await.recv().await;
            let Some(mail) = next else { break };
            self.deliver(mail).await;
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    /// Tries until the mail is taken, refused for good, out of attempts, or no longer
    /// useful (its link or code expired; a notice's patience ran out).
    async fn deliver(&self, mail: OutgoingMail) {
        let give_up_at = mail.message.useful_until().unwrap_or_else(|| {
            self.clock.now().saturating_add(
                time::Duration::try_from(self.config.notice_patience)
                    .unwrap_or(time::Duration::HOUR),
            )
        });
        let mail = Arc::new(mail);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // Each try runs as its own task, so a panicking mailer fails this mail only,
            // not the worker (which would stall `flush` forever).
            let (mailer, m) = (Arc::clone(&self.mailer), Arc::clone(&mail));
            let outcome = tokio::spawn(async move { mailer.send(&m).await }).await;
            let (error, transient) = match outcome {
                Ok(Ok(())) => return,
                Ok(Err(MailError::Transient(e))) => (e.to_string(), true),
                Ok(Err(e)) => (e.to_string(), false),
                Err(_) => ("mailer task panicked or was cancelled".to_owned(), false),
            };
            let wait = self.config.backoff_after(attempt);
            let next_try = self
                .clock
                .now()
                .saturating_add(time::Duration::try_from(wait).unwrap_or(time::Duration::MAX));
            if transient && attempt < self.config.max_attempts && next_try < give_up_at {
                tokio::time::sleep(wait).await;
                continue;
            }
            let kind = mail.message.kind();
            let to = mail.to.masked();
            tracing::warn!(
                target: "kenpo_auth::mail",
                kind,
                to = %to,
                attempts = attempt,
                transient,
                error = %error,
                "mail not delivered"
            );
            self.audit.record(
                AuditEvent::new(AuditKind::MailFailed, self.clock.now())
                    .email(to)
                    .detail(kind),
            );
            return;
        }
    }
}

/// A [`Mailer`] that queues and returns at once; background workers deliver through the
/// wrapped mailer. See the [module docs](self) for what a crash loses.
///
/// Cheap to clone; clones share the queue.
#[derive(Clone)]
pub struct QueuedMailer {
    shared: Arc<Shared>,
}

struct Shared {
    sender: Mutex<Option<mpsc::Sender<OutgoingMail>>>,
    pending: watch::Sender<usize>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for QueuedMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedMailer")
            .field("pending", &self.pending())
            .finish_non_exhaustive()
    }
}

impl QueuedMailer {
    /// Starts the workers on the current tokio runtime. `clock` dates the audit events.
    pub fn start(
        mailer: Arc<dyn Mailer>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
        config: QueueConfig,
    ) -> Result<Self, QueueError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| QueueError::NoRuntime)?;
        let config = QueueConfig {
            capacity: config.capacity.max(1),
            workers: config.workers.max(1),
            max_attempts: config.max_attempts.max(1),
            ..config
        };
        let (tx, rx) = mpsc::channel(config.capacity);
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let (pending, _) = watch::channel(0usize);
        let worker = Arc::new(Worker {
            mailer,
            audit,
            clock,
            config: config.clone(),
            pending: pending.clone(),
        });
        let workers = (0..config.workers)
            .map(|_| runtime.spawn(Arc::clone(&worker).run(Arc::clone(&rx))))
            .collect();
        Ok(QueuedMailer {
            shared: Arc::new(Shared {
                sender: Mutex::new(Some(tx)),
                pending,
                workers: Mutex::new(workers),
            }),
        })
    }

    /// Mails taken and not yet finished (queued, in flight or waiting for a retry).
    pub fn pending(&self) -> usize {
        *self.shared.pending.borrow()
    }

    /// Waits until every mail taken so far is finished: delivered, or given up on and
    /// audited. Mail keeps being accepted meanwhile.
    pub async fn flush(&self) {
        let mut rx = self.shared.pending.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Stops taking mail ([`QueueError::Closed`]), then waits until the workers have
    /// finished everything already queued, retries included. Wrap it in
    /// `tokio::time::timeout` to bound a stop.
    pub async fn shutdown(&self) {
        let sender = self
            .shared
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(sender);
        let workers: Vec<_> = self
            .shared
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for w in workers {
            let _ = w.await;
        }
    }
}

#[async_trait]
impl Mailer for QueuedMailer {
    /// Queues a copy of the mail. Never waits: a full or stopped queue is
    /// [`MailError::Transient`] at once.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let guard = self.shared.sender.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Err(MailError::Transient(Box::new(QueueError::Closed)));
        };
        self.shared.pending.send_modify(|n| *n += 1);
        match tx.try_send(mail.clone()) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.shared
                    .pending
                    .send_modify(|n| *n = n.saturating_sub(1));
                let reason = match e {
                    mpsc::error::TrySendError::Full(_) => QueueError::Full,
                    mpsc::error::TrySendError::Closed(_) => QueueError::Closed,
                };
                Err(MailError::Transient(Box::new(reason)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EmailAddress;
    use crate::lang::Lang;
    use crate::mail::RecordingMailer;
    use crate::mail::{MailMessage, RenderedMail};
    use crate::ports::SystemClock;
    use crate::testkit::{FaultyMailer, MailFault, RecordingAudit, When};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The transport under the queue: it records what it delivered and fails the sends a
    /// test chooses (`FaultyMailer`), counting every attempt.
    fn transport() -> (FaultyMailer<RecordingMailer>, RecordingMailer) {
        let delivered = RecordingMailer::new();
        (FaultyMailer::new(delivered.clone()), delivered)
    }

    /// A transport that waits for a permit before each send, so its worker stays busy
    /// while a test fills the queue.
    struct Gated {
        gate: Arc<tokio::sync::Semaphore>,
        delivered: RecordingMailer,
    }

    #[async_trait]
    impl Mailer for Gated {
        async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
            let _permit = self.gate.acquire().await.unwrap();
            self.delivered.send(mail).await
        }
    }

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: EmailAddress::parse("taro@example.jp").unwrap(),
            lang: Lang::Ja,
            message: MailMessage::PasswordChanged {
                at: time::OffsetDateTime::UNIX_EPOCH,
            },
            rendered: RenderedMail {
                subject: "件名".into(),
                body: "本文 secret-body".into(),
            },
        }
    }

    /// A 暗証キー mail whose code expires `expires_in` from now.
    fn otp_mail(expires_in: time::Duration) -> OutgoingMail {
        let mut m = mail();
        m.message = MailMessage::LoginOtp {
            code: "123456".parse().unwrap(),
            expires_at: time::OffsetDateTime::now_utc() + expires_in,
        };
        m
    }

    /// The default (unbounded tries) with millisecond backoff.
    fn patient() -> QueueConfig {
        QueueConfig::default().backoff(Duration::from_millis(1), Duration::from_millis(2))
    }

    fn fast() -> QueueConfig {
        QueueConfig::default()
            .max_attempts(3)
            .backoff(Duration::from_millis(1), Duration::from_millis(4))
    }

    fn start(m: Arc<dyn Mailer>, audit: &RecordingAudit, c: QueueConfig) -> QueuedMailer {
        QueuedMailer::start(m, Arc::new(audit.clone()), Arc::new(SystemClock), c).unwrap()
    }

    /// Sends `mail` through a queue over a transport that fails as `when` and `fault` say,
    /// and waits until the queue is done with it: how many sends the transport saw, how
    /// many mails it delivered, and the audit.
    async fn send_one(
        (when, fault): (When, MailFault),
        config: QueueConfig,
        mail: OutgoingMail,
    ) -> (usize, usize, RecordingAudit) {
        let (m, delivered) = transport();
        m.fail(when, fault);
        let audit = RecordingAudit::new();
        let q = start(Arc::new(m.clone()), &audit, config);
        q.send(&mail).await.unwrap();
        q.flush().await;
        (m.attempts(), delivered.count(), audit)
    }

    // Transient failures are retried (up to max_attempts; with no maximum, while the mail
    // is useful), a permanent one is not; a mail that is given up on is audited once.
    #[tokio::test]
    async fn queue_retries_while_it_is_worth_it() {
        use MailFault::{Permanent, Transient};
        let useful = || otp_mail(time::Duration::minutes(10));
        let expired = || otp_mail(-time::Duration::seconds(1));
        for (fails, config, mail, attempts, delivered, failed) in [
            ((When::Always, Transient), fast(), mail(), 3, 0, 1),
            ((When::Next(1), Transient), fast(), mail(), 2, 1, 0),
            ((When::Always, Permanent), fast(), mail(), 1, 0, 1),
            // #14: a long outage does not lose a mail that is still useful (the old default
            // of five tries, about 15 s, is gone): twelve failures, then delivered.
            ((When::Next(12), Transient), patient(), useful(), 13, 1, 0),
            // #14: a mail whose code has expired is not retried: it would only confuse.
            ((When::Always, Transient), patient(), expired(), 1, 0, 1),
        ] {
            let case = format!("{fails:?} {:?}", mail.message.kind());
            let (tried, got, audit) = send_one(fails, config, mail).await;
            assert_eq!((tried, got), (attempts, delivered), "{case}");
            let events = audit.events();
            assert_eq!(events.len(), failed, "{case}");
            assert!(events.iter().all(|e| e.kind == AuditKind::MailFailed));
        }
    }

    // The audit of a mail given up on names the masked address and the kind, never the
    // content.
    #[tokio::test]
    async fn queue_audits_a_failed_mail_without_its_content() {
        let (_, _, audit) = send_one((When::Always, MailFault::Transient), fast(), mail()).await;
        let events = audit.events();
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].email_masked.as_deref(),
            Some(&*mail().to.masked())
        );
        assert_eq!(events[0].detail.as_deref(), Some("password_changed"));
        let shown = format!("{events:?}");
        assert!(!shown.contains("secret-body") && !shown.contains("taro@"));
    }

    // A full queue answers Transient at once: the member's request never waits.
    #[tokio::test]
    async fn queue_full_is_transient_immediately() {
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let delivered = RecordingMailer::new();
        let m = Gated {
            gate: Arc::clone(&gate),
            delivered: delivered.clone(),
        };
        let audit = RecordingAudit::new();
        let q = start(Arc::new(m), &audit, fast().capacity(2).workers(1));
        // One in the worker's hands (blocked on the gate), two in the queue.
        q.send(&mail()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while q.shared.sender.lock().unwrap().as_ref().unwrap().capacity() < 2 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap();
        q.send(&mail()).await.unwrap();
        q.send(&mail()).await.unwrap();
        let started = std::time::Instant::now();
        let full = q.send(&mail()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(100));
        assert!(matches!(full, MailError::Transient(_)));
        assert_eq!(q.pending(), 3);
        gate.add_permits(100);
        q.flush().await;
        assert_eq!(delivered.count(), 3);
        assert_eq!(q.pending(), 0);
    }

    // Shutdown drains what was queued, then refuses new mail.
    #[tokio::test]
    async fn queue_shutdown_drains_then_refuses() {
        let (m, delivered) = transport();
        m.fail(When::Nth(1), MailFault::Transient);
        let audit = RecordingAudit::new();
        let q = start(Arc::new(m.clone()), &audit, fast());
        for _ in 0..5 {
            q.send(&mail()).await.unwrap();
        }
        q.shutdown().await;
        assert_eq!(m.attempts(), 6, "one retry");
        assert_eq!(delivered.count(), 5);
        assert_eq!(q.pending(), 0);
        assert!(matches!(
            q.send(&mail()).await,
            Err(MailError::Transient(_))
        ));
        assert!(audit.events().is_empty());
    }

    // A mailer that panics fails that mail (audited), and the worker lives on.
    #[tokio::test]
    async fn queue_survives_a_panicking_mailer() {
        struct Panics(AtomicUsize);
        #[async_trait]
        impl Mailer for Panics {
            async fn send(&self, _: &OutgoingMail) -> Result<(), MailError> {
                if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("boom");
                }
                Ok(())
            }
        }
        let audit = RecordingAudit::new();
        let q = QueuedMailer::start(
            Arc::new(Panics(AtomicUsize::new(0))),
            Arc::new(audit.clone()),
            Arc::new(SystemClock),
            fast().workers(1),
        )
        .unwrap();
        q.send(&mail()).await.unwrap();
        q.send(&mail()).await.unwrap();
        q.flush().await;
        assert_eq!(audit.count(AuditKind::MailFailed), 1);
    }

    // Backoff doubles from the initial wait and stops at the maximum.
    #[test]
    fn queue_backoff_doubles_up_to_the_cap() {
        let c = QueueConfig::default().backoff(Duration::from_secs(1), Duration::from_secs(10));
        let waits: Vec<u64> = (1..=6).map(|n| c.backoff_after(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(c.backoff_after(u32::MAX), Duration::from_secs(10));
    }

    // Starting outside a runtime is an error, not a panic.
    #[test]
    fn queue_start_outside_runtime_is_an_error() {
        let e = QueuedMailer::start(
            Arc::new(RecordingMailer::new()),
            Arc::new(RecordingAudit::new()),
            Arc::new(SystemClock),
            QueueConfig::default(),
        )
        .unwrap_err();
        assert_eq!(e, QueueError::NoRuntime);
    }
}
