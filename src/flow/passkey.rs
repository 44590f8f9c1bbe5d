//! パスキー (WebAuthn, webauthn-rs) as a second factor: registration by a freshly
//! logged-in member, and L2 with a passkey after the password.
//!
//! ```text
//! registration (fresh login) ──▶ FactorSetupState::AwaitingPasskey ──credential──▶ Ended
//!   (options to the browser;       state kept here, single use, bound to the handle)
//!
//! L1 password ok, passkey(s) set up ──▶ LoginState::AwaitingFactor { passkey: state }
//!     └─ assertion of one of the account's passkeys, user verified ─▶ Authenticated
//! ```
//!
//! The ceremony state (webauthn-rs's `PasskeyRegistration`, `PasskeyAuthentication`) never goes to the
//! browser: it lives in the flow, as webauthn-rs serialises it, and is used once. The
//! relying party (ID and the one accepted origin) comes from the insurer profile's base
//! URL. webauthn-rs draws the challenges itself (from the operating system's RNG); every
//! other decision is this module's, from what the driver loaded.

use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, Passkey, PasskeyAuthentication,
    PasskeyRegistration as RegistrationCeremony, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Uuid,
};

use super::account::FreshLogin;
use super::ends::Ends;
use super::factor::{
    AwaitingDiscoverablePasskey, AwaitingPasskey, FactorSetupState, PasskeyLoginState, SetupEnd,
    SetupEndReason, first_recovery_codes, fresh_account, fresh_setup, remove_with, setup_confirmed,
    setup_failed, setup_started,
};
use super::login::LoginEndReason;
use super::step::Step;
use super::{AccountView, Env, FlowRecord, FlowState, deadline};
use crate::error::Rejection;
use crate::model::{
    Account, AccountId, AuditEvent, AuditKind, Expect, FactorKind, FlowId, PasskeyFactor, Versioned,
};
use crate::policy::InsurerProfile;
use crate::token::{FlowHandle, RecoveryCode, TokenDigest};

/// Most passkeys one account may hold.
pub const MAX_PASSKEYS: usize = 10;

/// A name the member gives a passkey (「iPhone」「会社のPC」): 1 to 32 characters after
/// trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasskeyName(String);

impl PasskeyName {
    /// Most characters in a name.
    pub const MAX_CHARS: usize = 32;

    /// Reads what the member typed.
    pub fn parse(s: &str) -> Result<Self, Rejection> {
        let t = crate::domain::normalize::trim(s);
        let n = t.chars().count();
        if n == 0 || n > Self::MAX_CHARS || t.chars().any(char::is_control) {
            return Err(Rejection::PasskeyNameInvalid);
        }
        Ok(PasskeyName(t.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PasskeyName {
    type Err = Rejection;
    fn from_str(s: &str) -> Result<Self, Rejection> {
        Self::parse(s)
    }
}

/// A credential ID as the account and the member's list show it: URL-safe Base64, the
/// way the browser's `PublicKeyCredential.id` spells it.
fn credential_id_text(id: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}

/// The WebAuthn user handle of an account: its 128-bit pseudonymous identifier itself
/// (what a passkey-only login reads back to find the account), or, for an identifier
/// that is not 32 hex digits, a UUID derived from it.
fn user_handle(account: &AccountId) -> Uuid {
    if let Some(bytes) = hex_16(account.as_str()) {
        return Uuid::from_bytes(bytes);
    }
    hashed_handle(account)
}

/// The account a user handle names, when it is one [`user_handle`] made from an
/// identifier of 32 hex digits.
fn account_of(handle: Uuid) -> AccountId {
    AccountId::from_stored(crate::model::hex(handle.as_bytes()))
}

/// 32 hex digits as 16 bytes.
fn hex_16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A UUID derived from an identifier of another shape.
fn hashed_handle(account: &AccountId) -> Uuid {
    let digest = Sha256::digest(
        [
            b"kenpo-auth/v1/webauthn-user\0".as_slice(),
            account.as_str().as_bytes(),
        ]
        .concat(),
    );
    let mut bytes = [0u8; 16];
    for (b, d) in bytes.iter_mut().zip(digest.iter()) {
        *b = *d;
    }
    uuid_v4_shape(&mut bytes);
    Uuid::from_bytes(bytes)
}

/// Sets the version (4) and variant bits, so the handle reads as a random UUID.
fn uuid_v4_shape(bytes: &mut [u8; 16]) {
    if let Some(b) = bytes.get_mut(6) {
        *b = (*b & 0x0f) | 0x40;
    }
    if let Some(b) = bytes.get_mut(8) {
        *b = (*b & 0x3f) | 0x80;
    }
}

/// The account's passkeys as webauthn-rs takes them; credentials that do not read back
/// are left out (they cannot log in).
pub(crate) fn credentials(account: &Account) -> Vec<Passkey> {
    account
        .factors
        .passkeys
        .iter()
        .filter_map(|p| serde_json::from_str(&p.credential).ok())
        .collect()
}

/// What the パスキーの登録 screen needs: the options for the browser, and the handle to
/// send back with its answer.
#[derive(Debug)]
#[non_exhaustive]
pub struct PasskeyRegistration {
    /// The registration screen's handle: keep it in the page or a cookie.
    pub handle: FlowHandle,
    /// The `publicKey` options of `navigator.credentials.create`, to send as JSON. They
    /// hold a challenge, never the server's state (which stays in the store).
    pub options: CreationChallengeResponse,
    /// When the registration dies.
    pub expires_at: OffsetDateTime,
}

/// パスキーの登録, step 1: a freshly logged-in member names a new passkey; the browser
/// gets the options, the ceremony state stays in a flow bound to this browser. Earlier
/// open setups of the account end.
pub fn start_registration<R: rand::CryptoRng + ?Sized>(
    held: AccountView<'_>,
    fresh: FreshLogin<'_>,
    name: &PasskeyName,
    webauthn: Option<&Webauthn>,
    env: Env<'_>,
    rng: &mut R,
) -> Step<PasskeyRegistration> {
    let Some(webauthn) = webauthn.filter(|_| env.policy.factors.passkeys) else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let account = match fresh_account(held, fresh, env) {
        Ok(a) => a,
        Err(r) => return Step::reject(r),
    };
    if account.value.factors.passkeys.len() >= MAX_PASSKEYS {
        return Step::reject(Rejection::FactorUnavailable);
    }
    let existing: Vec<_> = credentials(&account.value)
        .iter()
        .map(|p| p.cred_id().clone())
        .collect();
    let login_id = account.value.login_id.as_str();
    let display = account
        .value
        .nickname
        .as_ref()
        .map_or(login_id, |n| n.as_str());
    let Ok((options, state)) = webauthn.start_passkey_registration(
        user_handle(&account.value.id),
        login_id,
        display,
        Some(existing),
    ) else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let Ok(state) = serde_json::to_string(&state) else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    // パスキーだけでログイン needs a discoverable credential: ask for one.
    let options = if env.policy.factors.passkey_only_login {
        discoverable(options)
    } else {
        options
    };
    let (handle, handle_digest) = FlowHandle::issue(env.keys, rng);
    let expires_at = deadline(env.now, env.policy.factors.setup_ttl);
    let state = FactorSetupState::AwaitingPasskey(AwaitingPasskey {
        account: account.value.id.clone(),
        handle: handle_digest,
        name: name.as_str().to_owned(),
        state,
        expires_at,
    });
    setup_started(
        PasskeyRegistration {
            handle,
            options,
            expires_at,
        },
        FactorKind::Passkey,
        (held, state),
        env,
        rng,
    )
}

/// A パスキー was registered.
#[derive(Debug)]
#[non_exhaustive]
pub struct PasskeyAdded {
    /// Its credential ID (for the list and [`Portal::remove_passkey`](crate::Portal::remove_passkey)).
    pub credential_id: String,
    /// The リカバリーコード to show once, when this was the account's first factor.
    pub recovery_codes: Vec<RecoveryCode>,
}

/// パスキーの登録, step 2: the browser's credential. The ceremony state is spent whatever
/// the outcome (single use). A valid credential with user verification becomes one of the
/// account's passkeys; the first factor brings ten リカバリーコード; the member is notified
/// (SEC-43).
pub fn finish_registration<R: rand::CryptoRng + ?Sized>(
    found: Option<(&Versioned<FlowRecord>, &TokenDigest)>,
    held: AccountView<'_>,
    (fresh, credential): (FreshLogin<'_>, &RegisterPublicKeyCredential),
    webauthn: Option<&Webauthn>,
    env: Env<'_>,
    rng: &mut R,
) -> Step<PasskeyAdded> {
    let now = env.now;
    let Some(webauthn) = webauthn.filter(|_| env.policy.factors.passkeys) else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let (account, record, setup) = match fresh_setup(found, held, fresh, env) {
        Ok(loaded) => loaded,
        Err(r) => return Step::reject(r),
    };
    let FactorSetupState::AwaitingPasskey(s) = setup else {
        return Step::reject(Rejection::FactorSetupInvalid);
    };
    let id = &account.value.id;
    let ended = |reason| {
        FlowState::FactorSetup(FactorSetupState::Ended(SetupEnd {
            account: s.account.clone(),
            handle: s.handle,
            reason,
            at: now,
        }))
    };
    let registered = serde_json::from_str::<RegistrationCeremony>(&s.state)
        .ok()
        .and_then(|state| {
            webauthn
                .finish_passkey_registration(credential, &state)
                .ok()
        })
        .and_then(|passkey| {
            let text = serde_json::to_string(&passkey).ok()?;
            Some((credential_id_text(passkey.cred_id()), text))
        });
    let Some((credential_id, text)) = registered else {
        return setup_failed(
            Rejection::SecondFactorIncorrect,
            (record, ended(SetupEndReason::AttemptsExhausted)),
            (id, "passkey_registration"),
            now,
        );
    };
    let mut updated = account.value.clone();
    if updated
        .factors
        .passkeys
        .iter()
        .any(|p| p.credential_id == credential_id)
    {
        return Step::reject(Rejection::FactorUnavailable)
            .advance(record, ended(SetupEndReason::Superseded));
    }
    updated.factors.passkeys.push(PasskeyFactor {
        credential_id: credential_id.clone(),
        name: s.name.clone(),
        credential: text,
        added_at: now,
        last_used_at: None,
    });
    let recovery_codes = first_recovery_codes(&mut updated, env, rng);
    setup_confirmed(
        PasskeyAdded {
            credential_id,
            recovery_codes,
        },
        FactorKind::Passkey,
        (record, ended(SetupEndReason::Confirmed)),
        (held, account, updated),
        now,
    )
}

/// L1 for an account with passkeys: the browser's `navigator.credentials.get` options
/// and the state to keep in the challenge. `None` when the account has none that read
/// back, or webauthn-rs refuses.
pub(crate) fn start_authentication(
    account: &Account,
    webauthn: &Webauthn,
) -> Option<(RequestChallengeResponse, String)> {
    let creds = credentials(account);
    if creds.is_empty() {
        return None;
    }
    let (options, state) = webauthn.start_passkey_authentication(&creds).ok()?;
    let state = serde_json::to_string(&state).ok()?;
    Some((options, state))
}

/// L2 with a passkey: the assertion checked against the challenge's state, with user
/// verification. The used passkey's counter and last use are updated in `account`.
/// `false` for anything that does not verify.
pub(crate) fn verify_assertion(
    account: &mut Account,
    state: &str,
    credential: &PublicKeyCredential,
    webauthn: &Webauthn,
    now: OffsetDateTime,
) -> bool {
    let Ok(state) = serde_json::from_str::<PasskeyAuthentication>(state) else {
        return false;
    };
    let Ok(result) = webauthn.finish_passkey_authentication(credential, &state) else {
        return false;
    };
    if !result.user_verified() {
        return false;
    }
    update_used(account, &result, now)
}

/// Records the use of the passkey `result` names: its counter and last use.
fn update_used(account: &mut Account, result: &AuthenticationResult, now: OffsetDateTime) -> bool {
    let id = credential_id_text(result.cred_id());
    let Some(slot) = account
        .factors
        .passkeys
        .iter_mut()
        .find(|p| p.credential_id == id)
    else {
        return false;
    };
    let Ok(mut passkey) = serde_json::from_str::<Passkey>(&slot.credential) else {
        return false;
    };
    passkey.update_credential(result);
    let Ok(text) = serde_json::to_string(&passkey) else {
        return false;
    };
    slot.credential = text;
    slot.last_used_at = Some(now);
    true
}

/// パスキーの削除: a freshly logged-in member removes one passkey. Under
/// [`FactorRequirement::Required`](crate::policy::FactorRequirement::Required) the last
/// authenticator stays; removing the last one also removes the リカバリーコード. Open
/// login challenges end; the member is notified (SEC-43).
pub fn remove(
    held: AccountView<'_>,
    fresh: FreshLogin<'_>,
    credential_id: &str,
    env: Env<'_>,
) -> Step<()> {
    remove_with(FactorKind::Passkey, (held, fresh), env, |updated| {
        let before = updated.factors.passkeys.len();
        updated
            .factors
            .passkeys
            .retain(|p| p.credential_id != credential_id);
        if updated.factors.passkeys.len() == before {
            return Err(Rejection::FactorUnavailable);
        }
        if !updated.factors.has_authenticator() {
            if env.policy.factors.requirement == crate::policy::FactorRequirement::Required {
                return Err(Rejection::LastFactorRequired);
            }
            updated.factors.recovery = None;
        }
        Ok(())
    })
}

/// The creation options with a discoverable credential (resident key) required.
fn discoverable(options: CreationChallengeResponse) -> CreationChallengeResponse {
    let Ok(mut value) = serde_json::to_value(&options) else {
        return options;
    };
    if let Some(selection) = value
        .get_mut("publicKey")
        .and_then(|p| p.get_mut("authenticatorSelection"))
        .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".to_owned(), "required".into());
        selection.insert("requireResidentKey".to_owned(), true.into());
    }
    serde_json::from_value(value).unwrap_or(options)
}

// ── パスキーだけでログイン ──────────────────────────────────────────────────────────

/// What the login screen's 「パスキーでログイン」 needs.
#[derive(Debug)]
#[non_exhaustive]
pub struct PasskeyLogin {
    /// The login screen's handle: keep it in the page or a cookie.
    pub challenge: crate::token::OtpChallengeId,
    /// The `publicKey` options of `navigator.credentials.get`, to send as JSON.
    pub options: RequestChallengeResponse,
    /// When the challenge dies.
    pub expires_at: OffsetDateTime,
}

/// パスキーだけでログイン, step 1: a challenge for any of the site's passkeys, kept
/// server-side. Offered only when the policy allows it. Anyone may ask, so each
/// challenge spends one flow start of the requester's and the portal's hourly budgets
/// (SEC-13), like every other step that stores a flow for an unknown visitor.
pub fn start_discoverable<R: rand::CryptoRng + ?Sized>(
    webauthn: Option<&Webauthn>,
    starts: super::throttle::StartBudgets<'_>,
    env: Env<'_>,
    rng: &mut R,
) -> Step<PasskeyLogin> {
    let Some(webauthn) =
        webauthn.filter(|_| env.policy.factors.passkeys && env.policy.factors.passkey_only_login)
    else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let Ok(hits) = starts.spend(env.now, env.policy) else {
        return Step::reject(Rejection::TooManyRequests {
            retry_after: time::Duration::minutes(1),
        });
    };
    let Ok((options, state)) = webauthn.start_discoverable_authentication() else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let Ok(state) = serde_json::to_string(&state) else {
        return Step::reject(Rejection::FactorUnavailable);
    };
    let challenge = crate::token::OtpChallengeId::generate(rng);
    let expires_at = deadline(env.now, env.policy.factors.challenge_ttl);
    Step::answer(PasskeyLogin {
        challenge: challenge.clone(),
        options,
        expires_at,
    })
    .flow(
        Expect::Absent,
        FlowId::generate(rng),
        FlowState::PasskeyLogin(PasskeyLoginState::Awaiting(AwaitingDiscoverablePasskey {
            challenge: challenge.digest(env.keys),
            state,
            attempts: 0,
            expires_at,
        })),
    )
    .writes(hits.into_iter().map(super::step::Write::Counter))
}

/// The account a passkey-only assertion names (its user handle), for the driver to
/// load before [`finish_discoverable`] decides. `None` when it names none.
pub fn claimed_account(webauthn: &Webauthn, credential: &PublicKeyCredential) -> Option<AccountId> {
    webauthn
        .identify_discoverable_authentication(credential)
        .ok()
        .map(|(handle, _)| account_of(handle))
}

/// パスキーだけでログイン, step 2: the assertion, checked against the challenge and the
/// passkey of the account its user handle names (which must be active, not locked by
/// password failures, not cooling down). Every refusal is the same
/// [`Rejection::SecondFactorIncorrect`], whatever account was named; a try is counted on
/// the challenge, which ends after the policy's tries; a success ends it and the
/// account's open login challenges.
pub fn finish_discoverable(
    found: Option<super::login::Found<'_>>,
    held: AccountView<'_>,
    credential: &PublicKeyCredential,
    webauthn: Option<&Webauthn>,
    env: Env<'_>,
) -> Step<super::login::Authenticated> {
    let now = env.now;
    let Some((record, digest)) = found else {
        return Step::reject(Rejection::OtpInvalid);
    };
    let FlowState::PasskeyLogin(PasskeyLoginState::Awaiting(s)) = &record.value.state else {
        return Step::reject(Rejection::OtpInvalid);
    };
    if s.challenge != *digest {
        return Step::reject(Rejection::OtpInvalid);
    }
    let ended = FlowState::PasskeyLogin(PasskeyLoginState::Ended {
        challenge: s.challenge,
        at: now,
    });
    if now >= s.expires_at {
        return Step::reject(Rejection::OtpInvalid).advance(record, ended);
    }
    let usable = |a: &&Versioned<Account>| {
        let cooling = a.value.otp_cooldown_until.is_some_and(|u| now < u);
        let locked = a.value.password_failures >= env.policy.password_failure_cap;
        !cooling && !locked
    };
    let verified = match (webauthn, held.active().filter(usable)) {
        (Some(w), Some(account)) => {
            let mut updated = account.value.clone();
            let ok =
                serde_json::from_str::<webauthn_rs::prelude::DiscoverableAuthentication>(&s.state)
                    .ok()
                    .and_then(|state| {
                        let id = credential_id_text(credential.get_credential_id());
                        let passkey = credentials(&updated)
                            .into_iter()
                            .find(|p| credential_id_text(p.cred_id()) == id)?;
                        w.finish_discoverable_authentication_v2(credential, state, &passkey)
                            .ok()
                    })
                    .filter(AuthenticationResult::user_verified)
                    .is_some_and(|result| update_used(&mut updated, &result, now));
            ok.then_some((account, updated))
        }
        _ => None,
    };
    let Some((account, mut updated)) = verified else {
        let attempts = s.attempts + 1;
        let next = if attempts >= env.policy.otp_tries_per_challenge {
            ended
        } else {
            FlowState::PasskeyLogin(PasskeyLoginState::Awaiting(AwaitingDiscoverablePasskey {
                attempts,
                ..s.clone()
            }))
        };
        return Step::reject(Rejection::SecondFactorIncorrect)
            .advance(record, next)
            .audit(
                AuditEvent::new(AuditKind::SecondFactorFailed, now)
                    .flow(&record.value.id)
                    .detail("passkey_only"),
            );
    };
    updated.otp_failures = 0;
    let id = updated.id.clone();
    let consumed = super::login::OtpConsumed::by_factor(
        id.clone(),
        now,
        super::login::LoginFactor::Passkey,
        false,
    );
    Step::answer(super::login::Authenticated::from_consumed(
        consumed,
        updated.security_stamp.clone(),
    ))
    .advance(record, ended)
    .writes(Ends::login(LoginEndReason::Superseded).writes(held.flows, now, None))
    .audit(
        AuditEvent::new(AuditKind::LoginSucceeded, now)
            .account(&id)
            .flow(&record.value.id)
            .detail("passkey_only"),
    )
    .account(Expect::At(account.version), updated)
}

/// The WebAuthn relying party of `profile`: its base URL's host as the RP ID, its origin
/// (scheme, host, port) as the only accepted origin, its service name as the RP name.
///
/// `None` — passkeys are not offered, and the assurance report says so — when the base
/// URL cannot be one: an IP address (WebAuthn needs a domain), or an origin webauthn-rs
/// refuses.
pub(crate) fn relying_party(profile: &InsurerProfile) -> Option<webauthn_rs::Webauthn> {
    use webauthn_rs::prelude::Url;
    let url = Url::parse(&profile.base_url).ok()?;
    let host = url.host_str()?.to_owned();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        tracing::warn!(target: "kenpo_auth::passkeys", "base URL is an IP address: passkeys are not offered");
        return None;
    }
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    match webauthn_rs::WebauthnBuilder::new(&host, &origin)
        .and_then(|b| b.rp_name(&profile.service_name).build())
    {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(target: "kenpo_auth::passkeys", error = %e, "base URL is not a WebAuthn relying party: passkeys are not offered");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_handle_is_stable_per_account_and_differs_between_accounts() {
        let a = AccountId::from_stored("a");
        let b = AccountId::from_stored("b");
        assert_eq!(user_handle(&a), user_handle(&a));
        assert_ne!(user_handle(&a), user_handle(&b));
        assert_eq!(hashed_handle(&a).get_version_num(), 4);
        let hex = AccountId::from_stored("00112233445566778899aabbccddeeff");
        assert_eq!(account_of(user_handle(&hex)), hex);
    }

    #[test]
    fn passkey_names_are_short_visible_text() {
        assert_eq!(PasskeyName::parse("  iPhone ").unwrap().as_str(), "iPhone");
        assert!(PasskeyName::parse("").is_err());
        assert!(PasskeyName::parse("a\u{7}b").is_err());
        assert!(PasskeyName::parse(&"あ".repeat(33)).is_err());
        assert!(PasskeyName::parse(&"あ".repeat(32)).is_ok());
    }
}
