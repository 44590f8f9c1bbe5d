//! Adapters for tests, demos and the walkthrough: a clock you move by hand, a roster in
//! memory, an audit sink that keeps what it is told.
//!
//! They are small and dependency-free, so they are always compiled; nothing in them is
//! meant for production.
//!
//! [`fixtures`] holds the one copy of the sample insurer, test policy, keys, roster and
//! typed input that tests, examples and benchmarks share. It is always compiled, like
//! the adapters here, because the crate's own unit tests and the integration tests that
//! plain `cargo test` runs use it.
//!
//! [`FaultyStore`] and [`FaultyMailer`] wrap any store or mailer and fail the calls a
//! test chooses (module [`faults`]); the typed accessors of
//! [`RecordingMailer`](crate::mail::RecordingMailer) read the links and codes a member
//! would copy from the mails.
//!
//! With the `testkit` feature, [`conformance`] holds the store conformance suite.
//!
#![cfg_attr(not(feature = "testkit"), doc = "[`conformance`]: crate#features")]

#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod conformance;
pub mod faults;
pub mod fixtures;

pub use faults::{
    FaultyMailer, FaultyStore, InjectedFault, MailFault, StoreCall, StoreFault, When,
};

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::domain::CardNumber;
use crate::ports::{
    AuditEvent, AuditKind, AuditSink, Clock, DirectoryError, MemberDirectory, MemberId,
    MemberRecord,
};

/// A clock that only moves when told: for boundary tests at `expires_at - 1s` and
/// `expires_at`. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now = now.saturating_add(by);
    }

    /// Sets the clock.
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }

    /// The time the clock shows — what the portal reads through [`Clock::now`], callable
    /// without importing the port trait (for `expires_at - clock.now()` in a test).
    pub fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        ManualClock::now(self)
    }
}

/// An insurer roster held in memory. Clones share the same members.
#[derive(Clone, Debug, Default)]
pub struct MemoryDirectory {
    members: Arc<Mutex<Vec<MemberRecord>>>,
}

impl MemoryDirectory {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces, by member ID) a roster entry.
    pub fn insert(&self, record: MemberRecord) {
        let mut m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|r| r.member_id != record.member_id);
        m.push(record);
    }

    /// Marks a member as no longer insured (資格喪失).
    pub fn set_eligible(&self, id: &MemberId, eligible: bool) {
        let mut m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        for r in m.iter_mut().filter(|r| r.member_id == *id) {
            r.eligible = eligible;
        }
    }
}

#[async_trait]
impl MemberDirectory for MemoryDirectory {
    async fn find(&self, card: &CardNumber) -> Result<Option<MemberRecord>, DirectoryError> {
        let m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        Ok(m.iter().find(|r| r.card_number == *card).cloned())
    }

    async fn get(&self, id: &MemberId) -> Result<Option<MemberRecord>, DirectoryError> {
        let m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        Ok(m.iter().find(|r| r.member_id == *id).cloned())
    }
}

/// An audit sink that keeps every event, for tests. Clones share the same list.
#[derive(Clone, Debug, Default)]
pub struct RecordingAudit {
    events: Arc<Mutex<Vec<AuditEvent>>>,
}

impl RecordingAudit {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many events of `kind` so far.
    pub fn count(&self, kind: AuditKind) -> usize {
        self.events().iter().filter(|e| e.kind == kind).count()
    }
}

impl AuditSink for RecordingAudit {
    fn record(&self, event: AuditEvent) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event);
    }
}
