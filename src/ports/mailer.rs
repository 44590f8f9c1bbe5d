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
/// The portal persists its state before it calls `send`, so a failed send leaves a
/// state the member can resend from, never a lost one. A mailer should not block on the
/// network for long; wrap a slow transport in a queue.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends (or queues) one mail.
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
}
