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

/// Lower-case hex of `bytes` (constant-time, [`base16ct`]).
pub(crate) fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// The `N` bytes that `text` spells in hex — lower case, or either case when `mixed` —
/// or `None` for anything else (constant-time, [`base16ct`]).
pub(crate) fn unhex<const N: usize>(text: &str, mixed: bool) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    let decoded = if mixed {
        base16ct::mixed::decode(text, &mut out)
    } else {
        base16ct::lower::decode(text, &mut out)
    };
    (decoded.ok()?.len() == N).then_some(out)
}
