//! One member's account as the store keeps it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccountId, MemberId, SecurityStamp};
use crate::domain::{EmailAddress, LoginId, Nickname};
use crate::password_hash::PasswordHashString;

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
    /// Its second factors (2段階認証): none for accounts stored before they existed.
    #[serde(default, skip_serializing_if = "super::Factors::is_empty")]
    pub factors: super::Factors,
}
