//! パスワードを忘れた方: the password reset as a state machine.
//!
//! ```text
//! request ──▶ AwaitingLinkOpen ──POST link──▶ AwaitingNewPassword ──roster ok + new password──▶ Ended(Completed)
//!               │                               │  └─ roster check failed (attempts spent)
//!               │                               ├─ tries exhausted ───────────▶ Ended(IdentityAttemptsExhausted)
//!               ├─ a newer reset link ──────────┴───────────────────────────▶ Ended(Superseded)
//!               └─ password / e-mail changed, account disabled ─────────────▶ Ended(AccountChanged)
//! ```
//!
//! The link is single use (SEC-38): opening it (POST) consumes it and binds the flow to
//! one browser with a [`FlowHandle`]. When [`Policy::recovery_requires_identity`] is on
//! (the default), the handle alone does not let the member set a password: a roster
//! attribute re-check (記号・番号・枝番 + 生年月日) must pass first, with the SEC-09 attempt
//! limits. Nothing about the account changes until the reset completes (SEC-37).
//!
//! [`Policy::recovery_requires_identity`]: crate::policy::Policy::recovery_requires_identity

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::registration::{IdentityClaim, LinkStatus, roster_matches};
use super::{Env, TOMBSTONE_TTL, deadline};
use crate::error::Rejection;
use crate::model::{AccountId, MemberRecord};
use crate::token::{FlowHandle, PasswordResetLinkToken, TokenDigest};

/// The reset link was mailed; waiting for the member to open it and press the button.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingResetLink {
    /// Whose password the link resets.
    pub account: AccountId,
    /// Digest of the link.
    pub link: TokenDigest,
    /// When the link dies (30 min by default, SEC-38).
    pub expires_at: OffsetDateTime,
}

/// The link was opened in one browser; waiting for the roster re-check and the new
/// password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingNewPassword {
    /// Whose password is being reset.
    pub account: AccountId,
    /// Digest of the (spent) link, kept to answer "already used".
    pub link: TokenDigest,
    /// Digest of the browser's flow handle.
    pub handle: TokenDigest,
    /// Roster checks made in this flow (SEC-09).
    pub attempts: u32,
    /// Whether the roster check passed in this flow. Once it has, a refused new password
    /// (too short, a context word …) can be retyped without repeating the check.
    pub identity_confirmed: bool,
    /// When the step ends.
    pub expires_at: OffsetDateTime,
}

/// Why a reset flow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResetEndReason {
    /// The new password was set.
    Completed,
    /// A newer reset link was mailed for the account.
    Superseded,
    /// The password or e-mail changed, or the account was disabled, while the flow was
    /// open (SEC-34).
    AccountChanged,
    /// Too many failed roster checks (SEC-09).
    IdentityAttemptsExhausted,
}

/// A reset flow that is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetEnd {
    /// Whose reset it was.
    pub account: AccountId,
    /// Every digest the flow used, kept to answer "already used".
    pub spent: Vec<TokenDigest>,
    /// Why it ended.
    pub reason: ResetEndReason,
    /// When.
    pub at: OffsetDateTime,
}

/// Where a password reset is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResetState {
    /// See [`AwaitingResetLink`].
    AwaitingLinkOpen(AwaitingResetLink),
    /// See [`AwaitingNewPassword`].
    AwaitingNewPassword(AwaitingNewPassword),
    /// See [`ResetEnd`].
    Ended(ResetEnd),
}

/// A reset transition whose new state must be stored whatever the member is told
/// (roster attempts are spent on failure too).
#[derive(Debug)]
pub struct ResetStep {
    /// The state to store.
    pub state: ResetState,
    /// What to tell the member once the state is stored.
    pub result: Result<(), Rejection>,
}

/// A fresh reset flow for `account`, and the link to mail to its registered address.
pub fn start<R: rand::CryptoRng + ?Sized>(
    account: AccountId,
    env: Env<'_>,
    rng: &mut R,
) -> (AwaitingResetLink, PasswordResetLinkToken) {
    let token = PasswordResetLinkToken::generate(rng);
    let state = AwaitingResetLink {
        account,
        link: token.digest(env.keys),
        expires_at: deadline(env.now, env.policy.password_reset_link_ttl),
    };
    (state, token)
}

impl ResetState {
    /// The account the reset belongs to.
    pub fn account(&self) -> &AccountId {
        match self {
            ResetState::AwaitingLinkOpen(s) => &s.account,
            ResetState::AwaitingNewPassword(s) => &s.account,
            ResetState::Ended(s) => &s.account,
        }
    }

    /// The GET of the link: what it would do if posted now, consuming nothing.
    pub fn link_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        match self {
            ResetState::AwaitingLinkOpen(s) if s.link == *link => {
                if now >= s.expires_at {
                    LinkStatus::Expired
                } else {
                    LinkStatus::Valid {
                        expires_at: s.expires_at,
                    }
                }
            }
            _ if self.lookup_keys().contains(link) => LinkStatus::Used,
            _ => LinkStatus::Invalid,
        }
    }

    /// The POST of the link: consumes it and binds the flow to this browser.
    pub fn open_link<R: rand::CryptoRng + ?Sized>(
        self,
        link: &TokenDigest,
        env: Env<'_>,
        rng: &mut R,
    ) -> Result<(ResetState, FlowHandle), Rejection> {
        match self.link_status(link, env.now) {
            LinkStatus::Valid { .. } => {}
            LinkStatus::Used => return Err(Rejection::LinkUsed),
            LinkStatus::Expired => return Err(Rejection::Expired),
            _ => return Err(Rejection::LinkInvalid),
        }
        let ResetState::AwaitingLinkOpen(s) = self else {
            return Err(Rejection::LinkInvalid);
        };
        let handle = FlowHandle::generate(rng);
        let next = AwaitingNewPassword {
            account: s.account,
            link: s.link,
            handle: handle.digest(env.keys),
            attempts: 0,
            identity_confirmed: false,
            expires_at: deadline(env.now, env.policy.credentials_step_ttl),
        };
        Ok((ResetState::AwaitingNewPassword(next), handle))
    }

    /// The roster re-check (SEC-09 limits): `record` is the roster entry of the
    /// account's member, `member_exhausted` the portal's answer from the per-member
    /// counter. The returned state always replaces the stored one. A flow whose check
    /// already passed answers `Ok` without comparing again.
    pub fn check_identity(
        self,
        handle: &TokenDigest,
        claim: &IdentityClaim,
        record: Option<&MemberRecord>,
        member_exhausted: bool,
        env: Env<'_>,
    ) -> ResetStep {
        let s = match self {
            ResetState::AwaitingNewPassword(s) if s.handle == *handle => s,
            other => {
                return ResetStep {
                    state: other,
                    result: Err(Rejection::WrongStep),
                };
            }
        };
        if env.now >= s.expires_at {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(s),
                result: Err(Rejection::Expired),
            };
        }
        if s.identity_confirmed {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(s),
                result: Ok(()),
            };
        }
        if s.attempts >= env.policy.identity_tries_per_flow {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(s),
                result: Err(Rejection::IdentityAttemptsExhausted),
            };
        }
        let matched = record.is_some_and(|r| roster_matches(claim, r));
        if matched && !member_exhausted {
            return ResetStep {
                state: ResetState::AwaitingNewPassword(AwaitingNewPassword {
                    identity_confirmed: true,
                    ..s
                }),
                result: Ok(()),
            };
        }
        let attempts = s.attempts + 1;
        let rejection = if member_exhausted {
            Rejection::IdentityAttemptsExhausted
        } else {
            Rejection::IdentityNotConfirmed
        };
        let state = if attempts >= env.policy.identity_tries_per_flow {
            ResetState::Ended(ResetEnd {
                account: s.account,
                spent: vec![s.link, s.handle],
                reason: ResetEndReason::IdentityAttemptsExhausted,
                at: env.now,
            })
        } else {
            ResetState::AwaitingNewPassword(AwaitingNewPassword { attempts, ..s })
        };
        ResetStep {
            state,
            result: Err(rejection),
        }
    }

    /// Whether the new password may be set now: the handle is this flow's, the step is
    /// alive, and the roster check passed (when the policy asks for it).
    pub fn ready_to_complete(
        &self,
        handle: &TokenDigest,
        env: Env<'_>,
    ) -> Result<&AwaitingNewPassword, Rejection> {
        match self {
            ResetState::AwaitingNewPassword(s) if s.handle == *handle => {
                if env.now >= s.expires_at {
                    Err(Rejection::Expired)
                } else if env.policy.recovery_requires_identity && !s.identity_confirmed {
                    Err(Rejection::IdentityNotConfirmed)
                } else {
                    Ok(s)
                }
            }
            _ => Err(Rejection::WrongStep),
        }
    }

    /// The reset committed: the state to store together with the account's new password.
    pub fn complete(self, now: OffsetDateTime) -> ResetState {
        ResetState::Ended(ResetEnd {
            account: self.account().clone(),
            spent: self.lookup_keys(),
            reason: ResetEndReason::Completed,
            at: now,
        })
    }

    /// Ends an open reset for `reason` (a newer link, a password change, a disable).
    /// `None` when it was already over.
    pub fn end_for(self, reason: ResetEndReason, now: OffsetDateTime) -> Option<ResetState> {
        match self {
            ResetState::Ended(_) => None,
            open => Some(ResetState::Ended(ResetEnd {
                account: open.account().clone(),
                spent: open.lookup_keys(),
                reason,
                at: now,
            })),
        }
    }

    pub(crate) fn lookup_keys(&self) -> Vec<TokenDigest> {
        match self {
            ResetState::AwaitingLinkOpen(s) => vec![s.link],
            ResetState::AwaitingNewPassword(s) => vec![s.link, s.handle],
            ResetState::Ended(s) => s.spent.clone(),
        }
    }

    pub(crate) fn purge_after(&self) -> OffsetDateTime {
        match self {
            ResetState::AwaitingLinkOpen(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            ResetState::AwaitingNewPassword(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            ResetState::Ended(s) => deadline(s.at, TOMBSTONE_TTL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{BirthDate, CardNumber};
    use crate::model::{MemberId, Relation};
    use crate::policy::Policy;
    use crate::token::{DigestKey, DigestKeyring};
    use time::Duration;
    use time::macros::datetime;

    fn keys() -> DigestKeyring {
        DigestKeyring::new(DigestKey::new(1, [3u8; 32]).unwrap())
    }

    fn env<'a>(now: OffsetDateTime, policy: &'a Policy, keys: &'a DigestKeyring) -> Env<'a> {
        Env { now, policy, keys }
    }

    fn record() -> MemberRecord {
        MemberRecord::new(
            MemberId::new("M1"),
            CardNumber::parse("999-123456-00").unwrap(),
            BirthDate::parse("1985-04-12").unwrap(),
            None,
            Relation::Insured,
            true,
        )
    }

    fn claim(birth: &str) -> IdentityClaim {
        IdentityClaim {
            card_number: CardNumber::parse("999-123456-00").unwrap(),
            birth_date: BirthDate::parse(birth).unwrap(),
            kana_name: None,
        }
    }

    const T0: OffsetDateTime = datetime!(2026-11-24 09:00 UTC);

    fn opened(policy: &Policy, keys: &DigestKeyring) -> (ResetState, TokenDigest, TokenDigest) {
        let mut rng = rand::rng();
        let (s, token) = start(
            AccountId::from_stored("a1"),
            env(T0, policy, keys),
            &mut rng,
        );
        let link = token.digest(keys);
        let (state, handle) = ResetState::AwaitingLinkOpen(s)
            .open_link(&link, env(T0, policy, keys), &mut rng)
            .unwrap();
        (state, link, handle.digest(keys))
    }

    // SEC-38: the link lives 30 minutes: valid at expires_at - 1 s, expired at expires_at.
    #[test]
    fn sec_38_link_boundary() {
        let (p, k) = (Policy::default(), keys());
        let mut rng = rand::rng();
        let (s, token) = start(AccountId::from_stored("a1"), env(T0, &p, &k), &mut rng);
        let state = ResetState::AwaitingLinkOpen(s);
        let d = token.digest(&k);
        let end = T0 + Duration::minutes(30);
        assert_eq!(
            state.link_status(&d, end - Duration::seconds(1)),
            LinkStatus::Valid { expires_at: end }
        );
        assert_eq!(state.link_status(&d, end), LinkStatus::Expired);
        assert_eq!(
            state
                .clone()
                .open_link(&d, env(end, &p, &k), &mut rng)
                .err(),
            Some(Rejection::Expired)
        );
    }

    // SEC-38 / SEC-02: the link opens once; a second POST says "already used".
    #[test]
    fn sec_38_link_is_single_use() {
        let (p, k) = (Policy::default(), keys());
        let (state, link, _) = opened(&p, &k);
        assert_eq!(state.link_status(&link, T0), LinkStatus::Used);
        assert_eq!(
            state
                .open_link(&link, env(T0, &p, &k), &mut rand::rng())
                .err(),
            Some(Rejection::LinkUsed)
        );
    }

    // SEC-09: the roster re-check fails without saying why, spends a try each time, and
    // the last try ends the flow; the right data then no longer helps.
    #[test]
    fn sec_09_reset_identity_tries_are_limited() {
        let (p, k) = (Policy::default(), keys());
        let (mut state, _, handle) = opened(&p, &k);
        let r = record();
        for i in 1..=p.identity_tries_per_flow {
            let step = state.check_identity(
                &handle,
                &claim("1985-04-13"),
                Some(&r),
                false,
                env(T0, &p, &k),
            );
            assert_eq!(step.result, Err(Rejection::IdentityNotConfirmed));
            state = step.state;
            if i < p.identity_tries_per_flow {
                assert!(matches!(&state, ResetState::AwaitingNewPassword(s) if s.attempts == i));
            }
        }
        assert!(matches!(
            &state,
            ResetState::Ended(e) if e.reason == ResetEndReason::IdentityAttemptsExhausted
        ));
        let step = state.check_identity(
            &handle,
            &claim("1985-04-12"),
            Some(&r),
            false,
            env(T0, &p, &k),
        );
        assert_eq!(step.result, Err(Rejection::WrongStep));
    }

    // SEC-09: a member blocked across flows fails even with the right data.
    #[test]
    fn sec_09_blocked_member_fails_with_right_data() {
        let (p, k) = (Policy::default(), keys());
        let (state, _, handle) = opened(&p, &k);
        let step = state.check_identity(
            &handle,
            &claim("1985-04-12"),
            Some(&record()),
            true,
            env(T0, &p, &k),
        );
        assert_eq!(step.result, Err(Rejection::IdentityAttemptsExhausted));
    }

    // The new password can be set only after the roster check passed (policy default),
    // or right away when the insurer allowed recovery by e-mail alone.
    #[test]
    fn completion_needs_the_roster_check_when_required() {
        let k = keys();
        let p = Policy::default();
        let (state, _, handle) = opened(&p, &k);
        assert_eq!(
            state.ready_to_complete(&handle, env(T0, &p, &k)).err(),
            Some(Rejection::IdentityNotConfirmed)
        );
        let step = state.check_identity(
            &handle,
            &claim("1985-04-12"),
            Some(&record()),
            false,
            env(T0, &p, &k),
        );
        assert_eq!(step.result, Ok(()));
        assert!(
            step.state
                .ready_to_complete(&handle, env(T0, &p, &k))
                .is_ok()
        );
        let mut loose = Policy::default();
        loose.recovery_requires_identity = false;
        let (state, _, handle) = opened(&loose, &k);
        assert!(
            state
                .ready_to_complete(&handle, env(T0, &loose, &k))
                .is_ok()
        );
    }

    // SEC-34: ending a flow keeps its digests (so a reused link says "used") and is
    // idempotent.
    #[test]
    fn sec_34_ended_flow_keeps_its_digests() {
        let (p, k) = (Policy::default(), keys());
        let (state, link, handle) = opened(&p, &k);
        let ended = state.end_for(ResetEndReason::AccountChanged, T0).unwrap();
        assert_eq!(ended.lookup_keys(), vec![link, handle]);
        assert_eq!(ended.link_status(&link, T0), LinkStatus::Used);
        assert!(ended.end_for(ResetEndReason::AccountChanged, T0).is_none());
    }
}
