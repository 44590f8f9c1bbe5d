//! The `MemberDirectory` port: the insurer's roster.

use crate::domain::CardNumber;
use crate::error::BoxError;
use crate::model::{MemberId, MemberRecord};
use async_trait::async_trait;

/// A failure of the roster backend (its own error is the source).
#[derive(Debug, thiserror::Error)]
#[error("member directory failed")]
pub struct DirectoryError(#[source] pub BoxError);

/// The insurer roster. The library does the matching, so every host gets the same
/// enumeration-safe, attempt-limited identity check (SEC-09).
///
/// # Implementing this port
///
/// Look the member up in your 資格 data by the exact, canonical 記号・番号・枝番
/// ([`CardNumber::canonical`]) and return the whole entry — birth date, kana name if you
/// have it, and whether the member is still insured ([`MemberRecord::eligible`], false
/// after 資格喪失). Do not compare the birth date yourself and do not match loosely: the
/// library compares, counts the attempts and never says which attribute was wrong. A
/// failure of your backend is a [`DirectoryError`] with your error as its source (the
/// member's step then fails as a host error, and nothing is spent). Use
/// `#[kenpo_auth::async_trait]` (re-exported) on the `impl`:
///
/// ```
/// use std::collections::HashMap;
///
/// use kenpo_auth::domain::CardNumber;
/// use kenpo_auth::ports::{DirectoryError, MemberDirectory, MemberId, MemberRecord};
///
/// /// The roster as loaded from the insurer's nightly extract, keyed by canonical card
/// /// number.
/// struct NightlyRoster(HashMap<String, MemberRecord>);
///
/// impl NightlyRoster {
///     fn new(records: impl IntoIterator<Item = MemberRecord>) -> Self {
///         NightlyRoster(
///             records
///                 .into_iter()
///                 .map(|r| (r.card_number.canonical(), r))
///                 .collect(),
///         )
///     }
/// }
///
/// #[kenpo_auth::async_trait]
/// impl MemberDirectory for NightlyRoster {
///     async fn find(&self, card: &CardNumber) -> Result<Option<MemberRecord>, DirectoryError> {
///         Ok(self.0.get(&card.canonical()).cloned())
///     }
///
///     async fn get(&self, id: &MemberId) -> Result<Option<MemberRecord>, DirectoryError> {
///         Ok(self.0.values().find(|r| r.member_id == *id).cloned())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # use kenpo_auth::testkit::fixtures;
/// let roster = NightlyRoster::new(fixtures::sample_members());
/// let typed = CardNumber::parse("９９９-１２３４５６-００")?; // full-width, as typed
/// let found = roster.find(&typed).await?.ok_or("in the roster")?;
/// assert_eq!(found.member_id, MemberId::new("M001"));
/// # Ok(())
/// # }
/// ```
///
/// With a database, `find` is one indexed query on the canonical card number; wrap the
/// driver's error: `DirectoryError(Box::new(e))`.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MemberDirectory: Send + Sync {
    /// The member with exactly this 記号・番号・枝番, if any. Must not match loosely:
    /// the caller compares canonical forms and the second factor itself.
    async fn find(&self, card: &CardNumber) -> Result<Option<MemberRecord>, DirectoryError>;

    /// The member with this identifier (to re-check attributes at password reset).
    async fn get(&self, id: &MemberId) -> Result<Option<MemberRecord>, DirectoryError>;
}
