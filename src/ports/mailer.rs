//! The `Mailer` port.

use async_trait::async_trait;

use crate::error::BoxError;
use crate::mail::OutgoingMail;

/// A failure to hand a mail over (its transport's error is the source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// The transport refused or failed; trying again later may work.
    #[error("mail transport failed (transient)")]
    Transient(#[source] BoxError),
    /// The transport refused the mail for good (bad address, policy).
    #[error("mail transport refused the mail (permanent)")]
    Permanent(#[source] BoxError),
}

/// Sends mail.
///
/// The portal commits each mail to the store's outbox together with the step that
/// caused it, then calls `send`; a failed send stays in the outbox and a
/// [`DeliveryWorker`](crate::mail::DeliveryWorker) calls `send` again while the mail is
/// useful. So `send` may be called more than once for one mail (after a failure, or when
/// a server died between sending and recording); it is never skipped.
///
/// # Implementing this port
///
/// Hand [`OutgoingMail::rendered`] (subject and plain-text body, UTF-8) to your mail
/// system, addressed to [`OutgoingMail::to`]'s
/// [`for_sending`](crate::domain::EmailAddress::for_sending) spelling. Answer
/// [`MailError::Transient`] when trying later may work (the outbox tries again, with
/// backoff) and [`MailError::Permanent`] when the mail was refused for good (it is given
/// up, and the member's mail allowance given back); keep your transport's error as the source. The body holds a link or a 暗証キー:
/// never log it (SEC-04, SEC-39). Use `#[kenpo_auth::async_trait]` (re-exported) on the
/// `impl`:
///
/// ```
/// use kenpo_auth::mail::OutgoingMail;
/// use kenpo_auth::ports::{MailError, Mailer};
/// use tokio::sync::mpsc;
///
/// /// What the host's own mail service takes.
/// struct Letter {
///     to: String,
///     subject: String,
///     body: String,
/// }
///
/// /// Hands each mail to the host's mail service without waiting for delivery.
/// struct ToMailService(mpsc::Sender<Letter>);
///
/// #[kenpo_auth::async_trait]
/// impl Mailer for ToMailService {
///     async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
///         let letter = Letter {
///             to: mail.to.for_sending().to_owned(),
///             subject: mail.rendered.subject.clone(),
///             body: mail.rendered.body.clone(),
///         };
///         // Full or stopped: either way, trying again later may work.
///         self.0
///             .try_send(letter)
///             .map_err(|e| MailError::Transient(e.to_string().into()))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use kenpo_auth::store::MemoryStore;
/// # use kenpo_auth::testkit::fixtures;
/// let (tx, mut service) = mpsc::channel(100);
/// let portal = fixtures::portal_builder() // your `Portal::builder()` and insurer
///     .store(MemoryStore::new())
///     .mailer(ToMailService(tx))
///     .directory(fixtures::sample_roster())
///     .build()?;
/// portal.start_registration("taro.yamada@example.jp").await?;
/// let letter = service.recv().await.ok_or("a letter")?;
/// assert_eq!(letter.to, "taro.yamada@example.jp");
/// assert!(letter.subject.contains("利用登録手続きのご案内"));
/// # Ok(())
/// # }
/// ```
///
/// Shipped mailers: [`OutboxMailer`](crate::mail::OutboxMailer) (`.eml` files, for
/// development), [`RecordingMailer`](crate::mail::RecordingMailer) (tests), and with
/// features `SmtpMailer` (`smtp`) and `QueuedMailer` (`queue`, retries off the request
/// path around any mailer). [`FaultyMailer`](crate::testkit::FaultyMailer) fails on cue.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends (or queues) one mail.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}
