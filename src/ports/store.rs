//! The `Store` port: where flows, accounts and throttle counters live.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{EmailAddress, LoginId};
use crate::error::BoxError;
pub use crate::flow::FlowRecord;
use crate::model::{Account, AccountId, Counter, MemberId, Version, Versioned};
use crate::token::TokenDigest;

/// How to find an account.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AccountLookup {
    /// By its identifier.
    Id(AccountId),
    /// By login ID (canonical form).
    LoginId(LoginId),
    /// By e-mail address (canonical form).
    Email(EmailAddress),
    /// By roster member.
    Member(MemberId),
}

/// A write to one flow inside a [`Commit`].
#[derive(Clone, Debug)]
pub struct FlowWrite {
    /// `None` to insert a new flow; `Some(v)` to replace the flow read at version `v`.
    pub expected: Option<Version>,
    /// The flow's new content.
    pub record: FlowRecord,
}

/// A write to one account inside a [`Commit`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AccountWrite {
    /// Create the account: fails with a uniqueness outcome if its login ID, e-mail or
    /// member is taken.
    Create(Account),
    /// Replace the account read at `expected`.
    Update {
        /// Version read.
        expected: Version,
        /// New content (uniqueness re-checked on login ID and e-mail).
        account: Account,
    },
}

/// A write to one counter inside a [`Commit`].
#[derive(Clone, Debug)]
pub struct CounterWrite {
    /// `None` to create the counter; `Some(v)` to replace the one read at version `v`.
    pub expected: Option<Version>,
    /// New content.
    pub counter: Counter,
}

/// Everything one member action writes, committed all at once or not at all.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// Flows to insert or replace.
    pub flows: Vec<FlowWrite>,
    /// Accounts to create or replace.
    pub accounts: Vec<AccountWrite>,
    /// Counters to create or replace.
    pub counters: Vec<CounterWrite>,
}

impl Commit {
    /// Whether the commit writes nothing.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty() && self.accounts.is_empty() && self.counters.is_empty()
    }
}

/// What happened to a [`Commit`]. Anything but `Committed` means nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommitOutcome {
    /// Every write took effect.
    Committed,
    /// A record was changed (or created) by someone else since it was read: reload and
    /// decide again.
    Conflict,
    /// Another account has this login ID.
    LoginIdTaken,
    /// Another account has this e-mail address (canonical form).
    EmailTaken,
    /// This member already has an account.
    MemberTaken,
}

/// A failure of the store's backend. The backend's own error is the `source`, so hosts
/// can downcast it (e.g. to `sqlx::Error`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (connection lost, disk full …). The member can retry: when
    /// the failure came before `COMMIT`, nothing was written; when the connection was
    /// lost during `COMMIT`, the outcome is unknown, and a retry is still safe because it
    /// re-reads and compares versions again.
    #[error("store backend failed")]
    Backend(#[source] BoxError),
    /// A stored record could not be read back (corruption or an incompatible version).
    #[error("stored record is malformed")]
    Corrupt(#[source] BoxError),
}

/// Persistence for flows, accounts and counters.
///
/// # What an implementation must guarantee
///
/// The conformance suite (`testkit` feature) checks each of these on every store:
///
/// - **Compare-and-set.** [`commit`](Store::commit) applies all its writes or none. A
///   write naming version `v` succeeds only if the record is still at `v`; an insert
///   succeeds only if no record with that identifier (or, for flows, any of its lookup
///   keys) exists. Two requests racing on one link, key or 暗証キー therefore get
///   exactly one `Committed`; the other gets `Conflict`, reloads, and sees the secret
///   already used. A store must never report `Committed` for a write it did not make,
///   nor apply part of a commit.
/// - **Uniqueness by constraint.** Creating or updating an account fails with
///   `LoginIdTaken`, `EmailTaken` or `MemberTaken` when another account holds the same
///   canonical login ID, canonical e-mail or member — decided inside the same atomic
///   step, never by a read followed by a write.
/// - **Lookups by digest only.** Flows are found by the [`TokenDigest`]s their state
///   names; the store never sees a plaintext secret.
/// - **Bounded purge.** [`purge_expired`](Store::purge_expired) removes at most `limit`
///   dead flows and counters per call.
/// - **One write per record.** A [`Commit`] names each flow, account and counter at most
///   once (the portal never does otherwise); what several writes to one record in one
///   commit mean is unspecified.
///
/// Attempt counters live inside the records, so "increment the counter before
/// comparing the secret" is the portal's job: it commits the incremented counter and
/// the comparison's outcome in one `commit`, and only reports the outcome once that
/// commit succeeded.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Store: Send + Sync {
    /// Finds the flow that names `key` among its lookup keys.
    async fn find_flow(
        &self,
        key: &TokenDigest,
    ) -> Result<Option<Versioned<FlowRecord>>, StoreError>;

    /// Every flow that belongs to `account` (open login challenges, reset links …), so
    /// that a new login or a password change can end them.
    async fn flows_of_account(
        &self,
        account: &AccountId,
    ) -> Result<Vec<Versioned<FlowRecord>>, StoreError>;

    /// Finds an account.
    async fn find_account(
        &self,
        by: AccountLookup,
    ) -> Result<Option<Versioned<Account>>, StoreError>;

    /// Reads a throttle counter.
    async fn load_counter(&self, key: &str) -> Result<Option<Versioned<Counter>>, StoreError>;

    /// Applies every write of `commit` atomically, or none (see the trait docs).
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError>;

    /// Removes up to `limit` flows whose [`FlowState::purge_after`](crate::flow::FlowState::purge_after) and counters whose
    /// `expires_at` is at or before `now`; returns how many were removed.
    async fn purge_expired(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError>;
}
