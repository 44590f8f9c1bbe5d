//! `MemoryStore`: the reference store. Correct under concurrency (one lock around
//! every commit), not durable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::model::{Expect, MailId, OutboxMail};
use crate::ports::{
    Account, AccountId, AccountLoad, AccountLookup, AccountWrite, Commit, CommitOutcome, Counter,
    FlowId, FlowRecord, Load, Loaded, MemberId, Store, StoreError, Version, Versioned,
};
use crate::token::TokenDigest;

#[derive(Default)]
struct Inner {
    flows: HashMap<FlowId, Versioned<FlowRecord>>,
    flow_keys: HashMap<TokenDigest, FlowId>,
    /// An account's flows in the order they were created (the conformance suite's
    /// promise for `flows_of_account`).
    flows_by_account: HashMap<AccountId, Vec<FlowId>>,
    accounts: HashMap<AccountId, Versioned<Account>>,
    by_login_id: HashMap<String, AccountId>,
    by_email: HashMap<String, AccountId>,
    by_member: HashMap<MemberId, AccountId>,
    counters: HashMap<String, Versioned<Counter>>,
    mails: HashMap<MailId, Versioned<OutboxMail>>,
}

/// An in-memory [`Store`]: the reference every other store is tested against, and the
/// store of tests, demos and the walkthrough. All state is lost when it is dropped.
///
/// Clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore")
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied commit (commits
        // are checked fully before anything is written), so a poisoned lock is safe to
        // reuse.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of flows held (for tests and memory measurements).
    pub fn flow_count(&self) -> usize {
        self.lock().flows.len()
    }

    /// Every account held, for tests that inspect what was stored.
    ///
    /// # Danger
    ///
    /// Reads past every rule of the journeys (and holds every password hash): for tests
    /// only, never for a portal's pages.
    pub fn danger_accounts(&self) -> Vec<Account> {
        self.lock()
            .accounts
            .values()
            .map(|v| v.value.clone())
            .collect()
    }

    /// A JSON-like dump of everything stored, for tests that check no plaintext
    /// secret reaches the store (SEC-03, SEC-04).
    ///
    /// # Danger
    ///
    /// Everything the store holds, in one string: for tests only, never for a log.
    pub fn danger_dump(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        for f in inner.flows.values() {
            out.push_str(&format!("{:?}\n", f));
            for k in f.value.state.lookup_keys() {
                out.push_str(&k.to_hex());
                out.push('\n');
            }
        }
        for a in inner.accounts.values() {
            out.push_str(&format!(
                "{:?} {} {}\n",
                a,
                a.value.password_hash.as_str(),
                a.value.security_stamp.as_str()
            ));
        }
        for c in inner.counters.values() {
            out.push_str(&format!("{:?}\n", c));
        }
        for m in inner.mails.values() {
            out.push_str(&format!(
                "{:?} {}\n",
                m,
                String::from(m.value.sealed.clone())
            ));
        }
        out
    }
}

fn email_key(a: &Account) -> Option<String> {
    a.email.as_ref().map(|e| e.canonical().to_owned())
}

impl Inner {
    /// Checks every write of a commit without changing anything.
    fn check(&self, commit: &Commit) -> CommitOutcome {
        for w in &commit.flows {
            let id = &w.record.id;
            match (w.expect.version(), self.flows.get(id)) {
                (None, Some(_)) => return CommitOutcome::Conflict,
                (None, None) => {
                    for k in w.record.state.lookup_keys() {
                        if self.flow_keys.contains_key(&k) {
                            return CommitOutcome::Conflict;
                        }
                    }
                }
                (Some(v), Some(cur)) if cur.version == v => {
                    for k in w.record.state.lookup_keys() {
                        if self.flow_keys.get(&k).is_some_and(|owner| owner != id) {
                            return CommitOutcome::Conflict;
                        }
                    }
                }
                _ => return CommitOutcome::Conflict,
            }
        }
        for w in &commit.counters {
            let cur = self.counters.get(&w.counter.key).map(|c| c.version);
            if cur != w.expect.version() {
                return CommitOutcome::Conflict;
            }
        }
        for w in &commit.mails {
            let cur = self.mails.get(&w.mail.id).map(|m| m.version);
            if cur != w.expect.version() {
                return CommitOutcome::Conflict;
            }
        }
        for w in &commit.accounts {
            let (account, expected) = (&w.account, w.expect.version());
            let cur = self.accounts.get(&account.id).map(|a| a.version);
            if cur != expected {
                return CommitOutcome::Conflict;
            }
            let other = |owner: Option<&AccountId>| owner.is_some_and(|o| *o != account.id);
            if other(self.by_login_id.get(account.login_id.as_str())) {
                return CommitOutcome::LoginIdTaken;
            }
            if let Some(e) = email_key(account)
                && other(self.by_email.get(&e))
            {
                return CommitOutcome::EmailTaken;
            }
            if other(self.by_member.get(&account.member)) {
                return CommitOutcome::MemberTaken;
            }
        }
        CommitOutcome::Committed
    }

    fn apply(&mut self, commit: Commit) {
        for w in commit.flows {
            let id = w.record.id.clone();
            let mut old_account = None;
            if let Some(old) = self.flows.remove(&id) {
                for k in old.value.state.lookup_keys() {
                    self.flow_keys.remove(&k);
                }
                old_account = old.value.state.account().cloned();
            }
            let new_account = w.record.state.account().cloned();
            // Only a flow that is new to an account is appended, so no list is scanned
            // on the hot path; a flow moving between accounts (nothing does that today)
            // leaves its old list.
            if old_account != new_account {
                if let Some(acc) = &old_account
                    && let Some(list) = self.flows_by_account.get_mut(acc)
                {
                    list.retain(|x| *x != id);
                }
                if let Some(acc) = new_account {
                    self.flows_by_account
                        .entry(acc)
                        .or_default()
                        .push(id.clone());
                }
            }
            for k in w.record.state.lookup_keys() {
                self.flow_keys.insert(k, id.clone());
            }

            self.flows.insert(id, written(w.expect, w.record));
        }
        for w in commit.counters {
            self.counters
                .insert(w.counter.key.clone(), written(w.expect, w.counter));
        }
        for w in commit.mails {
            self.mails.insert(w.mail.id, written(w.expect, w.mail));
        }
        for w in commit.accounts {
            let AccountWrite { expect, account } = w;
            if let Some(old) = self.accounts.get(&account.id) {
                let old = old.value.clone();
                self.by_login_id.remove(old.login_id.as_str());
                if let Some(e) = email_key(&old) {
                    self.by_email.remove(&e);
                }
                self.by_member.remove(&old.member);
            }
            self.by_login_id
                .insert(account.login_id.as_str().to_owned(), account.id.clone());
            if let Some(e) = email_key(&account) {
                self.by_email.insert(e, account.id.clone());
            }
            self.by_member
                .insert(account.member.clone(), account.id.clone());
            self.accounts
                .insert(account.id.clone(), written(expect, account));
        }
    }
}

/// `value` as a write that expected `expect` leaves it: at the first version if it was
/// absent, else at the version after the expected one.
fn written<V>(expect: Expect, value: V) -> Versioned<V> {
    Versioned {
        version: expect.version().map_or(Version::FIRST, Version::next),
        value,
    }
}

/// Reads, each under the caller's lock.
impl Inner {
    fn find_flow(&self, key: &TokenDigest) -> Option<Versioned<FlowRecord>> {
        self.flow_keys
            .get(key)
            .and_then(|id| self.flows.get(id))
            .cloned()
    }

    fn flows_of_account(&self, account: &AccountId) -> Vec<Versioned<FlowRecord>> {
        self.flows_by_account
            .get(account)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| self.flows.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn find_account(&self, by: &AccountLookup) -> Option<Versioned<Account>> {
        let id = match by {
            AccountLookup::Id(id) => Some(id),
            AccountLookup::LoginId(l) => self.by_login_id.get(l.as_str()),
            AccountLookup::Email(e) => self.by_email.get(e.canonical()),
            AccountLookup::Member(m) => self.by_member.get(m),
        };
        id.and_then(|id| self.accounts.get(id)).cloned()
    }

    fn load_counter(&self, key: &str) -> Option<Versioned<Counter>> {
        self.counters.get(key).cloned()
    }

    fn load(&self, load: &Load) -> Loaded {
        let flow = load
            .flow
            .iter()
            .find_map(|d| self.find_flow(d).map(|f| (f, *d)));
        let account = match &load.account {
            None => None,
            Some(AccountLoad::By(by)) => self.find_account(by),
            Some(AccountLoad::OfFlow) => flow
                .as_ref()
                .and_then(|(f, _)| f.value.state.account())
                .and_then(|id| self.accounts.get(id).cloned()),
        };
        let account_flows = match &account {
            Some(a) if load.account_flows => self.flows_of_account(&a.value.id),
            _ => Vec::new(),
        };
        let counters = load.counters.iter().map(|k| self.load_counter(k)).collect();
        let account_counters = load
            .account_counters
            .iter()
            .map(|prefix| {
                let id = &account.as_ref()?.value.id;
                self.load_counter(&format!("{prefix}{id}"))
            })
            .collect();
        let address_taken = load.address_taken.as_ref().is_some_and(|e| {
            self.find_account(&AccountLookup::Email(e.clone()))
                .is_some()
        });
        Loaded {
            address_taken,
            account_counters,
            counters,
            account_flows,
            account,
            flow,
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn find_flow(
        &self,
        key: &TokenDigest,
    ) -> Result<Option<Versioned<FlowRecord>>, StoreError> {
        Ok(self.lock().find_flow(key))
    }

    async fn flows_of_account(
        &self,
        account: &AccountId,
    ) -> Result<Vec<Versioned<FlowRecord>>, StoreError> {
        Ok(self.lock().flows_of_account(account))
    }

    async fn find_account(
        &self,
        by: AccountLookup,
    ) -> Result<Option<Versioned<Account>>, StoreError> {
        Ok(self.lock().find_account(&by))
    }

    async fn load_counter(&self, key: &str) -> Result<Option<Versioned<Counter>>, StoreError> {
        Ok(self.lock().load_counter(key))
    }

    /// Every part under one lock: consistent with one another.
    async fn load(&self, load: &Load) -> Result<Loaded, StoreError> {
        Ok(self.lock().load(load))
    }

    async fn commit(&self, commit: Commit) -> Result<CommitOutcome, StoreError> {
        let mut inner = self.lock();
        let outcome = inner.check(&commit);
        if outcome == CommitOutcome::Committed {
            inner.apply(commit);
        }
        Ok(outcome)
    }

    async fn find_mail(&self, id: &MailId) -> Result<Option<Versioned<OutboxMail>>, StoreError> {
        Ok(self.lock().mails.get(id).cloned())
    }

    /// Under the one lock: a mail is leased to one claimant at a time.
    async fn claim_mails(
        &self,
        now: OffsetDateTime,
        leased_until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Versioned<OutboxMail>>, StoreError> {
        let mut inner = self.lock();
        let mut due: Vec<(OffsetDateTime, MailId)> = inner
            .mails
            .values()
            .filter(|m| m.value.claimable(now))
            .map(|m| (m.value.due_at, m.value.id))
            .collect();
        due.sort();
        due.truncate(limit);
        let mut claimed = Vec::with_capacity(due.len());
        for (_, id) in due {
            if let Some(m) = inner.mails.get_mut(&id) {
                m.version = m.version.next();
                m.value.leased_until = Some(leased_until);
                claimed.push(m.clone());
            }
        }
        Ok(claimed)
    }

    async fn purge_expired(&self, now: OffsetDateTime, limit: usize) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let dead_flows: Vec<FlowId> = inner
            .flows
            .iter()
            .filter(|(_, f)| f.value.state.purge_after() <= now)
            .map(|(id, _)| id.clone())
            .take(limit)
            .collect();
        let mut removed = 0;
        for id in dead_flows {
            if let Some(f) = inner.flows.remove(&id) {
                for k in f.value.state.lookup_keys() {
                    inner.flow_keys.remove(&k);
                }
                if let Some(acc) = f.value.state.account()
                    && let Some(list) = inner.flows_by_account.get_mut(acc)
                {
                    list.retain(|x| *x != id);
                }
                removed += 1;
            }
        }
        let dead_counters: Vec<String> = inner
            .counters
            .iter()
            .filter(|(_, c)| c.value.expires_at <= now)
            .map(|(k, _)| k.clone())
            .take(limit.saturating_sub(removed))
            .collect();
        for k in dead_counters {
            inner.counters.remove(&k);
            removed += 1;
        }
        let dead_mails: Vec<MailId> = inner
            .mails
            .values()
            .filter(|m| m.value.purge_after <= now)
            .map(|m| m.value.id)
            .take(limit.saturating_sub(removed))
            .collect();
        for id in dead_mails {
            inner.mails.remove(&id);
            removed += 1;
        }
        Ok(removed)
    }
}
