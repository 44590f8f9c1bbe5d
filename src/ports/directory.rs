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
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MemberDirectory: Send + Sync {
    /// The member with exactly this 記号・番号・枝番, if any. Must not match loosely:
    /// the caller compares canonical forms and the second factor itself.
    async fn find(&self, card: &CardNumber) -> Result<Option<MemberRecord>, DirectoryError>;

    /// The member with this identifier (to re-check attributes at password reset).
    async fn get(&self, id: &MemberId) -> Result<Option<MemberRecord>, DirectoryError>;
}
