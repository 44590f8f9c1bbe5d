//! 新規利用登録 (R1–R5) as a state machine.
//!
//! ```text
//! R1 start ──▶ AwaitingLinkOpen ──R2 POST──▶ AwaitingIdentity ──R3 ok──▶ AwaitingAuthKey
//!                                               │  └─R2' temporary credentials─┐   │ R4 ok
//!                                               ▼                              ▼   ▼
//!                                          Dead (tries)              AwaitingCredentials ──R5──▶ Completed
//! ```
//!
//! Every step is bound to the flow: link 1 opens it, a [`FlowHandle`] binds it to the
//! browser, link 2 and the 認証キー are bound to it, and R5 needs the handle R4 issued.
//! A request for any other step than the current one is [`Rejection::WrongStep`]
//! (SEC-10).

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use super::gate::{self, Gate, PasswordCheck, Refusals};
use super::link;
/// Kept at its old path too.
pub use super::link::LinkStatus;
use super::step::{NewAccount, Step as Decision, Write};
use super::throttle::{self, CounterHit, StartBudgets, Window};
use super::{Env, FlowRecord, FlowState, TOMBSTONE_TTL, Urls, deadline};
use crate::domain::{BirthDate, CardNumber, EmailAddress, KanaName, LoginId, Nickname};
use crate::error::Rejection;
use crate::mail::{MailLink, MailMessage};
use crate::model::{
    Account, AccountId, AccountStatus, AuditEvent, AuditKind, Counter, CounterKey, Expect, FlowId,
    MailId, MemberId, MemberRecord, SecurityStamp, Versioned,
};
use crate::password_hash::PasswordHashString;
use crate::token::{
    AuthKey, FlowHandle, MailedLink, RegistrationLinkToken, TokenDigest, VerificationLinkToken,
};

/// What the member types at R3 (本人確認).
#[derive(Clone, Debug)]
pub struct IdentityClaim {
    /// 記号・番号・枝番.
    pub card_number: CardNumber,
    /// 生年月日.
    pub birth_date: BirthDate,
    /// 氏名カナ, when the insurer's form asks for it.
    pub kana_name: Option<KanaName>,
}

impl IdentityClaim {
    /// Reads what the member typed on 本人確認, with the insurer's own 記号・番号 `format`
    /// (DOM-8); a birth date after `now`'s day in Japan is a typo, said as one (DOM-13).
    pub(crate) fn read(
        typed: (&str, &str, Option<&str>),
        format: &crate::domain::CardNumberFormat,
        now: OffsetDateTime,
    ) -> Result<Self, Rejection> {
        let (card_number, birth_date, kana_name) = typed;
        let card_number = CardNumber::parse_with(card_number, format)?;
        let today = now.to_offset(time::macros::offset!(+9)).date();
        let birth_date = BirthDate::parse(birth_date).and_then(|b| b.not_after(today))?;
        let kana_name = match kana_name.map(str::trim) {
            None | Some("") => None,
            Some(k) => Some(KanaName::parse(k)?),
        };
        Ok(IdentityClaim {
            card_number,
            birth_date,
            kana_name,
        })
    }
}

/// Proof that an account may be created for this flow: either the roster confirmed the
/// member's identity and the 認証キー came back through link 2, or the member signed in
/// with valid insurer-issued temporary credentials (R2').
///
/// Only this module builds it (the fields are private); a store gives it back only as
/// part of a state this module wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationProof(ProofKind);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum ProofKind {
    IdentityVerified {
        member: MemberId,
    },
    TemporaryCredentials {
        account: AccountId,
        member: MemberId,
        /// The provisioned account's security stamp when R2' passed: a re-issue or a
        /// disable changes it, and R5 then refuses to complete (SEC-41).
        #[serde(default)]
        stamp: Option<SecurityStamp>,
    },
}

impl RegistrationProof {
    /// The roster member the account is for.
    pub fn member(&self) -> &MemberId {
        match &self.0 {
            ProofKind::IdentityVerified { member } => member,
            ProofKind::TemporaryCredentials { member, .. } => member,
        }
    }

    /// The provisioned account's security stamp when R2' passed: R5 completes the
    /// account only while it is unchanged (a re-issue or a disable revokes the proof).
    pub fn provisioned_stamp(&self) -> Option<&SecurityStamp> {
        match &self.0 {
            ProofKind::IdentityVerified { .. } => None,
            ProofKind::TemporaryCredentials { stamp, .. } => stamp.as_ref(),
        }
    }

    /// The provisioned account to complete, for the R2' path.
    pub fn provisioned_account(&self) -> Option<&AccountId> {
        match &self.0 {
            ProofKind::IdentityVerified { .. } => None,
            ProofKind::TemporaryCredentials { account, .. } => Some(account),
        }
    }
}

/// R1 done: link 1 mailed, waiting for the member to open it and press
/// 【本人確認ページへ】.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingLinkOpen {
    /// The address the member typed at R1.
    pub email: EmailAddress,
    /// Digest of link 1.
    pub link: TokenDigest,
    /// When link 1 dies (3 h).
    pub expires_at: OffsetDateTime,
}

/// R2 done: the flow is bound to a browser; waiting for 記号・番号・枝番 and 生年月日.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingIdentity {
    /// The address from R1.
    pub email: EmailAddress,
    /// Digest of link 1 (spent).
    pub link: TokenDigest,
    /// Digest of the browser's flow handle.
    pub handle: TokenDigest,
    /// Identity checks made in this flow.
    pub attempts: u32,
    /// When the step ends.
    pub expires_at: OffsetDateTime,
}

/// R3 done: the 認証キー was shown and link 2 mailed; waiting for both to come back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingAuthKey {
    /// The address from R1.
    pub email: EmailAddress,
    /// Who the roster says the member is.
    pub member: MemberId,
    /// Spent digests (link 1, the R2 handle), kept to answer "already used".
    pub spent: Vec<TokenDigest>,
    /// Digest of link 2.
    pub link: TokenDigest,
    /// Digest of the 認証キー, bound to the first link 2 (`key_bound_to`, or `link`
    /// when link 2 was never resent).
    pub auth_key: TokenDigest,
    /// The link the 認証キー's digest is bound to, once link 2 has been resent: a new
    /// link 2 keeps the key the member already has on screen (#14).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_bound_to: Option<TokenDigest>,
    /// Times link 2 was mailed again.
    #[serde(default)]
    pub resends: u32,
    /// When link 2 was last mailed (absent in flows stored before resends existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<OffsetDateTime>,
    /// Digest of the handle of the browser that passed R3 (spent there): the one that
    /// may have link 2 resent, and is told identity is already verified if it sends R3
    /// again. Absent in flows stored before it existed (then the second spent digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser: Option<TokenDigest>,
    /// Wrong 認証キー entries so far.
    pub attempts: u32,
    /// When link 2 and the key die (30 min).
    pub expires_at: OffsetDateTime,
}

impl AwaitingAuthKey {
    /// Whether `digest` is the handle of the browser that passed R3.
    fn is_r3_browser(&self, digest: &TokenDigest) -> bool {
        // R3 spent link 1, then the R2 handle: the fallback for older records.
        self.browser.as_ref().or_else(|| self.spent.get(1)) == Some(digest)
    }
}

/// R4 (or R2') done: waiting for 新ログインID, 新パスワード and ニックネーム.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingCredentials {
    /// The address the account will get.
    pub email: EmailAddress,
    /// Why an account may be made.
    pub proof: RegistrationProof,
    /// Spent digests, kept to answer "already used".
    pub spent: Vec<TokenDigest>,
    /// Digest of the handle R4 (or R2') issued.
    pub handle: TokenDigest,
    /// When the step ends (30 min).
    pub expires_at: OffsetDateTime,
}

/// R5 done: the account exists.
///
/// Like every stored state, it can be read but not built outside the core
/// (`#[non_exhaustive]`): a host's code cannot make one up by accident. (What is stored is
/// still plain JSON: a store's own records are trusted, not proven.)
///
/// ```compile_fail
/// use kenpo_auth::flow::Completed;
/// fn forge(done: Completed) -> Completed {
///     Completed { spent: Vec::new(), ..done } // error[E0639]: non-exhaustive struct
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Completed {
    /// The new account.
    pub account: AccountId,
    /// Every digest the flow used.
    pub spent: Vec<TokenDigest>,
    /// When it completed.
    pub at: OffsetDateTime,
    /// Keyed digest of the login ID chosen at R5: R5 sent again with the same ID by the
    /// holder of the R5 handle within [`Policy::repeat_window`](crate::Policy::repeat_window) is told the
    /// same account. Absent in flows stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<TokenDigest>,
}

/// The keyed digest [`Completed::login`] holds, under every accepted key (current first).
fn chosen_login_digests(
    login_id: &LoginId,
    keys: &crate::token::DigestKeyring,
) -> Vec<TokenDigest> {
    keys.candidates(
        crate::token::Purpose::FlowHandle,
        b"r5-login-id",
        login_id.as_str().as_bytes(),
    )
}

/// Why a flow ended without an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DeadReason {
    /// Too many identity checks (SEC-09).
    IdentityAttemptsExhausted,
    /// Too many wrong 認証キー (SEC-11).
    AuthKeyAttemptsExhausted,
    /// Identity proven, but the member already has an account.
    AlreadyRegistered,
    /// Identity proven, but the address belongs to a family member's account.
    FamilyEmailInUse,
}

/// The flow ended without an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dead {
    /// Why.
    pub reason: DeadReason,
    /// Every digest the flow used.
    pub spent: Vec<TokenDigest>,
    /// When it ended.
    pub at: OffsetDateTime,
}

/// Where a registration is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RegistrationState {
    /// See [`AwaitingLinkOpen`].
    AwaitingLinkOpen(AwaitingLinkOpen),
    /// See [`AwaitingIdentity`].
    AwaitingIdentity(AwaitingIdentity),
    /// See [`AwaitingAuthKey`].
    AwaitingAuthKey(AwaitingAuthKey),
    /// See [`AwaitingCredentials`].
    AwaitingCredentials(AwaitingCredentials),
    /// See [`Completed`].
    Completed(Completed),
    /// See [`Dead`].
    Dead(Dead),
}

fn expired(now: OffsetDateTime, expires_at: OffsetDateTime) -> bool {
    now >= expires_at
}

/// R1: a new flow for `email`, and link 1 to mail.
pub fn start<R: rand::CryptoRng + ?Sized>(
    email: EmailAddress,
    env: Env<'_>,
    rng: &mut R,
) -> (AwaitingLinkOpen, RegistrationLinkToken) {
    let (token, link) = RegistrationLinkToken::issue(env.keys, rng);

    (
        AwaitingLinkOpen {
            email,
            link,
            expires_at: deadline(env.now, env.policy.registration_link_ttl),
        },
        token,
    )
}

impl RegistrationState {
    /// What a mailed link (1 or 2) with this digest would do now: the GET of its landing.
    pub fn link_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        let live = match self {
            RegistrationState::AwaitingLinkOpen(s) if s.link == *link => Some(s.expires_at),
            RegistrationState::AwaitingAuthKey(s) if s.link == *link => Some(s.expires_at),
            _ => None,
        };
        self.status(live, link, now)
    }

    /// What link 1 would do if posted now.
    pub fn link1_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        let live = match self {
            RegistrationState::AwaitingLinkOpen(s) if s.link == *link => Some(s.expires_at),
            _ => None,
        };
        self.status(live, link, now)
    }

    /// What link 2 would do if posted now with the right key.
    pub fn link2_status(&self, link: &TokenDigest, now: OffsetDateTime) -> LinkStatus {
        let live = match self {
            RegistrationState::AwaitingAuthKey(s) if s.link == *link => Some(s.expires_at),
            _ => None,
        };
        self.status(live, link, now)
    }

    fn status(
        &self,
        live: Option<OffsetDateTime>,
        link: &TokenDigest,
        now: OffsetDateTime,
    ) -> LinkStatus {
        LinkStatus::of(live, self.lookup_keys().contains(link), now)
    }

    /// R2 POST with link 1: consumes the link and binds the flow to this browser.
    pub fn open_link<R: rand::CryptoRng + ?Sized>(
        self,
        link: &TokenDigest,
        env: Env<'_>,
        rng: &mut R,
    ) -> Result<(RegistrationState, FlowHandle), Rejection> {
        let (handle, bound) = link::open(self.link1_status(link, env.now), env, rng)?;
        let RegistrationState::AwaitingLinkOpen(s) = self else {
            return Err(Rejection::LinkInvalid);
        };
        let next = AwaitingIdentity {
            handle: bound,
            email: s.email,
            link: s.link,
            attempts: 0,
            expires_at: deadline(env.now, env.policy.identity_step_ttl),
        };
        Ok((RegistrationState::AwaitingIdentity(next), handle))
    }

    /// R3: checks the claim against the roster entry found for its card number.
    ///
    /// `member_exhausted` is the portal's answer from the per-member counter (SEC-09):
    /// when true, the check fails whatever was typed. The returned state always
    /// replaces the stored one (attempts are spent even on failure); the `Result` says
    /// what the member sees.
    pub fn verify_identity<R: rand::CryptoRng + ?Sized>(
        self,
        handle: &TokenDigest,
        check: RosterCheck<'_>,
        env: Env<'_>,
        rng: &mut R,
    ) -> Step<IdentityVerified> {
        let s = match self {
            RegistrationState::AwaitingIdentity(s) if s.handle == *handle => s,
            other => return Step::unchanged(other, Rejection::WrongStep),
        };
        if expired(env.now, s.expires_at) {
            return Step::unchanged(RegistrationState::AwaitingIdentity(s), Rejection::Expired);
        }
        if s.attempts >= env.policy.identity_tries_per_flow {
            return Step::unchanged(
                RegistrationState::AwaitingIdentity(s),
                Rejection::IdentityAttemptsExhausted,
            );
        }
        match check.matched() {
            Some(r) => {
                let (link, link_digest) = VerificationLinkToken::issue(env.keys, rng);
                let key = AuthKey::generate(rng, env.policy.auth_key_len);
                let expires_at = deadline(env.now, env.policy.verification_link_ttl);
                let next = AwaitingAuthKey {
                    email: s.email,
                    member: r.member_id.clone(),
                    spent: vec![s.link, s.handle],
                    link: link_digest,
                    auth_key: key.digest(env.keys, &link_digest),
                    key_bound_to: None,
                    resends: 0,
                    sent_at: Some(env.now),
                    browser: Some(s.handle),
                    attempts: 0,
                    expires_at,
                };
                Step {
                    state: RegistrationState::AwaitingAuthKey(next),
                    result: Ok(IdentityVerified {
                        auth_key: key,
                        link,
                        expires_at,
                        member: r.member_id.clone(),
                    }),
                }
            }
            None => {
                let (attempts, used_up) = failed_attempt(s.attempts, env);
                let state = if used_up {
                    RegistrationState::Dead(Dead {
                        reason: DeadReason::IdentityAttemptsExhausted,
                        spent: vec![s.link, s.handle],
                        at: env.now,
                    })
                } else {
                    RegistrationState::AwaitingIdentity(AwaitingIdentity { attempts, ..s })
                };
                Step {
                    state,
                    result: Err(Rejection::IdentityNotConfirmed),
                }
            }
        }
    }

    /// R2': the member signed in with valid insurer-issued temporary credentials (the
    /// portal verified them); skip R3–R4.
    pub fn accept_temporary_credentials<R: rand::CryptoRng + ?Sized>(
        self,
        handle: &TokenDigest,
        account: AccountId,
        member: MemberId,
        stamp: SecurityStamp,
        env: Env<'_>,
        rng: &mut R,
    ) -> Result<(RegistrationState, FlowHandle), Rejection> {
        let s = match self {
            RegistrationState::AwaitingIdentity(s) if s.handle == *handle => s,
            _ => return Err(Rejection::WrongStep),
        };
        if expired(env.now, s.expires_at) {
            return Err(Rejection::Expired);
        }
        let new_handle = FlowHandle::generate(rng);
        let next = AwaitingCredentials {
            email: s.email,
            proof: RegistrationProof(ProofKind::TemporaryCredentials {
                account,
                member,
                stamp: Some(stamp),
            }),
            spent: vec![s.link, s.handle],
            handle: new_handle.digest(env.keys),
            expires_at: deadline(env.now, env.policy.credentials_step_ttl),
        };
        Ok((RegistrationState::AwaitingCredentials(next), new_handle))
    }

    /// R4 POST: link 2 and the 認証キー together. A wrong key spends one of the key's
    /// tries; the last one kills the flow (SEC-11).
    pub fn confirm_auth_key<R: rand::CryptoRng + ?Sized>(
        self,
        link: &TokenDigest,
        key: &AuthKey,
        env: Env<'_>,
        rng: &mut R,
    ) -> Step<FlowHandle> {
        if let Err(r) = self.link2_status(link, env.now).openable() {
            return Step::unchanged(self, r);
        }
        let RegistrationState::AwaitingAuthKey(s) = self else {
            return Step::unchanged(self, Rejection::LinkInvalid);
        };
        if s.attempts >= env.policy.auth_key_tries {
            return Step::unchanged(
                RegistrationState::AwaitingAuthKey(s),
                Rejection::AuthKeyAttemptsExhausted,
            );
        }
        let bound = s.key_bound_to.unwrap_or(s.link);
        if key.matches(env.keys, &bound, &s.auth_key) {
            let handle = FlowHandle::generate(rng);
            let mut spent = s.spent;
            spent.push(s.link);
            let next = AwaitingCredentials {
                email: s.email,
                proof: RegistrationProof(ProofKind::IdentityVerified { member: s.member }),
                spent,
                handle: handle.digest(env.keys),
                expires_at: deadline(env.now, env.policy.credentials_step_ttl),
            };
            return Step {
                state: RegistrationState::AwaitingCredentials(next),
                result: Ok(handle),
            };
        }
        let attempts = s.attempts + 1;
        if attempts >= env.policy.auth_key_tries {
            let mut spent = s.spent;
            spent.push(s.link);
            Step {
                state: RegistrationState::Dead(Dead {
                    reason: DeadReason::AuthKeyAttemptsExhausted,
                    spent,
                    at: env.now,
                }),
                result: Err(Rejection::AuthKeyAttemptsExhausted),
            }
        } else {
            Step {
                state: RegistrationState::AwaitingAuthKey(AwaitingAuthKey { attempts, ..s }),
                result: Err(Rejection::AuthKeyIncorrect),
            }
        }
    }

    /// R5: checks the flow may complete now and hands back what the account needs. The
    /// portal validates the credentials, hashes the password and commits
    /// [`RegistrationState::complete`] together with the account.
    pub fn ready_to_complete(
        &self,
        handle: &TokenDigest,
        now: OffsetDateTime,
    ) -> Result<&AwaitingCredentials, Rejection> {
        match self {
            RegistrationState::AwaitingCredentials(s) if s.handle == *handle => {
                if expired(now, s.expires_at) {
                    Err(Rejection::Expired)
                } else {
                    Ok(s)
                }
            }
            _ => Err(Rejection::WrongStep),
        }
    }

    /// R5 committed: the state to store together with the new account.
    pub fn complete(self, account: AccountId, now: OffsetDateTime) -> RegistrationState {
        RegistrationState::Completed(Completed {
            account,
            spent: self.lookup_keys(),
            at: now,
            login: None,
        })
    }

    pub(crate) fn account(&self) -> Option<&AccountId> {
        match self {
            RegistrationState::Completed(s) => Some(&s.account),
            _ => None,
        }
    }

    /// The R1 address while the flow is open.
    pub fn email(&self) -> Option<&EmailAddress> {
        match self {
            RegistrationState::AwaitingLinkOpen(s) => Some(&s.email),
            RegistrationState::AwaitingIdentity(s) => Some(&s.email),
            RegistrationState::AwaitingAuthKey(s) => Some(&s.email),
            RegistrationState::AwaitingCredentials(s) => Some(&s.email),
            _ => None,
        }
    }
}

// A flow whose link is still live is kept, then a day more, so that a reused link is told
// "already used" or "expired" rather than "unknown".
flow_index! { RegistrationState;
    RegistrationState::AwaitingLinkOpen(s) => [s.link], deadline(s.expires_at, TOMBSTONE_TTL);
    RegistrationState::AwaitingIdentity(s) => [s.link, s.handle], deadline(s.expires_at, TOMBSTONE_TTL);
    RegistrationState::AwaitingAuthKey(s) => [s.spent.as_slice(), &[s.link]].concat(), deadline(s.expires_at, TOMBSTONE_TTL);
    RegistrationState::AwaitingCredentials(s) => [s.spent.as_slice(), &[s.handle]].concat(), deadline(s.expires_at, TOMBSTONE_TTL);
    RegistrationState::Completed(s) => s.spent.clone(), deadline(s.at, TOMBSTONE_TTL);
    RegistrationState::Dead(s) => s.spent.clone(), deadline(s.at, TOMBSTONE_TTL);
}

/// The result of R3 that the member sees: the 認証キー to show once, and link 2 to mail.
#[derive(Debug)]
pub struct IdentityVerified {
    /// Show on screen, once (「必ず控えてください」).
    pub auth_key: AuthKey,
    /// Mail to the R1 address.
    pub link: VerificationLinkToken,
    /// When both die.
    pub expires_at: OffsetDateTime,
    /// Who the roster says the member is.
    pub member: MemberId,
}

/// A transition whose new state must be stored whatever the member is told (attempt
/// counters move on failure too).
#[derive(Debug)]
pub struct Step<T> {
    /// The state to store.
    pub state: RegistrationState,
    /// What to tell the member once the state is stored.
    pub result: Result<T, Rejection>,
}

impl<T> Step<T> {
    fn unchanged(state: RegistrationState, rejection: Rejection) -> Self {
        Step {
            state,
            result: Err(rejection),
        }
    }
}

/// Whether a claim matches a roster entry: same canonical card number, same birth date,
/// same kana name when the claim has one, and the member still insured. Each compared
/// in constant time (SEC-45); the answer never says which part differed (SEC-09).
/// One identity check (SEC-09): what the member typed, the roster entry it is compared
/// with (found by the typed card number at R3, the account's member at a reset), and
/// whether the member's budget across flows is spent.
#[derive(Clone, Copy, Debug)]
pub struct RosterCheck<'a> {
    /// What the member typed.
    pub claim: &'a IdentityClaim,
    /// The roster entry to compare with, if any.
    pub record: Option<&'a MemberRecord>,
    /// The member's budget across flows is spent: the check fails whatever was typed.
    pub member_exhausted: bool,
}

impl RosterCheck<'_> {
    /// The roster entry, when the claim matches it and the budget allows a match.
    pub fn matched(&self) -> Option<&MemberRecord> {
        self.record
            .filter(|r| !self.member_exhausted && roster_matches(self.claim, r))
    }
}

/// A failed identity check spends one of the flow's tries: the tries after it, and
/// whether they are used up (the flow ends). Whatever failed — the card number, the
/// birth date, or the member's budget — the member is told
/// [`Rejection::IdentityNotConfirmed`], so the answer is no card-number oracle (SEC-09).
pub(crate) fn failed_attempt(attempts: u32, env: Env<'_>) -> (u32, bool) {
    let attempts = attempts.saturating_add(1);
    (attempts, attempts >= env.policy.identity_tries_per_flow)
}

pub(crate) fn roster_matches(claim: &IdentityClaim, record: &MemberRecord) -> bool {
    let card = claim
        .card_number
        .canonical()
        .as_bytes()
        .ct_eq(record.card_number.canonical().as_bytes());
    let birth = claim
        .birth_date
        .date()
        .to_julian_day()
        .to_be_bytes()
        .ct_eq(&record.birth_date.date().to_julian_day().to_be_bytes());
    let kana = match (&claim.kana_name, &record.kana_name) {
        (Some(c), Some(r)) => c.as_str().as_bytes().ct_eq(r.as_str().as_bytes()),
        (Some(_), None) | (None, _) => subtle::Choice::from(1u8),
    };
    let eligible = subtle::Choice::from(u8::from(record.eligible));
    bool::from(card & birth & kana & eligible)
}

// ── The journey: what each registration step decides from what the driver loaded ──

/// A loaded flow: the record, its version, and the digest that found it.
pub type Found<'a> = (&'a Versioned<FlowRecord>, &'a TokenDigest);

fn registration_of<'a>(
    found: Option<Found<'a>>,
) -> Option<(
    &'a Versioned<FlowRecord>,
    &'a TokenDigest,
    &'a RegistrationState,
)> {
    match found {
        Some((record, digest)) => match &record.value.state {
            FlowState::Registration(s) => Some((record, digest, s)),
            _ => None,
        },
        None => None,
    }
}

fn replace(record: &Versioned<FlowRecord>, state: RegistrationState) -> Write {
    Write::Flow {
        expect: Expect::At(record.version),
        id: record.value.id.clone(),
        state: FlowState::Registration(state),
    }
}

/// The SEC-13 allowance of mails to one address.
pub fn address_mail_window(env: Env<'_>) -> Window {
    Window {
        span: time::Duration::hours(1),
        cap: env.policy.mails_per_address_per_hour,
        min_interval: Some(env.policy.mail_min_interval),
    }
}

/// Counts one mail to `to` under [`address_mail_window`]; `Err` when it is throttled
/// (SEC-13).
pub(crate) fn address_mail_hit(
    to: &EmailAddress,
    mails: &[Option<Versioned<Counter>>],
    env: Env<'_>,
) -> Result<CounterHit, time::Duration> {
    throttle::hit_across(
        &CounterKey::mails_to(to, env.keys),
        mails,
        env.now,
        address_mail_window(env),
    )
}

/// R1 (メールアドレス入力 → 送信する): link 1 for a new address, a notice to the owner of
/// a registered one. SEC-07: both branches do the same work — draw a link, digest it,
/// insert a flow, count the mail, send one mail — so neither the answer nor its timing
/// tells whether the address is registered; for a registered address the flow is
/// stored already dead and its link is never mailed. A throttled mail (SEC-13) is
/// answered the same way, with nothing written but one flow start from the requester's
/// and the portal's hourly budgets, which when spent answer the same way too.
pub fn begin<R: rand::CryptoRng + ?Sized>(
    email: EmailAddress,
    registered: bool,
    (mails, starts): (&[Option<Versioned<Counter>>], StartBudgets<'_>),
    urls: &Urls,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<()> {
    throttle::within_start_budgets(starts, env, (), || {
        let Ok(hit) = address_mail_hit(&email, mails, env) else {
            return Decision::answer(())
                .audit(AuditEvent::new(AuditKind::MailThrottled, env.now).email(email.masked()));
        };
        let now = env.now;
        let (state, token) = start(email.clone(), env, rng);
        let expires_at = state.expires_at;
        let flow_id = FlowId::generate(rng);
        let (stored, kind, message) = if registered {
            (
                RegistrationState::Dead(Dead {
                    reason: DeadReason::AlreadyRegistered,
                    spent: vec![state.link],
                    at: now,
                }),
                AuditKind::RegistrationForRegisteredAddress,
                MailMessage::AlreadyRegistered {
                    login_url: urls.login(),
                },
            )
        } else {
            let url = urls.link(|p| &p.registration, token.expose_secret());
            (
                RegistrationState::AwaitingLinkOpen(state),
                AuditKind::RegistrationStarted,
                MailMessage::RegistrationLink(MailLink {
                    url,
                    token,
                    expires_at,
                }),
            )
        };
        Decision::answer(())
            .flow(
                Expect::Absent,
                flow_id.clone(),
                FlowState::Registration(stored),
            )
            .charge(hit)
            .audit(
                AuditEvent::new(kind, now)
                    .flow(&flow_id)
                    .email(email.masked()),
            )
            .mail(email, message)
    })
}

/// R2 POST of 【本人確認ページへ】: consumes link 1 and binds the flow to this browser.
pub fn open<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<FlowHandle> {
    let Some((record, digest, state)) = registration_of(found) else {
        return Decision::reject(Rejection::LinkInvalid);
    };
    match state.clone().open_link(digest, env, rng) {
        Err(r) => Decision::reject(r),
        Ok((next, handle)) => Decision::answer(handle).write(replace(record, next)).audit(
            AuditEvent::new(AuditKind::RegistrationLinkOpened, env.now).flow(&record.value.id),
        ),
    }
}

/// R3's gate before the roster is asked: the handle must belong to a live flow at the
/// identity step with tries left, so a forged handle cannot probe card numbers (SEC-09).
/// `Some` is the (read-only) answer when it does not.
pub fn identity_gate<T>(found: Option<Found<'_>>, env: Env<'_>) -> Option<Decision<T>> {
    let Some((_, digest, state)) = registration_of(found) else {
        return Some(Decision::reject(Rejection::WrongStep));
    };
    match state {
        RegistrationState::AwaitingIdentity(s)
            if s.handle == *digest
                && env.now < s.expires_at
                && s.attempts < env.policy.identity_tries_per_flow =>
        {
            None
        }
        RegistrationState::AwaitingIdentity(s) if s.handle == *digest => {
            Some(Decision::reject(if env.now >= s.expires_at {
                Rejection::Expired
            } else {
                Rejection::IdentityAttemptsExhausted
            }))
        }
        // The browser that passed R3 sends R3 again (a double tap, a lost response, a
        // reload): the key was shown once and is not shown again; the member is told
        // to go on with it and link 2 (or have link 2 resent), not to start over.
        RegistrationState::AwaitingAuthKey(s)
            if s.is_r3_browser(digest) && !expired(env.now, s.expires_at) =>
        {
            Some(Decision::reject(Rejection::IdentityAlreadyVerified {
                expires_at: s.expires_at,
            }))
        }
        _ => Some(Decision::reject(Rejection::WrongStep)),
    }
}

/// R2' without the password: a handle that is not at the identity step (or whose step
/// expired) is answered [`Rejection::WrongStep`] before any Argon2 work.
pub fn credentials_entry_refused<T>(
    found: Option<Found<'_>>,
    now: OffsetDateTime,
) -> Option<Decision<T>> {
    let at_identity = matches!(
        registration_of(found),
        Some((_, digest, RegistrationState::AwaitingIdentity(s)))
            if s.handle == *digest && now < s.expires_at
    );
    (!at_identity).then(|| Decision::reject(Rejection::WrongStep))
}

/// What R3 learned beyond the flow: the roster entry for the typed card number, the
/// member's identity-check counter, and whether the member or the flow's address
/// already has an account.
#[derive(Debug)]
pub struct IdentityFacts<'a> {
    /// The roster entry of the typed card number.
    pub record: Option<&'a MemberRecord>,
    /// The budget this check is charged to (SEC-09): the member's
    /// [`CounterKey::IdentityChecks`], or for a card number not on the roster its
    /// [`CounterKey::IdentityChecksOfCard`] — so a miss writes what a hit writes.
    pub budget: &'a CounterKey,
    /// That budget's counter as loaded.
    pub member_checks: Option<&'a Versioned<Counter>>,
    /// The member already has an account.
    pub member_has_account: bool,
    /// The flow's address belongs to an account (a family member's).
    pub email_taken: bool,
}

/// What R3 reads after the roster answered (SEC-09): the budget the check is charged to
/// — the member's, or for a card number not on the roster its own keyed budget — and
/// whose account to look for. For a card off the roster that is a member ID no roster
/// entry has (the empty one), so the read is the same statement either way and the
/// store's work is no card-number oracle.
pub fn identity_budget(
    record: Option<&MemberRecord>,
    card: &crate::domain::CardNumber,
    keys: &crate::token::DigestKeyring,
) -> (CounterKey, MemberId) {
    match record {
        Some(r) => (
            CounterKey::IdentityChecks(r.member_id.clone()),
            r.member_id.clone(),
        ),
        None => (
            CounterKey::identity_checks_of_card(card, keys),
            MemberId::new(""),
        ),
    }
}

/// The SEC-09 budget of identity checks per member across flows.
pub fn identity_member_window(env: Env<'_>) -> Window {
    Window {
        span: env.policy.identity_member_window,
        cap: env.policy.identity_tries_per_member,
        min_interval: None,
    }
}

/// R3 (本人確認 → 確認): the claim against the roster, counted on the flow and on the
/// member before anything is compared (SEC-09); the 認証キー on screen and link 2 by
/// mail on success; after identity is proven, the member may be told about their own
/// account or a family member's use of the address.
pub fn confirm_identity<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    claim: &IdentityClaim,
    facts: IdentityFacts<'_>,
    urls: &Urls,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<(AuthKey, OffsetDateTime)> {
    if let Some(stop) = identity_gate(found, env) {
        return stop;
    }
    let Some((record, digest, state)) = registration_of(found) else {
        return Decision::reject(Rejection::WrongStep);
    };
    let now = env.now;
    let member = facts.record.map(|r| r.member_id.clone());
    // Equal work (SEC-09): a card on the roster and one that is not each charge one
    // budget, so the commit does not tell them apart.
    let (member_hit, member_exhausted) = match throttle::hit(
        facts.budget,
        facts.member_checks,
        now,
        identity_member_window(env),
    ) {
        Ok(hit) => (Some(hit), false),
        Err(_) => (None, true),
    };
    let step = state.clone().verify_identity(
        digest,
        RosterCheck {
            claim,
            record: facts.record,
            member_exhausted,
        },
        env,
        rng,
    );
    let mut next = step.state;
    let mut result = step.result;
    if result.is_ok() && (facts.member_has_account || facts.email_taken) {
        let (reason, rejection) = if facts.member_has_account {
            (DeadReason::AlreadyRegistered, Rejection::AlreadyRegistered)
        } else {
            (DeadReason::FamilyEmailInUse, Rejection::FamilyEmailInUse)
        };
        next = RegistrationState::Dead(Dead {
            reason,
            spent: next.lookup_keys(),
            at: now,
        });
        result = Err(rejection);
    }
    let email = state.email().cloned();
    let mut decision = match result {
        Ok(verified) => {
            let mut ev = AuditEvent::new(AuditKind::IdentityVerified, now).flow(&record.value.id);
            if let Some(m) = &member {
                ev = ev.member(m);
            }
            let mut d = Decision::answer((verified.auth_key, verified.expires_at)).audit(ev);
            if let Some(email) = email {
                let url = urls.link(|p| &p.verification, verified.link.expose_secret());
                d = d.mail(
                    email,
                    MailMessage::IdentityVerified(MailLink {
                        url,
                        token: verified.link,
                        expires_at: verified.expires_at,
                    }),
                );
            }
            d
        }
        Err(rejection) => {
            // A spent budget of a card off the roster is no member to alert about.
            let kind = if member_exhausted && member.is_some() {
                AuditKind::IdentityMemberBlocked
            } else if matches!(
                rejection,
                Rejection::FamilyEmailInUse | Rejection::AlreadyRegistered
            ) {
                AuditKind::FamilyEmailRefused
            } else {
                AuditKind::IdentityFailed
            };
            let mut ev = AuditEvent::new(kind, now)
                .flow(&record.value.id)
                .detail(rejection.code());
            if let Some(m) = &member {
                ev = ev.member(m);
            }
            Decision::reject(rejection).audit(ev)
        }
    };
    decision = decision.write(replace(record, next));
    if let Some(hit) = member_hit {
        decision = decision.counter(hit);
    }
    decision
}

/// The answer to a link-2 resend: a new link 2 went to the R1 address.
#[derive(Debug)]
#[non_exhaustive]
pub struct LinkResent {
    /// When link 2 (and the 認証キー) stop working: unchanged by the resend.
    pub expires_at: OffsetDateTime,
    /// The address it went to, masked.
    pub masked_email: String,
    /// The receipt of the new link 2's mail
    /// ([`Portal::mail_status`](crate::Portal::mail_status)).
    pub receipt: MailId,
}

/// R3's 「メールが届かない場合」: link 2 mailed again to the R1 address, for the browser
/// that passed R3 (its handle, spent at R3, is the flow's second spent digest). The new
/// link replaces the old one, which dies; the 認証キー on screen stays valid; the link's
/// deadline does not move. Resends are `mail_min_interval` apart and at most
/// `mails_per_address_per_hour` per flow (SEC-13), kept on the flow itself so no
/// counter is read.
pub fn resend_link2<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    urls: &Urls,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<LinkResent> {
    let Some((record, digest, RegistrationState::AwaitingAuthKey(s))) = registration_of(found)
    else {
        return Decision::reject(Rejection::WrongStep);
    };
    // Only the browser that passed R3 may ask.
    if !s.is_r3_browser(digest) {
        return Decision::reject(Rejection::WrongStep);
    }
    let now = env.now;
    if expired(now, s.expires_at) {
        return Decision::reject(Rejection::Expired);
    }
    if let Some(sent) = s.sent_at {
        let ready_at = sent.saturating_add(env.policy.mail_min_interval);
        if now < ready_at {
            return Decision::reject(Rejection::TooManyRequests {
                retry_after: ready_at - now,
            });
        }
    }
    if s.resends >= env.policy.mails_per_address_per_hour {
        return Decision::reject(Rejection::WrongStep);
    }
    let (token, link) = VerificationLinkToken::issue(env.keys, rng);
    let mut spent = s.spent.clone();
    spent.push(s.link);
    let next = AwaitingAuthKey {
        spent,
        link,
        key_bound_to: Some(s.key_bound_to.unwrap_or(s.link)),
        resends: s.resends.saturating_add(1),
        sent_at: Some(now),
        ..s.clone()
    };
    let url = urls.link(|p| &p.verification, token.expose_secret());
    let receipt = MailId::generate(rng);
    Decision::answer(LinkResent {
        expires_at: s.expires_at,
        masked_email: s.email.masked(),
        receipt,
    })
    .write(replace(record, RegistrationState::AwaitingAuthKey(next)))
    .audit(AuditEvent::new(AuditKind::VerificationLinkResent, now).flow(&record.value.id))
    .receipted_mail(
        receipt,
        s.email.clone(),
        MailMessage::IdentityVerified(MailLink {
            url,
            token,
            expires_at: s.expires_at,
        }),
    )
}

/// R4 POST of 認証: link 2 with the 認証キー. A wrong key spends one of its tries; the
/// last one kills the flow (SEC-11).
pub fn confirm_key<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    key: &AuthKey,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<FlowHandle> {
    let Some((record, digest, state)) = registration_of(found) else {
        return Decision::reject(Rejection::LinkInvalid);
    };
    let step = state.clone().confirm_auth_key(digest, key, env, rng);
    if step.state == *state {
        // Nothing to record (expired, used, exhausted): answer without writing.
        return match step.result {
            Ok(h) => Decision::answer(h),
            Err(r) => Decision::reject(r),
        };
    }
    let kind = if step.result.is_ok() {
        AuditKind::AuthKeyConfirmed
    } else {
        AuditKind::AuthKeyFailed
    };
    let decision = match step.result {
        Ok(h) => Decision::answer(h),
        Err(r) => Decision::reject(r),
    };
    decision
        .write(replace(record, step.state))
        .audit(AuditEvent::new(kind, env.now).flow(&record.value.id))
}

/// R2' (事前登録の方): the insurer-issued login ID and 仮パスワード instead of R3–R4, on
/// a flow at the identity step. The password gate's rules apply (failures count on the
/// account like login failures); the flow moves on in the same commit.
pub fn temporary_sign_in<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    account: Option<&Versioned<Account>>,
    password: PasswordCheck,
    refusals: Refusals<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<FlowHandle> {
    let Some((record, digest, state)) = registration_of(found) else {
        return Decision::reject(Rejection::WrongStep);
    };
    if !matches!(state, RegistrationState::AwaitingIdentity(s) if s.handle == *digest && env.now < s.expires_at)
    {
        return Decision::reject(Rejection::WrongStep);
    }
    let opened = match gate::check(Gate::Temporary, account, password, Some(refusals), env) {
        Ok(opened) => opened,
        Err(refused) => return refused,
    };
    let a = &opened.account;
    match state.clone().accept_temporary_credentials(
        digest,
        a.id.clone(),
        a.member.clone(),
        a.security_stamp.clone(),
        env,
        rng,
    ) {
        Err(r) => Decision::reject(r),
        Ok((next, handle)) => {
            let mut d = Decision::answer(handle).write(replace(record, next)).audit(
                AuditEvent::new(AuditKind::TemporaryCredentialsAccepted, env.now)
                    .flow(&record.value.id)
                    .account(&a.id),
            );
            for ev in opened.audit {
                d = d.audit(ev);
            }
            d.account(opened.expect, opened.account)
        }
    }
}

/// R5's gate: the flow is at 利用者情報入力 with this handle and unexpired. The portal
/// asks it before it validates input or hashes anything.
pub fn credentials_gate<'a, T>(
    found: Option<Found<'a>>,
    now: OffsetDateTime,
) -> Result<&'a AwaitingCredentials, Decision<T>> {
    credentials_step(found, now).map_err(Decision::reject)
}

/// The R5 step `found` is at, or why it is not: [`Rejection::WrongStep`] for a handle
/// at any other step, [`Rejection::Expired`] for an expired one.
pub fn credentials_step<'a>(
    found: Option<Found<'a>>,
    now: OffsetDateTime,
) -> Result<&'a AwaitingCredentials, Rejection> {
    let Some((_, digest, state)) = registration_of(found) else {
        return Err(Rejection::WrongStep);
    };
    state.ready_to_complete(digest, now)
}

/// R5's gate: [`credentials_gate`], except that the holder of the R5 handle sending R5
/// again with the same login ID moments after it made the account (a double tap, a lost
/// response) is answered the same account, with nothing written.
pub fn completion_gate<'a>(
    found: Option<Found<'a>>,
    login_id: Option<&LoginId>,
    env: Env<'_>,
) -> Result<&'a AwaitingCredentials, Box<Decision<AccountId>>> {
    match repeated_completion(found, login_id, env) {
        Some(made) => Err(Box::new(Decision::answer(made))),
        None => credentials_gate(found, env.now).map_err(Box::new),
    }
}

/// The account a completed flow made, when `found` is that flow found by its R5 handle
/// (the last digest it spent), `login_id` is the one it chose, and it completed less
/// than [`Policy::repeat_window`](crate::Policy::repeat_window) ago.
fn repeated_completion(
    found: Option<Found<'_>>,
    login_id: Option<&LoginId>,
    env: Env<'_>,
) -> Option<AccountId> {
    let (Some((_, digest, RegistrationState::Completed(done))), Some(login_id)) =
        (registration_of(found), login_id)
    else {
        return None;
    };
    let same_login = done
        .login
        .as_ref()
        .is_some_and(|d| chosen_login_digests(login_id, env.keys).contains(d));
    (done.spent.last() == Some(digest)
        && same_login
        && env.now < done.at.saturating_add(env.policy.repeat_window))
    .then(|| done.account.clone())
}

/// Whether a provisioned account may still be completed by a flow that passed R2'
/// when the account had `stamp`: still provisioned, temporary password unexpired, and
/// not re-issued or disabled since (both change the stamp) (SEC-41).
pub fn provisioned_still_valid(
    account: &Account,
    stamp: Option<&SecurityStamp>,
    now: OffsetDateTime,
) -> bool {
    let unexpired = matches!(
        account.status,
        AccountStatus::Provisioned { temporary_expires_at } if now < temporary_expires_at
    );
    let same_stamp = stamp == Some(&account.security_stamp);
    unexpired && same_stamp
}

/// SEC-41: the stored hash of the temporary password that R5's new password must differ
/// from — the provisioned account's, while the flow's R2' proof still holds for it
/// (same account, same stamp, unexpired). `None` on the R3–R4 path, and when the proof
/// no longer holds (then [`complete`] refuses anyway).
pub fn temporary_to_differ_from<'a>(
    ready: &AwaitingCredentials,
    provisioned: Option<&'a Versioned<Account>>,
    now: OffsetDateTime,
) -> Option<&'a PasswordHashString> {
    proven_provisioned(&ready.proof, provisioned, now).map(|a| &a.value.password_hash)
}

/// The provisioned account the R2' `proof` still holds for: the account it names, with
/// the stamp it saw, its temporary password unexpired (SEC-41).
fn proven_provisioned<'a>(
    proof: &RegistrationProof,
    provisioned: Option<&'a Versioned<Account>>,
    now: OffsetDateTime,
) -> Option<&'a Versioned<Account>> {
    let id = proof.provisioned_account()?;
    provisioned.filter(|a| {
        a.value.id == *id && provisioned_still_valid(&a.value, proof.provisioned_stamp(), now)
    })
}

/// SEC-41: the temporary password cannot become the long-term one. `is_temporary` is
/// whether the new password verified against [`temporary_to_differ_from`]'s hash.
pub fn check_not_temporary(is_temporary: bool) -> Result<(), Rejection> {
    if is_temporary {
        Err(Rejection::PasswordSameAsTemporary)
    } else {
        Ok(())
    }
}

/// The ニックネーム as typed at R5: none when left blank, otherwise one the rules accept,
/// or the field error to show.
pub fn read_nickname(typed: Option<&str>) -> Result<Option<Nickname>, Rejection> {
    match typed.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) => Nickname::parse(n)
            .map(Some)
            .map_err(crate::domain::InputError::from)
            .map_err(Rejection::from),
    }
}

/// R5's choice of login ID and password once the roster's words are known (after
/// [`check_confirmation`](super::account::check_confirmation)): a login ID that is not
/// the address, the card number or the birth date (SEC-42), then the password's rules
/// (SEC-14, SEC-17).
pub fn check_chosen(
    (login_id, email, identifying): (&LoginId, &EmailAddress, &[String]),
    password: &crate::domain::Password,
    context: &crate::domain::PasswordContext,
    policy: &crate::domain::PasswordRules,
) -> Result<(), Rejection> {
    if login_is_identifying(login_id, email, identifying) {
        return Err(Rejection::LoginIdIdentifying);
    }
    super::account::check_new_password(password, context, policy)
}

/// SEC-42: a chosen login ID may not be the e-mail address (or its local part), the
/// card number in any spelling, or the birth date. `identifying` holds the roster's
/// spellings; [`LoginId::ensure_not_identifying`] ignores case, width and separators, so
/// `999.123456.00` is `999-123456-00`.
pub fn login_is_identifying(
    login_id: &LoginId,
    email: &EmailAddress,
    identifying: &[String],
) -> bool {
    let address = email.canonical();
    let local = address.split_once('@').map(|(l, _)| l);
    let words = identifying.iter().map(String::as_str);
    login_id
        .ensure_not_identifying(words.chain([address]).chain(local))
        .is_err()
}

/// What R5 checked and computed before deciding.
#[derive(Debug)]
pub struct ChosenCredentials {
    /// 新ログインID, parsed and checked against SEC-42.
    pub login_id: LoginId,
    /// ニックネーム.
    pub nickname: Option<Nickname>,
    /// Argon2id of 新パスワード, which passed the SEC-17 checks.
    pub password_hash: PasswordHashString,
}

/// R5 (利用者情報入力 → 登録): the account, made from the flow's proof — identity
/// verified at R3–R4, or the temporary credentials of R2' on a still-valid provisioned
/// account — committed together with the completed flow. Login ID, address and member
/// are each unique; a taken address is a family member's (「ご家族と重複する
/// メールアドレスは使用できません」).
pub fn complete<R: rand::CryptoRng + ?Sized>(
    found: Option<Found<'_>>,
    chosen: ChosenCredentials,
    provisioned: Option<&Versioned<Account>>,
    urls: &Urls,
    env: Env<'_>,
    rng: &mut R,
) -> Decision<AccountId> {
    let ready = match completion_gate(found, Some(&chosen.login_id), env) {
        Ok(ready) => ready.clone(),
        Err(stop) => return *stop,
    };
    let login_digest = chosen_login_digests(&chosen.login_id, env.keys)
        .into_iter()
        .next();
    let Some((record, _, state)) = registration_of(found) else {
        return Decision::reject(Rejection::WrongStep);
    };
    let now = env.now;
    let proof = &ready.proof;
    let provisioned = match proof.provisioned_account() {
        None => None,
        Some(_) => match proven_provisioned(proof, provisioned, now) {
            Some(a) => Some(a),
            // SEC-41: a re-issue (new temporary password), a disable or the temporary
            // password's expiry since R2' revokes this flow's proof.
            None => return Decision::reject(Rejection::WrongStep),
        },
    };
    let account = Account {
        id: provisioned
            .map(|a| a.value.id.clone())
            .unwrap_or_else(|| AccountId::generate(rng)),
        login_id: chosen.login_id,
        email: Some(ready.email.clone()),
        member: proof.member().clone(),
        nickname: chosen.nickname,
        password_hash: chosen.password_hash,
        security_stamp: SecurityStamp::generate(rng),
        status: AccountStatus::Active,
        password_failures: 0,
        last_password_failure_at: None,
        otp_failures: 0,
        otp_cooldown_until: None,
        created_at: provisioned.map_or(now, |a| a.value.created_at),
        factors: Default::default(),
        recent_login: None,
    };
    let account_id = account.id.clone();
    let write = match provisioned {
        Some(a) => Write::Account {
            expect: Expect::At(a.version),
            account,
        },
        None => Write::CreateAccount(NewAccount::new(account)),
    };
    let mut completed = state.clone().complete(account_id.clone(), now);
    if let RegistrationState::Completed(done) = &mut completed {
        done.login = login_digest;
    }
    let mut decision = Decision::answer(account_id.clone())
        .write(replace(record, completed))
        .write(write)
        .audit(
            AuditEvent::new(AuditKind::RegistrationCompleted, now)
                .flow(&record.value.id)
                .account(&account_id)
                .member(proof.member())
                .email(ready.email.masked()),
        )
        .mail(
            ready.email.clone(),
            MailMessage::RegistrationCompleted {
                login_url: urls.login(),
            },
        );
    decision.audit_if_email_taken.push(
        AuditEvent::new(AuditKind::FamilyEmailRefused, now)
            .flow(&record.value.id)
            .member(proof.member()),
    );
    decision
}

#[cfg(test)]
mod chosen_tests {
    use time::OffsetDateTime;

    use super::{
        AwaitingCredentials, ProofKind, RegistrationProof, check_chosen, check_not_temporary,
        read_nickname, temporary_to_differ_from,
    };
    use crate::domain::{EmailAddress, LoginId, Password, PasswordContext, PasswordRules};
    use crate::error::Rejection;
    use crate::flow::account::check_confirmation;
    use crate::model::{AccountId, AccountStatus, MemberId, SecurityStamp, Version, Versioned};
    use crate::password_hash::PasswordHashString;
    use crate::token::TokenDigest;

    /// What R5 answers: the confirmation (checked before the roster is read), then the
    /// choice.
    fn chosen(login_id: &str, password: &str, confirmation: &str) -> Result<(), Rejection> {
        let email = EmailAddress::parse("hanakoyamada@example.jp").unwrap();
        let identifying = ["99912345600".to_owned()];
        let mut context = PasswordContext::new();
        context.add_word("さくら健康保険組合");
        let password = Password::new(password).unwrap();
        check_confirmation(&password, &Password::new(confirmation).unwrap())?;
        check_chosen(
            (&LoginId::parse(login_id).unwrap(), &email, &identifying),
            &password,
            &context,
            &PasswordRules::default(),
        )
    }

    // R5's answers come in the order the member fixes them: the confirmation, then the
    // login ID (SEC-42), then the password's rules (SEC-14, SEC-17).
    #[test]
    fn sec_42_r5_checks_confirmation_then_login_id_then_password() {
        let good = "correct horse battery staple";
        assert_eq!(chosen("taro-sakura", good, good), Ok(()));
        assert_eq!(
            chosen("hanakoyamada", "short", "shorter"),
            Err(Rejection::PasswordConfirmationMismatch)
        );
        assert_eq!(
            chosen("hanakoyamada", "short", "short"),
            Err(Rejection::LoginIdIdentifying),
            "the address's local part"
        );
        assert_eq!(
            chosen("999-123456-00", good, good),
            Err(Rejection::LoginIdIdentifying),
            "the card number in another spelling"
        );
        assert!(matches!(
            chosen("taro-sakura", "short", "short"),
            Err(Rejection::InvalidInput { .. })
        ));
    }

    /// A provisioned account with `stamp`, its temporary password valid until `until`.
    fn provisioned(
        id: &AccountId,
        stamp: &SecurityStamp,
        until: OffsetDateTime,
    ) -> crate::model::Account {
        crate::model::Account {
            id: id.clone(),
            login_id: LoginId::parse("kenpo-0001").unwrap(),
            email: None,
            member: MemberId::new("M0001"),
            nickname: None,
            password_hash: PasswordHashString::parse(
                "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            )
            .unwrap(),
            security_stamp: stamp.clone(),
            status: AccountStatus::Provisioned {
                temporary_expires_at: until,
            },
            password_failures: 0,
            last_password_failure_at: None,
            otp_failures: 0,
            otp_cooldown_until: None,
            created_at: until - time::Duration::days(21),
            factors: Default::default(),
            recent_login: None,
        }
    }

    // SEC-41: R5 compares the new password with the temporary one only while the R2'
    // proof holds for that very account; a match is refused.
    #[test]
    fn sec_41_the_new_password_must_differ_from_a_live_temporary_one() {
        let mut rng = rand::rng();
        let (id, other) = (AccountId::generate(&mut rng), AccountId::generate(&mut rng));
        let stamp = SecurityStamp::generate(&mut rng);
        let now = time::macros::datetime!(2026-12-07 10:00 UTC);
        let until = now + time::Duration::days(1);
        let ready = |account: &AccountId, proof_stamp: &SecurityStamp| AwaitingCredentials {
            email: EmailAddress::parse("ichiro@example.jp").unwrap(),
            proof: RegistrationProof(ProofKind::TemporaryCredentials {
                account: account.clone(),
                member: MemberId::new("M0001"),
                stamp: Some(proof_stamp.clone()),
            }),
            spent: Vec::new(),
            handle: TokenDigest::from_bytes([7; 32]),
            expires_at: until,
        };
        let live = Versioned {
            version: Version::FIRST,
            value: provisioned(&id, &stamp, until),
        };
        let held = ready(&id, &stamp);
        assert_eq!(
            temporary_to_differ_from(&held, Some(&live), now),
            Some(&live.value.password_hash)
        );
        let reissued = ready(&id, &SecurityStamp::generate(&mut rng));
        for (ready, account, at) in [
            (&reissued, Some(&live), now),
            (&ready(&other, &stamp), Some(&live), now),
            (&held, Some(&live), until),
            (&held, None, now),
        ] {
            assert_eq!(temporary_to_differ_from(ready, account, at), None);
        }
        let verified = AwaitingCredentials {
            proof: RegistrationProof(ProofKind::IdentityVerified {
                member: MemberId::new("M0001"),
            }),
            ..held.clone()
        };
        assert_eq!(temporary_to_differ_from(&verified, Some(&live), now), None);
        assert_eq!(
            check_not_temporary(true),
            Err(Rejection::PasswordSameAsTemporary)
        );
        assert_eq!(check_not_temporary(false), Ok(()));
    }

    #[test]
    fn a_blank_nickname_is_none_and_a_bad_one_a_field_error() {
        assert_eq!(read_nickname(None), Ok(None));
        assert_eq!(read_nickname(Some("  ")), Ok(None));
        assert_eq!(
            read_nickname(Some(" たろう ")).unwrap().unwrap().as_str(),
            "たろう"
        );
        assert!(matches!(
            read_nickname(Some(&"あ".repeat(200))),
            Err(Rejection::InvalidInput { .. })
        ));
    }
}
