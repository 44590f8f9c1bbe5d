//! The `AuditSink` port: security events (SEC-44).

use crate::model::AuditEvent;

/// Receives security events. Must not block: hand the event to a queue or a log.
///
/// # Implementing this port
///
/// [`TracingAudit`] (the default) writes each event to `tracing`; write your own to send
/// them to a SIEM or an audit table. `record` is synchronous and runs inside the
/// member's request, after the step committed: hand the event to a channel and let a task
/// of yours write it. An [`AuditEvent`] carries pseudonymous identifiers only (account,
/// flow and member IDs, a masked address, a rejection code) — never a secret, a full
/// address or a card number (SEC-44, SEC-45) — and it is `Serialize`, so one JSON line per
/// event is a fine format.
///
/// ```
/// use kenpo_auth::ports::{AuditEvent, AuditKind, AuditSink};
/// use tokio::sync::mpsc;
///
/// /// Hands every event to a task that writes the host's audit table.
/// struct ToAuditTable(mpsc::UnboundedSender<AuditEvent>);
///
/// impl AuditSink for ToAuditTable {
///     fn record(&self, event: AuditEvent) {
///         // Never blocks. It fails only once the writer task has stopped, which that
///         // task reports itself.
///         let _ = self.0.send(event);
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use std::sync::Arc;
/// # use kenpo_auth::mail::RecordingMailer;
/// # use kenpo_auth::store::MemoryStore;
/// # use kenpo_auth::testkit::fixtures;
/// let (tx, mut table) = mpsc::unbounded_channel();
/// let portal = fixtures::portal_builder() // your `Portal::builder()` and insurer
///     .store(MemoryStore::new())
///     .mailer(RecordingMailer::new())
///     .directory(fixtures::sample_roster())
///     .audit(Arc::new(ToAuditTable(tx)))
///     .build()?;
/// portal.start_registration("taro.yamada@example.jp").await?;
/// let event = table.recv().await.ok_or("an event")?;
/// assert_eq!(event.kind, AuditKind::RegistrationStarted);
/// assert_eq!(event.email_masked.as_deref(), Some("t***@example.jp"));
/// # Ok(())
/// # }
/// ```
pub trait AuditSink: Send + Sync {
    /// Records one event.
    fn record(&self, event: AuditEvent);
}

/// Writes events to `tracing` at INFO level (target `kenpo_auth::audit`). The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingAudit;

impl AuditSink for TracingAudit {
    fn record(&self, e: AuditEvent) {
        tracing::info!(
            target: "kenpo_auth::audit",
            kind = ?e.kind,
            account = e.account.as_ref().map(|a| a.as_str()),
            flow = e.flow.as_ref().map(|f| f.as_str()),
            member = e.member.as_ref().map(|m| m.as_str()),
            email = e.email_masked.as_deref(),
            detail = e.detail.as_deref(),
            "security event"
        );
    }
}
