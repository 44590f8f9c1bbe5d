//! The `Store` port: where flows, accounts and throttle counters live.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::{EmailAddress, LoginId};
use crate::error::BoxError;
use crate::flow::FlowRecord;
use crate::model::{
    Account, AccountId, Counter, Expect, MailId, MemberId, OutboxMail, Version, Versioned,
};
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
    /// [`Expect::Absent`] to insert a new flow; [`Expect::At`] to replace the flow read
    /// at that version.
    pub expect: Expect,
    /// The flow's new content.
    pub record: FlowRecord,
}

/// A write to one account inside a [`Commit`].
#[derive(Clone, Debug)]
pub struct AccountWrite {
    /// [`Expect::Absent`] to create the account — refused with a uniqueness outcome if
    /// its login ID, e-mail or member is taken; [`Expect::At`] to replace the account
    /// read at that version (uniqueness re-checked on login ID and e-mail).
    pub expect: Expect,
    /// The account's new content.
    pub account: Account,
}

/// A write to one counter inside a [`Commit`].
#[derive(Clone, Debug)]
pub struct CounterWrite {
    /// [`Expect::Absent`] to create the counter; [`Expect::At`] to replace the one read
    /// at that version.
    pub expect: Expect,
    /// New content.
    pub counter: Counter,
}

/// A write to one outbox mail inside a [`Commit`].
#[derive(Clone, Debug)]
pub struct MailWrite {
    /// [`Expect::Absent`] to put a new mail in the outbox; [`Expect::At`] to replace the
    /// mail read (or claimed) at that version — how a delivery is recorded.
    pub expect: Expect,
    /// The mail's new content, lease included.
    pub mail: OutboxMail,
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
    /// Outbox mails to insert (the step's mails, in the same commit as its state: the
    /// transactional outbox) or replace (a delivery recorded).
    pub mails: Vec<MailWrite>,
}

impl Commit {
    /// Whether the commit writes nothing.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
            && self.accounts.is_empty()
            && self.counters.is_empty()
            && self.mails.is_empty()
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
    ///
    /// [`FlowState::account`]: crate::flow::FlowState::account
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
    /// Also whether any account holds this address (canonical form), without reading
    /// it: R3's family-address check beside the member's own account.
    pub address_taken: Option<EmailAddress>,
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

    /// Also answers whether any account holds `email` ([`Loaded::address_taken`]).
    pub fn address_taken(mut self, email: EmailAddress) -> Self {
        self.address_taken = Some(email);
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
    /// Whether an account holds [`Load::address_taken`] (`false` when not asked).
    pub address_taken: bool,
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
    /// The backend did not answer in time: no connection within the acquire timeout, or
    /// no answer within the statement timeout ([`Timeouts`](crate::store::Timeouts)).
    /// Retryable, like [`StoreError::Backend`]; for a commit in flight the outcome is
    /// unknown, and a retry is safe for the same reason. The step answers at once
    /// instead of holding the request (and a worker) until the backend comes back.
    #[error("store did not answer within {0:?}")]
    Timeout(std::time::Duration),
}

impl StoreError {
    /// Whether the same request may succeed if the member tries again shortly (a lost
    /// connection, a timeout), as opposed to a record that cannot be read.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Backend(_) | StoreError::Timeout(_))
    }
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
/// - **A transactional outbox.** The mails of a commit are inserted with its other
///   writes or not at all; [`claim_mails`](Store::claim_mails) hands each due mail to
///   one claimant at a time (a lease), so several delivery workers never send one mail
///   twice while its lease runs; a recorded delivery is a compare-and-set like any
///   other write.
/// - **One write per record.** A [`Commit`] names each flow, account and counter at most
///   once (the portal never does otherwise); what several writes to one record in one
///   commit mean is unspecified.
///
/// Attempt counters live inside the records, so "increment the counter before
/// comparing the secret" is the portal's job: it commits the incremented counter and
/// the comparison's outcome in one `commit`, and only reports the outcome once that
/// commit succeeded.
///
/// # Implementing this port
///
/// See [Implementing a port](crate::guide::implementing_ports#store): a wrapper around a
/// shipped store with `#[kenpo_auth::async_trait]` (re-exported, no dependency of your
/// own), and the conformance suite every store runs.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Store: Send + Sync {
    /// Finds the flow that names `key` among its lookup keys.
    ///
    /// # What it promises
    ///
    /// - At most one flow names a digest (the insert of a second is refused by
    ///   [`commit`](Store::commit)), so the answer is that flow or `None`.
    /// - The version returned is the one to pass back to `commit`.
    /// - It writes nothing.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: nothing read; the step fails and can be retried.
    /// - [`StoreError::Corrupt`]: the flow's record is malformed; the step fails, and
    ///   keeps failing for this secret until the flow is purged.
    async fn find_flow(
        &self,
        key: &TokenDigest,
    ) -> Result<Option<Versioned<FlowRecord>>, StoreError>;

    /// Every flow that belongs to `account` (open login challenges, reset links …), so
    /// that a completed login or a password change can end them.
    ///
    /// # What it promises
    ///
    /// - **Creation order**: the flow inserted first comes first. The core relies on it
    ///   only for stable output; no decision depends on the order.
    /// - Every flow whose [`FlowState::account`](crate::flow::FlowState::account) is
    ///   `account` and that has not been purged, ended ones included (the core skips
    ///   those). Flows of no account (a registration before R5) are never listed.
    /// - It writes nothing.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: nothing read; the step fails and can be retried.
    /// - [`StoreError::Corrupt`]: one of the flows is malformed; the whole call fails (no
    ///   partial list), so a step that must end the account's flows cannot skip one.
    async fn flows_of_account(
        &self,
        account: &AccountId,
    ) -> Result<Vec<Versioned<FlowRecord>>, StoreError>;

    /// Finds an account by its ID, canonical login ID, canonical address or member.
    ///
    /// # What it promises
    ///
    /// - Lookups compare the canonical forms the unique constraints hold, so at most one
    ///   account answers.
    /// - The version returned is the one to pass back to `commit`.
    /// - It writes nothing.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: nothing read; the step fails and can be retried.
    /// - [`StoreError::Corrupt`]: the account's record is malformed; every step that
    ///   reads it fails until an operator repairs it (the member cannot log in).
    async fn find_account(
        &self,
        by: AccountLookup,
    ) -> Result<Option<Versioned<Account>>, StoreError>;

    /// Reads a throttle counter by its rendered key
    /// ([`CounterKey::render`](crate::model::CounterKey::render)).
    ///
    /// # What it promises
    ///
    /// - The counter as last committed, expired or not: the core decides whether its
    ///   window is over, so a counter past `expires_at` that is not yet purged still
    ///   reads (and is replaced by compare-and-set like any other).
    /// - It writes nothing.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: nothing read; the step fails and can be retried. A
    ///   throttle never fails open: no counter read, no step.
    /// - [`StoreError::Corrupt`]: the counter is malformed; steps that read it fail until
    ///   it expires and is purged.
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
        let address_taken = match &load.address_taken {
            Some(e) => self
                .find_account(AccountLookup::Email(e.clone()))
                .await?
                .is_some(),
            None => false,
        };
        Ok(Loaded {
            flow,
            account,
            account_flows,
            counters,
            account_counters,
            address_taken,
        })
    }

    /// Applies every write of `commit` atomically, or none (see the trait docs).
    ///
    /// # What it promises
    ///
    /// - All or nothing, with compare-and-set on every write ([`Expect`]): `Committed`
    ///   only when every write took effect.
    /// - [`CommitOutcome::Conflict`] when any record moved since it was read (or an
    ///   insert found its ID or a flow lookup key taken); the core reloads and decides
    ///   again, at most a few times.
    /// - `LoginIdTaken`, `EmailTaken`, `MemberTaken` when an account write would break a
    ///   unique constraint, decided inside the same atomic step; nothing was written.
    /// - Once it answers `Committed`, the writes are durable and visible to every later
    ///   read on every server sharing the store.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`] before the commit reached the backend: nothing written;
    ///   the step fails and can be retried.
    /// - [`StoreError::Backend`] when the connection was lost during `COMMIT`: the
    ///   outcome is unknown. A retry is safe — it reloads and compares versions, so a
    ///   commit that did take effect is seen as the new state, never applied twice.
    /// - [`StoreError::Corrupt`] is not returned by a commit.
    ///
    /// [`Expect`]: crate::model::Expect
    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError>;

    /// Reads one outbox mail by its identifier: its delivery status, for
    /// [`Portal::mail_status`](crate::Portal::mail_status), and the version to record a
    /// delivery against.
    ///
    /// # What it promises
    ///
    /// - The mail as last committed or claimed, until it is purged.
    /// - It writes nothing.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: nothing read; the status is not known yet.
    /// - [`StoreError::Corrupt`]: the mail's row is malformed.
    async fn find_mail(&self, id: &MailId) -> Result<Option<Versioned<OutboxMail>>, StoreError>;

    /// Claims up to `limit` outbox mails that are [claimable](OutboxMail::claimable) at
    /// `now`, earliest due first: each is leased until `leased_until` and returned at its
    /// new version, which the claimant records the delivery against.
    ///
    /// # What it promises
    ///
    /// - **Claim once.** The lease is taken atomically: two claimants racing (two
    ///   workers, two servers) never both get one mail while its lease runs.
    /// - A mail whose lease ended unrecorded (its claimant died) is claimable again: a
    ///   crash can send a mail twice, never zero times.
    /// - Only [`Delivery::Pending`](crate::model::Delivery::Pending) mails due by `now`.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: none claimed, or — when the connection was lost while
    ///   the claim committed — some claimed and not returned: they wait out their lease
    ///   and are claimed again.
    /// - [`StoreError::Corrupt`]: a claimed row is malformed; the whole call fails.
    async fn claim_mails(
        &self,
        now: OffsetDateTime,
        leased_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Versioned<OutboxMail>>, StoreError>;

    /// Removes up to `limit` flows whose [`FlowState::purge_after`](crate::flow::FlowState::purge_after), counters whose
    /// `expires_at` and outbox mails whose `purge_after` is at or before `now`; returns
    /// how many were removed.
    ///
    /// # What it promises
    ///
    /// - Only records past their time go: a flow's `purge_after` is after every deadline
    ///   it answers for (plus a tombstone period so a used link still says "used"), a
    ///   counter's `expires_at` after its window.
    /// - At most `limit` records per call, so no call holds the store long; the portal
    ///   calls it in batches until fewer than asked come back.
    /// - Accounts are never purged.
    ///
    /// # What a failure costs
    ///
    /// - [`StoreError::Backend`]: some, all or none of a batch may be gone; the next call
    ///   carries on. Nothing a member needs is lost: only records already past their time
    ///   are ever removed.
    async fn purge_expired(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError>;
}

/// One write of a commit, and what the store holds if the commit took effect: commits
/// are atomic, so one write shows whether all did.
// One probe lives briefly, only after a commit whose outcome is unknown: the size of its
// largest record (the account) costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub(crate) enum CommitProbe {
    Flow(TokenDigest, Versioned<FlowRecord>),
    Account(Versioned<Account>),
    Counter(Versioned<Counter>),
}

impl CommitProbe {
    /// The commit's first write that can be read back, with the version it leaves.
    pub(crate) fn of(commit: &Commit) -> Option<CommitProbe> {
        let after = |expect: Expect| match expect {
            Expect::Absent => Version::FIRST,
            Expect::At(v) => v.next(),
        };
        if let Some(w) = commit.flows.first() {
            let digest = *w.record.state.lookup_keys().last()?;
            return Some(CommitProbe::Flow(
                digest,
                Versioned {
                    version: after(w.expect),
                    value: w.record.clone(),
                },
            ));
        }
        if let Some(w) = commit.accounts.first() {
            return Some(CommitProbe::Account(Versioned {
                version: after(w.expect),
                value: w.account.clone(),
            }));
        }
        commit.counters.first().map(|w| {
            CommitProbe::Counter(Versioned {
                version: after(w.expect),
                value: w.counter.clone(),
            })
        })
    }

    /// Whether the commit `probe` stands for took effect: the record is at the version
    /// the commit gave it, holding what it wrote. A store still failing counts as no.
    pub(crate) async fn took_effect(&self, store: &dyn Store) -> bool {
        match self {
            CommitProbe::Flow(digest, written) => {
                matches!(store.find_flow(digest).await, Ok(Some(ref r)) if r == written)
            }
            CommitProbe::Account(written) => matches!(
                store.find_account(AccountLookup::Id(written.value.id.clone())).await,
                Ok(Some(ref a)) if a == written
            ),
            CommitProbe::Counter(written) => matches!(
                store.load_counter(&written.value.key).await,
                Ok(Some(ref c)) if c == written
            ),
        }
    }
}
