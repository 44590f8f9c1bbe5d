//! 2段階認証 through `Portal`: setting up a 認証アプリ (TOTP), logging in with its
//! 確認コード or a リカバリーコード, removing it, and what the policy changes.

mod common;

use common::*;
use kenpo_auth::Lang;
use kenpo_auth::Rejection;
use kenpo_auth::flow::factor::totp_code;
use kenpo_auth::flow::{LoginFactor, SecondStep};
use kenpo_auth::mail::MailMessage;
use kenpo_auth::model::FactorKind;
use kenpo_auth::policy::FactorRequirement;
use kenpo_auth::portal::{Authenticated, TotpSetup};
use kenpo_auth::ports::{AccountId, AuditKind};
use kenpo_auth::token::{OtpChallengeId, RecoveryCode, TotpCode};
use time::{Duration, OffsetDateTime};

const LOGIN: &str = "taro-sakura";
const NEW_PASSWORD: &str = "川沿いの道を自転車で走る朝の光と風";

struct Enrolled {
    f: Fixture,
    id: AccountId,
    secret: String,
    recovery: Vec<RecoveryCode>,
}

fn code_at(secret: &str, at: OffsetDateTime) -> TotpCode {
    totp_code(secret, at).expect("a valid secret")
}

/// A code that is not the app's at `at` (nor at its neighbours).
fn wrong_code(secret: &str, at: OffsetDateTime) -> TotpCode {
    let near: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|s| {
            code_at(secret, at + Duration::seconds(*s))
                .expose_secret()
                .to_owned()
        })
        .collect();
    (0..1000)
        .map(|n| format!("{n:06}"))
        .find(|c| !near.contains(c))
        .map(|c| parsed(&c))
        .unwrap()
}

async fn setup_totp(f: &Fixture, auth: &Authenticated) -> (TotpSetup, Vec<RecoveryCode>) {
    let setup = f.portal.start_totp_setup(auth).await.unwrap();
    let code = code_at(setup.secret_base32(), f.now());
    let enrolled = f
        .portal
        .confirm_totp_setup(auth, &setup.handle, &code)
        .await
        .unwrap();
    (setup, enrolled.recovery_codes)
}

async fn enrolled_with(policy: kenpo_auth::Policy) -> Enrolled {
    let f = fixture_with(policy);
    let id = f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let auth = f.login(LOGIN, PASSWORD, TARO).await;
    let (setup, recovery) = setup_totp(&f, &auth).await;
    let secret = setup.secret_base32().to_owned();
    // The next login starts in a later time step than the confirming code's.
    f.clock.advance(Duration::seconds(31));
    Enrolled {
        f,
        id,
        secret,
        recovery,
    }
}

async fn enrolled() -> Enrolled {
    enrolled_with(danger_test_minimum_policy()).await
}

impl Enrolled {
    async fn l1(&self) -> OtpChallengeId {
        let c = self
            .f
            .portal
            .start_login(LOGIN, &pw(PASSWORD))
            .await
            .unwrap();
        assert!(matches!(c.second_step, SecondStep::AuthenticatorApp { .. }));
        c.challenge
    }

    fn now_code(&self) -> TotpCode {
        code_at(&self.secret, self.f.now())
    }

    async fn login_with_app(&self) -> Authenticated {
        let challenge = self.l1().await;
        self.f
            .portal
            .verify_totp(&challenge, &self.now_code())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn member_sets_up_an_authenticator_app_and_logs_in_with_it() {
    let f = fixture();
    f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let auth = f.login(LOGIN, PASSWORD, TARO).await;
    assert_eq!(auth.factor(), LoginFactor::EmailOtp);
    let setup = f.portal.start_totp_setup(&auth).await.unwrap();
    assert!(setup.otpauth_uri().starts_with("otpauth://totp/"));
    assert!(setup.otpauth_uri().contains(setup.secret_base32()));
    let svg = setup.qr_svg().unwrap();
    assert!(svg.contains("<svg"), "an SVG QR code");
    let enrolled = f
        .portal
        .confirm_totp_setup(
            &auth,
            &setup.handle,
            &code_at(setup.secret_base32(), f.now()),
        )
        .await
        .unwrap();
    assert_eq!(enrolled.recovery_codes.len(), 10);
    // SEC-43: the member is told.
    assert_eq!(
        f.kinds_to(TARO).last().copied(),
        Some("second_factor_added")
    );
    f.clock.advance(Duration::seconds(31));
    let mails_before = f.mailer.sent().len();
    let challenge = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_eq!(
        challenge.second_step,
        SecondStep::AuthenticatorApp {
            totp: true,
            passkey: false,
            recovery_codes: true
        }
    );
    assert_eq!(f.mailer.sent().len(), mails_before, "no 暗証キー is mailed");
    let auth = f
        .portal
        .verify_totp(
            &challenge.challenge,
            &code_at(setup.secret_base32(), f.now()),
        )
        .await
        .unwrap();
    assert_eq!(auth.factor(), LoginFactor::Totp);
    assert!(!auth.must_set_up_factor());
}

#[tokio::test]
async fn the_shared_secret_is_stored_sealed_never_in_plain_text() {
    let e = enrolled().await;
    let stored = serde_json::to_string(&e.f.account(&e.id)).unwrap();
    assert!(!stored.contains(&e.secret), "no Base32 secret in the store");
    for code in &e.recovery {
        assert!(!stored.contains(code.expose_secret().as_str()));
    }
    assert!(e.f.account(&e.id).factors.totp.is_some());
}

/// RFC 6238 §5.2: a code is accepted once. The same code, on a new challenge in the same
/// time step, is refused and counted.
#[tokio::test]
async fn a_totp_code_works_once() {
    let e = enrolled().await;
    let code = e.now_code();
    let first = e.l1().await;
    e.f.portal.verify_totp(&first, &code).await.unwrap();
    let second = e.l1().await;
    let replay = e.f.portal.verify_totp(&second, &code).await.unwrap_err();
    assert_eq!(rejection(replay), Rejection::SecondFactorIncorrect);
    assert_eq!(e.f.account(&e.id).otp_failures, 1);
}

/// ±1 step of skew: the previous and the next step's codes work; two steps off does not.
#[tokio::test]
async fn totp_allows_one_step_of_clock_skew() {
    let e = enrolled().await;
    e.f.clock.advance(Duration::seconds(90));
    let now = e.f.now();
    let challenge = e.l1().await;
    let stale = code_at(&e.secret, now - Duration::seconds(60));
    let err =
        e.f.portal
            .verify_totp(&challenge, &stale)
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
    let behind = code_at(&e.secret, now - Duration::seconds(30));
    e.f.portal.verify_totp(&challenge, &behind).await.unwrap();
    e.f.clock.advance(Duration::seconds(30));
    let challenge = e.l1().await;
    let ahead = code_at(&e.secret, e.f.now() + Duration::seconds(30));
    e.f.portal.verify_totp(&challenge, &ahead).await.unwrap();
}

/// A member with a 認証アプリ is never silently downgraded to the e-mailed 暗証キー.
#[tokio::test]
async fn a_member_with_an_app_is_not_downgraded_to_the_mailed_code() {
    let e = enrolled().await;
    let challenge = e.l1().await;
    assert!(
        e.f.mailer.last_otp(TARO).is_some(),
        "the 暗証キー of before"
    );
    let old_mail_code = e.f.otp(TARO);
    let err =
        e.f.portal
            .verify_otp(&challenge, &old_mail_code)
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::OtpInvalid);
    let err = e.f.portal.resend_otp(&challenge).await.unwrap_err();
    assert_eq!(rejection(err), Rejection::OtpInvalid);
}

#[tokio::test]
async fn a_totp_challenge_dies_at_its_lifespan() {
    let e = enrolled().await;
    let challenge = e.l1().await;
    e.f.clock.advance(Duration::minutes(5));
    let err =
        e.f.portal
            .verify_totp(&challenge, &e.now_code())
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::OtpInvalid);
}

/// SEC-29: wrong 確認コード entries spend the 暗証キー's budgets: the challenge's tries,
/// then the account's consecutive count; the login is aborted and the member told.
#[tokio::test]
async fn sec_29_wrong_totp_codes_share_the_otp_budgets() {
    let e = enrolled().await;
    let tries = e.f.portal.policy().otp_tries_per_challenge;
    let challenge = e.l1().await;
    for n in 1..tries {
        let err =
            e.f.portal
                .verify_totp(&challenge, &wrong_code(&e.secret, e.f.now()))
                .await
                .unwrap_err();
        assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
        assert_eq!(e.f.account(&e.id).otp_failures, n);
    }
    let err =
        e.f.portal
            .verify_totp(&challenge, &wrong_code(&e.secret, e.f.now()))
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::OtpAttemptsExhausted);
    assert_eq!(
        e.f.kinds_to(TARO).last().copied(),
        Some("login_otp_aborted")
    );
    // Dead: even the right code does not work on it now.
    let err =
        e.f.portal
            .verify_totp(&challenge, &e.now_code())
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::OtpInvalid);
    // A wrong リカバリーコード counts on the same account budget.
    let challenge = e.l1().await;
    let before = e.f.account(&e.id).otp_failures;
    let err =
        e.f.portal
            .use_recovery_code(&challenge, &parsed("2222-3333-4444"))
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
    assert_eq!(e.f.account(&e.id).otp_failures, before + 1);
}

/// A リカバリーコード works once, instead of the app, and its use is mailed (SEC-43).
#[tokio::test]
async fn sec_43_a_recovery_code_works_once_and_is_notified() {
    let e = enrolled().await;
    let code = e.recovery[3].clone();
    let challenge = e.l1().await;
    let auth =
        e.f.portal
            .use_recovery_code(&challenge, &code)
            .await
            .unwrap();
    assert_eq!(auth.factor(), LoginFactor::RecoveryCode);
    let mail = e.f.mailer.last_to(&addr(TARO)).unwrap();
    assert!(matches!(
        mail.message,
        MailMessage::RecoveryCodeUsed { remaining: 9, .. }
    ));
    assert!(!mail.rendered.body.contains(code.expose_secret().as_str()));
    assert!(
        e.f.audit
            .events()
            .iter()
            .any(|ev| ev.kind == AuditKind::RecoveryCodeUsed)
    );
    let challenge = e.l1().await;
    let err =
        e.f.portal
            .use_recovery_code(&challenge, &code)
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
    // Typed in any spelling members use: lower case, full width, no hyphens.
    let typed = e.recovery[4]
        .expose_secret()
        .replace('-', "")
        .to_lowercase();
    let typed: RecoveryCode = typed.parse().unwrap();
    e.f.portal
        .use_recovery_code(&challenge, &typed)
        .await
        .unwrap();
}

#[tokio::test]
async fn regenerating_recovery_codes_revokes_the_old_set() {
    let e = enrolled().await;
    let auth = e.login_with_app().await;
    let fresh = e.f.portal.regenerate_recovery_codes(&auth).await.unwrap();
    assert_eq!(fresh.len(), 10);
    assert_eq!(
        e.f.kinds_to(TARO).last().copied(),
        Some("second_factor_added")
    );
    let challenge = e.l1().await;
    let err =
        e.f.portal
            .use_recovery_code(&challenge, &e.recovery[0])
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
    e.f.portal
        .use_recovery_code(&challenge, &fresh[0])
        .await
        .unwrap();
}

/// A code of one member does not work for another (codes are bound to their account).
#[tokio::test]
async fn another_members_recovery_code_is_refused() {
    let e = enrolled().await;
    let hanako =
        e.f.register(HANAKO, "999-123456-01", "1987-09-30", "hanako-sakura")
            .await;
    let auth = e.f.login("hanako-sakura", PASSWORD, HANAKO).await;
    let (setup, _) = setup_totp(&e.f, &auth).await;
    e.f.clock.advance(Duration::seconds(31));
    let challenge =
        e.f.portal
            .start_login("hanako-sakura", &pw(PASSWORD))
            .await
            .unwrap()
            .challenge;
    let err =
        e.f.portal
            .use_recovery_code(&challenge, &e.recovery[0])
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
    // Taro's app code is not Hanako's either.
    let err =
        e.f.portal
            .verify_totp(&challenge, &e.now_code())
            .await
            .unwrap_err();
    assert_ne!(setup.secret_base32(), e.secret);
    assert!(matches!(
        rejection(err),
        Rejection::SecondFactorIncorrect | Rejection::OtpAttemptsExhausted
    ));
    assert_eq!(
        e.f.account(&hanako).factors.recovery.unwrap().remaining(),
        10
    );
}

/// After removal the app's codes no longer work, the login mails the 暗証キー again and
/// the member is told (SEC-43).
#[tokio::test]
async fn sec_43_a_removed_app_no_longer_works() {
    let e = enrolled().await;
    let pending = e.l1().await;
    e.f.clock.advance(Duration::seconds(30));
    let auth = e.login_with_app().await;
    e.f.portal
        .remove_factor(&auth, FactorKind::Totp)
        .await
        .unwrap();
    assert_eq!(
        e.f.kinds_to(TARO).last().copied(),
        Some("second_factor_removed")
    );
    assert!(
        e.f.account(&e.id).factors.is_empty(),
        "recovery codes go too"
    );
    e.f.clock.advance(Duration::seconds(30));
    let err =
        e.f.portal
            .verify_totp(&pending, &e.now_code())
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::OtpInvalid);
    let challenge = e.f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_eq!(challenge.second_step, SecondStep::EmailedCode);
    e.f.portal
        .verify_otp(&challenge.challenge, &e.f.otp(TARO))
        .await
        .unwrap();
}

/// SEC-36: setting up, regenerating and removing need a fresh login.
#[tokio::test]
async fn sec_36_factor_changes_need_a_fresh_login() {
    let e = enrolled().await;
    let auth = e.login_with_app().await;
    e.f.clock.advance(Duration::minutes(6));
    for err in [
        e.f.portal.start_totp_setup(&auth).await.map(|_| ()),
        e.f.portal
            .regenerate_recovery_codes(&auth)
            .await
            .map(|_| ()),
        e.f.portal.remove_factor(&auth, FactorKind::Totp).await,
    ] {
        assert_eq!(
            rejection(err.unwrap_err()),
            Rejection::ReauthenticationRequired
        );
    }
}

#[tokio::test]
async fn a_wrong_first_code_does_not_set_up_the_app() {
    let f = fixture();
    let id = f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let auth = f.login(LOGIN, PASSWORD, TARO).await;
    let setup = f.portal.start_totp_setup(&auth).await.unwrap();
    let err = f
        .portal
        .confirm_totp_setup(
            &auth,
            &setup.handle,
            &wrong_code(setup.secret_base32(), f.now()),
        )
        .await
        .unwrap_err();
    assert_eq!(rejection(err), Rejection::SecondFactorIncorrect);
    assert!(f.account(&id).factors.is_empty());
    // The setup screen dies at its lifespan.
    f.clock.advance(Duration::minutes(10));
    let err = f
        .portal
        .confirm_totp_setup(
            &auth,
            &setup.handle,
            &code_at(setup.secret_base32(), f.now()),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        rejection(err),
        Rejection::FactorSetupInvalid | Rejection::ReauthenticationRequired
    ));
    assert!(f.account(&id).factors.is_empty());
}

#[tokio::test]
async fn a_required_factor_is_asked_for_and_cannot_be_removed() {
    let mut policy = danger_test_minimum_policy();
    policy.factors.requirement = FactorRequirement::Required;
    let f = fixture_with(policy.clone());
    f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let auth = f.login(LOGIN, PASSWORD, TARO).await;
    assert!(
        auth.must_set_up_factor(),
        "fallback login, then 2段階認証の設定"
    );
    let e = enrolled_with(policy).await;
    let auth = e.login_with_app().await;
    assert!(!auth.must_set_up_factor());
    let err =
        e.f.portal
            .remove_factor(&auth, FactorKind::Totp)
            .await
            .unwrap_err();
    assert_eq!(rejection(err), Rejection::LastFactorRequired);
}

/// Forgot password never bypasses an enrolled factor unless the policy says so.
#[tokio::test]
async fn a_password_reset_keeps_the_app_unless_the_policy_says_otherwise() {
    let e = enrolled().await;
    e.f.reset_password(LOGIN, TARO, "999-123456-00", "1985-04-12", NEW_PASSWORD)
        .await;
    let c =
        e.f.portal
            .start_login(LOGIN, &pw(NEW_PASSWORD))
            .await
            .unwrap();
    assert!(matches!(c.second_step, SecondStep::AuthenticatorApp { .. }));

    let mut policy = danger_test_minimum_policy();
    policy.factors.reset_removes_factors = true;
    let e = enrolled_with(policy).await;
    e.f.reset_password(LOGIN, TARO, "999-123456-00", "1985-04-12", NEW_PASSWORD)
        .await;
    assert!(e.f.account(&e.id).factors.is_empty());
    assert!(e.f.kinds_to(TARO).contains(&"second_factor_removed"));
    let report = e.f.portal.assurance_report(Lang::En);
    assert!(report.contains("can take over an AAL2 account at AAL1"));
    let c =
        e.f.portal
            .start_login(LOGIN, &pw(NEW_PASSWORD))
            .await
            .unwrap();
    assert_eq!(c.second_step, SecondStep::EmailedCode);
}

#[tokio::test]
async fn members_list_their_factors_with_last_use() {
    let e = enrolled().await;
    e.login_with_app().await;
    let list = e.f.portal.list_factors(&e.id).await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].kind, FactorKind::Totp);
    assert_eq!(list[0].last_used_at, Some(e.f.now()));
    assert_eq!(list[1].kind, FactorKind::RecoveryCodes);
    assert_eq!(list[1].remaining, Some(10));
}

#[tokio::test]
async fn the_assurance_report_states_what_each_factor_achieves() {
    let f = fixture();
    let en = f.portal.assurance_report(Lang::En);
    assert!(en.contains("Password + authenticator-app code is two factors: AAL2"));
    assert!(en.contains("never bypasses an enrolled factor"));
    let ja = f.portal.assurance_report(Lang::Ja);
    assert!(ja.contains("認証アプリ"));
    assert!(ja.contains("リカバリーコード"));
}
