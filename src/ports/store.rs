//! The `Store` port: where flows, accounts and throttle counters live.

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{EmailAddress, LoginId, Nickname};
use crate::error::BoxError;
use crate::flow::FlowState;
use crate::password_hash::PasswordHashString;
use crate::ports::directory::MemberId;
use crate::token::TokenDigest;

/// Version of a stored record, for compare-and-set. A new record has version 1; every
/// committed change adds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(pub u64);

impl Version {
    /// The version a record gets when it is first written.
    pub const FIRST: Version = Version(1);

    /// The version after one more change.
    pub fn next(self) -> Version {
        Version(self.0 + 1)
    }
}

/// A record together with the version it was read at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned<T> {
    /// Version the record had when read; pass it back to [`Store::commit`].
    pub version: Version,
    /// The record.
    pub value: T,
}

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A fresh random identifier (128 bits, hex).
            pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
                let mut b = [0u8; 16];
                rng.fill_bytes(&mut b);
                $name(b.iter().map(|x| format!("{x:02x}")).collect())
            }

            /// Rebuilds an identifier read back from storage.
            pub fn from_stored(s: impl Into<String>) -> Self {
                $name(s.into())
            }

            /// The identifier's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

opaque_id!(
    /// Pseudonymous account identifier: random, carries no member data, safe for logs
    /// and audit events (SEC-44).
    AccountId
);
opaque_id!(
    /// Identifier of one flow (a registration, a login challenge, a reset). Internal to
    /// the store; members only ever hold tokens and handles.
    FlowId
);

/// Changes whenever the password, e-mail address or login ID changes. Hosts keep it in
/// their session and compare it ([`crate::Portal::check_security_stamp`]) to end other
/// sessions after such a change (SEC-34).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecurityStamp(String);

impl SecurityStamp {
    /// A fresh random stamp.
    pub fn generate<R: rand::CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        SecurityStamp(b.iter().map(|x| format!("{x:02x}")).collect())
    }

    /// The stamp's text, to keep in the host's session.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a stamp from the host's session.
    pub fn from_session(s: impl Into<String>) -> Self {
        SecurityStamp(s.into())
    }
}

impl fmt::Debug for SecurityStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecurityStamp(…)")
    }
}

/// Where an account is in its life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AccountStatus {
    /// Registered and usable.
    Active,
    /// Issued by the insurer (事前登録) with a temporary password that can only be used
    /// at R2' to choose the member's own credentials (SEC-41).
    Provisioned {
        /// When the temporary password stops working.
        temporary_expires_at: OffsetDateTime,
    },
    /// The member left the insurer (資格喪失): no login, no recovery.
    Disabled {
        /// When it was disabled.
        at: OffsetDateTime,
    },
}

/// One member's account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Account {
    /// Pseudonymous identifier.
    pub id: AccountId,
    /// The login ID (unique, compared in canonical form).
    pub login_id: LoginId,
    /// The registered address (unique on its canonical form, SEC-08). `None` only for a
    /// provisioned account that has not bound an address yet.
    pub email: Option<EmailAddress>,
    /// The roster member this account belongs to (unique: one account per member).
    pub member: MemberId,
    /// The nickname shown in the portal.
    pub nickname: Option<Nickname>,
    /// Argon2id PHC string of the password (or of the temporary password while
    /// provisioned).
    pub password_hash: PasswordHashString,
    /// See [`SecurityStamp`].
    pub security_stamp: SecurityStamp,
    /// Life-cycle state.
    pub status: AccountStatus,
    /// Consecutive wrong passwords (SEC-24).
    pub password_failures: u32,
    /// When the last wrong password was given.
    pub last_password_failure_at: Option<OffsetDateTime>,
    /// Consecutive wrong 暗証キー entries across challenges (SEC-29).
    pub otp_failures: u32,
    /// No new login until then, after too many wrong 暗証キー entries (SEC-29).
    pub otp_cooldown_until: Option<OffsetDateTime>,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}

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

/// A stored flow: its identifier and state. The state names the digests it can be
/// found by ([`FlowState::lookup_keys`]) and when it may be purged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowRecord {
    /// Identifier.
    pub id: FlowId,
    /// Where the flow is.
    pub state: FlowState,
}

/// A throttle counter: how many events in the current window, and when the last one
/// was. Keys are built by the portal from digests, never from plaintext addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Key, e.g. `mail:<digest>` or `identity:<member>`.
    pub key: String,
    /// Start of the current window.
    pub window_start: OffsetDateTime,
    /// Events in the window.
    pub count: u32,
    /// When the last event happened.
    pub last_at: OffsetDateTime,
    /// When the counter may be purged.
    pub expires_at: OffsetDateTime,
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

/// Which account a [`Load`] reads.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum AccountLoad {
    /// The account this lookup finds.
    By(AccountLookup),
    /// The account the flow the load found belongs to ([`FlowState::account`]); none
    /// when no flow was found or the flow belongs to no account.
    OfFlow,
}

/// What one portal step reads before it decides, read in one round trip where the
/// backend allows (see [`Store::load`]).
///
/// Build one with [`Load::new`] and the builder methods; every part is optional, and an
/// empty load reads nothing.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Load {
    /// Candidate digests of one secret, current key first: the first that finds a flow
    /// wins.
    pub flow: Vec<TokenDigest>,
    /// Which account to read, if any.
    pub account: Option<AccountLoad>,
    /// Also every flow of the loaded account, in creation order (as
    /// [`Store::flows_of_account`]).
    pub account_flows: bool,
    /// Counters by key.
    pub counters: Vec<String>,
    /// Key prefixes: for each, the counter `format!("{prefix}{account_id}")` of the
    /// loaded account.
    pub account_counters: Vec<String>,
}

impl Load {
    /// A load that reads nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the flow found by the first of `candidates` that finds one (current key
    /// first).
    pub fn flow(mut self, candidates: impl IntoIterator<Item = TokenDigest>) -> Self {
        self.flow.extend(candidates);
        self
    }

    /// Reads an account.
    pub fn account(mut self, which: AccountLoad) -> Self {
        self.account = Some(which);
        self
    }

    /// Also reads every flow of the loaded account, in creation order.
    pub fn account_flows(mut self) -> Self {
        self.account_flows = true;
        self
    }

    /// Also reads the counter `key`.
    pub fn counter(mut self, key: impl Into<String>) -> Self {
        self.counters.push(key.into());
        self
    }

    /// Also reads the counter `format!("{prefix}{account_id}")` of the loaded account.
    pub fn account_counter(mut self, prefix: impl Into<String>) -> Self {
        self.account_counters.push(prefix.into());
        self
    }
}

/// What a [`Load`] found.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Loaded {
    /// The flow found, with the candidate digest that found it.
    pub flow: Option<(Versioned<FlowRecord>, TokenDigest)>,
    /// The account read.
    pub account: Option<Versioned<Account>>,
    /// Every flow of the account read, in creation order (empty unless asked for).
    pub account_flows: Vec<Versioned<FlowRecord>>,
    /// One entry per [`Load::counters`] key, in the same order.
    pub counters: Vec<Option<Versioned<Counter>>>,
    /// One entry per [`Load::account_counters`] prefix, in the same order (all `None`
    /// when no account was read).
    pub account_counters: Vec<Option<Versioned<Counter>>>,
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

    /// Reads everything one portal step needs before it decides, in one round trip
    /// where the backend allows: the flow found by the first of [`Load::flow`]'s
    /// candidates that finds one, the account [`Load::account`] names (by lookup, or
    /// the one the found flow belongs to), that account's flows in creation order, and
    /// the counters by key and by prefix plus account ID.
    ///
    /// # What it promises
    ///
    /// - Each part reads as the matching single read would ([`find_flow`](Store::find_flow),
    ///   [`find_account`](Store::find_account), [`flows_of_account`](Store::flows_of_account),
    ///   [`load_counter`](Store::load_counter)), with the versions to pass back to
    ///   [`commit`](Store::commit). [`Loaded::counters`] and
    ///   [`Loaded::account_counters`] have one entry per key or prefix asked for, in
    ///   the same order; every account counter is `None` when no account was read.
    /// - It writes nothing and takes no lock a commit would wait on.
    /// - The stores of this crate read all parts in one statement (SQL) or under one
    ///   lock (memory), so the parts are consistent with one another. The default
    ///   implementation calls the single reads one after the other: each part is as
    ///   fresh as its own read, which compare-and-set at commit makes safe.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: nothing was read and nothing written; the step fails
    ///   and the member can retry it.
    /// - [`StoreError::Corrupt`]: a record read back is malformed; the whole load fails
    ///   (no partial answer), as the single read of that record would.
    ///
    /// Stale data is not a failure: a record changed after the load is caught by the
    /// compare-and-set of the step's commit, which answers
    /// [`CommitOutcome::Conflict`] so the step reloads and decides again.
    async fn load(&self, load: &Load) -> Result<Loaded, StoreError> {
        let mut flow = None;
        for digest in &load.flow {
            if let Some(found) = self.find_flow(digest).await? {
                flow = Some((found, *digest));
                break;
            }
        }
        let account = match &load.account {
            None => None,
            Some(AccountLoad::By(by)) => self.find_account(by.clone()).await?,
            Some(AccountLoad::OfFlow) => {
                match flow.as_ref().and_then(|(f, _)| f.value.state.account()) {
                    Some(id) => self.find_account(AccountLookup::Id(id.clone())).await?,
                    None => None,
                }
            }
        };
        let account_flows = match &account {
            Some(a) if load.account_flows => self.flows_of_account(&a.value.id).await?,
            _ => Vec::new(),
        };
        let mut counters = Vec::with_capacity(load.counters.len());
        for key in &load.counters {
            counters.push(self.load_counter(key).await?);
        }
        let mut account_counters = Vec::with_capacity(load.account_counters.len());
        for prefix in &load.account_counters {
            account_counters.push(match &account {
                Some(a) => {
                    self.load_counter(&format!("{prefix}{}", a.value.id))
                        .await?
                }
                None => None,
            });
        }
        Ok(Loaded {
            flow,
            account,
            account_flows,
            counters,
            account_counters,
        })
    }

    /// Applies every write of `commit` atomically, or none (see the trait docs).
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError>;

    /// Removes up to `limit` flows whose [`FlowState::purge_after`] and counters whose
    /// `expires_at` is at or before `now`; returns how many were removed.
    async fn purge_expired(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError>;
}
