//! Fault injection: [`FaultyStore`] and [`FaultyMailer`] wrap any store or mailer and
//! fail the calls a test chooses, so a host can test its error pages ("ただいまサービスを
//! 利用できません") and its retry paths without a broken database or mail server.
//!
//! A fault is a rule: *which* calls (a [`StoreCall`], or a mail's address or kind),
//! *when* ([`When`]: the n-th matching call from now, the next n, or always) and *how*
//! ([`StoreFault`], [`MailFault`]). Rules count matching calls from the moment they are
//! set, each on its own; a spent rule is dropped; [`heal`](FaultyStore::heal) drops them
//! all. Clones share the rules and the counts, so a test keeps one clone and hands the
//! other to the portal:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use kenpo_auth::Error;
//! use kenpo_auth::mail::RecordingMailer;
//! use kenpo_auth::store::MemoryStore;
//! use kenpo_auth::testkit::{fixtures, FaultyStore, StoreCall, When};
//!
//! let store = FaultyStore::new(MemoryStore::new());
//! let portal = fixtures::portal_builder()
//!     .store(store.clone())
//!     .mailer(RecordingMailer::new())
//!     .directory(fixtures::sample_roster())
//!     .build()?;
//!
//! // The database is down: the step fails with the host's error, not a rejection.
//! store.fail(StoreCall::Any, When::Always);
//! let err = portal.start_registration("taro.yamada@example.jp").await.unwrap_err();
//! assert!(matches!(err, Error::Store(_)));
//!
//! // It comes back: the member retries, and nothing half-made is in the way.
//! store.heal();
//! portal.start_registration("taro.yamada@example.jp").await?;
//! # Ok(())
//! # }
//! ```
//!
//! The error a fault produces carries [`InjectedFault`] as its source, so a test can tell
//! an injected failure from a real one.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::domain::EmailAddress;
use crate::mail::OutgoingMail;
use crate::model::{MailId, OutboxMail};
use crate::ports::{
    Account, AccountId, AccountLookup, Commit, CommitOutcome, Counter, FlowRecord, Load, Loaded,
    MailError, Mailer, Store, StoreError, Versioned,
};
use crate::token::TokenDigest;

/// The plumbing [`FaultyStore`] and [`FaultyMailer`] share: the struct (the wrapped
/// value and the plan of faults, both shared), `Clone` (a clone shares both, so a fault
/// set through one fires for all), `new`, `from_shared`, `inner` and `faults_fired`.
macro_rules! fault_wrapper {
    (
        $(#[$attr:meta])*
        pub struct $wrapper:ident<$p:ident: $port:ident> { plan: $plan:ty }
        ($what:literal, $unit:literal, $units:literal)
    ) => {
        $(#[$attr])*
        #[derive(Debug)]
        pub struct $wrapper<$p: ?Sized> {
            inner: Arc<$p>,
            plan: Arc<Mutex<$plan>>,
        }

        impl<$p: ?Sized> Clone for $wrapper<$p> {
            fn clone(&self) -> Self {
                $wrapper {
                    inner: Arc::clone(&self.inner),
                    plan: Arc::clone(&self.plan),
                }
            }
        }

        impl<$p: $port> $wrapper<$p> {
            #[doc = concat!("Wraps `inner`, with no fault set: every ", $unit, " is forwarded.")]
            pub fn new(inner: $p) -> Self {
                Self::from_shared(Arc::new(inner))
            }
        }

        impl<$p: $port + ?Sized> $wrapper<$p> {
            #[doc = concat!(
                        "Wraps a ", $what, " the host already shares, e.g. an `Arc<dyn ",
                        stringify!($port), ">`."
                    )]
            pub fn from_shared(inner: Arc<$p>) -> Self {
                $wrapper {
                    inner,
                    plan: Arc::default(),
                }
            }

            #[doc = concat!("The wrapped ", $what, ", to look at what got past the faults.")]
            pub fn inner(&self) -> &$p {
                &self.inner
            }

            #[doc = concat!("How many ", $units, " a fault has failed so far.")]
            pub fn faults_fired(&self) -> usize {
                lock(&self.plan).fired
            }
        }
    };
}

/// The source of every error a [`FaultyStore`] or [`FaultyMailer`] makes up, so a test
/// can downcast and tell an injected failure from a real one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("fault injected by kenpo_auth::testkit")]
pub struct InjectedFault;

/// Which of the matching calls a rule fails, counted from when the rule was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum When {
    /// Only the `n`-th matching call (1 is the next one); then the rule is spent.
    Nth(usize),
    /// The next `n` matching calls; then the rule is spent.
    Next(usize),
    /// Every matching call, until [`heal`](FaultyStore::heal).
    Always,
}

/// A rule's count of matching calls and whether it has fired for the last of them.
#[derive(Clone, Debug)]
struct Schedule {
    when: When,
    seen: usize,
}

impl Schedule {
    fn new(when: When) -> Self {
        Schedule { when, seen: 0 }
    }

    /// Counts one matching call; whether the rule fires for it.
    fn fires(&mut self) -> bool {
        self.seen = self.seen.saturating_add(1);
        match self.when {
            When::Nth(n) => self.seen == n,
            When::Next(n) => self.seen <= n,
            When::Always => true,
        }
    }

    /// Whether the rule can fire again.
    fn live(&self) -> bool {
        match self.when {
            When::Nth(n) | When::Next(n) => self.seen < n,
            When::Always => true,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock leaves the rules as they were.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ── Store ─────────────────────────────────────────────────────────────────────────────

/// A method of the [`Store`] port, as a [`FaultyStore`] rule names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreCall {
    /// Every method.
    Any,
    /// [`Store::load`] — the one read most portal steps make.
    Load,
    /// [`Store::find_flow`].
    FindFlow,
    /// [`Store::flows_of_account`].
    FlowsOfAccount,
    /// [`Store::find_account`].
    FindAccount,
    /// [`Store::load_counter`].
    LoadCounter,
    /// [`Store::commit`] — every step that changes something commits once (again after a
    /// lost race).
    Commit,
    /// [`Store::purge_expired`].
    PurgeExpired,
    /// [`Store::find_mail`].
    FindMail,
    /// [`Store::claim_mails`].
    ClaimMails,
}

impl StoreCall {
    /// Whether a rule naming `self` matches a call of `call`.
    fn matches(self, call: StoreCall) -> bool {
        self == StoreCall::Any || self == call
    }

    const EACH: [StoreCall; 9] = [
        StoreCall::Load,
        StoreCall::FindFlow,
        StoreCall::FlowsOfAccount,
        StoreCall::FindAccount,
        StoreCall::LoadCounter,
        StoreCall::Commit,
        StoreCall::PurgeExpired,
        StoreCall::FindMail,
        StoreCall::ClaimMails,
    ];
}

/// How a [`FaultyStore`] call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreFault {
    /// [`StoreError::Backend`] before the call reaches the store: nothing read or
    /// written (the database is unreachable).
    Backend,
    /// [`StoreError::Corrupt`] before the call reaches the store: a record could not be
    /// read back.
    Corrupt,
    /// The call reaches the store and does its work, then its answer is lost
    /// ([`StoreError::Backend`]): for a commit, the connection dropped during `COMMIT`,
    /// the outcome the [`StoreError::Backend`] docs call unknown. A retry must be safe.
    LostReply,
    /// Commits only: nothing is written and the commit answers
    /// [`CommitOutcome::Conflict`], as if another request had won the race. The portal
    /// reloads and decides again. A rule with this fault matches no other call.
    Conflict,
}

#[derive(Debug)]
enum StoreAction {
    Fault(StoreFault),
    /// Another writer's commit, applied just before the matching call.
    Interleave(Commit),
}

#[derive(Debug)]
struct StoreRule {
    call: StoreCall,
    schedule: Schedule,
    action: StoreAction,
}

#[derive(Debug, Default)]
struct StorePlan {
    rules: Vec<StoreRule>,
    /// Calls that reached the wrapper, by [`StoreCall::EACH`] index.
    calls: [usize; StoreCall::EACH.len()],
    fired: usize,
    interleaved: Vec<CommitOutcome>,
}

/// What one call does, decided under the lock before any `await`.
#[derive(Debug, Default)]
struct StoreTurn {
    interleave: Vec<Commit>,
    fault: Option<StoreFault>,
}

fault_wrapper! {
    /// A [`Store`] that forwards to `S` except on the calls a test chose to fail.
    ///
    /// Faults are set with [`fail`](Self::fail) (the database is unreachable) or
    /// [`inject`](Self::inject) (a [`StoreFault`]); [`interleave`](Self::interleave) lands
    /// another writer's commit just before a chosen call, to test races deterministically.
    /// `S` can be unsized: [`from_shared`](Self::from_shared) wraps an `Arc<dyn Store>`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use kenpo_auth::ports::{Commit, Store, StoreError};
    /// use kenpo_auth::store::MemoryStore;
    /// use kenpo_auth::testkit::{FaultyStore, InjectedFault, StoreCall, When};
    ///
    /// let store = FaultyStore::new(MemoryStore::new());
    /// store.fail(StoreCall::Commit, When::Nth(2));
    /// assert!(store.commit(Commit::default()).await.is_ok());
    /// let Err(StoreError::Backend(source)) = store.commit(Commit::default()).await else {
    ///     panic!("the second commit fails");
    /// };
    /// assert!(source.downcast_ref::<InjectedFault>().is_some());
    /// assert!(store.commit(Commit::default()).await.is_ok());
    /// assert_eq!(store.calls(StoreCall::Commit), 3);
    /// assert_eq!(store.faults_fired(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub struct FaultyStore<S: Store> { plan: StorePlan } ("store", "call", "calls")
}

impl<S: Store + ?Sized> FaultyStore<S> {
    /// Fails the matching calls with [`StoreError::Backend`] before they reach the
    /// store (shorthand for [`inject`](Self::inject) with [`StoreFault::Backend`]).
    pub fn fail(&self, call: StoreCall, when: When) -> &Self {
        self.inject(call, when, StoreFault::Backend)
    }

    /// Makes the matching calls fail with `fault`.
    pub fn inject(&self, call: StoreCall, when: When, fault: StoreFault) -> &Self {
        self.push(call, when, StoreAction::Fault(fault))
    }

    /// Applies `commit` to the wrapped store just before each matching call reaches it,
    /// as if another request had committed in between: e.g. a password reset landing
    /// between a login's read and its commit (SEC-34). The outcome of each interleaved
    /// commit is kept for [`interleaved`](Self::interleaved); if it fails, the matching
    /// call fails with the same error.
    pub fn interleave(&self, call: StoreCall, when: When, commit: Commit) -> &Self {
        self.push(call, when, StoreAction::Interleave(commit))
    }

    /// Drops every rule: from now on every call is forwarded. The counts stay.
    pub fn heal(&self) -> &Self {
        lock(&self.plan).rules.clear();
        self
    }

    /// How many calls of `call` reached this wrapper (failed ones included);
    /// [`StoreCall::Any`] counts every call.
    pub fn calls(&self, call: StoreCall) -> usize {
        let plan = lock(&self.plan);
        StoreCall::EACH
            .iter()
            .zip(plan.calls.iter())
            .filter(|(c, _)| call.matches(**c))
            .map(|(_, n)| *n)
            .sum()
    }

    /// The outcome of every interleaved commit so far, oldest first.
    pub fn interleaved(&self) -> Vec<CommitOutcome> {
        lock(&self.plan).interleaved.clone()
    }

    fn push(&self, call: StoreCall, when: When, action: StoreAction) -> &Self {
        lock(&self.plan).rules.push(StoreRule {
            call,
            schedule: Schedule::new(when),
            action,
        });
        self
    }

    /// Counts the call and decides what it does: which commits land first, which fault
    /// (the first rule that fires) it meets.
    fn turn(&self, call: StoreCall) -> StoreTurn {
        let mut plan = lock(&self.plan);
        if let Some(i) = StoreCall::EACH.iter().position(|c| *c == call)
            && let Some(n) = plan.calls.get_mut(i)
        {
            *n = n.saturating_add(1);
        }
        let mut turn = StoreTurn::default();
        for rule in &mut plan.rules {
            let commit_only = matches!(rule.action, StoreAction::Fault(StoreFault::Conflict));
            if !rule.call.matches(call) || (commit_only && call != StoreCall::Commit) {
                continue;
            }
            if !rule.schedule.fires() {
                continue;
            }
            match &rule.action {
                StoreAction::Interleave(commit) => turn.interleave.push(commit.clone()),
                StoreAction::Fault(fault) => {
                    if turn.fault.is_none() {
                        turn.fault = Some(*fault);
                    }
                }
            }
        }
        plan.rules.retain(|r| r.schedule.live());
        if turn.fault.is_some() {
            plan.fired = plan.fired.saturating_add(1);
        }
        turn
    }

    /// Runs one call through the plan: interleaved commits first, then the fault (if
    /// any) or the call itself. `call_future` is the wrapped store's lazy future for the
    /// call; it is only polled when the call goes through. `conflict` is what the call
    /// answers for [`StoreFault::Conflict`] (commits only).
    async fn run<T>(
        &self,
        call: StoreCall,
        conflict: Option<T>,
        call_future: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let turn = self.turn(call);
        for commit in turn.interleave {
            let outcome = self.inner.commit(commit).await?;
            lock(&self.plan).interleaved.push(outcome);
        }
        match (turn.fault, conflict) {
            (Some(StoreFault::Backend), _) => Err(StoreError::Backend(Box::new(InjectedFault))),
            (Some(StoreFault::Corrupt), _) => Err(StoreError::Corrupt(Box::new(InjectedFault))),
            (Some(StoreFault::LostReply), _) => {
                call_future.await?;
                Err(StoreError::Backend(Box::new(InjectedFault)))
            }
            (Some(StoreFault::Conflict), Some(answer)) => Ok(answer),
            // `turn` never gives a conflict to a call that cannot answer one.
            (Some(StoreFault::Conflict), None) | (None, _) => call_future.await,
        }
    }
}

/// Implements [`Store`] for [`FaultyStore`]: each method, as the [`StoreCall`] it is
/// counted and matched as, goes through [`FaultyStore::run`] to the wrapped store's own
/// method. `conflict` gives what the call answers for [`StoreFault::Conflict`].
macro_rules! forward_store {
    (@conflict) => {
        None
    };
    (@conflict $conflict:expr) => {
        Some($conflict)
    };
    ($(
        $(#[$doc:meta])*
        $call:ident $(conflict $conflict:expr)? =>
            fn $method:ident($($arg:ident: $ty:ty),*) -> $ok:ty;
    )*) => {
        #[async_trait]
        impl<S: Store + ?Sized> Store for FaultyStore<S> {
            $(
                $(#[$doc])*
                async fn $method(&self, $($arg: $ty),*) -> Result<$ok, StoreError> {
                    let conflict = forward_store!(@conflict $($conflict)?);
                    self.run(StoreCall::$call, conflict, self.inner.$method($($arg),*))
                        .await
                }
            )*
        }
    };
}

forward_store! {
    FindFlow => fn find_flow(key: &TokenDigest) -> Option<Versioned<FlowRecord>>;
    FlowsOfAccount => fn flows_of_account(account: &AccountId) -> Vec<Versioned<FlowRecord>>;
    FindAccount => fn find_account(by: AccountLookup) -> Option<Versioned<Account>>;
    LoadCounter => fn load_counter(key: &str) -> Option<Versioned<Counter>>;
    /// Forwards to the wrapped store's own `load` (one round trip where it has one), so
    /// the single reads it makes inside are not counted as calls of their own.
    Load => fn load(load: &Load) -> Loaded;
    Commit conflict CommitOutcome::Conflict => fn commit(commit: Commit) -> CommitOutcome;
    FindMail => fn find_mail(id: &MailId) -> Option<Versioned<OutboxMail>>;
    ClaimMails => fn claim_mails(
        now: OffsetDateTime,
        leased_until: OffsetDateTime,
        limit: usize
    ) -> Vec<Versioned<OutboxMail>>;
    PurgeExpired => fn purge_expired(now: OffsetDateTime, limit: usize) -> usize;
}

// ── Mailer ────────────────────────────────────────────────────────────────────────────

/// How a [`FaultyMailer`] send fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MailFault {
    /// [`MailError::Transient`], nothing sent: the server is down or answered 4xx.
    Transient,
    /// [`MailError::Permanent`], nothing sent: the server refused the mail for good
    /// (5xx, an unknown mailbox).
    Permanent,
    /// The mail is handed to the wrapped mailer, then the send reports
    /// [`MailError::Transient`]: the member may get it twice after a resend.
    LostReply,
}

/// Which mails a [`FaultyMailer`] rule matches.
#[derive(Clone, Debug)]
enum MailTarget {
    Any,
    /// A canonical address (or, for text that is not an address, nothing).
    To(Option<String>),
    Kind(&'static str),
}

impl MailTarget {
    fn matches(&self, mail: &OutgoingMail) -> bool {
        match self {
            MailTarget::Any => true,
            MailTarget::To(to) => to.as_deref() == Some(mail.to.canonical()),
            MailTarget::Kind(kind) => *kind == mail.message.kind(),
        }
    }
}

#[derive(Clone, Debug)]
struct MailRule {
    target: MailTarget,
    schedule: Schedule,
    fault: MailFault,
}

#[derive(Debug, Default)]
struct MailPlan {
    rules: Vec<MailRule>,
    attempts: usize,
    fired: usize,
}

fault_wrapper! {
    /// A [`Mailer`] that forwards to `M` except for the mails a test chose to fail: the
    /// n-th send, every mail to one address, every mail of one kind.
    ///
    /// The portal commits before it mails, so a failed send loses nothing: it is audited
    /// ([`AuditKind::MailFailed`](crate::ports::AuditKind::MailFailed)) and the member can
    /// ask again. Wrap a [`RecordingMailer`](crate::mail::RecordingMailer) to read what did
    /// go out:
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// use kenpo_auth::mail::RecordingMailer;
    /// use kenpo_auth::store::MemoryStore;
    /// use kenpo_auth::testkit::{fixtures, FaultyMailer, MailFault};
    ///
    /// let sent = RecordingMailer::new();
    /// let mailer = FaultyMailer::new(sent.clone());
    /// mailer.fail_to("taro.yamada@example.jp", MailFault::Permanent);
    /// let portal = fixtures::portal_builder()
    ///     .store(MemoryStore::new())
    ///     .mailer(mailer.clone())
    ///     .directory(fixtures::sample_roster())
    ///     .build()?;
    /// // The member is told the same as for a sent mail (SEC-07); nothing went out.
    /// portal.start_registration("taro.yamada@example.jp").await?;
    /// assert_eq!(sent.count(), 0);
    /// assert_eq!(mailer.faults_fired(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub struct FaultyMailer<M: Mailer> { plan: MailPlan } ("mailer", "mail", "sends")
}

impl<M: Mailer + ?Sized> FaultyMailer<M> {
    /// Fails the matching sends (counted over every mail) with `fault`.
    pub fn fail(&self, when: When, fault: MailFault) -> &Self {
        self.push(MailTarget::Any, when, fault)
    }

    /// Fails every mail to `address` (compared in canonical form) with `fault`, until
    /// [`heal`](Self::heal): a mailbox the server refuses. Text that is not an address
    /// matches no mail.
    pub fn fail_to(&self, address: &str, fault: MailFault) -> &Self {
        let canonical = EmailAddress::parse(address)
            .ok()
            .map(|a| a.canonical().to_owned());
        self.push(MailTarget::To(canonical), When::Always, fault)
    }

    /// Fails the matching mails of one kind ([`MailMessage::kind`], e.g. `"login_otp"`)
    /// with `fault`, counted over the mails of that kind.
    ///
    /// [`MailMessage::kind`]: crate::mail::MailMessage::kind
    pub fn fail_kind(&self, kind: &'static str, when: When, fault: MailFault) -> &Self {
        self.push(MailTarget::Kind(kind), when, fault)
    }

    /// Drops every rule: from now on every mail is forwarded. The counts stay.
    pub fn heal(&self) -> &Self {
        lock(&self.plan).rules.clear();
        self
    }

    /// How many sends were asked of this wrapper (failed ones included).
    pub fn attempts(&self) -> usize {
        lock(&self.plan).attempts
    }

    fn push(&self, target: MailTarget, when: When, fault: MailFault) -> &Self {
        lock(&self.plan).rules.push(MailRule {
            target,
            schedule: Schedule::new(when),
            fault,
        });
        self
    }

    /// Counts the send and picks the fault of the first rule that fires, if any.
    fn turn(&self, mail: &OutgoingMail) -> Option<MailFault> {
        let mut plan = lock(&self.plan);
        plan.attempts = plan.attempts.saturating_add(1);
        let mut fault = None;
        for rule in &mut plan.rules {
            if rule.target.matches(mail) && rule.schedule.fires() && fault.is_none() {
                fault = Some(rule.fault);
            }
        }
        plan.rules.retain(|r| r.schedule.live());
        if fault.is_some() {
            plan.fired = plan.fired.saturating_add(1);
        }
        fault
    }
}

#[async_trait]
impl<M: Mailer + ?Sized> Mailer for FaultyMailer<M> {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        match self.turn(mail) {
            None => self.inner.send(mail).await,
            Some(MailFault::Transient) => Err(MailError::Transient(Box::new(InjectedFault))),
            Some(MailFault::Permanent) => Err(MailError::Permanent(Box::new(InjectedFault))),
            Some(MailFault::LostReply) => {
                self.inner.send(mail).await?;
                Err(MailError::Transient(Box::new(InjectedFault)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::Lang;
    use crate::mail::{MailMessage, RecordingMailer, RenderedMail};
    use crate::store::MemoryStore;

    fn mail(to: &str, message: MailMessage) -> OutgoingMail {
        OutgoingMail {
            to: EmailAddress::parse(to).unwrap(),
            lang: Lang::Ja,
            message,
            rendered: RenderedMail {
                subject: String::new(),
                body: String::new(),
            },
        }
    }

    fn reminder(to: &str) -> OutgoingMail {
        mail(
            to,
            MailMessage::LoginIdReminder {
                login_id: "taro".to_owned(),
            },
        )
    }

    /// A commit that creates the counter `key`.
    fn new_counter(key: &str) -> Commit {
        let at = OffsetDateTime::UNIX_EPOCH;
        Commit {
            counters: vec![crate::store::CounterWrite {
                expect: crate::model::Expect::Absent,
                counter: Counter {
                    key: key.to_owned(),
                    window_start: at,
                    count: 1,
                    last_at: at,
                    expires_at: at + time::Duration::days(1),
                },
            }],
            ..Commit::default()
        }
    }

    fn injected(e: &(dyn std::error::Error + 'static)) -> bool {
        e.source()
            .is_some_and(|s| s.downcast_ref::<InjectedFault>().is_some())
    }

    #[test]
    fn schedules_fire_on_the_calls_they_name() {
        let fired = |when| {
            let mut s = Schedule::new(when);
            (1..=5)
                .map(|_| {
                    let f = s.fires();
                    (f, s.live())
                })
                .collect::<Vec<_>>()
        };
        let f = fired(When::Nth(3));
        assert_eq!(
            f.iter().map(|x| x.0).collect::<Vec<_>>(),
            [false, false, true, false, false]
        );
        assert!(!f[2].1, "spent after it fired");
        let f = fired(When::Next(2));
        assert_eq!(
            f.iter().map(|x| x.0).collect::<Vec<_>>(),
            [true, true, false, false, false]
        );
        assert!(fired(When::Always).iter().all(|x| x.0 && x.1));
        assert!(!Schedule::new(When::Nth(0)).live(), "Nth(0) never fires");
    }

    #[tokio::test]
    async fn store_faults_fail_only_the_chosen_calls() {
        let store = FaultyStore::new(MemoryStore::new());
        let held = store.clone();
        held.fail(StoreCall::Load, When::Always).inject(
            StoreCall::Commit,
            When::Nth(2),
            StoreFault::Corrupt,
        );
        let e = store.load(&Load::new()).await.unwrap_err();
        assert!(matches!(e, StoreError::Backend(_)) && injected(&e));
        assert!(
            store.load_counter("k").await.unwrap().is_none(),
            "other reads pass"
        );
        store.commit(Commit::default()).await.unwrap();
        let e = store.commit(Commit::default()).await.unwrap_err();
        assert!(matches!(e, StoreError::Corrupt(_)) && injected(&e));
        store.commit(Commit::default()).await.unwrap();
        assert_eq!(held.calls(StoreCall::Commit), 3);
        assert_eq!(held.calls(StoreCall::Any), 5);
        assert_eq!(held.faults_fired(), 2);
        held.heal();
        store.load(&Load::new()).await.unwrap();
        assert_eq!(held.faults_fired(), 2);
    }

    #[tokio::test]
    async fn conflict_matches_commits_only_and_lost_reply_still_writes() {
        let store = FaultyStore::new(MemoryStore::new());
        store.inject(StoreCall::Any, When::Next(1), StoreFault::Conflict);
        assert!(
            store
                .find_account(AccountLookup::Id(AccountId::generate(&mut rand::rng())))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store.commit(Commit::default()).await.unwrap(),
            CommitOutcome::Conflict
        );
        assert_eq!(store.faults_fired(), 1);

        // A lost reply: the write happened even though the call failed.
        store.inject(StoreCall::Commit, When::Nth(1), StoreFault::LostReply);
        assert!(store.commit(new_counter("k")).await.is_err());
        assert!(store.inner().load_counter("k").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn interleaved_commits_land_before_the_call() {
        let store = FaultyStore::new(MemoryStore::new());
        store.interleave(StoreCall::LoadCounter, When::Nth(1), new_counter("k"));
        assert!(store.load_counter("k").await.unwrap().is_some());
        assert_eq!(store.interleaved(), [CommitOutcome::Committed]);
    }

    #[tokio::test]
    async fn wraps_a_shared_dyn_store() {
        let shared: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let store = FaultyStore::from_shared(shared);
        store.fail(StoreCall::PurgeExpired, When::Always);
        assert!(
            store
                .purge_expired(OffsetDateTime::UNIX_EPOCH, 10)
                .await
                .is_err()
        );
        let _: Arc<dyn Store> = Arc::new(store);
    }

    #[tokio::test]
    async fn mail_faults_by_address_kind_and_count() {
        let sent = RecordingMailer::new();
        let mailer = FaultyMailer::new(sent.clone());
        mailer
            .fail_to("Hanako@Example.jp", MailFault::Permanent)
            .fail_kind("password_changed", When::Nth(1), MailFault::Transient)
            .fail(When::Nth(4), MailFault::LostReply);
        let e = mailer
            .send(&reminder("hanako@example.jp"))
            .await
            .unwrap_err();
        assert!(matches!(e, MailError::Permanent(_)) && injected(&e));
        let changed = mail(
            "taro@example.jp",
            MailMessage::PasswordChanged {
                at: OffsetDateTime::UNIX_EPOCH,
            },
        );
        assert!(matches!(
            mailer.send(&changed).await,
            Err(MailError::Transient(_))
        ));
        mailer.send(&changed).await.unwrap();
        // The fourth send overall: delivered, then reported as failed.
        assert!(mailer.send(&reminder("taro@example.jp")).await.is_err());
        assert_eq!(
            sent.kinds_to("taro@example.jp"),
            ["password_changed", "login_id_reminder"]
        );
        assert_eq!(mailer.attempts(), 4);
        assert_eq!(mailer.faults_fired(), 3);
        mailer.heal();
        mailer.send(&reminder("hanako@example.jp")).await.unwrap();
        assert!(
            mailer
                .fail_to("not an address", MailFault::Permanent)
                .attempts()
                == 5
        );
        mailer.send(&reminder("hanako@example.jp")).await.unwrap();
    }
}
