//! The vocabulary every layer shares: identifiers, the account record, roster entries,
//! versions and counters, and audit events.
//!
//! The pure core ([`crate::flow`]) and the ports ([`crate::ports`]) both build on this
//! module and on nothing of each other's: the core decides over these values, the ports
//! load and keep them. Each type is re-exported from [`crate::ports`] under its old path.

mod account;
mod audit;
mod factors;
mod ids;
mod member;
mod outbox;
mod record;

pub use account::{Account, AccountStatus, RecentLogin};
pub use audit::{AuditEvent, AuditKind};
pub use factors::{
    FactorKind, Factors, PasskeyFactor, RecoveryCodeSet, RecoveryCodeSlot, TotpFactor,
};
pub use ids::{AccountId, FlowId, SecurityStamp};
pub use member::{MemberId, MemberRecord, Relation};
pub use outbox::{Delivery, MailId, MalformedMailId, OutboxMail, Refund, Undeliverable};
pub use record::{Counter, CounterKey, Expect, Version, Versioned};

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}
