//! Second factors (2段階認証): the 認証アプリ (TOTP, RFC 6238) and リカバリーコード, as
//! pure decisions like every other step.
//!
//! ```text
//! setup (fresh login) ──▶ AwaitingTotpCode ──right 確認コード──▶ Ended(Confirmed)
//!   (secret sealed in the flow,  │                 account.factors.totp = sealed secret
//!    QR code shown once)         │                 + ten リカバリーコード (first factor)
//!                                └─ tries spent / expired / superseded ─▶ Ended
//!
//! L1 password ok, 認証アプリ set up ──▶ LoginState::AwaitingFactor
//!     ├─ 確認コード of a step newer than the last accepted one ─▶ Authenticated
//!     ├─ an unused リカバリーコード ────────────────────────────▶ Authenticated (+ mail)
//!     └─ wrong code: counted on the challenge, the account and the day, exactly like a
//!        wrong 暗証キー (one budget for every factor, SEC-29)
//! ```
//!
//! A 確認コード is accepted once: the account keeps the last accepted time step, and a
//! code of that step or an earlier one is refused (RFC 6238 §5.2); ±1 step of clock skew
//! is allowed. A リカバリーコード works once; a regenerated set revokes the old one (its
//! generation is bound into every digest). Nothing here reads the clock, owns an RNG or
//! touches a store; the shared secret is opened and sealed with the keyring the driver
//! passes in.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::account::FreshLogin;
use super::ends::Ends;
use super::login::{
    AwaitingFactor, Found, LoginEndReason, LoginFactor, LoginState, OtpConsumed, otp_day_spent,
    otp_failure_day,
};
use super::step::Step;
use super::throttle;
use super::{AccountView, Env, FlowRecord, FlowState, TOMBSTONE_TTL, deadline};
use crate::error::Rejection;
use crate::mail::MailMessage;
use crate::model::{
    Account, AccountId, AuditEvent, AuditKind, Counter, CounterKey, Expect, FactorKind, FlowId,
    RecoveryCodeSet, RecoveryCodeSlot, TotpFactor, Versioned,
};
use crate::policy::FactorRequirement;
use crate::seal::{SealKeyring, SealPurpose, Sealed};
use crate::token::{
    DigestKeyring, FlowHandle, OtpChallengeId, RecoveryCode, TokenDigest, TotpCode,
};

/// Seconds in one TOTP time step (RFC 6238's default; what every authenticator app uses).
pub const TOTP_STEP_SECONDS: u64 = 30;
/// Bytes of a shared secret: 160 bits, as RFC 4226 recommends.
pub const TOTP_SECRET_BYTES: usize = 20;
/// リカバリーコード in one set.
pub const RECOVERY_CODES_PER_SET: usize = 10;

// ── TOTP arithmetic ─────────────────────────────────────────────────────────────────

/// The authenticator for `secret`, as totp-rs computes it: SHA-1, 6 digits, 30 s.
fn authenticator(secret: &[u8], issuer: Option<&str>, account_name: &str) -> Option<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_secret(secret.to_vec())
        .with_digits(TotpCode::DIGITS as u8)
        .with_skew(1)
        .with_step_duration(TOTP_STEP_SECONDS)
        .with_issuer(issuer)
        .with_account_name(account_name)
        .build()
        .ok()
}

/// The time step of `at`; `None` before 1970 (no code is valid then).
fn step_of(at: OffsetDateTime) -> Option<u64> {
    u64::try_from(at.unix_timestamp())
        .ok()
        .map(|t| t / TOTP_STEP_SECONDS)
}

/// The code an authenticator app with `secret` shows during time step `step`.
fn code_at_step(totp: &totp_rs::Totp, step: u64) -> Zeroizing<String> {
    Zeroizing::new(
        totp.generate(step.saturating_mul(TOTP_STEP_SECONDS))
            .to_string(),
    )
}

/// What an authenticator app holding the secret `secret_base32` (as the setup screen
/// shows it) displays at `at`: for tests, demos and hosts' own end-to-end checks. `None`
/// for text that is no Base32 secret of at least 128 bits, or a time before 1970.
pub fn totp_code(secret_base32: &str, at: OffsetDateTime) -> Option<TotpCode> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32).ok()?;
    let totp = authenticator(secret.as_ref(), None, "member")?;
    let step = step_of(at)?;
    Some(TotpCode::from_digits(code_at_step(&totp, step)))
}

/// The step among `now`'s and its two neighbours (±1 step of skew) whose code is `code`,
/// if that step is later than `after` (the last accepted step: no replay). All three are
/// computed and compared in constant time whatever matches.
fn matching_step(
    secret: &[u8],
    code: &TotpCode,
    now: OffsetDateTime,
    after: Option<u64>,
) -> Option<u64> {
    let totp = authenticator(secret, None, "member")?;
    let current = step_of(now)?;
    let mut found = None;
    for step in [
        current.saturating_sub(1),
        current,
        current.saturating_add(1),
    ] {
        let expected = code_at_step(&totp, step);
        let same: bool = expected
            .as_bytes()
            .ct_eq(code.expose_secret().as_bytes())
            .into();
        if same && after.is_none_or(|last| step > last) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The seal context of an account's TOTP secret: its identifier, so a sealed secret
/// copied into another account does not open.
fn account_context(account: &AccountId) -> Vec<u8> {
    [b"account:".as_slice(), account.as_str().as_bytes()].concat()
}

/// The seal context of a secret awaiting confirmation: its setup flow's handle.
fn setup_context(handle: &TokenDigest) -> Vec<u8> {
    [b"setup:".as_slice(), handle.as_bytes().as_slice()].concat()
}

// ── Recovery codes ──────────────────────────────────────────────────────────────────

/// What every code of one set is bound to: the account and the set's generation. A plain
/// hash (not keyed), so a digest-key rotation keeps codes verifiable.
fn recovery_binding(account: &AccountId, generation: u32) -> TokenDigest {
    let mut h = Sha256::new();
    h.update(b"kenpo-auth/v1/recovery-set\0");
    h.update(account.as_str().as_bytes());
    h.update(generation.to_be_bytes());
    TokenDigest::from_bytes(h.finalize().into())
}

/// A fresh set of ten codes for `account`, generation `generation`: the set to store
/// (digests) and the codes to show once.
pub fn issue_recovery_codes<R: rand::CryptoRng + ?Sized>(
    account: &AccountId,
    generation: u32,
    keys: &DigestKeyring,
    now: OffsetDateTime,
    rng: &mut R,
) -> (RecoveryCodeSet, Vec<RecoveryCode>) {
    let bound = recovery_binding(account, generation);
    let codes: Vec<RecoveryCode> = (0..RECOVERY_CODES_PER_SET)
        .map(|_| RecoveryCode::generate(rng))
        .collect();
    let set = RecoveryCodeSet {
        generation,
        issued_at: now,
        codes: codes
            .iter()
            .map(|c| RecoveryCodeSlot {
                digest: c.digest(keys, &bound),
                used_at: None,
            })
            .collect(),
    };
    (set, codes)
}

/// Spends `code` from `set` if it is one of its unused codes: the set with that code
/// marked used. Every unused slot is compared (no early exit).
fn spend_recovery_code(
    set: &RecoveryCodeSet,
    account: &AccountId,
    code: &RecoveryCode,
    keys: &DigestKeyring,
    now: OffsetDateTime,
) -> Option<RecoveryCodeSet> {
    let bound = recovery_binding(account, set.generation);
    let mut hit = None;
    for (i, slot) in set.codes.iter().enumerate() {
        let same = code.matches(keys, &bound, &slot.digest);
        if same && slot.used_at.is_none() && hit.is_none() {
            hit = Some(i);
        }
    }
    let i = hit?;
    let mut spent = set.clone();
    if let Some(slot) = spent.codes.get_mut(i) {
        slot.used_at = Some(now);
    }
    Some(spent)
}

// ── Setup of an authenticator app ───────────────────────────────────────────────────

/// 認証アプリの設定 shown (QR code, secret), waiting for the first 確認コード.
///
/// Store this server-side only: the secret inside is sealed, bound to this flow's
/// handle; the handle (the member's browser) is the only way to confirm it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingTotpCode {
    /// Whose setup this is.
    pub account: AccountId,
    /// Digest of the setup screen's handle.
    pub handle: TokenDigest,
    /// The new shared secret, sealed under [`SealPurpose::TotpSecret`] for this handle.
    pub secret: Sealed,
    /// Wrong codes so far (the 暗証キー's per-challenge budget).
    pub attempts: u32,
    /// When the setup screen dies.
    pub expires_at: OffsetDateTime,
}

/// パスキーの登録 shown (the browser's `navigator.credentials.create`), its credential
/// awaited.
///
/// Store this server-side only: `state` is webauthn-rs's `PasskeyRegistration` (the
/// challenge); whoever could change it could register a credential of their choosing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingPasskey {
    /// Whose registration this is.
    pub account: AccountId,
    /// Digest of the registration screen's handle.
    pub handle: TokenDigest,
    /// The name the member chose.
    pub name: String,
    /// webauthn-rs's registration state, serialised.
    pub state: String,
    /// When the registration dies.
    pub expires_at: OffsetDateTime,
}

/// パスキーだけでログイン: the browser was given a challenge for any of this site's
/// passkeys; the assertion (which names its account) is awaited.
///
/// Store this server-side only: `state` is webauthn-rs's `DiscoverableAuthentication`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AwaitingDiscoverablePasskey {
    /// Digest of the login screen's handle.
    pub challenge: TokenDigest,
    /// webauthn-rs's authentication state, serialised.
    pub state: String,
    /// Assertions that did not verify.
    pub attempts: u32,
    /// When the challenge dies.
    pub expires_at: OffsetDateTime,
}

/// Where a passkey-only login is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PasskeyLoginState {
    /// See [`AwaitingDiscoverablePasskey`].
    Awaiting(AwaitingDiscoverablePasskey),
    /// Over (logged in, tries spent, or expired), at this instant.
    Ended {
        /// Digest of the handle.
        challenge: TokenDigest,
        /// When.
        at: OffsetDateTime,
    },
}

flow_index! { PasskeyLoginState;
    PasskeyLoginState::Awaiting(s) => [s.challenge], deadline(s.expires_at, TOMBSTONE_TTL);
    PasskeyLoginState::Ended { challenge, at } => [*challenge], deadline(*at, Duration::hours(1));
}

/// Why a setup ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SetupEndReason {
    /// The first code was right: the app is the account's.
    Confirmed,
    /// Too many wrong codes.
    AttemptsExhausted,
    /// A newer setup of the account started, or the account changed.
    Superseded,
}

/// A setup that is over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SetupEnd {
    /// Whose setup it was.
    pub account: AccountId,
    /// Digest of its handle.
    pub handle: TokenDigest,
    /// Why it ended.
    pub reason: SetupEndReason,
    /// When.
    pub at: OffsetDateTime,
}

/// Where a factor setup is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FactorSetupState {
    /// See [`AwaitingTotpCode`].
    AwaitingTotpCode(AwaitingTotpCode),
    /// See [`AwaitingPasskey`].
    AwaitingPasskey(AwaitingPasskey),
    /// See [`SetupEnd`].
    Ended(SetupEnd),
}

impl FactorSetupState {
    /// The account the setup belongs to.
    pub fn account(&self) -> &AccountId {
        match self {
            FactorSetupState::AwaitingTotpCode(s) => &s.account,
            FactorSetupState::AwaitingPasskey(s) => &s.account,
            FactorSetupState::Ended(e) => &e.account,
        }
    }

    /// Whether it still waits for a code (not necessarily unexpired).
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            FactorSetupState::AwaitingTotpCode(_) | FactorSetupState::AwaitingPasskey(_)
        )
    }

    /// Ends an open setup for `reason`; `None` when it was already over.
    pub fn end_for(self, reason: SetupEndReason, now: OffsetDateTime) -> Option<Self> {
        match self {
            FactorSetupState::AwaitingTotpCode(s) => Some(end_setup(&s, reason, now)),
            FactorSetupState::AwaitingPasskey(s) => Some(FactorSetupState::Ended(SetupEnd {
                account: s.account,
                handle: s.handle,
                reason,
                at: now,
            })),
            FactorSetupState::Ended(_) => None,
        }
    }
}

flow_index! { FactorSetupState;
    FactorSetupState::AwaitingTotpCode(s) => [s.handle], deadline(s.expires_at, TOMBSTONE_TTL);
    FactorSetupState::AwaitingPasskey(s) => [s.handle], deadline(s.expires_at, TOMBSTONE_TTL);
    FactorSetupState::Ended(e) => [e.handle], deadline(e.at, Duration::hours(1));
}

fn end_setup(
    s: &AwaitingTotpCode,
    reason: SetupEndReason,
    now: OffsetDateTime,
) -> FactorSetupState {
    FactorSetupState::Ended(SetupEnd {
        account: s.account.clone(),
        handle: s.handle,
        reason,
        at: now,
    })
}

/// A fresh login's account, and the setup flow it presented with that flow's state.
pub(super) type FreshSetup<'a, 'f> = (
    &'a Versioned<Account>,
    &'f Versioned<FlowRecord>,
    &'f FactorSetupState,
);

/// The account of a fresh login (see [`fresh_account`]) and the setup flow `found`
/// names while it is open: the presented handle is its own, it belongs to that account
/// and has not expired ([`Rejection::FactorSetupInvalid`] otherwise).
pub(super) fn fresh_setup<'a, 'f>(
    found: Option<(&'f Versioned<FlowRecord>, &TokenDigest)>,
    held: AccountView<'a>,
    fresh: FreshLogin<'_>,
    env: Env<'_>,
) -> Result<FreshSetup<'a, 'f>, Rejection> {
    let account = fresh_account(held, fresh, env)?;
    let open = found.and_then(|(record, digest)| {
        let FlowState::FactorSetup(setup) = &record.value.state else {
            return None;
        };
        let (handle, expires_at) = match setup {
            FactorSetupState::AwaitingTotpCode(s) => (&s.handle, s.expires_at),
            FactorSetupState::AwaitingPasskey(s) => (&s.handle, s.expires_at),
            FactorSetupState::Ended(_) => return None,
        };
        let open = handle == digest && *setup.account() == account.value.id;
        (open && env.now < expires_at).then_some((account, record, setup))
    });
    open.ok_or(Rejection::FactorSetupInvalid)
}

/// The writes that end the account's other open setups.
pub(crate) fn end_other_setups(
    flows: &[Versioned<FlowRecord>],
    now: OffsetDateTime,
) -> Vec<super::Write> {
    flows
        .iter()
        .filter_map(|f| match &f.value.state {
            FlowState::FactorSetup(s) if s.is_open() => s
                .clone()
                .end_for(SetupEndReason::Superseded, now)
                .map(|state| super::Write::Flow {
                    expect: Expect::At(f.version),
                    id: f.value.id.clone(),
                    state: FlowState::FactorSetup(state),
                }),
            _ => None,
        })
        .collect()
}

/// What the 認証アプリの設定 screen shows: the QR code (or the secret, for typing by hand)
/// and the handle to send back with the first 確認コード.
#[derive(Debug)]
#[non_exhaustive]
pub struct TotpSetup {
    /// The setup screen's handle: keep it in the page (hidden field) or a cookie.
    pub handle: FlowHandle,
    /// When the setup screen dies (10 min by default): the member starts again.
    pub expires_at: OffsetDateTime,
    secret_base32: Zeroizing<String>,
    otpauth_uri: Zeroizing<String>,
}

impl TotpSetup {
    /// The shared secret in Base32, for members who type it into the app by hand
    /// (「QRコードを読み取れない場合」).
    ///
    /// # Security Warning
    ///
    /// Whoever holds it can make this member's 確認コード forever: show it on the setup
    /// screen only, never log it, mail it or keep it after the page is sent.
    pub fn secret_base32(&self) -> &str {
        &self.secret_base32
    }

    /// The `otpauth://totp/…` URI the QR code carries (same warning as
    /// [`secret_base32`](Self::secret_base32): it contains the secret).
    pub fn otpauth_uri(&self) -> &str {
        &self.otpauth_uri
    }

    /// The QR code of [`otpauth_uri`](Self::otpauth_uri) as an SVG document, to put in
    /// the setup page inline. `None` only if the URI did not fit a QR code.
    pub fn qr_svg(&self) -> Option<String> {
        let code = qrcode::QrCode::with_error_correction_level(
            self.otpauth_uri.as_bytes(),
            qrcode::EcLevel::M,
        )
        .ok()?;
        Some(
            code.render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .quiet_zone(true)
                .build(),
        )
    }
}

/// How the authenticator app names the account: `issuer` (the portal's service name) and
/// the account's label (its login ID).
#[derive(Clone, Copy, Debug)]
pub struct TotpLabel<'a> {
    /// The service name shown in the app.
    pub issuer: &'a str,
}

/// The account a fresh login (SEC-36) stands for, or why not: the login must be of this
/// account, no older than [`Policy::reauth_window`](crate::Policy::reauth_window), with
/// its stamp still current.
pub(crate) fn fresh_account<'a>(
    held: AccountView<'a>,
    fresh: FreshLogin<'_>,
    env: Env<'_>,
) -> Result<&'a Versioned<Account>, Rejection> {
    let FreshLogin { proof, stamp } = fresh;
    let account = held.active().ok_or(Rejection::ReauthenticationRequired)?;
    let age = env.now - proof.at();
    let same_stamp = account.value.security_stamp == *stamp;
    if proof.account() != &account.value.id
        || proof.is_repeat()
        || age.is_negative()
        || age > env.policy.reauth_window
        || !same_stamp
    {
        return Err(Rejection::ReauthenticationRequired);
    }
    Ok(account)
}

/// 認証アプリの設定, step 1: a logged-in member who has just logged in again asks to set
/// up an authenticator app. A new secret is drawn and sealed into a setup flow bound to
/// this browser; earlier open setups of the account end.
pub fn start_totp_setup<R: rand::CryptoRng + ?Sized>(
    held: AccountView<'_>,
    fresh: FreshLogin<'_>,
    label: TotpLabel<'_>,
    seals: &SealKeyring,
    env: Env<'_>,
    rng: &mut R,
) -> Step<TotpSetup> {
    if !env.policy.factors.totp {
        return Step::reject(Rejection::FactorUnavailable);
    }
    let account = match fresh_account(held, fresh, env) {
        Ok(a) => a,
        Err(r) => return Step::reject(r),
    };
    let mut secret = Zeroizing::new([0u8; TOTP_SECRET_BYTES]);
    rng.fill_bytes(secret.as_mut_slice());
    let login_id = account.value.login_id.as_str();
    let Some(totp) = authenticator(secret.as_slice(), Some(label.issuer), login_id)
        .or_else(|| authenticator(secret.as_slice(), Some(label.issuer), "member"))
    else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let Ok(uri) = totp.to_url() else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let (handle, handle_digest) = FlowHandle::issue(env.keys, rng);
    let sealed = seals.seal(
        SealPurpose::TotpSecret,
        &setup_context(&handle_digest),
        secret.as_slice(),
        rng,
    );
    let expires_at = deadline(env.now, env.policy.factors.setup_ttl);
    let state = AwaitingTotpCode {
        account: account.value.id.clone(),
        handle: handle_digest,
        secret: sealed,
        attempts: 0,
        expires_at,
    };
    setup_started(
        TotpSetup {
            handle,
            secret_base32: Zeroizing::new(totp.secret().to_base32()),
            otpauth_uri: Zeroizing::new(uri),
            expires_at,
        },
        FactorKind::Totp,
        (held, FactorSetupState::AwaitingTotpCode(state)),
        env,
        rng,
    )
}

/// A setup started, for every kind of factor: the account's other open setups end and
/// `state` is written as a new setup flow (its ID drawn from `rng`), audited.
pub(super) fn setup_started<T, R: rand::CryptoRng + ?Sized>(
    answer: T,
    kind: FactorKind,
    (held, state): (AccountView<'_>, FactorSetupState),
    env: Env<'_>,
    rng: &mut R,
) -> Step<T> {
    let flow_id = FlowId::generate(rng);
    let account = state.account().clone();
    Step::answer(answer)
        .writes(end_other_setups(held.flows, env.now))
        .flow(
            Expect::Absent,
            flow_id.clone(),
            FlowState::FactorSetup(state),
        )
        .audit(
            AuditEvent::new(AuditKind::FactorSetupStarted, env.now)
                .account(&account)
                .flow(&flow_id)
                .detail(kind.code()),
        )
}

/// A 認証アプリ was set up.
#[derive(Debug)]
#[non_exhaustive]
pub struct TotpEnrolled {
    /// The リカバリーコード to show once, when this was the account's first factor
    /// (empty otherwise): 「リカバリーコードを安全な場所に保管してください」.
    pub recovery_codes: Vec<RecoveryCode>,
}

/// 認証アプリの設定, step 2: the first 確認コード from the app. Right, the sealed secret
/// becomes the account's (resealed for the account), its step is the last accepted one,
/// the first factor brings ten リカバリーコード, and the member is notified (SEC-43).
/// Wrong, a try is counted on the setup; the policy's per-challenge budget ends it.
pub fn confirm_totp_setup<R: rand::CryptoRng + ?Sized>(
    found: Option<(&Versioned<FlowRecord>, &TokenDigest)>,
    held: AccountView<'_>,
    (fresh, code): (FreshLogin<'_>, &TotpCode),
    seals: &SealKeyring,
    env: Env<'_>,
    rng: &mut R,
) -> Step<TotpEnrolled> {
    let now = env.now;
    let (account, record, setup) = match fresh_setup(found, held, fresh, env) {
        Ok(loaded) => loaded,
        Err(r) => return Step::reject(r),
    };
    let FactorSetupState::AwaitingTotpCode(s) = setup else {
        return Step::reject(Rejection::FactorSetupInvalid);
    };
    if !env.policy.factors.totp {
        return Step::reject(Rejection::FactorUnavailable);
    }
    if s.attempts >= env.policy.otp_tries_per_challenge {
        return Step::reject(Rejection::FactorSetupInvalid);
    }
    let Ok(secret) = seals.open(
        SealPurpose::TotpSecret,
        &setup_context(&s.handle),
        &s.secret,
    ) else {
        return Step::reject(Rejection::FactorSetupInvalid);
    };
    let id = &account.value.id;
    let Some(step) = matching_step(&secret, code, now, None) else {
        let attempts = s.attempts + 1;
        let next = if attempts >= env.policy.otp_tries_per_challenge {
            end_setup(s, SetupEndReason::AttemptsExhausted, now)
        } else {
            FactorSetupState::AwaitingTotpCode(AwaitingTotpCode {
                attempts,
                ..s.clone()
            })
        };
        let rejection = if next.is_open() {
            Rejection::SecondFactorIncorrect
        } else {
            Rejection::FactorSetupInvalid
        };
        let next = FlowState::FactorSetup(next);
        return setup_failed(rejection, (record, next), (id, "totp_setup"), now);
    };
    let mut updated = account.value.clone();
    updated.factors.totp = Some(TotpFactor {
        secret: seals.seal(SealPurpose::TotpSecret, &account_context(id), &secret, rng),
        last_step: step,
        added_at: now,
        last_used_at: None,
    });
    let recovery_codes = first_recovery_codes(&mut updated, env, rng);
    let ended = FlowState::FactorSetup(end_setup(s, SetupEndReason::Confirmed, now));
    setup_confirmed(
        TotpEnrolled { recovery_codes },
        FactorKind::Totp,
        (record, ended),
        (held, account, updated),
        now,
    )
}

/// The リカバリーコード a first factor brings (SEC-42): a set on `account` and its codes
/// to show once, or none when it already has a set or the policy issues none.
pub(super) fn first_recovery_codes<R: rand::CryptoRng + ?Sized>(
    account: &mut Account,
    env: Env<'_>,
    rng: &mut R,
) -> Vec<RecoveryCode> {
    if !env.policy.factors.recovery_codes || account.factors.recovery.is_some() {
        return Vec::new();
    }
    let (set, codes) = issue_recovery_codes(&account.id, 1, env.keys, env.now, rng);
    account.factors.recovery = Some(set);
    codes
}

/// A setup confirmed, for every kind of factor: the setup flow (`record`) moves to
/// `ended`, the account's open login challenges end (from now on it logs in with the new
/// factor: no downgrade), the addition is audited, the member notified (SEC-43) and
/// `updated` written over `account`.
pub(super) fn setup_confirmed<T>(
    answer: T,
    kind: FactorKind,
    (record, ended): (&Versioned<FlowRecord>, FlowState),
    (held, account, updated): (AccountView<'_>, &Versioned<Account>, Account),
    now: OffsetDateTime,
) -> Step<T> {
    let event = AuditEvent::new(AuditKind::FactorAdded, now)
        .account(&updated.id)
        .flow(&record.value.id)
        .detail(kind.code());
    let notice = MailMessage::SecondFactorAdded {
        factor: kind,
        at: now,
    };
    factors_changed(
        Step::answer(answer).advance(record, ended),
        (event, notice),
        (held, account, updated),
        now,
    )
}

/// What every change of an account's factors ends with: its open login challenges end
/// (none opened before the change outlives it), the change is audited, the member
/// notified (SEC-43) and `updated` written over `account`.
fn factors_changed<T>(
    step: Step<T>,
    (event, notice): (AuditEvent, MailMessage),
    (held, account, updated): (AccountView<'_>, &Versioned<Account>, Account),
    now: OffsetDateTime,
) -> Step<T> {
    step.writes(Ends::login(LoginEndReason::AccountChanged).writes(held.flows, now, None))
        .audit(event)
        .mail_if(updated.email.as_ref(), notice)
        .account(Expect::At(account.version), updated)
}

/// A setup's wrong try, for every kind of factor: the setup flow (`record`) moves to
/// `next`, audited as a failed second factor of `account` with `detail`.
pub(super) fn setup_failed<T>(
    rejection: Rejection,
    (record, next): (&Versioned<FlowRecord>, FlowState),
    (account, detail): (&AccountId, &'static str),
    now: OffsetDateTime,
) -> Step<T> {
    Step::reject(rejection).advance(record, next).audit(
        AuditEvent::new(AuditKind::SecondFactorFailed, now)
            .account(account)
            .flow(&record.value.id)
            .detail(detail),
    )
}

/// A factor removed by a fresh login (see [`fresh_account`]), for every kind: `remove`
/// takes it off a copy of the account or says why not. Then the account's open login
/// challenges end (a 確認コード screen opened before the removal must not outlive it),
/// the removal is audited, the member notified (SEC-43) and the copy written.
pub(super) fn remove_with(
    kind: FactorKind,
    (held, fresh): (AccountView<'_>, FreshLogin<'_>),
    env: Env<'_>,
    remove: impl FnOnce(&mut Account) -> Result<(), Rejection>,
) -> Step<()> {
    let account = match fresh_account(held, fresh, env) {
        Ok(a) => a,
        Err(r) => return Step::reject(r),
    };
    let mut updated = account.value.clone();
    if let Err(r) = remove(&mut updated) {
        return Step::reject(r);
    }
    let now = env.now;
    let event = AuditEvent::new(AuditKind::FactorRemoved, now)
        .account(&updated.id)
        .detail(kind.code());
    let notice = MailMessage::SecondFactorRemoved {
        factor: kind,
        at: now,
    };
    factors_changed(
        Step::answer(()),
        (event, notice),
        (held, account, updated),
        now,
    )
}

/// リカバリーコードの再発行: ten new codes for a freshly logged-in member with a factor;
/// the old set stops working at once. Notified by mail (SEC-43).
pub fn regenerate_recovery_codes<R: rand::CryptoRng + ?Sized>(
    held: AccountView<'_>,
    fresh: FreshLogin<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> Step<Vec<RecoveryCode>> {
    let account = match fresh_account(held, fresh, env) {
        Ok(a) => a,
        Err(r) => return Step::reject(r),
    };
    if !env.policy.factors.recovery_codes || !account.value.factors.has_authenticator() {
        return Step::reject(Rejection::FactorUnavailable);
    }
    let id = &account.value.id;
    let generation = account
        .value
        .factors
        .recovery
        .as_ref()
        .map_or(1, |s| s.generation.saturating_add(1));
    let (set, codes) = issue_recovery_codes(id, generation, env.keys, env.now, rng);
    let mut updated = account.value.clone();
    updated.factors.recovery = Some(set);
    Step::answer(codes)
        .audit(
            AuditEvent::new(AuditKind::FactorAdded, env.now)
                .account(id)
                .detail(FactorKind::RecoveryCodes.code()),
        )
        .mail_if(
            updated.email.as_ref(),
            MailMessage::SecondFactorAdded {
                factor: FactorKind::RecoveryCodes,
                at: env.now,
            },
        )
        .account(Expect::At(account.version), updated)
}

/// 2段階認証の解除: a freshly logged-in member removes a factor. Under
/// [`FactorRequirement::Required`] the last authenticator cannot be removed
/// ([`Rejection::LastFactorRequired`]). Removing the last authenticator also removes the
/// リカバリーコード (they stand in for a factor there no longer is). Notified by mail
/// (SEC-43).
pub fn remove_factor(
    held: AccountView<'_>,
    fresh: FreshLogin<'_>,
    kind: FactorKind,
    env: Env<'_>,
) -> Step<()> {
    remove_with(kind, (held, fresh), env, |updated| {
        match kind {
            FactorKind::Totp => {
                if updated.factors.totp.is_none() {
                    return Err(Rejection::FactorUnavailable);
                }
                if env.policy.factors.requirement == FactorRequirement::Required
                    && updated.factors.passkeys.is_empty()
                {
                    return Err(Rejection::LastFactorRequired);
                }
                updated.factors.totp = None;
                if !updated.factors.has_authenticator() {
                    updated.factors.recovery = None;
                }
            }
            FactorKind::RecoveryCodes => {
                if updated.factors.recovery.is_none() {
                    return Err(Rejection::FactorUnavailable);
                }
                updated.factors.recovery = None;
            }
            // One passkey at a time, by its credential ID (`Portal::remove_passkey`).
            FactorKind::Passkey => return Err(Rejection::FactorUnavailable),
        }
        Ok(())
    })
}

// ── Login with a second factor ──────────────────────────────────────────────────────

/// What checks a second factor beyond the digest keys: the seal keyring that opens
/// authenticator-app secrets and, with the `passkeys` feature, the relying party.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Verifiers<'a> {
    /// Opens and seals 認証アプリ secrets.
    pub seals: &'a SealKeyring,
    /// The relying party (from the insurer profile's base URL), when passkeys are on.
    #[cfg(feature = "passkeys")]
    pub webauthn: Option<&'a webauthn_rs::Webauthn>,
}

impl<'a> Verifiers<'a> {
    /// Verifiers with only the seal keyring (no passkeys).
    pub fn sealed(seals: &'a SealKeyring) -> Self {
        Verifiers {
            seals,
            #[cfg(feature = "passkeys")]
            webauthn: None,
        }
    }

    /// The relying party, when passkeys are offered and configured.
    #[cfg(feature = "passkeys")]
    pub(crate) fn passkeys(&self, env: Env<'_>) -> Option<&'a webauthn_rs::Webauthn> {
        self.webauthn.filter(|_| env.policy.factors.passkeys)
    }
}

impl Verifiers<'_> {
    /// Whether passkeys can be checked: the feature, the policy and a relying party.
    fn checks_passkeys(&self, env: Env<'_>) -> bool {
        #[cfg(feature = "passkeys")]
        {
            self.passkeys(env).is_some()
        }
        #[cfg(not(feature = "passkeys"))]
        {
            let _ = env;
            false
        }
    }
}

impl std::fmt::Debug for Verifiers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifiers").finish_non_exhaustive()
    }
}

/// Whether L1 must ask this account for its authenticator instead of mailing a 暗証キー:
/// it has one and the policy offers it. Never a silent downgrade to the mail.
pub(crate) fn asks_authenticator(
    account: &Account,
    verifiers: &Verifiers<'_>,
    env: Env<'_>,
) -> bool {
    (env.policy.factors.totp && account.factors.totp.is_some())
        || (verifiers.checks_passkeys(env) && !account.factors.passkeys.is_empty())
}

/// Whether this build can check passkeys (the `passkeys` feature).
const fn passkeys_built() -> bool {
    cfg!(feature = "passkeys")
}

/// L1 for an account with an authenticator: a new 確認コード challenge.
pub(crate) fn issue_challenge<R: rand::CryptoRng + ?Sized>(
    account: &Account,
    verifiers: &Verifiers<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> (AwaitingFactor, OtpChallengeId, Option<PasskeyOptions>) {
    let challenge = OtpChallengeId::generate(rng);
    #[cfg(feature = "passkeys")]
    let (options, passkey) = match verifiers
        .passkeys(env)
        .and_then(|w| super::passkey::start_authentication(account, w))
    {
        Some((options, state)) => (Some(options), Some(state)),
        None => (None, None),
    };
    #[cfg(not(feature = "passkeys"))]
    let (options, passkey) = {
        let _ = verifiers;
        (None, None)
    };
    let state = AwaitingFactor {
        totp: env.policy.factors.totp && account.factors.totp.is_some(),
        passkey,
        account: account.id.clone(),
        challenge: challenge.digest(env.keys),
        attempts: 0,
        expires_at: deadline(env.now, env.policy.factors.challenge_ttl),
        recovery_codes: account
            .factors
            .recovery
            .as_ref()
            .is_some_and(|s| s.remaining() > 0),
    };
    (state, challenge, options)
}

/// The browser's `navigator.credentials.get` options of a passkey challenge.
#[cfg(feature = "passkeys")]
pub type PasskeyOptions = webauthn_rs::prelude::RequestChallengeResponse;
/// The browser's `navigator.credentials.get` options of a passkey challenge (none in
/// builds without the `passkeys` feature).
#[cfg(not(feature = "passkeys"))]
pub type PasskeyOptions = std::convert::Infallible;

/// What the member typed on the 確認コード screen.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum FactorInput<'a> {
    /// A 確認コード from the 認証アプリ.
    Totp(&'a TotpCode),
    /// A リカバリーコード.
    RecoveryCode(&'a RecoveryCode),
    /// A パスキー's assertion (`navigator.credentials.get`'s result).
    #[cfg(feature = "passkeys")]
    Passkey(&'a webauthn_rs::prelude::PublicKeyCredential),
}

impl FactorInput<'_> {
    fn factor(&self) -> LoginFactor {
        match self {
            FactorInput::Totp(_) => LoginFactor::Totp,
            FactorInput::RecoveryCode(_) => LoginFactor::RecoveryCode,
            #[cfg(feature = "passkeys")]
            FactorInput::Passkey(_) => LoginFactor::Passkey,
        }
    }
}

/// L2 with a second factor: a 確認コード or a リカバリーコード on the challenge L1
/// issued. The try is counted on the challenge, the account's consecutive failures and
/// the day's budget — the very budgets of the 暗証キー (SEC-29) — in the same commit that
/// answers. A right code logs in, moves the authenticator's last accepted step (or spends
/// the リカバリーコード, with a mail) and ends the account's other open challenges.
pub fn verify(
    found: Option<Found<'_>>,
    held: AccountView<'_>,
    (input, failures_today): (FactorInput<'_>, Option<&Versioned<Counter>>),
    verifiers: &Verifiers<'_>,
    env: Env<'_>,
) -> Step<super::login::Authenticated> {
    let seals = verifiers.seals;
    let (Some((record, digest)), Some(account)) = (found, held.active()) else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let FlowState::Login(LoginState::AwaitingFactor(s)) = &record.value.state else {
        return Step::reject(Rejection::OtpInvalid);
    };
    if s.challenge != *digest || s.account != account.value.id {
        return Step::reject(Rejection::OtpInvalid);
    }
    let now = env.now;
    let p = env.policy;
    let flow_id = &record.value.id;
    let id = &account.value.id;
    let end_with = |reason: LoginEndReason| {
        FlowState::Login(
            LoginState::AwaitingFactor(s.clone())
                .end_for(reason, now)
                .unwrap_or_else(|| LoginState::AwaitingFactor(s.clone())),
        )
    };
    if otp_day_spent(failures_today, env) {
        return Step::reject(Rejection::OtpAttemptsExhausted)
            .advance(record, end_with(LoginEndReason::AttemptsExhausted))
            .audit(
                AuditEvent::new(AuditKind::OtpAttemptsExhausted, now)
                    .account(id)
                    .flow(flow_id)
                    .detail("otp_daily_cap"),
            );
    }
    if now >= s.expires_at {
        return Step::reject(Rejection::OtpInvalid)
            .advance(record, end_with(LoginEndReason::Expired));
    }
    if s.attempts >= p.otp_tries_per_challenge {
        return Step::reject(Rejection::OtpAttemptsExhausted);
    }
    let mut updated = account.value.clone();
    let accepted = match input {
        FactorInput::Totp(code) => {
            let spent = updated.factors.totp.as_ref().and_then(|t| {
                let secret = seals
                    .open(SealPurpose::TotpSecret, &account_context(id), &t.secret)
                    .ok()?;
                matching_step(&secret, code, now, Some(t.last_step))
            });
            match (spent, updated.factors.totp.as_mut()) {
                (Some(step), Some(t)) => {
                    t.last_step = step;
                    t.last_used_at = Some(now);
                    Some(LoginFactor::Totp)
                }
                _ => None,
            }
        }
        FactorInput::RecoveryCode(code) => {
            let spent = updated
                .factors
                .recovery
                .as_ref()
                .and_then(|set| spend_recovery_code(set, id, code, env.keys, now));
            match spent {
                Some(set) => {
                    updated.factors.recovery = Some(set);
                    Some(LoginFactor::RecoveryCode)
                }
                None => None,
            }
        }
        #[cfg(feature = "passkeys")]
        FactorInput::Passkey(credential) => {
            let ok = match (verifiers.passkeys(env), s.passkey.as_deref()) {
                (Some(w), Some(state)) => {
                    super::passkey::verify_assertion(&mut updated, state, credential, w, now)
                }
                _ => false,
            };
            ok.then_some(LoginFactor::Passkey)
        }
    };
    if let Some(factor) = accepted {
        updated.otp_failures = 0;
        let consumed = OtpConsumed::by_factor(id.clone(), now, factor, false);
        let mut step = Step::answer(super::login::Authenticated::from_consumed(
            consumed,
            updated.security_stamp.clone(),
        ))
        .advance(record, end_with(LoginEndReason::Authenticated))
        .writes(Ends::login(LoginEndReason::Superseded).writes(held.flows, now, Some(flow_id)))
        .audit(
            AuditEvent::new(AuditKind::LoginSucceeded, now)
                .account(id)
                .flow(flow_id)
                .detail(factor.code()),
        );
        if factor == LoginFactor::RecoveryCode {
            let remaining = updated
                .factors
                .recovery
                .as_ref()
                .map_or(0, RecoveryCodeSet::remaining);
            step = step.audit(
                AuditEvent::new(AuditKind::RecoveryCodeUsed, now)
                    .account(id)
                    .flow(flow_id),
            );
            step = step.mail_if(
                updated.email.as_ref(),
                MailMessage::RecoveryCodeUsed {
                    at: now,
                    remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                },
            );
        }
        return step.account(Expect::At(account.version), updated);
    }
    // A wrong code: the 暗証キー's budgets, shared by every factor (SEC-29).
    let attempts = s.attempts + 1;
    let failures = account.value.otp_failures.saturating_add(1);
    let account_limit = failures >= p.otp_failures_per_account;
    let aborted = attempts >= p.otp_tries_per_challenge || account_limit;
    updated.otp_failures = if account_limit { 0 } else { failures };
    if account_limit {
        updated.otp_cooldown_until = Some(now.saturating_add(p.otp_account_cooldown));
        updated.password_failures = updated.password_failures.saturating_add(1);
        updated.last_password_failure_at = Some(now);
    }
    let (next, rejection, kind) = if aborted {
        (
            end_with(LoginEndReason::AttemptsExhausted),
            Rejection::OtpAttemptsExhausted,
            AuditKind::OtpAttemptsExhausted,
        )
    } else {
        (
            FlowState::Login(LoginState::AwaitingFactor(AwaitingFactor {
                attempts,
                ..s.clone()
            })),
            Rejection::SecondFactorIncorrect,
            AuditKind::SecondFactorFailed,
        )
    };
    let detail = input.factor().code();
    let mut step = Step::reject(rejection).advance(record, next).audit(
        AuditEvent::new(kind, now)
            .account(id)
            .flow(flow_id)
            .detail(detail),
    );
    if aborted
        && p.notify_on_otp_abort
        && let Some(email) = &updated.email
    {
        step = step.mail(email.clone(), MailMessage::LoginOtpAborted { at: now });
    }
    let key = CounterKey::OtpFailures(id.clone());
    if let Ok(hit) = throttle::hit(&key, failures_today, now, otp_failure_day(env)) {
        step = step.counter(hit);
    }
    step.account(Expect::At(account.version), updated)
}

/// What the 2段階認証の設定 screen lists about one factor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FactorSummary {
    /// Which factor.
    pub kind: FactorKind,
    /// When it was set up (or the set issued).
    pub added_at: OffsetDateTime,
    /// When it last logged in, if ever.
    pub last_used_at: Option<OffsetDateTime>,
    /// For リカバリーコード: how many are left.
    pub remaining: Option<usize>,
    /// For a パスキー: the name the member gave it.
    pub name: Option<String>,
    /// For a パスキー: its credential ID (what [`Portal::remove_passkey`](crate::Portal)
    /// takes).
    pub credential_id: Option<String>,
}

/// The factors of `account`, for its settings page.
pub fn summarize(account: &Account) -> Vec<FactorSummary> {
    let mut out = Vec::new();
    if let Some(t) = &account.factors.totp {
        out.push(FactorSummary {
            kind: FactorKind::Totp,
            added_at: t.added_at,
            last_used_at: t.last_used_at,
            remaining: None,
            name: None,
            credential_id: None,
        });
    }
    for p in &account.factors.passkeys {
        out.push(FactorSummary {
            kind: FactorKind::Passkey,
            added_at: p.added_at,
            last_used_at: p.last_used_at,
            remaining: None,
            name: Some(p.name.clone()),
            credential_id: Some(p.credential_id.clone()),
        });
    }
    if let Some(r) = &account.factors.recovery {
        let last_used_at = r.codes.iter().filter_map(|c| c.used_at).max();
        out.push(FactorSummary {
            kind: FactorKind::RecoveryCodes,
            added_at: r.issued_at,
            last_used_at,
            remaining: Some(r.remaining()),
            name: None,
            credential_id: None,
        });
    }
    out
}

/// Whether, under the policy, a member who logged in this way must be sent to
/// 2段階認証の設定 first: a factor is required and the account has none.
pub(crate) fn must_set_up(account: &Account, env: Env<'_>) -> bool {
    env.policy.factors.requirement == FactorRequirement::Required
        && (env.policy.factors.totp || (passkeys_built() && env.policy.factors.passkeys))
        && !account.factors.has_authenticator()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::flow::test_support::{T0, keys};
    use crate::seal::SealKey;

    /// RFC 6238 Appendix B's SHA-1 secret, Base32.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    /// The account a secret or code belongs to, and another one.
    fn owner_and_other() -> (AccountId, AccountId) {
        (
            AccountId::from_stored("taro"),
            AccountId::from_stored("hanako"),
        )
    }

    fn seals() -> SealKeyring {
        SealKeyring::new(SealKey::new(1, vec![9u8; 32]).unwrap())
    }

    fn secret() -> Vec<u8> {
        totp_rs::Secret::try_from_base32(RFC_SECRET)
            .unwrap()
            .as_ref()
            .to_vec()
    }

    #[test]
    fn totp_matches_rfc_6238_test_vectors() {
        // Appendix B, SHA-1, truncated to six digits.
        for (t, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let at = OffsetDateTime::from_unix_timestamp(t).unwrap();
            assert_eq!(totp_code(RFC_SECRET, at).unwrap().expose_secret(), code);
        }
    }

    #[test]
    fn a_step_is_accepted_once_and_only_within_one_step_of_skew() {
        let now = OffsetDateTime::from_unix_timestamp(1_234_567_890).unwrap();
        let step = step_of(now).unwrap();
        let code = totp_code(RFC_SECRET, now).unwrap();
        assert_eq!(matching_step(&secret(), &code, now, None), Some(step));
        // The step already accepted, or a later one: refused (no replay).
        assert_eq!(matching_step(&secret(), &code, now, Some(step)), None);
        assert_eq!(matching_step(&secret(), &code, now, Some(step + 1)), None);
        // ±1 step.
        let behind = totp_code(RFC_SECRET, now - Duration::seconds(30)).unwrap();
        let ahead = totp_code(RFC_SECRET, now + Duration::seconds(30)).unwrap();
        let far = totp_code(RFC_SECRET, now - Duration::seconds(60)).unwrap();
        assert_eq!(matching_step(&secret(), &behind, now, None), Some(step - 1));
        assert_eq!(matching_step(&secret(), &ahead, now, None), Some(step + 1));
        assert_eq!(matching_step(&secret(), &far, now, None), None);
    }

    #[test]
    fn no_code_before_1970() {
        let at = datetime!(1969-12-31 23:59 UTC);
        assert!(totp_code(RFC_SECRET, at).is_none());
    }

    #[test]
    fn a_recovery_code_is_spent_once_and_only_for_its_account_and_set() {
        let keys = keys();
        let mut rng = rand::rng();
        let (taro, hanako) = owner_and_other();
        let (set, codes) = issue_recovery_codes(&taro, 1, &keys, T0, &mut rng);
        assert_eq!(codes.len(), RECOVERY_CODES_PER_SET);
        let spent = spend_recovery_code(&set, &taro, &codes[2], &keys, T0).unwrap();
        assert_eq!(spent.remaining(), RECOVERY_CODES_PER_SET - 1);
        assert!(spend_recovery_code(&spent, &taro, &codes[2], &keys, T0).is_none());
        assert!(spend_recovery_code(&set, &hanako, &codes[3], &keys, T0).is_none());
        let (next, _) = issue_recovery_codes(&taro, 2, &keys, T0, &mut rng);
        assert!(spend_recovery_code(&next, &taro, &codes[3], &keys, T0).is_none());
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_account() {
        let seals = seals();
        let mut rng = rand::rng();
        let (taro, hanako) = owner_and_other();
        let sealed = seals.seal(
            SealPurpose::TotpSecret,
            &account_context(&taro),
            &secret(),
            &mut rng,
        );
        let opened = seals
            .open(SealPurpose::TotpSecret, &account_context(&taro), &sealed)
            .unwrap();
        assert_eq!(opened.as_slice(), secret().as_slice());
        assert!(
            seals
                .open(SealPurpose::TotpSecret, &account_context(&hanako), &sealed)
                .is_err()
        );
        assert!(
            seals
                .open(SealPurpose::OutboxMail, &account_context(&taro), &sealed)
                .is_err()
        );
    }
}
