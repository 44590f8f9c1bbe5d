//! The one driver every step goes through: load → decide → commit with compare-and-set
//! → retry on a lost race → mail → audit → answer.
//!
//! Policy lives in [`crate::flow`]: a step's decision function gets what [`Load`]
//! read, and returns a [`Step`] that says everything the action does. This module only
//! carries it out, in an order that never tells the member something that was not
//! stored: the writes commit first (all or nothing), then the mails go, then the audit
//! events, then the answer.

use super::Portal;
use crate::domain::{EmailAddress, LoginId};
use crate::error::{Error, Rejection};
use crate::flow::delivery::{self, Receipted};
use crate::flow::step::{OnTaken, Step, Taken, Write};
use crate::observe::{self, StepName};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

use rand::rngs::ThreadRng;

use crate::flow::gate::Refusals;
use crate::flow::throttle::StartBudgets;
use crate::flow::{AccountView, Env, FlowRecord, FlowState, RegistrationState};
use crate::model::{Counter, CounterKey, Expect, MailId, Versioned};
use crate::ports::{
    AccountLoad, AccountLookup, AccountWrite, Commit, CommitOutcome, CounterWrite, FlowWrite,
    MailWrite,
};
use crate::token::{Bearer, TokenDigest};

/// How often a request re-reads and re-decides after losing a compare-and-set race
/// before it answers [`Rejection::Busy`].
const MAX_CAS_RETRIES: usize = 16;

/// Maps a failed commit of a member's step to what the member is told.
fn busy() -> Error {
    Error::Rejected(Rejection::Busy)
}

/// What a step's `decide` returns: the decision, after whatever it awaited (Argon2,
/// the roster). Boxed and `Send`, so every `Portal` future can be spawned; it borrows
/// only what the request owns (`'a`), never the closure.
pub(super) type Deciding<'a, T> = Pin<Box<dyn Future<Output = Result<Step<T>, Error>> + Send + 'a>>;

/// A value one request computes at most once and keeps across its compare-and-set
/// retries (an Argon2 result, a roster entry): the lock is never held across an await.
#[derive(Debug)]
pub(super) struct Memo<T>(Mutex<Option<T>>);

impl<T: Clone> Memo<T> {
    pub(super) fn new() -> Self {
        Memo(Mutex::new(None))
    }

    pub(super) fn get(&self) -> Option<T> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn set(&self, value: T) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }

    /// The value, from `compute` the first time it is asked for.
    pub(super) async fn get_or_try<E, F>(&self, compute: impl FnOnce() -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        let value = compute().await?;
        self.set(value.clone());
        Ok(value)
    }
}

/// The account a typed login ID names; none when the text cannot be a login ID (it then
/// gets the same answer, after the same Argon2 work, as an unknown one).
pub(super) fn by_login_id(login_id: &str) -> Option<AccountLoad> {
    LoginId::parse(login_id)
        .ok()
        .map(|id| AccountLoad::By(AccountLookup::LoginId(id)))
}

/// What one step reads before it decides: the store's own request, one round trip.
pub(super) use crate::ports::Load;

/// The account `by` finds and its flows: what a step on an account that no flow names
/// reads (a logged-in member's change, the insurer's side).
pub(super) fn account_with_flows(by: AccountLookup) -> Load {
    Load::new().account(AccountLoad::By(by)).account_flows()
}

/// Counter keys as the store reads them.
pub(super) fn rendered(keys: impl IntoIterator<Item = CounterKey>) -> Vec<String> {
    keys.into_iter().map(|k| k.render()).collect()
}

/// What [`Load`] read: the store's answer, with the accessors the steps' decisions
/// take it through.
pub(super) use crate::ports::Loaded;

impl Loaded {
    /// The `i`-th counter of [`Load::counters`].
    pub(super) fn counter(&self, i: usize) -> Option<&Versioned<Counter>> {
        self.counters.get(i).and_then(Option::as_ref)
    }

    /// The refusal counter [`Portal::password_load`] read (its last counter), keyed `key`.
    pub(super) fn refusals<'a>(&'a self, key: &'a CounterKey) -> Refusals<'a> {
        Refusals {
            key,
            counter: self.counters.last().and_then(Option::as_ref),
        }
    }

    /// The account and its flows, as the core's decisions take them.
    pub(super) fn view(&self) -> AccountView<'_> {
        AccountView {
            account: self.account.as_ref(),
            flows: &self.account_flows,
        }
    }

    /// The start budgets read first among [`Load::counters`] (see
    /// [`Portal::start_counters`]), and the counters after them.
    pub(super) fn start_budgets<'a>(
        &'a self,
        requester: Option<&'a CounterKey>,
    ) -> (StartBudgets<'a>, &'a [Option<Versioned<Counter>>]) {
        let read = usize::from(requester.is_some()) + 1;
        let (starts, rest) = self.counters.split_at(read.min(self.counters.len()));
        let budgets = StartBudgets {
            portal: starts.first().and_then(Option::as_ref),
            requester: requester.map(|key| (key, starts.get(1).and_then(Option::as_ref))),
        };
        (budgets, rest)
    }

    /// The found flow's state, when it is a registration.
    pub(super) fn registration(&self) -> Option<&RegistrationState> {
        match self.flow.as_ref().map(|(f, _)| &f.value.state) {
            Some(FlowState::Registration(s)) => Some(s),
            _ => None,
        }
    }

    /// The found flow as the core's decision functions take it.
    pub(super) fn found(&self) -> Option<(&Versioned<FlowRecord>, &TokenDigest)> {
        self.flow.as_ref().map(|(r, d)| (r, d))
    }
}

impl Portal {
    /// Runs `step` and answers no sooner than [`Policy::answer_floor`] after it began,
    /// plus a fresh random fraction of up to a fifth of it (SEC-07, SEC-37, SEC-40): what
    /// the steps that may or may not find an account still do differently is hidden under
    /// the floor, and the spread keeps what is left (a timer's phase, microseconds) from
    /// lining up into a measurable shift.
    ///
    /// [`Policy::answer_floor`]: crate::Policy::answer_floor
    pub(super) async fn floored<T>(&self, step: impl Future<Output = T>) -> T {
        let began = tokio::time::Instant::now();
        let answer = step.await;
        let floor =
            std::time::Duration::try_from(self.inner.policy.answer_floor).unwrap_or_default();
        if floor.is_zero() {
            // No floor: no timer either (a runtime without Tokio's timer is fine then).
            return answer;
        }
        let jitter = (floor / 5).mul_f64(rand::random::<f64>());
        tokio::time::sleep_until(began + floor + jitter).await;
        answer
    }

    /// The requester's flow-start counter, when the host named a requester.
    pub(super) fn requester_counter(&self) -> Option<CounterKey> {
        self.requester
            .as_deref()
            .map(|r| CounterKey::flow_starts_from(r, &self.inner.keys))
    }

    /// The start budgets' counters, to read first in a flow-starting step's load: the
    /// portal's, then the requester's (`requester` from [`Portal::requester_counter`]).
    pub(super) fn start_counters(requester: Option<&CounterKey>) -> Vec<String> {
        rendered(std::iter::once(CounterKey::FlowStarts).chain(requester.cloned()))
    }

    /// The load of a step that starts a flow for a typed address (R1, the forgot-ID
    /// form): the account holding the address, the start budgets (the requester's key is
    /// returned beside it), and the address's mail counters under every accepted key.
    pub(super) fn address_start_load(&self, email: &EmailAddress) -> (Load, Option<CounterKey>) {
        let requester = self.requester_counter();
        let mut counters = Self::start_counters(requester.as_ref());
        counters.extend(rendered(CounterKey::mails_to_all(email, &self.inner.keys)));
        let load = Load {
            account: Some(AccountLoad::By(AccountLookup::Email(email.clone()))),
            counters,
            ..Load::default()
        };
        (load, requester)
    }

    /// `load` for a step that checks a typed login ID and password (L1, R2'), which also
    /// reads the account and the typed ID's refusal counter (returned beside it): a
    /// refusal writes that counter where a wrong password writes the account (SEC-23).
    pub(super) fn password_load(&self, login_id: &str, mut load: Load) -> (Load, CounterKey) {
        let refused = CounterKey::refused_logins(login_id, &self.inner.keys);
        load.account = by_login_id(login_id);
        load.counters.push(refused.render());
        (load, refused)
    }

    /// A load of the flow the member's bearer secret finds, its account and the account's
    /// flows: what a step that changes the account, or ends its other flows, reads.
    pub(super) fn flow_with_account_load(&self, secret: &impl Bearer) -> Load {
        Load {
            account: Some(AccountLoad::OfFlow),
            account_flows: true,
            ..self.flow_load(secret)
        }
    }

    /// A load of the flow the member's bearer secret finds (by its digest under every
    /// accepted key).
    pub(super) fn flow_load(&self, secret: &impl Bearer) -> Load {
        Load {
            flow: secret.candidates(&self.inner.keys),
            ..Load::default()
        }
    }

    /// Reads what `load` names, in one [`Store::load`](crate::ports::Store::load): one
    /// round trip on the SQL stores.
    pub(super) async fn load(&self, load: &Load) -> Result<Loaded, Error> {
        Ok(self.inner.store.load(load).await?)
    }

    /// Runs one step: reads `load`, asks `decide`, and carries the step out, reading and
    /// deciding again after a lost compare-and-set race. `decide` may await (Argon2, the
    /// roster) but holds no policy: that is the core's.
    ///
    /// The whole step runs in its `kenpo.step` span and is counted under `name`
    /// ([`observe`](crate::observe)).
    pub(super) async fn drive<'a, T>(
        &'a self,
        name: StepName,
        load: &Load,
        decide: impl FnMut(Loaded, OffsetDateTime) -> Deciding<'a, T>,
    ) -> Result<T, Error> {
        observe::step(name, self.attempts(load, decide, None)).await
    }

    /// [`drive`](Self::drive) for a step that answers with a mail receipt: its first
    /// mail gets the receipt's identifier, and when it mails nothing (an address with
    /// no account, a spent budget) a stand-in row does, so the receipt answers
    /// [`Portal::mail_status`] like any other; `kind` says how long that row lives
    /// ([`delivery::receipt_useful_until`]).
    pub(super) async fn drive_receipted<'a, T>(
        &'a self,
        name: StepName,
        (load, kind): (&Load, Receipted),
        decide: impl FnMut(Loaded, OffsetDateTime) -> Deciding<'a, T>,
    ) -> Result<(T, MailId), Error> {
        let receipt = MailId::generate(&mut Self::rng());
        let answer =
            observe::step(name, self.attempts(load, decide, Some((receipt, kind)))).await?;
        Ok((answer, receipt))
    }

    /// [`decide`](Self::decide) for a step that answers with a mail receipt (see
    /// [`drive_receipted`](Self::drive_receipted)).
    pub(super) async fn decide_receipted<'a, T: Send + 'a>(
        &'a self,
        name: StepName,
        load: (&Load, Receipted),
        mut decide: impl FnMut(&Loaded, Env<'_>, &mut ThreadRng) -> Step<T>,
    ) -> Result<(T, MailId), Error> {
        self.drive_receipted(name, load, move |loaded, now| {
            let step = decide(&loaded, self.env(now), &mut Self::rng());
            Box::pin(std::future::ready(Ok(step)))
        })
        .await
    }

    /// [`drive`](Self::drive)'s rounds: read, decide, carry out, until one commits.
    async fn attempts<'a, T>(
        &'a self,
        load: &Load,
        mut decide: impl FnMut(Loaded, OffsetDateTime) -> Deciding<'a, T>,
        receipt: Option<(MailId, Receipted)>,
    ) -> Result<T, Error> {
        for retries in 0..MAX_CAS_RETRIES {
            if retries > 0 {
                observe::retried(retries);
            }
            let now = self.now();
            let loaded = self.load(load).await?;
            let step = decide(loaded, now).await?;
            if let Some(answer) = self.carry_out(step, receipt, now).await? {
                return answer;
            }
        }
        Err(busy())
    }

    /// [`drive`](Self::drive) for a step whose decision awaits nothing: `decide` gets
    /// what was loaded, the environment and an RNG, and is the core's decision function.
    pub(super) async fn decide<'a, T: Send + 'a>(
        &'a self,
        name: StepName,
        load: &Load,
        mut decide: impl FnMut(&Loaded, Env<'_>, &mut ThreadRng) -> Step<T>,
    ) -> Result<T, Error> {
        self.drive(name, load, move |loaded, now| {
            let step = decide(&loaded, self.env(now), &mut Self::rng());
            Box::pin(std::future::ready(Ok(step)))
        })
        .await
    }

    /// Commits a step's writes with its mails (the outbox rows), then tries the mails,
    /// records its audit events and returns its answer. `None` when the commit lost a
    /// race: nothing was written, and the step must be decided again from a fresh read.
    ///
    /// `receipt` names the step's first mail (or a stand-in, when it mails nothing) if
    /// the step answers with a receipt and succeeds; its row lives as the step decided
    /// at `now`, the instant the decision was made at.
    pub(super) async fn carry_out<T>(
        &self,
        mut step: Step<T>,
        receipt: Option<(MailId, Receipted)>,
        now: OffsetDateTime,
    ) -> Result<Option<Result<T, Error>>, Error> {
        let receipt = receipt
            .filter(|_| step.answer.is_ok())
            .map(|(id, kind)| (id, delivery::receipt_useful_until(kind, self.env(now))));
        let dispatch = &self.inner.dispatch;
        let mails = std::mem::take(&mut step.mails);
        let queued = dispatch.queue(mails, std::mem::take(&mut step.refunds), receipt, now);
        if !step.writes.is_empty() || !queued.is_empty() {
            let mut commit = commit_of(std::mem::take(&mut step.writes)).ok_or_else(busy)?;
            commit.mails = queued
                .iter()
                .map(|q| MailWrite {
                    expect: Expect::Absent,
                    mail: q.row.clone(),
                })
                .collect();
            let probe = crate::store::CommitProbe::of(&commit);
            let outcome = match self.inner.store.commit(commit).await {
                Ok(outcome) => outcome,
                // The connection was lost or timed out during the commit: its outcome is
                // unknown. Read back rather than guess (#14): a commit that took effect
                // is carried through — mails, audit, answer — instead of leaving the
                // member with an error for a step that happened (an R3 whose 認証キー
                // would never be shown).
                Err(e) if e.is_retryable() => match &probe {
                    Some(probe) if probe.took_effect(&*self.inner.store).await => {
                        CommitOutcome::Committed
                    }
                    _ => return Err(e.into()),
                },
                Err(e) => return Err(e.into()),
            };
            let taken = match outcome {
                CommitOutcome::Committed => None,
                CommitOutcome::LoginIdTaken => Some(Taken::LoginId),
                CommitOutcome::EmailTaken => Some(Taken::Email),
                CommitOutcome::MemberTaken => Some(Taken::Member),
                _ => return Ok(None),
            };
            if let Some(taken) = taken {
                return Ok(match step.on_taken(taken) {
                    OnTaken::DecideAgain => None,
                    OnTaken::Refuse { rejection, audit } => {
                        for event in audit {
                            self.audit(event);
                        }
                        Some(Err(rejection.into()))
                    }
                });
            }
        }
        dispatch.deliver_committed(queued).await;
        for event in step.audit {
            self.audit(event);
        }
        Ok(Some(step.answer.map_err(Error::from)))
    }
}

/// The store's commit for a step's writes; `None` for an account write that names no
/// version (which only a `NewAccount` may do).
fn commit_of(writes: Vec<Write>) -> Option<Commit> {
    let mut commit = Commit::default();
    for w in writes {
        match w {
            Write::Flow { expect, id, state } => commit.flows.push(FlowWrite {
                expect,
                record: FlowRecord { id, state },
            }),
            Write::CreateAccount(new) => commit.accounts.push(AccountWrite {
                expect: Expect::Absent,
                account: new.into_account(),
            }),
            // The core never asks for an account update without a version read:
            // creating one takes a `NewAccount`.
            Write::Account {
                expect: Expect::Absent,
                ..
            } => return None,
            Write::Account { expect, account } => {
                commit.accounts.push(AccountWrite { expect, account })
            }
            Write::Counter(hit) => commit.counters.push(CounterWrite {
                expect: hit.expect,
                counter: hit.counter,
            }),
        }
    }
    Some(commit)
}
