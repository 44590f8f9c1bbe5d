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
    /// The 暗証キー screen the last L1 opened, for a moment: an L1 repeated with the
    /// right password within [`Policy::repeat_window`](crate::Policy::repeat_window) — a
    /// double tap, a reload, a lost response — is answered with the same screen and
    /// mails nothing (#14). Cleared when that screen closes or its code is tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recent_login: Option<RecentLogin>,
}

/// What an L1 keeps on the account so that a repeat answers the same screen: the
/// challenge handle sealed ([`SealPurpose::RecentLogin`](crate::seal::SealPurpose),
/// bound to the account), never in the clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RecentLogin {
    /// The challenge's digest (the flow it opened).
    pub challenge: crate::token::TokenDigest,
    /// The challenge handle, sealed.
    pub handle: crate::seal::Sealed,
    /// When L1 opened it.
    pub issued_at: OffsetDateTime,
    /// When its code stops working.
    pub expires_at: OffsetDateTime,
    /// The account's security stamp then: a password or address change since ends it.
    pub stamp: SecurityStamp,
    /// The receipt of its 暗証キー mail.
    pub receipt: super::MailId,
}

impl Account {
    /// The screen the last L1 opened ([`Account::recent_login`]), when it is the
    /// challenge `digest` names.
    pub fn recent_login_on(&self, digest: &crate::token::TokenDigest) -> Option<&RecentLogin> {
        self.recent_login
            .as_ref()
            .filter(|r| r.challenge == *digest)
    }
}

impl RecentLogin {
    /// Whether an L1 at `now` repeats this one: within `window` of it, its code alive,
    /// and the account unchanged since (`stamp`).
    pub fn repeatable(
        &self,
        now: OffsetDateTime,
        window: time::Duration,
        stamp: &SecurityStamp,
    ) -> bool {
        now < self.issued_at.saturating_add(window) && now < self.expires_at && self.stamp == *stamp
    }
}
