//! Ports: the traits a host implements to plug in its database, mail system, roster,
//! clock and audit log. All are `Send + Sync` and object-safe, so a host can hold them as
//! `Arc<dyn …>` and choose adapters at run time.

pub mod audit;
pub mod clock;
pub mod directory;
pub mod mailer;
pub mod store;

pub use audit::{AuditEvent, AuditKind, AuditSink, TracingAudit};
pub use clock::{Clock, SystemClock};
pub use directory::{DirectoryError, MemberDirectory, MemberId, MemberRecord, Relation};
pub use mailer::{MailError, Mailer};
pub use store::{
    Account, AccountId, AccountLoad, AccountLookup, AccountStatus, AccountWrite, Commit,
    CommitOutcome, Counter, CounterWrite, FlowId, FlowRecord, FlowWrite, Load, Loaded,
    SecurityStamp, Store, StoreError, Version, Versioned,
};
