//! パスキー through `Portal` (feature `passkeys`): a real WebAuthn ceremony against a
//! software authenticator (webauthn-authenticator-rs's `SoftPasskey`): registration by a
//! freshly logged-in member, login with password + passkey, single use, origin binding,
//! removal.
#![cfg(feature = "passkey-tests")]

mod common;

use common::*;
use kenpo_auth::Rejection;
use kenpo_auth::flow::passkey::PasskeyName;
use kenpo_auth::flow::{LoginFactor, SecondStep};
use kenpo_auth::model::FactorKind;
use kenpo_auth::portal::{Authenticated, OtpChallenge};
use kenpo_auth::ports::AccountId;
use kenpo_auth::testkit::fixtures::BASE_URL;
use time::Duration;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

const LOGIN: &str = "taro-sakura";

fn origin() -> Url {
    Url::parse(BASE_URL).unwrap()
}

/// A software passkey that performs user verification.
fn device() -> SoftPasskey {
    SoftPasskey::new(true)
}

async fn register_passkey(
    f: &Fixture,
    auth: &Authenticated,
    device: &mut SoftPasskey,
    name: &str,
) -> kenpo_auth::portal::PasskeyAdded {
    let name: PasskeyName = name.parse().unwrap();
    let started = f
        .portal
        .start_passkey_registration(auth, &name)
        .await
        .unwrap();
    let credential = device.do_registration(origin(), started.options).unwrap();
    f.portal
        .finish_passkey_registration(auth, &started.handle, &credential)
        .await
        .unwrap()
}

struct Enrolled {
    f: Fixture,
    id: AccountId,
    device: SoftPasskey,
}

async fn enrolled() -> Enrolled {
    let f = fixture();
    let id = f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let auth = f.login(LOGIN, PASSWORD, TARO).await;
    let mut device = device();
    register_passkey(&f, &auth, &mut device, "iPhone").await;
    Enrolled { f, id, device }
}

impl Enrolled {
    async fn l1(&self) -> OtpChallenge {
        self.f
            .portal
            .start_login(LOGIN, &pw(PASSWORD))
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn member_registers_a_passkey_and_logs_in_with_password_and_passkey() {
    let f = fixture();
    let id = f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let auth = f.login(LOGIN, PASSWORD, TARO).await;
    let mut device = device();
    let added = register_passkey(&f, &auth, &mut device, "  会社のPC ").await;
    assert_eq!(
        added.recovery_codes.len(),
        10,
        "the first factor brings codes"
    );
    assert_eq!(
        f.kinds_to(TARO).last().copied(),
        Some("second_factor_added")
    );
    let list = f.portal.list_factors(&id).await.unwrap();
    assert_eq!(list[0].kind, FactorKind::Passkey);
    assert_eq!(list[0].name.as_deref(), Some("会社のPC"));
    assert_eq!(
        list[0].credential_id.as_deref(),
        Some(added.credential_id.as_str())
    );

    let mails = f.mailer.sent().len();
    let challenge = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_eq!(
        challenge.second_step,
        SecondStep::AuthenticatorApp {
            totp: false,
            passkey: true,
            recovery_codes: true
        }
    );
    assert_eq!(f.mailer.sent().len(), mails, "no 暗証キー is mailed");
    let options = challenge.passkey_options.clone().unwrap();
    let assertion = device.do_authentication(origin(), options).unwrap();
    let auth = f
        .portal
        .verify_passkey(&challenge.challenge, &assertion)
        .await
        .unwrap();
    assert_eq!(auth.factor(), LoginFactor::Passkey);
    let list = f.portal.list_factors(&id).await.unwrap();
    assert_eq!(list[0].last_used_at, Some(f.now()));
}

/// The ceremony state is kept server-side and used once: the same assertion again is
/// refused, on its own challenge (ended) and on a new one (another challenge).
#[tokio::test]
async fn an_assertion_works_once_and_only_on_its_challenge() {
    let mut e = enrolled().await;
    let first = e.l1().await;
    let assertion = e
        .device
        .do_authentication(origin(), first.passkey_options.clone().unwrap())
        .unwrap();
    e.f.portal
        .verify_passkey(&first.challenge, &assertion)
        .await
        .unwrap();
    let again =
        e.f.portal
            .verify_passkey(&first.challenge, &assertion)
            .await
            .unwrap_err();
    assert_eq!(rejection(again), Rejection::OtpInvalid);
    let second = e.l1().await;
    let replay =
        e.f.portal
            .verify_passkey(&second.challenge, &assertion)
            .await
            .unwrap_err();
    assert_eq!(rejection(replay), Rejection::SecondFactorIncorrect);
    assert_eq!(
        e.f.account(&e.id).otp_failures,
        1,
        "counted like a wrong 暗証キー"
    );
}

/// Exact origins only: an assertion a device makes for another origin under the same
/// registrable domain (a look-alike subdomain relaying the challenge) is refused.
#[tokio::test]
async fn an_assertion_for_another_origin_is_refused() {
    let mut e = enrolled().await;
    let challenge = e.l1().await;
    let phished = Url::parse("https://login.portal.sakura-kenpo.example.jp").unwrap();
    let assertion = e
        .device
        .do_authentication(phished, challenge.passkey_options.clone().unwrap())
        .unwrap();
    let err =
        e.f.portal
            .verify_passkey(&challenge.challenge, &assertion)
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
}

/// Another member's passkey does not log in to this account.
#[tokio::test]
async fn another_members_passkey_is_refused() {
    let mut e = enrolled().await;
    e.f.register(HANAKO, "999-123456-01", "1987-09-30", "hanako-sakura")
        .await;
    let auth = e.f.login("hanako-sakura", PASSWORD, HANAKO).await;
    let mut hanakos = device();
    register_passkey(&e.f, &auth, &mut hanakos, "Android").await;
    let hanako_challenge =
        e.f.portal
            .start_login("hanako-sakura", &pw(PASSWORD))
            .await
            .unwrap();
    let hanako_assertion = hanakos
        .do_authentication(origin(), hanako_challenge.passkey_options.unwrap())
        .unwrap();
    let taro_challenge = e.l1().await;
    let err =
        e.f.portal
            .verify_passkey(&taro_challenge.challenge, &hanako_assertion)
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
    // Taro's own device still works on his challenge.
    let assertion = e
        .device
        .do_authentication(origin(), taro_challenge.passkey_options.unwrap())
        .unwrap();
    e.f.portal
        .verify_passkey(&taro_challenge.challenge, &assertion)
        .await
        .unwrap();
}

/// A registration is single use, bound to its handle, and dies at its lifespan.
#[tokio::test]
async fn a_registration_is_single_use_and_expires() {
    let mut policy = danger_test_minimum_policy();
    policy.factors.setup_ttl = Duration::minutes(2);
    let f = fixture_with(policy);
    let id = f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let auth = f.login(LOGIN, PASSWORD, TARO).await;
    let mut device = device();
    let name: PasskeyName = "iPad".parse().unwrap();
    let started = f
        .portal
        .start_passkey_registration(&auth, &name)
        .await
        .unwrap();
    let credential = device.do_registration(origin(), started.options).unwrap();
    f.portal
        .finish_passkey_registration(&auth, &started.handle, &credential)
        .await
        .unwrap();
    let again = f
        .portal
        .finish_passkey_registration(&auth, &started.handle, &credential)
        .await
        .unwrap_err();
    assert_eq!(rejection(again), Rejection::FactorSetupInvalid);
    assert_eq!(f.account(&id).factors.passkeys.len(), 1);

    let started = f
        .portal
        .start_passkey_registration(&auth, &name)
        .await
        .unwrap();
    let credential = device.do_registration(origin(), started.options).unwrap();
    f.clock.advance(Duration::minutes(2));
    let late = f
        .portal
        .finish_passkey_registration(&auth, &started.handle, &credential)
        .await
        .unwrap_err();
    assert_eq!(rejection(late), Rejection::FactorSetupInvalid);
    assert_eq!(f.account(&id).factors.passkeys.len(), 1);
}

/// After removal the passkey no longer works, the login mails the 暗証キー again, and the
/// member is told (SEC-43).
#[tokio::test]
async fn sec_43_a_removed_passkey_no_longer_works() {
    let mut e = enrolled().await;
    let challenge = e.l1().await;
    let assertion = e
        .device
        .do_authentication(origin(), challenge.passkey_options.clone().unwrap())
        .unwrap();
    let auth =
        e.f.portal
            .verify_passkey(&challenge.challenge, &assertion)
            .await
            .unwrap();
    let pending = e.l1().await;
    let stale = e
        .device
        .do_authentication(origin(), pending.passkey_options.clone().unwrap())
        .unwrap();
    let credential_id = e.f.account(&e.id).factors.passkeys[0].credential_id.clone();
    e.f.portal
        .remove_passkey(&auth, &credential_id)
        .await
        .unwrap();
    assert_eq!(
        e.f.kinds_to(TARO).last().copied(),
        Some("second_factor_removed")
    );
    let err =
        e.f.portal
            .verify_passkey(&pending.challenge, &stale)
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::OtpInvalid);
    let c = e.l1().await;
    assert_eq!(c.second_step, SecondStep::EmailedCode);
    assert!(c.passkey_options.is_none());
}

/// A member with both an app and a passkey is offered both on one screen.
#[tokio::test]
async fn app_and_passkey_are_offered_together() {
    let mut e = enrolled().await;
    let challenge = e.l1().await;
    let assertion = e
        .device
        .do_authentication(origin(), challenge.passkey_options.unwrap())
        .unwrap();
    let auth =
        e.f.portal
            .verify_passkey(&challenge.challenge, &assertion)
            .await
            .unwrap();
    let setup = e.f.portal.start_totp_setup(&auth).await.unwrap();
    let code = kenpo_auth::flow::factor::totp_code(setup.secret_base32(), e.f.now()).unwrap();
    let enrolled =
        e.f.portal
            .confirm_totp_setup(&auth, &setup.handle, &code)
            .await
            .unwrap();
    assert!(
        enrolled.recovery_codes.is_empty(),
        "the set from the passkey stays"
    );
    let c = e.l1().await;
    assert_eq!(
        c.second_step,
        SecondStep::AuthenticatorApp {
            totp: true,
            passkey: true,
            recovery_codes: true
        }
    );
}

#[tokio::test]
async fn the_assurance_report_says_passkeys_are_phishing_resistant() {
    let f = fixture();
    let en = f.portal.assurance_report(kenpo_auth::Lang::En);
    assert!(en.contains("Password + passkey is AAL2 and phishing-resistant"));
    let ja = f.portal.assurance_report(kenpo_auth::Lang::Ja);
    assert!(ja.contains("フィッシング耐性"));
}

/// パスキーだけでログイン is off unless the policy allows it.
#[tokio::test]
async fn passkey_only_login_is_off_by_default() {
    let f = fixture();
    let err = f.portal.start_passkey_login().await.unwrap_err();
    assert_eq!(rejection(err), Rejection::FactorUnavailable);
    assert!(!f.portal.offers_passkey_only_login());
}

// パスキーだけでログイン's ceremony needs a discoverable credential, which the software
// authenticator cannot make: tests/portal_browser.rs runs it in Chromium with the
// virtual authenticator.
