//! The `AuditSink` port: security events (SEC-44).

use crate::model::AuditEvent;

/// Receives security events. Must not block: hand the event to a queue or a log.
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
