//! Ports: the traits a host implements to plug in its database, mail system, roster,
//! clock and audit log. All are `Send + Sync` and object-safe, so a host can hold them as
//! `Arc<dyn …>` and choose adapters at run time.

pub mod audit;
pub mod clock;
pub mod directory;
pub mod mailer;

pub use audit::{AuditSink, TracingAudit};
pub use clock::{Clock, SystemClock};
pub use directory::{DirectoryError, MemberDirectory};
pub use mailer::{MailError, Mailer};
// The store port lives with its adapters in `crate::store`; its names stay here too.
pub use crate::store::{
    AccountLoad, AccountLookup, AccountWrite, Commit, CommitOutcome, CounterWrite, FlowRecord,
    FlowWrite, Load, Loaded, MailWrite, Store, StoreError,
};

// The shared vocabulary, under the paths hosts already use.
pub use crate::model::{
    Account, AccountId, AccountStatus, AuditEvent, AuditKind, Counter, Delivery, FlowId, MailId,
    MemberId, MemberRecord, OutboxMail, Relation, SecurityStamp, Undeliverable, Version, Versioned,
};
