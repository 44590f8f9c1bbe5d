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

use super::{Env, TOMBSTONE_TTL, deadline};
use crate::domain::{BirthDate, CardNumber, EmailAddress, KanaName};
use crate::error::Rejection;
use crate::model::{AccountId, MemberId, MemberRecord, SecurityStamp};
use crate::token::{
    AuthKey, FlowHandle, RegistrationLinkToken, TokenDigest, VerificationLinkToken,
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
pub struct AwaitingAuthKey {
    /// The address from R1.
    pub email: EmailAddress,
    /// Who the roster says the member is.
    pub member: MemberId,
    /// Spent digests (link 1, the R2 handle), kept to answer "already used".
    pub spent: Vec<TokenDigest>,
    /// Digest of link 2.
    pub link: TokenDigest,
    /// Digest of the 認証キー, bound to link 2.
    pub auth_key: TokenDigest,
    /// Wrong 認証キー entries so far.
    pub attempts: u32,
    /// When link 2 and the key die (30 min).
    pub expires_at: OffsetDateTime,
}

/// R4 (or R2') done: waiting for 新ログインID, 新パスワード and ニックネーム.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completed {
    /// The new account.
    pub account: AccountId,
    /// Every digest the flow used.
    pub spent: Vec<TokenDigest>,
    /// When it completed.
    pub at: OffsetDateTime,
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
    let token = RegistrationLinkToken::generate(rng);
    let state = AwaitingLinkOpen {
        email,
        link: token.digest(env.keys),
        expires_at: deadline(env.now, env.policy.registration_link_ttl),
    };
    (state, token)
}

/// What a link's landing page (GET) may say, without consuming anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkStatus {
    /// The link works: show the page with the button that POSTs it.
    Valid {
        /// When it stops working.
        expires_at: OffsetDateTime,
    },
    /// The link was used already.
    Used,
    /// The link has expired.
    Expired,
    /// Not a link of ours.
    Invalid,
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

    /// Valid or expired when the link is the one the current step waits for; used when
    /// the flow spent it; otherwise not ours.
    fn status(
        &self,
        live: Option<OffsetDateTime>,
        link: &TokenDigest,
        now: OffsetDateTime,
    ) -> LinkStatus {
        match live {
            Some(expires_at) if expired(now, expires_at) => LinkStatus::Expired,
            Some(expires_at) => LinkStatus::Valid { expires_at },
            None if self.lookup_keys().contains(link) => LinkStatus::Used,
            None => LinkStatus::Invalid,
        }
    }

    /// R2 POST with link 1: consumes the link and binds the flow to this browser.
    pub fn open_link<R: rand::CryptoRng + ?Sized>(
        self,
        link: &TokenDigest,
        env: Env<'_>,
        rng: &mut R,
    ) -> Result<(RegistrationState, FlowHandle), Rejection> {
        match self.link1_status(link, env.now) {
            LinkStatus::Valid { .. } => {}
            LinkStatus::Used => return Err(Rejection::LinkUsed),
            LinkStatus::Expired => return Err(Rejection::Expired),
            LinkStatus::Invalid => return Err(Rejection::LinkInvalid),
        }
        let RegistrationState::AwaitingLinkOpen(s) = self else {
            return Err(Rejection::LinkInvalid);
        };
        let handle = FlowHandle::generate(rng);
        let next = AwaitingIdentity {
            email: s.email,
            link: s.link,
            handle: handle.digest(env.keys),
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
        claim: &IdentityClaim,
        record: Option<&MemberRecord>,
        member_exhausted: bool,
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
        let attempts = s.attempts + 1;
        let matched = record.filter(|r| roster_matches(claim, r));
        match matched {
            Some(r) if !member_exhausted => {
                let link = VerificationLinkToken::generate(rng);
                let link_digest = link.digest(env.keys);
                let key = AuthKey::generate(rng, env.policy.auth_key_len);
                let expires_at = deadline(env.now, env.policy.verification_link_ttl);
                let next = AwaitingAuthKey {
                    email: s.email,
                    member: r.member_id.clone(),
                    spent: vec![s.link, s.handle],
                    link: link_digest,
                    auth_key: key.digest(env.keys, &link_digest),
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
            _ => {
                let rejection = if member_exhausted {
                    Rejection::IdentityAttemptsExhausted
                } else {
                    Rejection::IdentityNotConfirmed
                };
                let state = if attempts >= env.policy.identity_tries_per_flow {
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
                    result: Err(rejection),
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
        match self.link2_status(link, env.now) {
            LinkStatus::Valid { .. } => {}
            LinkStatus::Used => return Step::unchanged(self, Rejection::LinkUsed),
            LinkStatus::Expired => return Step::unchanged(self, Rejection::Expired),
            LinkStatus::Invalid => return Step::unchanged(self, Rejection::LinkInvalid),
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
        if key.matches(env.keys, &s.link, &s.auth_key) {
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
        })
    }

    pub(crate) fn lookup_keys(&self) -> Vec<TokenDigest> {
        match self {
            RegistrationState::AwaitingLinkOpen(s) => vec![s.link],
            RegistrationState::AwaitingIdentity(s) => vec![s.link, s.handle],
            RegistrationState::AwaitingAuthKey(s) => {
                let mut k = s.spent.clone();
                k.push(s.link);
                k
            }
            RegistrationState::AwaitingCredentials(s) => {
                let mut k = s.spent.clone();
                k.push(s.handle);
                k
            }
            RegistrationState::Completed(s) => s.spent.clone(),
            RegistrationState::Dead(s) => s.spent.clone(),
        }
    }

    pub(crate) fn purge_after(&self) -> OffsetDateTime {
        match self {
            // Keep a flow whose link is still live, then a day more so a reused link is
            // told "already used" or "expired" rather than "unknown".
            RegistrationState::AwaitingLinkOpen(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            RegistrationState::AwaitingIdentity(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            RegistrationState::AwaitingAuthKey(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            RegistrationState::AwaitingCredentials(s) => deadline(s.expires_at, TOMBSTONE_TTL),
            RegistrationState::Completed(s) => deadline(s.at, TOMBSTONE_TTL),
            RegistrationState::Dead(s) => deadline(s.at, TOMBSTONE_TTL),
        }
    }

    pub(crate) fn account(&self) -> Option<&AccountId> {
        match self {
            RegistrationState::Completed(s) => Some(&s.account),
            _ => None,
        }
    }
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
