//! Login (L1–L4) after the password: the 暗証キー challenge as a state machine.
//!
//! ```text
//! L1 password ok ──▶ AwaitingOtp ──L2 right code──▶ Ended(Authenticated)
//!                     │  ▲  L4 resend (new code, same attempt budget)
//!                     │  └──┘
//!                     ├─ L3 screen closed / heartbeat lapsed ──▶ Ended(ScreenClosed)
//!                     ├─ another challenge of the account logs in ▶ Ended(Superseded)
//!                     └─ tries exhausted ───────────────────────▶ Ended(AttemptsExhausted)
//! ```
//!
//! A code makes one login, only on its own challenge (SEC-27), only before `expires_at`
//! (SEC-28), and never after a resend, a close or another challenge's login. The same
//! code sent again by the challenge's holder within [`Policy::repeat_window`] is told of
//! that one login, as long as the account is unchanged (SEC-34).
//!
//! [`Policy::repeat_window`]: crate::Policy::repeat_window

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::ends::Ends;
use super::gate::{self, Gate, Opened, PasswordCheck, Refusals};
use super::step::Step;
use super::throttle::{self, Window};
use super::{AccountView, Env, FlowRecord, FlowState, TOMBSTONE_TTL, deadline};
use crate::error::Rejection;
use crate::mail::MailMessage;

use crate::model::{
    Account, AccountId, AccountStatus, AuditEvent, AuditKind, Counter, CounterKey, Expect, FlowId,
    MailId, RecentLogin, SecurityStamp, Versioned,
};
use crate::seal::SealPurpose;
use crate::token::{OtpChallengeId, OtpCode, TokenDigest};

/// Password accepted, 暗証キー mailed; waiting for the member to type it.
///
/// Store this server-side only: the code digest and the attempt counters are what make
/// a 6-digit code safe to mail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// Digests of the codes earlier resends replaced: typed again, they are answered
    /// [`Rejection::OtpReplaced`] ("type the newest one") without spending a try.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<TokenDigest>,
}

/// Password accepted for an account with a 認証アプリ: waiting for its 確認コード (or a
/// リカバリーコード). Nothing is mailed.
///
/// Store this server-side only: the attempt counter is what makes a 6-digit code safe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingFactor {
    /// Whose login this is.
    pub account: AccountId,
    /// Digest of the challenge handle (the 確認コード screen).
    pub challenge: TokenDigest,
    /// Wrong codes on this challenge (the 暗証キー's budget, SEC-29).
    pub attempts: u32,
    /// When the screen dies.
    pub expires_at: OffsetDateTime,
    /// Whether the account's 認証アプリ may answer.
    #[serde(default)]
    pub totp: bool,
    /// webauthn-rs's authentication state (the challenge the browser signs), serialised,
    /// when the account has パスキー and they are offered: used by one assertion at most.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey: Option<String>,
    /// Whether the account had unused リカバリーコード when the challenge began (the
    /// screen offers 「リカバリーコードを使う」).
    #[serde(default)]
    pub recovery_codes: bool,
}

/// Which factor a login stood on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LoginFactor {
    /// The e-mailed 暗証キー (not an authentication factor under NIST SP 800-63B-4).
    EmailOtp,
    /// A 確認コード from the 認証アプリ (TOTP): with the password, AAL2.
    Totp,
    /// A リカバリーコード in place of the 認証アプリ.
    RecoveryCode,
    /// A パスキー with user verification: with the password, AAL2 and phishing-resistant.
    Passkey,
}

impl LoginFactor {
    /// Stable identifier for logs and audit details.
    pub fn code(self) -> &'static str {
        match self {
            LoginFactor::EmailOtp => "email_otp",
            LoginFactor::Totp => "totp",
            LoginFactor::RecoveryCode => "recovery_code",
            LoginFactor::Passkey => "passkey",
        }
    }
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
    /// Another challenge of the account logged in.
    Superseded,
    /// Too many wrong codes (SEC-29).
    AttemptsExhausted,
    /// The account changed (password reset, disable) while the challenge was open.
    AccountChanged,
    /// A 確認コード screen outlived its lifespan.
    Expired,
}

/// A challenge that is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoginEnd {
    /// Whose login it was.
    pub account: AccountId,
    /// Digest of the challenge handle.
    pub challenge: TokenDigest,
    /// Why it ended.
    pub reason: LoginEndReason,
    /// When.
    pub at: OffsetDateTime,
    /// Digest of the code that was accepted, when it ended [`LoginEndReason::Authenticated`]:
    /// the same code sent again on the same challenge within
    /// [`Policy::repeat_window`](crate::Policy::repeat_window) gets the same login (a double tap,
    /// a lost response). Absent in challenges stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<TokenDigest>,
    /// The account's security stamp when that login was made: a repeat is answered only
    /// while it is unchanged (a password reset, address change or disable in between
    /// ends it, SEC-34).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<SecurityStamp>,
}

/// Where a login challenge is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum LoginState {
    /// See [`AwaitingOtp`].
    AwaitingOtp(AwaitingOtp),
    /// See [`AwaitingFactor`].
    AwaitingFactor(AwaitingFactor),
    /// See [`LoginEnd`].
    Ended(LoginEnd),
}

/// Proof that a 暗証キー was accepted and consumed. Only this module makes one, and the
/// portal's `Authenticated` outcome cannot be built without it.
///
/// Not `Clone`, not `Deserialize`, no public constructor: the only way to hold one is to
/// have had a code accepted by [`LoginState::verify`].
///
/// ```compile_fail
/// // A proof cannot be made up outside the core…
/// fn forge(
///     account: kenpo_auth::model::AccountId,
///     at: time::OffsetDateTime,
/// ) -> kenpo_auth::flow::OtpConsumed {
///     kenpo_auth::flow::OtpConsumed { account, at }
/// }
/// ```
///
/// ```compile_fail
/// // …nor read back from storage or a request.
/// fn forge(json: &str) -> kenpo_auth::flow::OtpConsumed {
///     serde_json::from_str(json).unwrap()
/// }
/// ```
#[derive(Debug)]
pub struct OtpConsumed {
    account: AccountId,
    at: OffsetDateTime,
    repeat: bool,
    factor: LoginFactor,
    must_set_up_factor: bool,
}

impl OtpConsumed {
    /// A login on `factor`: only the core's transitions call this.
    pub(in crate::flow) fn by_factor(
        account: AccountId,
        at: OffsetDateTime,
        factor: LoginFactor,
        repeat: bool,
    ) -> Self {
        OtpConsumed {
            account,
            at,
            repeat,
            factor,
            must_set_up_factor: false,
        }
    }

    /// Which factor the login stood on.
    pub fn factor(&self) -> LoginFactor {
        self.factor
    }

    /// Whether the policy requires a second factor and this account has none: the host
    /// sends the member to 2段階認証の設定 before anything else.
    pub fn must_set_up_factor(&self) -> bool {
        self.must_set_up_factor
    }

    /// Whether this answers a repeat of a login already made (the same code sent again
    /// within [`Policy::repeat_window`](crate::Policy::repeat_window)): the same login,
    /// not a second one.
    pub fn is_repeat(&self) -> bool {
        self.repeat
    }

    /// The account that logged in.
    pub fn account(&self) -> &AccountId {
        &self.account
    }

    /// When the code was accepted.
    pub fn at(&self) -> OffsetDateTime {
        self.at
    }
}

/// The answer to L2: the member is logged in. Start the host's session now, with a new
/// session ID (SEC-32), and keep the security stamp in it.
///
/// Only the core's L2 decisions make one, from an [`OtpConsumed`]: one the portal hands
/// out proves a login (password + 暗証キー) at `authenticated_at` that was committed to
/// the store. Changing the e-mail address or a factor needs one no older than the
/// policy's re-authentication window, whose account and stamp are still the stored ones
/// (SEC-36). A host that calls the core's decisions itself, on flow state it made up,
/// gets one that proves only what it made up — the portal's checks still compare it with
/// the stored account.
///
/// ```compile_fail
/// // A host cannot make one up: there is no `Authenticated` without a consumed code.
/// # use kenpo_auth::portal::Authenticated;
/// # use kenpo_auth::ports::{AccountId, SecurityStamp};
/// let forged = Authenticated {
///     account_id: AccountId::from_stored("a"),
///     security_stamp: SecurityStamp::from_session("s"),
///     authenticated_at: time::OffsetDateTime::now_utc(),
/// };
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Authenticated {
    /// Who logged in.
    pub account_id: AccountId,
    /// Compare it with [`Portal::check_security_stamp`](crate::Portal::check_security_stamp) on later requests to end this
    /// session after a password, e-mail or login-ID change (SEC-34).
    pub security_stamp: SecurityStamp,
    /// When the 暗証キー was accepted.
    pub authenticated_at: OffsetDateTime,
    /// The consumed code this login stands on.
    proof: OtpConsumed,
}

impl Authenticated {
    /// The only way to make one: from the core's proof that a 暗証キー was consumed.
    pub(in crate::flow) fn from_consumed(
        proof: OtpConsumed,
        security_stamp: SecurityStamp,
    ) -> Self {
        Authenticated {
            account_id: proof.account().clone(),
            security_stamp,
            authenticated_at: proof.at(),
            proof,
        }
    }

    /// The proof of the consumed 暗証キー.
    pub fn proof(&self) -> &OtpConsumed {
        &self.proof
    }

    /// Which factor this login stood on (the 暗証キー, the 認証アプリ or a リカバリーコード).
    pub fn factor(&self) -> LoginFactor {
        self.proof.factor()
    }

    /// Whether the policy requires a second factor and this member has none: send them
    /// to 2段階認証の設定 before anything else.
    pub fn must_set_up_factor(&self) -> bool {
        self.proof.must_set_up_factor()
    }

    /// Whether this answers a repeat of a login already made (the same code sent again
    /// within [`Policy::repeat_window`](crate::Policy::repeat_window)): the host keeps
    /// (or re-issues) the session it made for the first answer rather than counting a
    /// second login.
    pub fn is_repeat(&self) -> bool {
        self.proof.is_repeat()
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
    /// Whether this was the accepted code sent again on its challenge within
    /// [`Policy::repeat_window`](crate::Policy::repeat_window): the same login is answered and
    /// nothing changes.
    pub repeated: bool,
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
        replaced: Vec::new(),
    };
    (state, challenge, code)
}

impl LoginState {
    /// The account the challenge belongs to.
    pub fn account(&self) -> &AccountId {
        match self {
            LoginState::AwaitingOtp(s) => &s.account,
            LoginState::AwaitingFactor(s) => &s.account,
            LoginState::Ended(s) => &s.account,
        }
    }

    /// Whether the challenge is still open (not necessarily unexpired).
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            LoginState::AwaitingOtp(_) | LoginState::AwaitingFactor(_)
        )
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
            repeated: false,
        };
        let s = match self {
            LoginState::AwaitingOtp(s) if s.challenge == *challenge => s,
            LoginState::Ended(e) if Self::repeats(&e, challenge, code, env) => {
                // The accepted code again, on its own challenge, moments later: the
                // holder's double tap or lost response. The same login, nothing written.
                let consumed =
                    OtpConsumed::by_factor(e.account.clone(), e.at, LoginFactor::EmailOtp, true);
                return OtpVerdict {
                    state: LoginState::Ended(e),
                    outcome: Ok(consumed),
                    account_failures,
                    aborted: false,
                    account_limit_reached: false,
                    repeated: true,
                };
            }
            other => return reject(other, Rejection::OtpInvalid),
        };
        match Self::check_live(&s, env) {
            Ok(()) => {}
            Err(Some(reason)) => {
                let ended = end(&s, reason, env.now);
                return reject(ended, Rejection::OtpInvalid);
            }
            // Only the current code lapsed: the screen can ask for a new one — unless its
            // resends are spent, when the member must start again.
            Err(None) => {
                let r = if s.resends >= env.policy.otp_resends_per_challenge {
                    Rejection::OtpInvalid
                } else {
                    Rejection::OtpExpired
                };
                return reject(LoginState::AwaitingOtp(s), r);
            }
        }
        if s.attempts >= env.policy.otp_tries_per_challenge {
            return reject(LoginState::AwaitingOtp(s), Rejection::OtpAttemptsExhausted);
        }
        if code.matches(env.keys, &s.challenge, &s.code) {
            let account = s.account.clone();
            let mut state = end(&s, LoginEndReason::Authenticated, env.now);
            if let LoginState::Ended(e) = &mut state {
                e.code = Some(s.code);
            }
            return OtpVerdict {
                state,
                outcome: Ok(OtpConsumed::by_factor(
                    account,
                    env.now,
                    LoginFactor::EmailOtp,
                    false,
                )),
                account_failures: 0,
                aborted: false,
                account_limit_reached: false,
                repeated: false,
            };
        }
        if s.replaced
            .iter()
            .any(|old| code.matches(env.keys, &s.challenge, old))
        {
            // A code this screen had before the resend: the member read an older mail.
            // Not a guess at the current code, so no try is spent.
            return reject(LoginState::AwaitingOtp(s), Rejection::OtpReplaced);
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
                repeated: false,
            };
        }
        OtpVerdict {
            state: LoginState::AwaitingOtp(AwaitingOtp { attempts, ..s }),
            outcome: Err(Rejection::OtpIncorrect),
            account_failures: failures,
            aborted: false,
            account_limit_reached: false,
            repeated: false,
        }
    }

    /// Whether `code` on `challenge` repeats the submission that ended `e` with a login,
    /// within [`Policy::repeat_window`](crate::Policy::repeat_window).
    fn repeats(e: &LoginEnd, challenge: &TokenDigest, code: &OtpCode, env: Env<'_>) -> bool {
        e.reason == LoginEndReason::Authenticated
            && e.challenge == *challenge
            && env.now < e.at.saturating_add(env.policy.repeat_window)
            && e.code
                .as_ref()
                .is_some_and(|accepted| code.matches(env.keys, challenge, accepted))
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
        let mut replaced = s.replaced.clone();
        replaced.push(s.code);
        let next = AwaitingOtp {
            code: code.digest(env.keys, &s.challenge),
            replaced,
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
            LoginState::AwaitingFactor(s) if s.challenge == *challenge => {
                Some(end_factor(&s, LoginEndReason::ScreenClosed, now))
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
            LoginState::AwaitingFactor(s) if s.challenge == *challenge => {
                if env.now >= s.expires_at {
                    (end_factor(&s, LoginEndReason::Expired, env.now), false)
                } else {
                    (LoginState::AwaitingFactor(s), true)
                }
            }
            other => (other, false),
        }
    }

    /// Ends an open challenge for `reason` (another challenge's login, a password
    /// change). `None` when it was already over.
    pub fn end_for(self, reason: LoginEndReason, now: OffsetDateTime) -> Option<LoginState> {
        match self {
            LoginState::AwaitingOtp(s) => Some(end(&s, reason, now)),
            LoginState::AwaitingFactor(s) => Some(end_factor(&s, reason, now)),
            LoginState::Ended(_) => None,
        }
    }
}

flow_index! { LoginState;
    LoginState::AwaitingOtp(s) => [s.challenge], deadline(s.expires_at, TOMBSTONE_TTL);
    LoginState::AwaitingFactor(s) => [s.challenge], deadline(s.expires_at, TOMBSTONE_TTL);
    LoginState::Ended(s) => [s.challenge], deadline(s.at, Duration::hours(1));
}

fn end(s: &AwaitingOtp, reason: LoginEndReason, now: OffsetDateTime) -> LoginState {
    ended(&s.account, s.challenge, reason, now)
}

fn end_factor(s: &AwaitingFactor, reason: LoginEndReason, now: OffsetDateTime) -> LoginState {
    ended(&s.account, s.challenge, reason, now)
}

/// The end of `account`'s challenge, for either kind of awaiting state.
fn ended(
    account: &AccountId,
    challenge: TokenDigest,
    reason: LoginEndReason,
    now: OffsetDateTime,
) -> LoginState {
    LoginState::Ended(LoginEnd {
        account: account.clone(),
        challenge,
        reason,
        at: now,
        code: None,
        stamp: None,
    })
}

// ── The journey: what each login step decides from what the driver loaded ──────────

/// Which screen L1 leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecondStep {
    /// 暗証キー入力: a 暗証キー was mailed to the registered address.
    EmailedCode,
    /// 2段階認証: the member's 認証アプリ (確認コード) or パスキー is asked for; nothing was
    /// mailed.
    AuthenticatorApp {
        /// Whether the screen asks for a 確認コード from the 認証アプリ.
        totp: bool,
        /// Whether the screen offers 「パスキーでログイン」 (the options are in
        /// `passkey_options`).
        passkey: bool,
        /// Whether the screen may offer 「リカバリーコードを使う」.
        recovery_codes: bool,
    },
}

/// The answer to L1 and L4: the 暗証キー was mailed (show the 暗証キー入力 screen), or
/// the account's 認証アプリ is asked for (show the 確認コード入力 screen). The portal
/// answers it as it is (`kenpo_auth::portal::OtpChallenge`).
#[derive(Debug)]
#[non_exhaustive]
pub struct OtpChallenge {
    /// The code screen's handle: keep it in the page (hidden field) or a cookie, and send
    /// it back with the code, the close beacon and heartbeats.
    pub challenge: OtpChallengeId,
    /// When the current code (or the 確認コード screen) stops working.
    pub expires_at: OffsetDateTime,
    /// The registered address, masked, to show 「…へ送信しました」 (empty when the
    /// 認証アプリ is asked for: nothing was mailed).
    pub masked_email: String,
    /// The receipt of the 暗証キー mail: ask [`Portal::mail_status`](crate::Portal::mail_status)
    /// with it to tell the member truthfully whether the mail went out. `None` for a
    /// 2段階認証 screen, which mails nothing.
    pub receipt: Option<MailId>,
    /// Which screen to show: 暗証キー入力, or 確認コード入力 for a member with a
    /// 認証アプリ ([`Portal::verify_totp`](crate::Portal::verify_totp),
    /// [`Portal::use_recovery_code`](crate::Portal::use_recovery_code)).
    pub second_step: SecondStep,
    /// For a パスキー: the `publicKey` options of `navigator.credentials.get`, to send to
    /// the browser as JSON; its answer goes to `Portal::verify_passkey`.
    pub passkey_options: Option<super::factor::PasskeyOptions>,
}

/// A loaded login challenge: the record, its version, and the digest that found it.
pub type Found<'a> = (&'a Versioned<FlowRecord>, &'a TokenDigest);

fn otp_mail_window(env: Env<'_>) -> Window {
    Window {
        span: Duration::hours(1),
        cap: env.policy.otp_mails_per_account_per_hour,
        min_interval: None,
    }
}

/// SEC-29's daily budget of wrong 暗証キー entries per account.
pub(crate) fn otp_failure_day(env: Env<'_>) -> Window {
    Window {
        span: Duration::hours(24),
        cap: env.policy.otp_failures_per_account_per_day,
        min_interval: None,
    }
}

/// Whether the account's wrong 暗証キー entries today have reached the daily cap.
pub(crate) fn otp_day_spent(failures_today: Option<&Versioned<Counter>>, env: Env<'_>) -> bool {
    failures_today.is_some_and(|c| {
        env.now
            < c.value
                .window_start
                .saturating_add(otp_failure_day(env).span)
            && c.value.count >= env.policy.otp_failures_per_account_per_day
    })
}

/// L1 (ログイン): the password gate, then a new challenge (the account's open ones stay
/// until a login completes), the hourly 暗証キー-mail cap (answered like every other
/// failure, SEC-23) and the mail. The account write is conditional on the version read (SEC-34). A
/// refusal commits one row whatever refused it (see [`gate::check`]).
#[allow(clippy::too_many_arguments)]
pub fn start<R: rand::CryptoRng + ?Sized>(
    held: AccountView<'_>,
    password: PasswordCheck,
    (otp_mails, failures_today): (Option<&Versioned<Counter>>, Option<&Versioned<Counter>>),
    refusals: Refusals<'_>,
    verifiers: &super::factor::Verifiers<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> Step<OtpChallenge> {
    let opened = match gate::check(Gate::Login, held.account, password, Some(refusals), env) {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    let now = env.now;
    let Opened {
        account,
        expect,
        audit,
    } = opened;
    // A refusal after a right password commits one row like every other refusal
    // (SEC-23): the refusal counter, so its work does not tell the password was right.
    let refused = |detail: &'static str| {
        let step = Step::reject(Rejection::LoginFailed).audit(
            AuditEvent::new(AuditKind::LoginFailed, now)
                .account(&account.id)
                .detail(detail),
        );
        match throttle::hit(refusals.key, refusals.counter, now, Refusals::WINDOW) {
            Ok(hit) => step.counter(hit),
            Err(_) => step,
        }
    };
    let Some(email) = account.email.clone() else {
        return refused("no_address");
    };
    if otp_day_spent(failures_today, env) {
        // SEC-29: the day's wrong 暗証キー budget is spent; like every other refusal
        // after a right password, this answers as a failed login (SEC-23).
        return refused("otp_daily_cap");
    }
    if super::factor::asks_authenticator(&account, verifiers, env) {
        // A member with a 認証アプリ is asked for it, never silently for the mailed
        // 暗証キー (no downgrade); nothing is mailed.
        let (state, challenge, passkey_options) =
            super::factor::issue_challenge(&account, verifiers, env, rng);
        let flow_id = FlowId::generate(rng);
        let second_step = SecondStep::AuthenticatorApp {
            totp: state.totp,
            passkey: state.passkey.is_some(),
            recovery_codes: state.recovery_codes,
        };
        let mut step = Step::answer(OtpChallenge {
            challenge,
            expires_at: state.expires_at,
            masked_email: String::new(),
            second_step,
            passkey_options,
            receipt: None,
        })
        .flow(
            Expect::Absent,
            flow_id.clone(),
            FlowState::Login(LoginState::AwaitingFactor(state)),
        )
        .audit(
            AuditEvent::new(AuditKind::LoginPasswordAccepted, now)
                .account(&account.id)
                .flow(&flow_id)
                .detail("second_factor"),
        );
        for ev in audit {
            step = step.audit(ev);
        }
        return step.account(expect, account);
    }
    if let Some(repeat) = repeat_of_recent(&account, verifiers, env) {
        // The same L1 moments later (a double tap, a reload, a lost response): the same
        // code screen, and no second mail — the code already mailed stays the one to
        // type (#14).
        let mut step = Step::answer(OtpChallenge {
            masked_email: email.masked(),
            ..repeat
        })
        .audit(
            AuditEvent::new(AuditKind::LoginPasswordAccepted, now)
                .account(&account.id)
                .detail("repeat"),
        );
        for ev in audit {
            step = step.audit(ev);
        }
        return step.account(expect, account);
    }
    let key = CounterKey::OtpMails(account.id.clone());
    let Ok(hit) = throttle::hit(&key, otp_mails, now, otp_mail_window(env)) else {
        // SEC-23: the password was right, but saying "too many" here would tell a
        // guesser so. The hourly 暗証キー cap answers like every other failure.
        return refused("otp_mail_cap");
    };
    let (state, challenge, code) = issue(account.id.clone(), env, rng);
    let expires_at = state.expires_at;
    let flow_id = FlowId::generate(rng);
    let receipt = MailId::generate(rng);
    let mut account = account;
    account.recent_login = Some(RecentLogin {
        challenge: state.challenge,
        handle: verifiers.seals.seal(
            SealPurpose::RecentLogin,
            account.id.as_str().as_bytes(),
            challenge.expose_secret().as_bytes(),
            rng,
        ),
        issued_at: now,
        expires_at,
        stamp: account.security_stamp.clone(),
        receipt,
    });
    // The account's other open challenges stay alive: a second device does not kill the
    // code already mailed. The login that completes ends them (L2).
    let mut step = Step::answer(OtpChallenge {
        challenge,
        expires_at,
        masked_email: email.masked(),
        second_step: SecondStep::EmailedCode,
        passkey_options: None,
        receipt: Some(receipt),
    });
    step = step
        .flow(
            Expect::Absent,
            flow_id.clone(),
            FlowState::Login(LoginState::AwaitingOtp(state)),
        )
        .charge(hit)
        .audit(
            AuditEvent::new(AuditKind::LoginPasswordAccepted, now)
                .account(&account.id)
                .flow(&flow_id),
        )
        .receipted_mail(receipt, email, MailMessage::LoginOtp { code, expires_at });
    for ev in audit {
        step = step.audit(ev);
    }
    step.account(expect, account)
}

/// The answer an L1 repeated within [`Policy::repeat_window`](crate::Policy::repeat_window)
/// gets: the screen the last L1 opened, when that screen is still the one to use (its
/// code alive, the account unchanged since, the screen neither closed nor tried —
/// those clear [`Account::recent_login`]).
fn repeat_of_recent(
    account: &Account,
    verifiers: &super::factor::Verifiers<'_>,
    env: Env<'_>,
) -> Option<OtpChallenge> {
    let recent = account.recent_login.as_ref()?;
    // With a heartbeat policy a screen that never loaded (the lost response a repeat is
    // for) sends none and dies a heartbeat after it opened: repeat it no longer than that.
    let window = match env.policy.otp_screen_heartbeat {
        Some(hb) => env.policy.repeat_window.min(hb),
        None => env.policy.repeat_window,
    };
    if !recent.repeatable(env.now, window, &account.security_stamp) {
        return None;
    }
    let handle = verifiers
        .seals
        .open(
            SealPurpose::RecentLogin,
            account.id.as_str().as_bytes(),
            &recent.handle,
        )
        .ok()?;
    let challenge = std::str::from_utf8(&handle).ok()?.parse().ok()?;
    Some(OtpChallenge {
        challenge,
        expires_at: recent.expires_at,
        masked_email: String::new(),
        second_step: SecondStep::EmailedCode,
        passkey_options: None,
        receipt: Some(recent.receipt),
    })
}

/// L2 (暗証キー入力 → ログイン): the attempt is counted on the challenge and the account
/// (SEC-29) in the same commit that answers; a code works once, on its own challenge.
/// Answers the proof and the account's security stamp.
pub fn verify(
    found: Option<Found<'_>>,
    held: AccountView<'_>,
    (code, failures_today): (&OtpCode, Option<&Versioned<Counter>>),
    env: Env<'_>,
) -> Step<Authenticated> {
    let (Some((record, digest)), Some(account)) = (found, held.account) else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let FlowState::Login(state) = &record.value.state else {
        return Step::reject(Rejection::OtpInvalid);
    };
    if state.account() != &account.value.id {
        return Step::reject(Rejection::OtpInvalid);
    }
    let now = env.now;
    let p = env.policy;
    if otp_day_spent(failures_today, env) {
        // SEC-29: no code is evaluated once the day's budget is spent; the challenge
        // ends as exhausted.
        let Some(ended) = state
            .clone()
            .end_for(LoginEndReason::AttemptsExhausted, now)
        else {
            return Step::reject(Rejection::OtpInvalid);
        };
        return Step::reject(Rejection::OtpAttemptsExhausted)
            .advance(record, FlowState::Login(ended))
            .audit(
                AuditEvent::new(AuditKind::OtpAttemptsExhausted, now)
                    .account(&account.value.id)
                    .flow(&record.value.id)
                    .detail("otp_daily_cap"),
            );
    }
    let mut verdict = state
        .clone()
        .verify(digest, code, account.value.otp_failures, env);
    if let (Ok(_), LoginState::Ended(e)) = (&verdict.outcome, &mut verdict.state) {
        if verdict.repeated {
            // SEC-34: a repeat stands on the login made then; a password reset, address
            // change or disable since ends it like every other session.
            let unchanged = matches!(account.value.status, AccountStatus::Active)
                && e.stamp.as_ref() == Some(&account.value.security_stamp);
            if !unchanged {
                return Step::reject(Rejection::OtpInvalid);
            }
        } else {
            e.stamp = Some(account.value.security_stamp.clone());
        }
    }
    if let Ok(consumed) = &mut verdict.outcome {
        consumed.must_set_up_factor = super::factor::must_set_up(&account.value, env);
    }
    let mut updated = account.value.clone();
    updated.otp_failures = verdict.account_failures;
    let logged_in = verdict.outcome.is_ok() && !verdict.repeated;
    let tried = verdict.state != *state && account.value.recent_login_on(digest).is_some();
    if logged_in || tried {
        // The login made ends every screen of the account; a code compared on the recent
        // screen spends it for repeats. Either way an L1 from now on opens a new one.
        updated.recent_login = None;
    }
    if verdict.account_limit_reached {
        // SEC-29: the account limit cools the account down and counts as a password
        // failure (SEC-24).
        updated.otp_cooldown_until = Some(now.saturating_add(p.otp_account_cooldown));
        updated.password_failures = updated.password_failures.saturating_add(1);
        updated.last_password_failure_at = Some(now);
    }
    // A wrong code that was compared: what the day's budget counts.
    let evaluated_wrong =
        matches!(verdict.outcome, Err(Rejection::OtpIncorrect)) || verdict.aborted;
    let state_changed = verdict.state != *state;
    let account_changed = updated != account.value;
    let flow_id = &record.value.id;
    let mut step = match verdict.outcome {
        Ok(consumed) => {
            let kind = if verdict.repeated {
                AuditKind::LoginRepeated
            } else {
                AuditKind::LoginSucceeded
            };
            let ev = AuditEvent::new(kind, now)
                .account(&updated.id)
                .flow(flow_id);
            let mut step = Step::answer(Authenticated::from_consumed(
                consumed,
                updated.security_stamp.clone(),
            ));
            if !verdict.repeated {
                // The login is made: the account's other open challenges end.
                step = step.writes(Ends::login(LoginEndReason::Superseded).writes(
                    held.flows,
                    now,
                    Some(flow_id),
                ));
            }
            step.audit(ev)
        }
        // Nothing to record (finished, expired or exhausted challenge): answer without
        // writing. (Success changes the state, but for a repeat within the policy's repeat window.)
        Err(rejection) if !state_changed && !account_changed => return Step::reject(rejection),
        Err(rejection) => {
            let kind = if verdict.aborted {
                AuditKind::OtpAttemptsExhausted
            } else {
                AuditKind::OtpFailed
            };
            let mut step = Step::reject(rejection.clone()).audit(
                AuditEvent::new(kind, now)
                    .account(&updated.id)
                    .flow(flow_id)
                    .detail(rejection.code()),
            );
            if verdict.aborted
                && p.notify_on_otp_abort
                && let Some(email) = &updated.email
            {
                step = step.mail(email.clone(), MailMessage::LoginOtpAborted { at: now });
            }
            step
        }
    };
    if state_changed {
        step = step.advance(record, FlowState::Login(verdict.state));
    }
    if account_changed {
        step = step.account(Expect::At(account.version), updated);
    }
    if evaluated_wrong {
        // A wrong code was compared: it counts against the day (SEC-29).
        let key = CounterKey::OtpFailures(account.value.id.clone());
        if let Ok(hit) = throttle::hit(&key, failures_today, now, otp_failure_day(env)) {
            step = step.counter(hit);
        }
    }
    step
}

/// The answer to L4: a new code went to the same screen.
#[derive(Debug)]
#[non_exhaustive]
pub struct Resent {
    /// When the new code stops working.
    pub expires_at: OffsetDateTime,
    /// The registered address, masked.
    pub masked_email: String,
    /// The receipt of the new code's mail.
    pub receipt: MailId,
}

/// L4 (暗証キー再請求): a new code for the same screen, within the challenge's resend
/// rules and the account's hourly mail cap (SEC-30).
pub fn resend<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    account: Option<&Versioned<Account>>,
    otp_mails: Option<&Versioned<Counter>>,
    env: Env<'_>,
    rng: &mut R,
) -> Step<Resent> {
    let Some((record, digest)) = found else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let FlowState::Login(state) = &record.value.state else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let (next, code) = match state.clone().resend(digest, env, rng) {
        Ok(x) => x,
        Err(r) => return Step::reject(r),
    };
    let key = CounterKey::OtpMails(state.account().clone());
    let hit = match throttle::hit(&key, otp_mails, env.now, otp_mail_window(env)) {
        Ok(hit) => hit,
        Err(retry_after) => return Step::reject(Rejection::TooManyRequests { retry_after }),
    };
    let (LoginState::AwaitingOtp(awaiting), Some(account)) = (&next, account) else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let Some(email) = account.value.email.clone() else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let expires_at = awaiting.expires_at;
    let challenge_id = record.value.id.clone();
    let receipt = MailId::generate(rng);
    let mut step = Step::answer(expires_at)
        .flow(
            Expect::At(record.version),
            challenge_id.clone(),
            FlowState::Login(next),
        )
        .charge(hit)
        .audit(
            AuditEvent::new(AuditKind::OtpResent, env.now)
                .account(&account.value.id)
                .flow(&challenge_id),
        )
        .receipted_mail(
            receipt,
            email.clone(),
            MailMessage::LoginOtp { code, expires_at },
        );
    // An L1 repeated after this resend (a repeat window longer than the cooldown) answers
    // this screen as it now is: the new code's expiry and mail, not the first ones.
    if let Some(recent) = account.value.recent_login_on(digest) {
        let mut updated = account.value.clone();
        updated.recent_login = Some(RecentLogin {
            expires_at,
            receipt,
            ..recent.clone()
        });
        step = step.account(Expect::At(account.version), updated);
    }
    step.map(|expires_at| Resent {
        expires_at,
        masked_email: email.masked(),
        receipt,
    })
}

/// L3: the code screen was closed. Silent about unknown or finished challenges.
pub fn close(
    found: Option<Found<'_>>,
    owner: Option<&Versioned<Account>>,
    env: Env<'_>,
) -> Step<()> {
    let Some((record, digest)) = found else {
        return Step::answer(());
    };
    let FlowState::Login(state) = &record.value.state else {
        return Step::answer(());
    };
    let account = state.account().clone();
    match state.clone().close(digest, env.now) {
        None => Step::answer(()),
        Some(next) => {
            let step = Step::answer(())
                .advance(record, FlowState::Login(next))
                .audit(
                    AuditEvent::new(AuditKind::OtpScreenClosed, env.now)
                        .account(&account)
                        .flow(&record.value.id),
                );
            // A closed screen is not one an L1 repeat may answer with: its code is dead.
            match owner
                .filter(|a| a.value.id == account && a.value.recent_login_on(digest).is_some())
            {
                Some(a) => {
                    let mut cleared = a.value.clone();
                    cleared.recent_login = None;
                    step.account(Expect::At(a.version), cleared)
                }
                None => step,
            }
        }
    }
}

/// L3 with a heartbeat policy: the screen is still open. A lapsed challenge is ended and
/// answered [`Rejection::OtpInvalid`].
pub fn heartbeat(found: Option<Found<'_>>, env: Env<'_>) -> Step<()> {
    let Some((record, digest)) = found else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let FlowState::Login(state) = &record.value.state else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let (next, alive) = state.clone().heartbeat(digest, env);
    let step = if alive {
        Step::answer(())
    } else {
        Step::reject(Rejection::OtpInvalid)
    };
    if next == *state {
        return step;
    }
    step.advance(record, FlowState::Login(next))
}
