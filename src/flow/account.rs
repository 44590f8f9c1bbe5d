//! メールアドレス変更 for a logged-in member, as a state machine.
//!
//! ```text
//! request (fresh re-auth) ──▶ AwaitingConfirmation ──POST link from the new address──▶ Ended(Confirmed)
//!                              ├─ a newer change request ───────────────────────────▶ Ended(Superseded)
//!                              └─ password / e-mail changed, account disabled ──────▶ Ended(AccountChanged)
//! ```
//!
//! The new address is inactive until its owner opens the link (SEC-36); the account
//! keeps its old address until then.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::registration::LinkStatus;
use super::{Env, TOMBSTONE_TTL, deadline};
use crate::domain::EmailAddress;
use crate::error::Rejection;
use crate::model::AccountId;
use crate::token::{EmailChangeLinkToken, TokenDigest};

/// The confirmation link was mailed to the new address; waiting for it to come back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingEmailConfirmation {
    /// Whose address changes.
    pub account: AccountId,
    /// The address the account will get.
    pub new_email: EmailAddress,
    /// Digest of the link.
    pub link: TokenDigest,
    /// When the link dies (30 min by default).
    pub expires_at: OffsetDateTime,
}

/// Why an address change ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EmailChangeEndReason {
    /// The new address was confirmed and is now the account's.
    Confirmed,
    /// A newer change was requested.
    Superseded,
    /// The password or e-mail changed, or the account was disabled (SEC-34).
    AccountChanged,
}

/// An address change that is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailChangeEnd {
    /// Whose change it was.
    pub account: AccountId,
    /// Digest of the (spent) link, kept to answer "already used".
    pub link: TokenDigest,
    /// Why it ended.
    pub reason: EmailChangeEndReason,
    /// When.
    pub at: OffsetDateTime,
}

/// Where an address change is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EmailChangeState {
    /// See [`AwaitingEmailConfirmation`].
    AwaitingConfirmation(AwaitingEmailConfirmation),
    /// See [`EmailChangeEnd`].
    Ended(EmailChangeEnd),
}

/// A fresh address change for `account`, and the link to mail to `new_email`.
pub fn start<R: rand::CryptoRng + ?Sized>(
    account: AccountId,
    new_email: EmailAddress,
    env: Env<'_>,
    rng: &mut R,
) -> (AwaitingEmailConfirmation, EmailChangeLinkToken) {
    let token = EmailChangeLinkToken::generate(rng);
    let state = AwaitingEmailConfirmation {
        account,
        new_email,
        link: token.digest(env.keys),
        expires_at: deadline(env.now, env.policy.email_change_link_ttl),
    };
    (state, token)
}

impl EmailChangeState {
    /// The account whose address changes.
    pub fn account(&self) -> &AccountId {
        match self {
            EmailChangeState::AwaitingConfirmation(s) => &s.account,
            EmailChangeState::Ended(s) => &s.account,
        }
    }

    /// The GET of the link: what it would do if posted now, consuming nothing.
    pub fn link_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        match self {
            EmailChangeState::AwaitingConfirmation(s) if s.link == *link => {
                if now >= s.expires_at {
                    LinkStatus::Expired
                } else {
                    LinkStatus::Valid {
                        expires_at: s.expires_at,
                    }
                }
            }
            EmailChangeState::Ended(s) if s.link == *link => LinkStatus::Used,
            _ => LinkStatus::Invalid,
        }
    }

    /// The POST of the link: the pending change, if the link may be used now. The
    /// portal commits [`EmailChangeState::confirm`] together with the account's new
    /// address.
    pub fn ready_to_confirm(
        &self,
        link: &TokenDigest,
        env: Env<'_>,
    ) -> Result<&AwaitingEmailConfirmation, Rejection> {
        match self.link_status(link, env.now) {
            LinkStatus::Valid { .. } => {}
            LinkStatus::Used => return Err(Rejection::LinkUsed),
            LinkStatus::Expired => return Err(Rejection::Expired),
            _ => return Err(Rejection::LinkInvalid),
        }
        match self {
            EmailChangeState::AwaitingConfirmation(s) => Ok(s),
            EmailChangeState::Ended(_) => Err(Rejection::LinkUsed),
        }
    }

    /// The change committed: the state to store together with the account.
    pub fn confirm(self, now: OffsetDateTime) -> EmailChangeState {
        self.end(EmailChangeEndReason::Confirmed, now)
    }

    /// Ends an open change for `reason`. `None` when it was already over.
    pub fn end_for(self, reason: EmailChangeEndReason, now: OffsetDateTime) -> Option<Self> {
        match self {
            EmailChangeState::Ended(_) => None,
            open => Some(open.end(reason, now)),
        }
    }

    fn end(self, reason: EmailChangeEndReason, now: OffsetDateTime) -> EmailChangeState {
        match self {
            EmailChangeState::AwaitingConfirmation(s) => EmailChangeState::Ended(EmailChangeEnd {
                account: s.account,
                link: s.link,
                reason,
                at: now,
            }),
            ended => ended,
        }
    }

    pub(crate) fn lookup_keys(&self) -> Vec<TokenDigest> {
        match self {
            EmailChangeState::AwaitingConfirmation(s) => vec![s.link],
            EmailChangeState::Ended(s) => vec![s.link],
        }
    }

    pub(crate) fn purge_after(&self) -> OffsetDateTime {
        match self {
            EmailChangeState::AwaitingConfirmation(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            EmailChangeState::Ended(s) => deadline(s.at, TOMBSTONE_TTL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::token::{DigestKey, DigestKeyring};
    use time::Duration;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-11-24 09:00 UTC);

    // SEC-36: the confirmation link lives email_change_link_ttl (30 min): usable at
    // expires_at - 1 s, refused at expires_at, and once confirmed it says "used".
    #[test]
    fn sec_36_confirmation_link_boundary_and_single_use() {
        let keys = DigestKeyring::new(DigestKey::new(1, [5u8; 32]).unwrap());
        let p = Policy::default();
        let env = |now| Env {
            now,
            policy: &p,
            keys: &keys,
        };
        let (s, token) = start(
            AccountId::from_stored("a1"),
            EmailAddress::parse("new@example.jp").unwrap(),
            env(T0),
            &mut rand::rng(),
        );
        let d = token.digest(&keys);
        let state = EmailChangeState::AwaitingConfirmation(s);
        let end = T0 + Duration::minutes(30);
        assert!(
            state
                .ready_to_confirm(&d, env(end - Duration::seconds(1)))
                .is_ok()
        );
        assert_eq!(
            state.ready_to_confirm(&d, env(end)).err(),
            Some(Rejection::Expired)
        );
        let done = state.confirm(T0);
        assert_eq!(
            done.ready_to_confirm(&d, env(T0)).err(),
            Some(Rejection::LinkUsed)
        );
        assert!(
            done.end_for(EmailChangeEndReason::AccountChanged, T0)
                .is_none()
        );
    }
}
