//! Login (L1–L4) after the password: the 暗証キー challenge as a state machine.
//!
//! ```text
//! L1 password ok ──▶ AwaitingOtp ──L2 right code──▶ Ended(Authenticated)
//!                     │  ▲  L4 resend (new code, same attempt budget)
//!                     │  └──┘
//!                     ├─ L3 screen closed / heartbeat lapsed ──▶ Ended(ScreenClosed)
//!                     ├─ a newer login for the account ─────────▶ Ended(Superseded)
//!                     └─ tries exhausted ───────────────────────▶ Ended(AttemptsExhausted)
//! ```
//!
//! A code works once, only on its own challenge (SEC-27), only before `expires_at`
//! (SEC-28), and never after a resend, a close or a newer login.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::{Env, TOMBSTONE_TTL, deadline};
use crate::error::Rejection;
use crate::model::AccountId;
use crate::token::{OtpChallengeId, OtpCode, TokenDigest};

/// Password accepted, 暗証キー mailed; waiting for the member to type it.
///
/// Store this server-side only: the code digest and the attempt counters are what make
/// a 6-digit code safe to mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingOtp {
    /// Whose login this is.
    pub account: AccountId,
    /// Digest of the challenge handle (the code screen).
    pub challenge: TokenDigest,
    /// Digest of the current 暗証キー, bound to the challenge.
    pub code: TokenDigest,
    /// Wrong codes on this challenge, across resends (SEC-12, SEC-29).
    pub attempts: u32,
    /// Resends so far (SEC-30).
    pub resends: u32,
    /// When the current code was mailed.
    pub sent_at: OffsetDateTime,
    /// When the current code dies (10 min after it was mailed).
    pub expires_at: OffsetDateTime,
    /// When the code screen last reported in (for the heartbeat policy).
    pub last_seen_at: OffsetDateTime,
}

/// Why a challenge ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LoginEndReason {
    /// The right code was typed: the member is logged in.
    Authenticated,
    /// The code screen was closed (L3).
    ScreenClosed,
    /// The code screen stopped sending heartbeats (L3 with a heartbeat policy).
    HeartbeatLapsed,
    /// A newer login for the same account started.
    Superseded,
    /// Too many wrong codes (SEC-29).
    AttemptsExhausted,
    /// The account changed (password reset, disable) while the challenge was open.
    AccountChanged,
}

/// A challenge that is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginEnd {
    /// Whose login it was.
    pub account: AccountId,
    /// Digest of the challenge handle.
    pub challenge: TokenDigest,
    /// Why it ended.
    pub reason: LoginEndReason,
    /// When.
    pub at: OffsetDateTime,
}

/// Where a login challenge is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LoginState {
    /// See [`AwaitingOtp`].
    AwaitingOtp(AwaitingOtp),
    /// See [`LoginEnd`].
    Ended(LoginEnd),
}

/// Proof that a 暗証キー was accepted and consumed. Only this module makes one, and the
/// portal's `Authenticated` outcome cannot be built without it.
#[derive(Debug)]
pub struct OtpConsumed {
    account: AccountId,
}

impl OtpConsumed {
    /// The account that logged in.
    pub fn account(&self) -> &AccountId {
        &self.account
    }
}

/// What a 暗証キー submission did. Store `state` (and apply `account_failures`) in one
/// commit before telling the member `outcome`.
#[derive(Debug)]
pub struct OtpVerdict {
    /// The challenge's next state.
    pub state: LoginState,
    /// What the member is told.
    pub outcome: Result<OtpConsumed, Rejection>,
    /// The account's consecutive-failure counter after this submission.
    pub account_failures: u32,
    /// Whether this submission ended the challenge on its tries: the code is dead and
    /// the member is told (SEC-31 notice).
    pub aborted: bool,
    /// Whether the account reached its consecutive-failure limit (SEC-29): it cools down,
    /// the abort counts as a password failure (SEC-24), and the consecutive count starts
    /// again after the cooldown.
    pub account_limit_reached: bool,
}

/// L1: a new challenge for `account` and its first code.
pub fn issue<R: rand::CryptoRng + ?Sized>(
    account: AccountId,
    env: Env<'_>,
    rng: &mut R,
) -> (AwaitingOtp, OtpChallengeId, OtpCode) {
    let challenge = OtpChallengeId::generate(rng);
    let challenge_digest = challenge.digest(env.keys);
    let code = OtpCode::generate(rng, env.policy.otp_digits);
    let state = AwaitingOtp {
        account,
        challenge: challenge_digest,
        code: code.digest(env.keys, &challenge_digest),
        attempts: 0,
        resends: 0,
        sent_at: env.now,
        expires_at: deadline(env.now, env.policy.otp_ttl),
        last_seen_at: env.now,
    };
    (state, challenge, code)
}

impl LoginState {
    /// The account the challenge belongs to.
    pub fn account(&self) -> &AccountId {
        match self {
            LoginState::AwaitingOtp(s) => &s.account,
            LoginState::Ended(s) => &s.account,
        }
    }

    /// Whether the challenge is still open (not necessarily unexpired).
    pub fn is_open(&self) -> bool {
        matches!(self, LoginState::AwaitingOtp(_))
    }

    /// L2: a 暗証キー submission on `challenge`.
    ///
    /// `account_failures` is the account's consecutive wrong-code count before this
    /// submission. The attempt is counted before the code is compared: the returned
    /// state and counter must be committed before the member is told anything.
    pub fn verify(
        self,
        challenge: &TokenDigest,
        code: &OtpCode,
        account_failures: u32,
        env: Env<'_>,
    ) -> OtpVerdict {
        let reject = |state: LoginState, r: Rejection| OtpVerdict {
            state,
            outcome: Err(r),
            account_failures,
            aborted: false,
            account_limit_reached: false,
        };
        let s = match self {
            LoginState::AwaitingOtp(s) if s.challenge == *challenge => s,
            other => return reject(other, Rejection::OtpInvalid),
        };
        match Self::check_live(&s, env) {
            Ok(()) => {}
            Err(Some(reason)) => {
                let ended = end(&s, reason, env.now);
                return reject(ended, Rejection::OtpInvalid);
            }
            Err(None) => return reject(LoginState::AwaitingOtp(s), Rejection::OtpInvalid),
        }
        if s.attempts >= env.policy.otp_tries_per_challenge {
            return reject(LoginState::AwaitingOtp(s), Rejection::OtpAttemptsExhausted);
        }
        if code.matches(env.keys, &s.challenge, &s.code) {
            let account = s.account.clone();
            return OtpVerdict {
                state: end(&s, LoginEndReason::Authenticated, env.now),
                outcome: Ok(OtpConsumed { account }),
                account_failures: 0,
                aborted: false,
                account_limit_reached: false,
            };
        }
        let attempts = s.attempts + 1;
        let failures = account_failures.saturating_add(1);
        let account_limit = failures >= env.policy.otp_failures_per_account;
        if attempts >= env.policy.otp_tries_per_challenge || account_limit {
            return OtpVerdict {
                state: end(&s, LoginEndReason::AttemptsExhausted, env.now),
                outcome: Err(Rejection::OtpAttemptsExhausted),
                account_failures: if account_limit { 0 } else { failures },
                aborted: true,
                account_limit_reached: account_limit,
            };
        }
        OtpVerdict {
            state: LoginState::AwaitingOtp(AwaitingOtp { attempts, ..s }),
            outcome: Err(Rejection::OtpIncorrect),
            account_failures: failures,
            aborted: false,
            account_limit_reached: false,
        }
    }

    /// `Ok` when the code can be used; `Err(Some(reason))` when the challenge is over
    /// for good; `Err(None)` when only the current code expired (a resend may revive the
    /// challenge).
    fn check_live(s: &AwaitingOtp, env: Env<'_>) -> Result<(), Option<LoginEndReason>> {
        if let Some(hb) = env.policy.otp_screen_heartbeat
            && env.now >= deadline(s.last_seen_at, hb)
        {
            return Err(Some(LoginEndReason::HeartbeatLapsed));
        }
        if env.now >= s.expires_at {
            return Err(None);
        }
        Ok(())
    }

    /// L4 (暗証キー再請求): a new code; the old one dies at once; the attempt budget is
    /// carried over (SEC-12). Refused during the cooldown and after the per-challenge cap
    /// (SEC-30); the per-account hourly cap is the portal's (it lives in a counter).
    pub fn resend<R: rand::CryptoRng + ?Sized>(
        self,
        challenge: &TokenDigest,
        env: Env<'_>,
        rng: &mut R,
    ) -> Result<(LoginState, OtpCode), Rejection> {
        let s = match self {
            LoginState::AwaitingOtp(s) if s.challenge == *challenge => s,
            _ => return Err(Rejection::OtpInvalid),
        };
        if let Err(Some(_)) = Self::check_live(&s, env) {
            return Err(Rejection::OtpInvalid);
        }
        if s.attempts >= env.policy.otp_tries_per_challenge {
            return Err(Rejection::OtpAttemptsExhausted);
        }
        let ready_at = deadline(s.sent_at, env.policy.otp_resend_cooldown);
        if env.now < ready_at {
            return Err(Rejection::TooManyRequests {
                retry_after: ready_at - env.now,
            });
        }
        if s.resends >= env.policy.otp_resends_per_challenge {
            // The member must start again at L1; that takes no waiting.
            return Err(Rejection::OtpInvalid);
        }
        let code = OtpCode::generate(rng, env.policy.otp_digits);
        let next = AwaitingOtp {
            code: code.digest(env.keys, &s.challenge),
            resends: s.resends + 1,
            sent_at: env.now,
            expires_at: deadline(env.now, env.policy.otp_ttl),
            last_seen_at: env.now,
            ..s
        };
        Ok((LoginState::AwaitingOtp(next), code))
    }

    /// L3: the code screen was closed. Idempotent: closing a finished challenge changes
    /// nothing. Returns `None` when there was nothing to close.
    pub fn close(self, challenge: &TokenDigest, now: OffsetDateTime) -> Option<LoginState> {
        match self {
            LoginState::AwaitingOtp(s) if s.challenge == *challenge => {
                Some(end(&s, LoginEndReason::ScreenClosed, now))
            }
            _ => None,
        }
    }

    /// The code screen is still open. Returns the state to store and whether the
    /// challenge is still alive (false when it is over or the heartbeat already lapsed).
    pub fn heartbeat(self, challenge: &TokenDigest, env: Env<'_>) -> (LoginState, bool) {
        match self {
            LoginState::AwaitingOtp(s) if s.challenge == *challenge => {
                match Self::check_live(&s, env) {
                    Err(Some(reason)) => (end(&s, reason, env.now), false),
                    Ok(()) | Err(None) => (
                        LoginState::AwaitingOtp(AwaitingOtp {
                            last_seen_at: env.now,
                            ..s
                        }),
                        true,
                    ),
                }
            }
            other => (other, false),
        }
    }

    /// Ends an open challenge for `reason` (a newer login, a password change). `None`
    /// when it was already over.
    pub fn end_for(self, reason: LoginEndReason, now: OffsetDateTime) -> Option<LoginState> {
        match self {
            LoginState::AwaitingOtp(s) => Some(end(&s, reason, now)),
            LoginState::Ended(_) => None,
        }
    }

    pub(crate) fn lookup_keys(&self) -> Vec<TokenDigest> {
        match self {
            LoginState::AwaitingOtp(s) => vec![s.challenge],
            LoginState::Ended(s) => vec![s.challenge],
        }
    }

    pub(crate) fn purge_after(&self) -> OffsetDateTime {
        match self {
            LoginState::AwaitingOtp(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            LoginState::Ended(s) => deadline(s.at, Duration::hours(1)),
        }
    }
}

fn end(s: &AwaitingOtp, reason: LoginEndReason, now: OffsetDateTime) -> LoginState {
    LoginState::Ended(LoginEnd {
        account: s.account.clone(),
        challenge: s.challenge,
        reason,
        at: now,
    })
}
