//! What a SQL backend supplies, and the [`Store`](crate::ports::Store) built on it.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{Rows, read};
use crate::model::{MailId, OutboxMail};
use crate::ports::{
    Account, AccountId, AccountLoad, AccountLookup, Commit, CommitOutcome, Counter, FlowRecord,
    Load, Loaded, StoreError, Versioned,
};
use crate::token::TokenDigest;

/// Which dead rows [`Dialect::purge`] removes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Dead {
    /// Flows whose `purge_after` has passed (their lookup keys go with them).
    Flows,
    /// Counters whose `expires_at` has passed.
    Counters,
    /// Outbox mails whose `purge_after` has passed.
    Mails,
}

/// The part of a store that differs between SQL databases.
#[async_trait]
pub(crate) trait Dialect: Send + Sync {
    /// Runs the read statement on a request document ([`read`]) and returns the answer
    /// document: one statement, so one round trip.
    async fn read(&self, request: String) -> Result<String, StoreError>;

    /// Applies every row atomically, or none, and says what happened.
    async fn apply(&self, rows: &Rows) -> Result<CommitOutcome, StoreError>;

    /// Removes up to `limit` (at least 1) dead rows of one kind, returns how many.
    async fn purge(&self, dead: Dead, now: OffsetDateTime, limit: i64) -> Result<u64, StoreError>;

    /// One outbox row by its id: `(version, leased_until, data)`.
    async fn mail_row(&self, id: &str) -> Result<Option<MailRead>, StoreError>;

    /// Leases up to `limit` claimable outbox rows (see
    /// [`Store::claim_mails`](crate::ports::Store::claim_mails)) in one statement and
    /// returns them at their new version.
    async fn claim_rows(&self, claim: &Claim) -> Result<Vec<MailRead>, StoreError>;
}

/// What [`Dialect::claim_rows`] is asked to lease: rows due and unleased at `now`, leased
/// until `leased_until`, at most `limit` (at least 1) of them.
pub(crate) struct Claim {
    pub(crate) now: OffsetDateTime,
    pub(crate) leased_until: OffsetDateTime,
    pub(crate) limit: i64,
}

/// An outbox row as read: its version, lease column and JSON.
pub(crate) struct MailRead {
    pub(crate) version: i64,
    pub(crate) leased_until: Option<OffsetDateTime>,
    pub(crate) data: String,
}

impl MailRead {
    /// The typed mail; the lease column is authoritative over the copy in the JSON.
    fn decode(self) -> Result<Versioned<OutboxMail>, StoreError> {
        let mut mail: OutboxMail = super::from_json(&self.data)?;
        mail.leased_until = self.leased_until;
        Ok(Versioned {
            version: super::version_from_db(self.version)?,
            value: mail,
        })
    }
}

/// [`Store::find_mail`](crate::ports::Store::find_mail) on a dialect.
pub(crate) async fn find_mail(
    d: &(impl Dialect + ?Sized),
    id: &MailId,
) -> Result<Option<Versioned<OutboxMail>>, StoreError> {
    d.mail_row(&id.to_hex())
        .await?
        .map(MailRead::decode)
        .transpose()
}

/// [`Store::claim_mails`](crate::ports::Store::claim_mails) on a dialect.
pub(crate) async fn claim_mails(
    d: &(impl Dialect + ?Sized),
    now: OffsetDateTime,
    leased_until: OffsetDateTime,
    limit: usize,
) -> Result<Vec<Versioned<OutboxMail>>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut claimed = d
        .claim_rows(&Claim {
            now,
            leased_until,
            limit,
        })
        .await?
        .into_iter()
        .map(MailRead::decode)
        .collect::<Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|m| (m.value.due_at, m.value.id));
    Ok(claimed)
}

/// Reads everything `load` names with one read statement; `flows_of` lists that
/// account's flows even if it has no account row.
async fn read_with(
    d: &(impl Dialect + ?Sized),
    load: &Load,
    flows_of: Option<&AccountId>,
) -> Result<Loaded, StoreError> {
    let text = d.read(read::request(load, flows_of)?).await?;
    read::answer(load, &text)
}

/// [`Store::load`](crate::ports::Store::load) on a dialect: one read statement.
pub(crate) async fn load(d: &(impl Dialect + ?Sized), load: &Load) -> Result<Loaded, StoreError> {
    read_with(d, load, None).await
}

/// [`Store::find_flow`](crate::ports::Store::find_flow) on a dialect.
pub(crate) async fn find_flow(
    d: &(impl Dialect + ?Sized),
    key: &TokenDigest,
) -> Result<Option<Versioned<FlowRecord>>, StoreError> {
    let loaded = read_with(d, &Load::new().flow([*key]), None).await?;
    Ok(loaded.flow.map(|(flow, _)| flow))
}

/// [`Store::flows_of_account`](crate::ports::Store::flows_of_account) on a dialect.
pub(crate) async fn flows_of_account(
    d: &(impl Dialect + ?Sized),
    account: &AccountId,
) -> Result<Vec<Versioned<FlowRecord>>, StoreError> {
    Ok(read_with(d, &Load::new(), Some(account))
        .await?
        .account_flows)
}

/// [`Store::find_account`](crate::ports::Store::find_account) on a dialect.
pub(crate) async fn find_account(
    d: &(impl Dialect + ?Sized),
    by: AccountLookup,
) -> Result<Option<Versioned<Account>>, StoreError> {
    let loaded = read_with(d, &Load::new().account(AccountLoad::By(by)), None).await?;
    Ok(loaded.account)
}

/// [`Store::load_counter`](crate::ports::Store::load_counter) on a dialect.
pub(crate) async fn load_counter(
    d: &(impl Dialect + ?Sized),
    key: &str,
) -> Result<Option<Versioned<Counter>>, StoreError> {
    let loaded = read_with(d, &Load::new().counter(key), None).await?;
    Ok(loaded.counters.into_iter().next().flatten())
}

/// [`Store::commit`](crate::ports::Store::commit) on a dialect.
pub(crate) async fn commit(
    d: &(impl Dialect + ?Sized),
    commit: Commit,
) -> Result<CommitOutcome, StoreError> {
    if commit.is_empty() {
        return Ok(CommitOutcome::Committed);
    }
    match Rows::new(&commit)? {
        Some(rows) => d.apply(&rows).await,
        // A version no row can have: the compare-and-set can only fail.
        None => Ok(CommitOutcome::Conflict),
    }
}

/// [`Store::purge_expired`](crate::ports::Store::purge_expired) on a dialect: flows
/// first, then counters, then outbox mails, each with what is left of `limit`.
pub(crate) async fn purge_expired(
    d: &(impl Dialect + ?Sized),
    now: OffsetDateTime,
    limit: usize,
) -> Result<usize, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    if limit == 0 {
        return Ok(0);
    }
    let mut removed: u64 = 0;
    for dead in [Dead::Flows, Dead::Counters, Dead::Mails] {
        let left = limit.saturating_sub(i64::try_from(removed).unwrap_or(i64::MAX));
        if left <= 0 {
            break;
        }
        removed = removed.saturating_add(d.purge(dead, now, left).await?);
    }
    Ok(usize::try_from(removed).unwrap_or(usize::MAX))
}

/// Implements [`Store`](crate::ports::Store) for a type that implements [`Dialect`],
/// with the functions of this module: each method forwards to the function of its name.
macro_rules! impl_store {
    ($store:ty) => {
        $crate::store::sql::dialect::impl_store! {
            $store;
            fn find_flow(key: &$crate::token::TokenDigest)
                -> Option<$crate::ports::Versioned<$crate::ports::FlowRecord>>;
            fn flows_of_account(account: &$crate::ports::AccountId)
                -> Vec<$crate::ports::Versioned<$crate::ports::FlowRecord>>;
            fn find_account(by: $crate::ports::AccountLookup)
                -> Option<$crate::ports::Versioned<$crate::ports::Account>>;
            fn load_counter(key: &str)
                -> Option<$crate::ports::Versioned<$crate::ports::Counter>>;
            fn load(load: &$crate::ports::Load) -> $crate::ports::Loaded;
            fn commit(commit: $crate::ports::Commit) -> $crate::ports::CommitOutcome;
            fn purge_expired(now: ::time::OffsetDateTime, limit: usize) -> usize;
            fn find_mail(id: &$crate::model::MailId)
                -> Option<$crate::ports::Versioned<$crate::model::OutboxMail>>;
            fn claim_mails(
                now: ::time::OffsetDateTime,
                leased_until: ::time::OffsetDateTime,
                limit: usize
            ) -> Vec<$crate::ports::Versioned<$crate::model::OutboxMail>>;
        }
    };
    ($store:ty; $(fn $method:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {
        #[async_trait::async_trait]
        impl $crate::ports::Store for $store {
            $(
                async fn $method(&self, $($arg: $ty),*)
                    -> Result<$ok, $crate::ports::StoreError>
                {
                    $crate::store::sql::dialect::$method(self, $($arg),*).await
                }
            )*
        }
    };
}
pub(crate) use impl_store;
