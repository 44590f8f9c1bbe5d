//! Account life end to end through `Portal`: password and address changes by a
//! logged-in member, the insurer's provisioning (事前登録) and disabling (資格喪失),
//! housekeeping, and the SEC-47 inventory of entry points.

mod common;

use std::collections::BTreeSet;

use common::*;
use kenpo_auth::flow::LinkStatus;
use kenpo_auth::flow::delivery::MailStatus;
use kenpo_auth::mail::MailMessage;
use kenpo_auth::portal::{AuthPathway, Caller, DisableOutcome, RecoveryRequested, Throttle};
use kenpo_auth::ports::{AccountId, AccountStatus, AuditKind, MemberId};
use kenpo_auth::{Error, Lang, Portal, Rejection};
use time::Duration;

const LOGIN: &str = "taro-sakura";
const NEW_PASSWORD: &str = "川沿いの道を自転車で走る晴れた朝です";
const NEW_ADDRESS: &str = "taro.new@example.jp";

async fn registered() -> (Fixture, AccountId) {
    let f = fixture();
    let id = f.register(TARO, CARD, BIRTH, LOGIN).await;
    f.after_mail_interval();
    (f, id)
}

// ---------------------------------------------------------------- password change

#[tokio::test]
async fn change_password_end_to_end() {
    let (f, id) = registered().await;
    let this = f.login(LOGIN, PASSWORD, TARO).await;
    let other = f.login(LOGIN, PASSWORD, TARO).await;
    let changed = f
        .portal
        .change_password(&id, pw(PASSWORD), pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap();
    // SEC-34: both old sessions are detectable; the new stamp keeps this one going.
    for old in [&this.security_stamp, &other.security_stamp] {
        assert!(!f.portal.check_security_stamp(&id, old).await.unwrap());
    }
    assert!(
        f.portal
            .check_security_stamp(&id, &changed.security_stamp)
            .await
            .unwrap()
    );
    let mail = f.mailer.last_to(&addr(TARO)).unwrap();
    assert_eq!(mail.rendered.subject, "パスワード変更のお知らせ");
    assert!(matches!(mail.message, MailMessage::PasswordChanged { .. }));
    assert_eq!(
        rejection(
            f.portal
                .start_login(LOGIN, &pw(PASSWORD))
                .await
                .unwrap_err()
        ),
        Rejection::LoginFailed
    );
    f.login(LOGIN, NEW_PASSWORD, TARO).await;
    assert_eq!(f.audit.count(AuditKind::PasswordChanged), 1);
}

// SEC-18, SEC-34: a disabled account's password cannot be changed, even with the right
// password; the answer is the one every refusal of the current password gets, and
// nothing is written or mailed.
#[tokio::test]
async fn sec_18_a_disabled_account_cannot_change_its_password() {
    let (f, id) = registered().await;
    f.portal.disable_account(&id).await.unwrap();
    let before = f.account(&id);
    let mails = f.mailer.count();
    let refused = f
        .portal
        .change_password(&id, pw(PASSWORD), pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .map_err(rejection);
    assert_eq!(refused.err(), Some(Rejection::CurrentPasswordIncorrect));
    assert_eq!(f.account(&id), before);
    assert_eq!(f.mailer.count(), mails);
    assert_eq!(f.audit.count(AuditKind::PasswordChanged), 0);
}

#[tokio::test]
async fn sec_18_wrong_current_password_is_refused_and_throttled_like_login() {
    let (f, id) = registered().await;
    let p = f.portal.policy().clone();
    for i in 1..=p.password_free_failures {
        let r = f
            .portal
            .change_password(
                &id,
                pw("ちがう現在のパスワードです"),
                pw(NEW_PASSWORD),
                pw(NEW_PASSWORD),
            )
            .await
            .unwrap_err();
        let r = rejection(r);
        assert_eq!(r, Rejection::CurrentPasswordIncorrect);
        assert_eq!(r.code(), "password.current_incorrect");
        assert_eq!(
            f.account(&id).password_failures,
            i,
            "counted on the account"
        );
    }
    // The delay now applies to the change and to login alike, even with the right
    // password (SEC-24).
    let r = f
        .portal
        .change_password(&id, pw(PASSWORD), pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::CurrentPasswordIncorrect);
    assert_eq!(
        rejection(
            f.portal
                .start_login(LOGIN, &pw(PASSWORD))
                .await
                .unwrap_err()
        ),
        Rejection::LoginFailed
    );
    f.clock
        .advance(p.password_delay(p.password_free_failures) + Duration::seconds(1));
    f.portal
        .change_password(&id, pw(PASSWORD), pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap();
    assert_eq!(
        f.account(&id).password_failures,
        0,
        "a success resets the count"
    );
}

#[tokio::test]
async fn sec_17_new_password_is_checked_before_the_current_one_costs_a_try() {
    let (f, id) = registered().await;
    let cases = [
        ("みじかい", "みじかい", "password.too_short"),
        (
            "taro.yamada-no-pasuwado",
            "taro.yamada-no-pasuwado",
            "password.contains_context",
        ),
        (
            "昭和60年4月12日生まれのわたしの合言葉",
            "昭和60年4月12日生まれのわたしの合言葉",
            "password.contains_context",
        ),
        (
            NEW_PASSWORD,
            "ちがう確認用のパスワードです",
            "password.confirmation_mismatch",
        ),
    ];
    for (new, confirmation, code) in cases {
        let r = f
            .portal
            .change_password(
                &id,
                pw("ちがう現在のパスワードです"),
                pw(new),
                pw(confirmation),
            )
            .await
            .unwrap_err();
        assert_eq!(rejection(r).code(), code, "{new}");
    }
    assert_eq!(f.account(&id).password_failures, 0);
}

#[tokio::test]
async fn sec_34_password_change_ends_challenges_reset_links_and_address_changes() {
    let (f, id) = registered().await;
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    f.portal
        .change_email(&id, &session, NEW_ADDRESS)
        .await
        .unwrap();
    let change = f.email_change_link(NEW_ADDRESS);
    f.after_mail_interval();
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let reset = f.reset_link(TARO);
    let challenge = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = f.otp(TARO);
    f.portal
        .change_password(&id, pw(PASSWORD), pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap();
    let r = f
        .portal
        .verify_otp(&challenge.challenge, &code)
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
    let r = f.portal.open_password_reset_link(&reset).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::LinkUsed, "an old reset link fails");
    let r = f.portal.confirm_email_change(&change).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::LinkUsed);
}

// ---------------------------------------------------------------- e-mail change

#[tokio::test]
async fn email_change_end_to_end() {
    let (f, id) = registered().await;
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    let requested = f
        .portal
        .change_email(&id, &session, NEW_ADDRESS)
        .await
        .unwrap();
    assert_eq!(requested.masked_new_email, addr(NEW_ADDRESS).masked());
    let mail = f.mailer.last_to(&addr(NEW_ADDRESS)).unwrap();
    assert_eq!(mail.rendered.subject, "メールアドレス変更の確認");
    let link = f
        .mailer
        .last_email_change_link(NEW_ADDRESS)
        .expect("confirmation link");
    assert!(
        link.url
            .starts_with("https://portal.sakura-kenpo.example.jp/email-change/confirm?token=")
    );
    assert_eq!(link.expires_at, f.now() + Duration::minutes(30));
    // SEC-36: the new address is inactive until confirmed.
    assert_eq!(f.account(&id).email, Some(addr(TARO)));
    assert!(
        f.portal
            .check_security_stamp(&id, &session.security_stamp)
            .await
            .unwrap()
    );
    let token = link.token.clone();
    for _ in 0..2 {
        assert!(matches!(
            f.portal.inspect_email_change_link(&token).await.unwrap(),
            LinkStatus::Valid { .. }
        ));
    }
    let confirmed = f.portal.confirm_email_change(&token).await.unwrap();
    assert_eq!(confirmed.masked_email, addr(NEW_ADDRESS).masked());
    assert_eq!(f.account(&id).email, Some(addr(NEW_ADDRESS)));
    // SEC-43: the old and the new address each get one notice.
    for to in [TARO, NEW_ADDRESS] {
        let notices: Vec<_> = f
            .kinds_to(to)
            .into_iter()
            .filter(|k| *k == "email_changed")
            .collect();
        assert_eq!(notices.len(), 1, "{to}");
    }
    let old = f.mailer.last_to(&addr(TARO)).unwrap();
    assert_eq!(old.rendered.subject, "メールアドレス変更のお知らせ");
    assert!(
        !old.rendered.body.contains(NEW_ADDRESS),
        "masked in the notice"
    );
    // SEC-34: the stamp changed; the link is spent.
    assert!(
        !f.portal
            .check_security_stamp(&id, &session.security_stamp)
            .await
            .unwrap()
    );
    assert_eq!(
        rejection(f.portal.confirm_email_change(&token).await.unwrap_err()),
        Rejection::LinkUsed
    );
    // Everything now goes to the new address.
    f.login(LOGIN, PASSWORD, NEW_ADDRESS).await;
    assert_eq!(f.audit.count(AuditKind::EmailChanged), 1);
}

#[tokio::test]
async fn sec_36_email_change_needs_a_fresh_login() {
    let (f, id) = registered().await;
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    // 5 minutes after the login is still fresh…
    f.clock.advance(Duration::minutes(5));
    f.portal
        .change_email(&id, &session, NEW_ADDRESS)
        .await
        .unwrap();
    // …one second later it is not.
    f.clock.advance(Duration::seconds(1));
    let r = f
        .portal
        .change_email(&id, &session, "taro.other@example.jp")
        .await
        .unwrap_err();
    let r = rejection(r);
    assert_eq!(r, Rejection::ReauthenticationRequired);
    assert!(r.message(Lang::Ja).contains("もう一度ログイン"));
    // Another member's login is no proof for this account.
    let hanako = f
        .register(HANAKO, "999-123456-01", "1987-09-30", "hanako-sakura")
        .await;
    let hanakos = f.login("hanako-sakura", PASSWORD, HANAKO).await;
    let r = f
        .portal
        .change_email(&id, &hanakos, "taro.other@example.jp")
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::ReauthenticationRequired);
    // A fresh login whose stamp was changed since (password change) is no proof either.
    let fresh = f.login("hanako-sakura", PASSWORD, HANAKO).await;
    f.portal
        .change_password(&hanako, pw(PASSWORD), pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap();
    let r = f
        .portal
        .change_email(&hanako, &fresh, "hanako.other@example.jp")
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::ReauthenticationRequired);
    assert_eq!(
        f.kinds_to("taro.other@example.jp"),
        Vec::<&str>::new(),
        "nothing mailed without a fresh login"
    );
}

#[tokio::test]
async fn sec_36_confirmation_link_lives_thirty_minutes() {
    let (f, id) = registered().await;
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    f.portal
        .change_email(&id, &session, NEW_ADDRESS)
        .await
        .unwrap();
    let link = f.email_change_link(NEW_ADDRESS);
    f.clock.advance(Duration::minutes(30));
    assert_eq!(
        f.portal.inspect_email_change_link(&link).await.unwrap(),
        LinkStatus::Expired
    );
    assert_eq!(
        rejection(f.portal.confirm_email_change(&link).await.unwrap_err()),
        Rejection::Expired
    );
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    f.portal
        .change_email(&id, &session, NEW_ADDRESS)
        .await
        .unwrap();
    let link = f.email_change_link(NEW_ADDRESS);
    f.clock
        .advance(Duration::minutes(30) - Duration::seconds(1));
    f.portal.confirm_email_change(&link).await.unwrap();
    assert_eq!(f.account(&id).email, Some(addr(NEW_ADDRESS)));
}

#[tokio::test]
async fn sec_08_a_family_members_address_is_refused_when_confirmed() {
    let (f, taro) = registered().await;
    let hanako = f
        .register(HANAKO, "999-123456-01", "1987-09-30", "hanako-sakura")
        .await;
    f.after_mail_interval();
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    // The request does not say the address is taken (no oracle for logged-in members)…
    let taken = f.portal.change_email(&taro, &session, HANAKO).await;
    // …the mailbox owner learns it when they use the link.
    let link = f.email_change_link(HANAKO);
    let r = f.portal.confirm_email_change(&link).await.unwrap_err();
    let r = rejection(r);
    assert_eq!(r, Rejection::FamilyEmailInUse);
    assert!(
        r.message(Lang::Ja)
            .contains("ご家族と重複するメールアドレス")
    );
    let fresh = f
        .portal
        .change_email(&taro, &session, "unused@example.jp")
        .await;
    assert_eq!(
        format!("{taken:?}").replace(&addr(HANAKO).masked(), "M"),
        format!("{fresh:?}").replace(&addr("unused@example.jp").masked(), "M")
    );
    assert_eq!(f.account(&taro).email, Some(addr(TARO)));
    assert_eq!(f.account(&hanako).email, Some(addr(HANAKO)));
}

// ---------------------------------------------------------------- provisioning

/// R1, R2 and R2' for a provisioned member; returns the R5 handle.
async fn through_r2_prime(
    f: &Fixture,
    email: &str,
    login_id: &str,
    temporary: &str,
) -> Result<kenpo_auth::token::FlowHandle, kenpo_auth::Error> {
    f.portal.start_registration(email).await.unwrap();
    let handle = f
        .portal
        .open_registration_link(&f.link1(email))
        .await
        .unwrap();
    f.portal
        .sign_in_with_temporary_password(&handle, login_id, &pw(temporary))
        .await
}

#[tokio::test]
async fn provisioned_member_completes_through_r2_prime() {
    let f = fixture();
    let issued = f
        .portal
        .provision_account(&MemberId::new("M003"))
        .await
        .unwrap();
    // The letter's secrets never show in logs.
    let shown = format!("{issued:?}");
    assert!(!shown.contains(issued.temporary_password.expose_secret()));
    assert_eq!(issued.expires_at, f.now() + Duration::days(21));
    let stored = f.account(&issued.account_id);
    assert_eq!(stored.email, None);
    assert!(matches!(stored.status, AccountStatus::Provisioned { .. }));
    let temp = issued.temporary_password.expose_secret().to_owned();
    let login_id = issued.login_id.as_str().to_owned();
    assert!(
        !f.store.danger_dump().contains(&temp),
        "stored only as a hash"
    );
    // SEC-41: the temporary password is no login.
    assert_eq!(
        rejection(
            f.portal
                .start_login(&login_id, &pw(&temp))
                .await
                .unwrap_err()
        ),
        Rejection::LoginFailed
    );
    // R1 → R2 → R2' → R5.
    let handle = through_r2_prime(&f, ICHIRO, &login_id, &temp)
        .await
        .unwrap();
    let r = f
        .portal
        .complete_registration(&handle, credentials("ichiro-sakura", &temp))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::PasswordSameAsTemporary);
    let registered = f
        .portal
        .complete_registration(&handle, credentials("ichiro-sakura", PASSWORD))
        .await
        .unwrap();
    assert_eq!(registered.account_id, issued.account_id, "the same account");
    let a = f.account(&issued.account_id);
    assert_eq!(a.status, AccountStatus::Active);
    assert_eq!(a.email, Some(addr(ICHIRO)));
    assert_eq!(f.store.danger_accounts().len(), 1);
    f.login("ichiro-sakura", PASSWORD, ICHIRO).await;
    // The letter's login ID and temporary password are dead now.
    assert_eq!(
        rejection(
            f.portal
                .start_login(&login_id, &pw(&temp))
                .await
                .unwrap_err()
        ),
        Rejection::LoginFailed
    );
}

#[tokio::test]
async fn sec_41_temporary_password_expires_at_day_21() {
    let f = fixture();
    let ichiro = f
        .portal
        .provision_account(&MemberId::new("M003"))
        .await
        .unwrap();
    let hanako = f
        .portal
        .provision_account(&MemberId::new("M002"))
        .await
        .unwrap();
    let start = f.now();
    f.clock
        .set(start + Duration::days(21) - Duration::seconds(1));
    through_r2_prime(
        &f,
        ICHIRO,
        ichiro.login_id.as_str(),
        ichiro.temporary_password.expose_secret(),
    )
    .await
    .unwrap();
    f.clock.set(start + Duration::days(21));
    let r = through_r2_prime(
        &f,
        HANAKO,
        hanako.login_id.as_str(),
        hanako.temporary_password.expose_secret(),
    )
    .await
    .unwrap_err();
    assert_eq!(rejection(r), Rejection::LoginFailed);
}

#[tokio::test]
async fn sec_41_reissue_revokes_the_old_temporary_password() {
    let f = fixture();
    let member = MemberId::new("M003");
    let first = f.portal.provision_account(&member).await.unwrap();
    // The old letter already passed R2' in one browser…
    let stale = through_r2_prime(
        &f,
        ICHIRO,
        first.login_id.as_str(),
        first.temporary_password.expose_secret(),
    )
    .await
    .unwrap();
    f.clock.advance(Duration::minutes(1));
    let second = f.portal.provision_account(&member).await.unwrap();
    assert_eq!(second.account_id, first.account_id, "same account");
    assert_eq!(second.login_id, first.login_id);
    assert_ne!(
        second.temporary_password.expose_secret(),
        first.temporary_password.expose_secret()
    );
    assert_eq!(second.expires_at, f.now() + Duration::days(21));
    assert_eq!(f.store.danger_accounts().len(), 1);
    // …and can no longer finish there.
    let r = f
        .portal
        .complete_registration(&stale, credentials("ichiro-sakura", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::WrongStep);
    // The old temporary password is refused; the new one works.
    f.after_mail_interval();
    let r = through_r2_prime(
        &f,
        ICHIRO,
        first.login_id.as_str(),
        first.temporary_password.expose_secret(),
    )
    .await
    .unwrap_err();
    assert_eq!(rejection(r), Rejection::LoginFailed);
    f.after_mail_interval();
    let handle = through_r2_prime(
        &f,
        ICHIRO,
        second.login_id.as_str(),
        second.temporary_password.expose_secret(),
    )
    .await
    .unwrap();
    f.portal
        .complete_registration(&handle, credentials("ichiro-sakura", PASSWORD))
        .await
        .unwrap();
}

#[tokio::test]
async fn sec_41_provisioning_refuses_registered_and_unknown_members() {
    let (f, _) = registered().await;
    let r = f
        .portal
        .provision_account(&MemberId::new("M001"))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::AlreadyRegistered);
    let r = f
        .portal
        .provision_account(&MemberId::new("M999"))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::UnknownMember);
    f.directory.set_eligible(&MemberId::new("M003"), false);
    let r = f
        .portal
        .provision_account(&MemberId::new("M003"))
        .await
        .unwrap_err();
    assert_eq!(rejection(r).code(), "member.unknown");
    assert_eq!(f.store.danger_accounts().len(), 1);
}

#[tokio::test]
async fn sec_42_provisioned_login_ids_are_random_not_derived() {
    let f = fixture();
    let mut ids = BTreeSet::new();
    for m in ["M001", "M002", "M003"] {
        let issued = f.portal.provision_account(&MemberId::new(m)).await.unwrap();
        let id = issued.login_id.as_str().to_owned();
        assert_eq!(id.chars().count(), 10);
        for derived in ["999", "123456", "654321", "1985", "1987", "1990", m] {
            assert!(
                !id.contains(&derived.to_ascii_lowercase()),
                "{id} contains {derived}"
            );
        }
        assert_eq!(
            issued.temporary_password.expose_secret().chars().count(),
            16
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), 3);
}

// ---------------------------------------------------------------- disabling

#[tokio::test]
async fn sec_37_disabled_member_cannot_log_in_or_recover_and_gets_the_generic_answer() {
    let (f, id) = registered().await;
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let reset = f.reset_link(TARO);
    let challenge = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = f.otp(TARO);

    assert_eq!(
        f.portal.disable_account(&id).await.unwrap(),
        DisableOutcome::Disabled
    );
    assert_eq!(
        f.portal.disable_account(&id).await.unwrap(),
        DisableOutcome::AlreadyDisabled
    );
    assert_eq!(
        f.portal
            .disable_account(&AccountId::from_stored("nobody"))
            .await
            .unwrap(),
        DisableOutcome::UnknownAccount
    );
    assert!(matches!(
        f.account(&id).status,
        AccountStatus::Disabled { .. }
    ));
    // Sessions, open challenges and reset links end.
    assert!(
        !f.portal
            .check_security_stamp(&id, &session.security_stamp)
            .await
            .unwrap()
    );
    let r = f
        .portal
        .verify_otp(&challenge.challenge, &code)
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
    assert!(f.portal.open_password_reset_link(&reset).await.is_err());
    // Login: the same answer as an unknown ID (SEC-23).
    let disabled = f
        .portal
        .start_login(LOGIN, &pw(PASSWORD))
        .await
        .unwrap_err();
    let unknown = f
        .portal
        .start_login("nobody-here", &pw(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(format!("{disabled:?}"), format!("{unknown:?}"));
    assert_eq!(rejection(disabled).code(), "login.failed");
    // Recovery: the generic answer, and nothing is mailed.
    f.after_mail_interval();
    let mails = f.mailer.count();
    let reset = f.portal.request_password_reset(LOGIN).await;
    let reset_unknown = f.portal.request_password_reset("nobody-here").await;
    // The same answer, each with its own receipt, which reads the same: sent.
    let status = |r: Result<RecoveryRequested, Error>| {
        let receipt = r.unwrap().receipt;
        let portal = f.portal.clone();
        async move { portal.mail_status(&receipt).await.unwrap() }
    };
    let sent = |s: Option<MailStatus>| matches!(s, Some(MailStatus::Sent { .. }));
    assert!(sent(status(reset).await) && sent(status(reset_unknown).await));
    let reminder = f
        .portal
        .request_login_id_reminder(TARO, Some(claim(CARD, BIRTH)))
        .await;
    let reminder_unknown = f
        .portal
        .request_login_id_reminder("nobody@example.jp", Some(claim(CARD, BIRTH)))
        .await;
    assert!(sent(status(reminder).await) && sent(status(reminder_unknown).await));
    assert_eq!(f.mailer.count(), mails);
    assert_eq!(f.audit.count(AuditKind::AccountDisabled), 1);
}

#[tokio::test]
async fn sec_41_disabling_a_provisioned_account_stops_its_pending_r5() {
    let f = fixture();
    let issued = f
        .portal
        .provision_account(&MemberId::new("M003"))
        .await
        .unwrap();
    let handle = through_r2_prime(
        &f,
        ICHIRO,
        issued.login_id.as_str(),
        issued.temporary_password.expose_secret(),
    )
    .await
    .unwrap();
    f.portal.disable_account(&issued.account_id).await.unwrap();
    let r = f
        .portal
        .complete_registration(&handle, credentials("ichiro-sakura", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::WrongStep);
    assert!(matches!(
        f.account(&issued.account_id).status,
        AccountStatus::Disabled { .. }
    ));
}

#[tokio::test]
async fn a_member_who_rejoins_is_provisioned_again() {
    let (f, id) = registered().await;
    f.portal.disable_account(&id).await.unwrap();
    let issued = f
        .portal
        .provision_account(&MemberId::new("M001"))
        .await
        .unwrap();
    assert_eq!(issued.account_id, id);
    let a = f.account(&id);
    assert!(matches!(a.status, AccountStatus::Provisioned { .. }));
    assert_eq!(a.email, None, "the old address is released until R5");
    let handle = through_r2_prime(
        &f,
        NEW_ADDRESS,
        issued.login_id.as_str(),
        issued.temporary_password.expose_secret(),
    )
    .await
    .unwrap();
    f.portal
        .complete_registration(&handle, credentials("taro-again", NEW_PASSWORD))
        .await
        .unwrap();
    f.login("taro-again", NEW_PASSWORD, NEW_ADDRESS).await;
}

// ---------------------------------------------------------------- housekeeping

#[tokio::test]
async fn purge_expired_removes_dead_flows_in_bounded_batches() {
    let f = fixture();
    for i in 0..600 {
        f.portal
            .start_registration(&format!("member{i}@example.jp"))
            .await
            .unwrap();
    }
    assert_eq!(f.store.flow_count(), 600);
    // Nothing is dead yet.
    assert_eq!(f.portal.purge_expired(10_000).await.unwrap(), 0);
    // Link 1 lives 3 h, then a day as a tombstone; the mail counters an hour.
    f.clock.advance(Duration::hours(27));
    // 600 flows + 600 mail counters + the portal's flow-start counter + 600 outbox rows
    // (kept a day past their link's 3 h): the limit holds across several store batches.
    assert_eq!(f.portal.purge_expired(1_000).await.unwrap(), 1_000);
    assert_eq!(f.portal.purge_expired(1_000).await.unwrap(), 801);
    assert_eq!(f.store.flow_count(), 0);
    assert_eq!(f.portal.purge_expired(1_000).await.unwrap(), 0);
}

// ---------------------------------------------------------------- SEC-47

/// The inventory as this test knows it: every public `Portal` async method with its
/// pathway, caller and throttles. Keep it in sync with `Portal::pathways()`.
fn expected_inventory() -> Vec<(&'static str, AuthPathway, Caller, Vec<Throttle>)> {
    use AuthPathway as P;
    use Caller as C;
    use Throttle as T;
    vec![
        (
            "start_registration",
            P::SelfRegistration,
            C::Member,
            vec![T::MailPerAddress, T::FlowStarts],
        ),
        (
            "inspect_registration_link",
            P::SelfRegistration,
            C::Member,
            vec![],
        ),
        (
            "open_registration_link",
            P::SelfRegistration,
            C::Member,
            vec![T::SingleUseLink],
        ),
        (
            "verify_identity",
            P::SelfRegistration,
            C::Member,
            vec![T::IdentityPerFlow, T::IdentityPerMember],
        ),
        (
            "inspect_verification_link",
            P::SelfRegistration,
            C::Member,
            vec![],
        ),
        (
            "confirm_auth_key",
            P::SelfRegistration,
            C::Member,
            vec![T::SingleUseLink, T::AuthKeyTries],
        ),
        (
            "resend_verification_link",
            P::SelfRegistration,
            C::Member,
            vec![T::LinkResendCap],
        ),
        (
            "sign_in_with_temporary_password",
            P::TemporaryCredentials,
            C::Member,
            vec![T::PasswordFailures],
        ),
        (
            "complete_registration",
            P::SelfRegistration,
            C::Member,
            vec![T::SingleUseLink],
        ),
        (
            "start_login",
            P::NormalLogin,
            C::Member,
            vec![T::PasswordFailures, T::OtpMailsPerAccount],
        ),
        (
            "verify_otp",
            P::NormalLogin,
            C::Member,
            vec![T::OtpPerChallenge, T::OtpPerAccount],
        ),
        (
            "resend_otp",
            P::NormalLogin,
            C::Member,
            vec![T::OtpResendCooldown, T::OtpMailsPerAccount],
        ),
        ("close_otp_screen", P::NormalLogin, C::Member, vec![]),
        ("heartbeat_otp_screen", P::NormalLogin, C::Member, vec![]),
        ("check_security_stamp", P::SessionCheck, C::Host, vec![]),
        ("account_summary", P::SessionCheck, C::Host, vec![]),
        ("registration_email", P::SelfRegistration, C::Member, vec![]),
        (
            "request_login_id_reminder",
            P::LoginIdReminder,
            C::Member,
            vec![T::MailPerAddress, T::FlowStarts],
        ),
        (
            "request_password_reset",
            P::PasswordReset,
            C::Member,
            vec![T::MailPerAddress, T::FlowStarts],
        ),
        (
            "inspect_password_reset_link",
            P::PasswordReset,
            C::Member,
            vec![],
        ),
        (
            "open_password_reset_link",
            P::PasswordReset,
            C::Member,
            vec![T::SingleUseLink],
        ),
        (
            "complete_password_reset",
            P::PasswordReset,
            C::Member,
            vec![T::IdentityPerFlow, T::IdentityPerMember],
        ),
        (
            "change_password",
            P::PasswordChange,
            C::Member,
            vec![T::PasswordFailures],
        ),
        (
            "change_email",
            P::EmailChange,
            C::Member,
            vec![T::ReauthWindow, T::MailPerAddress],
        ),
        (
            "inspect_email_change_link",
            P::EmailChange,
            C::Member,
            vec![],
        ),
        (
            "confirm_email_change",
            P::EmailChange,
            C::Member,
            vec![T::SingleUseLink],
        ),
        (
            "provision_account",
            P::InsurerProvisioning,
            C::Insurer,
            vec![],
        ),
        ("disable_account", P::InsurerDisabling, C::Insurer, vec![]),
        (
            "purge_expired",
            P::Housekeeping,
            C::Host,
            vec![T::BoundedBatch],
        ),
        ("mail_status", P::MailDelivery, C::Host, vec![]),
        (
            "start_totp_setup",
            P::SecondFactor,
            C::Member,
            vec![T::ReauthWindow],
        ),
        (
            "confirm_totp_setup",
            P::SecondFactor,
            C::Member,
            vec![T::ReauthWindow, T::OtpPerChallenge],
        ),
        (
            "verify_totp",
            P::SecondFactor,
            C::Member,
            vec![T::OtpPerChallenge, T::OtpPerAccount],
        ),
        (
            "use_recovery_code",
            P::SecondFactor,
            C::Member,
            vec![T::OtpPerChallenge, T::OtpPerAccount],
        ),
        (
            "regenerate_recovery_codes",
            P::SecondFactor,
            C::Member,
            vec![T::ReauthWindow],
        ),
        (
            "remove_factor",
            P::SecondFactor,
            C::Member,
            vec![T::ReauthWindow],
        ),
        ("list_factors", P::SessionCheck, C::Host, vec![]),
        (
            "start_passkey_registration",
            P::SecondFactor,
            C::Member,
            vec![T::ReauthWindow],
        ),
        (
            "finish_passkey_registration",
            P::SecondFactor,
            C::Member,
            vec![T::ReauthWindow, T::SingleUseLink],
        ),
        (
            "verify_passkey",
            P::SecondFactor,
            C::Member,
            vec![T::OtpPerChallenge, T::OtpPerAccount],
        ),
        (
            "remove_passkey",
            P::SecondFactor,
            C::Member,
            vec![T::ReauthWindow],
        ),
        (
            "start_passkey_login",
            P::SecondFactor,
            C::Member,
            vec![T::FlowStarts, T::SingleUseLink],
        ),
        (
            "finish_passkey_login",
            P::SecondFactor,
            C::Member,
            vec![T::SingleUseLink, T::OtpPerChallenge],
        ),
    ]
}

/// `(name, signature)` of every `pub async fn` in `src/portal/`, read from the source.
fn public_async_methods() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/portal");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices("pub async fn ") {
            let rest = &text[i + "pub async fn ".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let signature = rest.split('{').next().unwrap().to_owned();
            found.push((name, signature));
        }
    }
    found
}

#[test]
fn sec_47_every_entry_point_is_inventoried() {
    let table = Portal::pathways();
    // The test's list and the library's table agree, entry by entry.
    let expected = expected_inventory();
    assert_eq!(table.len(), expected.len());
    for (method, pathway, caller, throttles) in &expected {
        let e = table
            .iter()
            .find(|e| e.method == *method)
            .unwrap_or_else(|| panic!("{method} is not in Portal::pathways()"));
        assert_eq!(e.pathway, *pathway, "{method}");
        assert_eq!(e.caller, *caller, "{method}");
        assert_eq!(e.throttles, throttles.as_slice(), "{method}");
    }
    // The table names every public async method the source defines, and nothing else.
    let in_source: BTreeSet<String> = public_async_methods().into_iter().map(|(n, _)| n).collect();
    let in_table: BTreeSet<String> = table.iter().map(|e| e.method.to_owned()).collect();
    assert_eq!(in_source, in_table, "inventory and source disagree");
    assert_eq!(in_table.len(), table.len(), "no entry twice");
    // Every member entry point that mails, or checks a secret the member types, is
    // bounded by at least one throttle; each throttle names its rule.
    for e in table.iter().filter(|e| e.caller == Caller::Member) {
        // Reads by a 256-bit link or handle (nothing to guess) and screen reports.
        let free = e.method.starts_with("inspect_")
            || matches!(
                e.method,
                "close_otp_screen" | "heartbeat_otp_screen" | "registration_email"
            );
        assert_eq!(e.throttles.is_empty(), free, "{}", e.method);
    }
    for e in table {
        for t in e.throttles {
            assert!(!t.rule().is_empty());
        }
    }
    // Every pathway of SEC-47 is reachable through some entry point.
    for p in [
        AuthPathway::NormalLogin,
        AuthPathway::TemporaryCredentials,
        AuthPathway::PasswordReset,
        AuthPathway::LoginIdReminder,
        AuthPathway::InsurerProvisioning,
        AuthPathway::SecondFactor,
    ] {
        assert!(table.iter().any(|e| e.pathway == p), "{p:?}");
    }
}

#[tokio::test]
async fn sec_47_the_admin_api_cannot_set_or_see_a_password() {
    // No default accounts.
    let f = fixture();
    assert!(f.store.danger_accounts().is_empty());
    let methods = public_async_methods();
    let insurer: Vec<_> = Portal::pathways()
        .iter()
        .filter(|e| e.caller == Caller::Insurer)
        .map(|e| e.method)
        .collect();
    assert_eq!(insurer, vec!["provision_account", "disable_account"]);
    for name in insurer {
        let (_, sig) = methods.iter().find(|(n, _)| n == name).unwrap();
        let params = sig.split("->").next().unwrap();
        assert!(
            !params.to_lowercase().contains("password"),
            "{name} takes a password: {sig}"
        );
    }
    // No entry point hands out a password hash.
    for (name, sig) in &methods {
        assert!(!sig.contains("PasswordHash"), "{name}: {sig}");
    }
    // What provisioning returns is the temporary password for the letter — redacted in
    // Debug — never the hash nor a member's own password.
    let issued = f
        .portal
        .provision_account(&MemberId::new("M003"))
        .await
        .unwrap();
    let shown = format!("{issued:?}");
    assert!(shown.contains("TemporaryPassword([redacted])"));
    assert!(!shown.contains("argon2"));
}

/// The assurance report states every budget with the policy's numbers (per flow, per
/// member, per account, per address, per requester, portal-wide).
#[tokio::test]
async fn assurance_report_states_every_budget() {
    let mut policy = fixtures::danger_test_minimum_policy();
    policy.flow_starts_per_requester_per_hour = 7;
    let f = fixture_with(policy);
    let en = f.portal.assurance_report(Lang::En);
    for needle in [
        "5 identity checks",
        "10 identity checks in 24 h",
        "100 wrong 暗証キー a day",
        "5 mails an hour",
        "per requester: 7 flow starts an hour",
        "the whole portal: 10000 flow starts an hour",
    ] {
        assert!(en.contains(needle), "{needle} in {en}");
    }
    let ja = f.portal.assurance_report(Lang::Ja);
    assert!(
        ja.contains("アクセス元ごと: 手続きの開始は1時間7回まで"),
        "{ja}"
    );
}

#[tokio::test]
async fn assurance_report_covers_recovery_and_temporary_passwords() {
    let f = fixture();
    let ja = f.portal.assurance_report(Lang::Ja);
    for needle in [
        "パスワードを忘れた方",
        "記号・番号・枝番と生年月日を名簿と再確認",
        "有効期限30分",
        "ログインIDを忘れた方",
        "仮パスワード",
        "有効期限は21日",
        "管理者が加入者のパスワードを設定したり見たりすることはできません",
    ] {
        assert!(ja.contains(needle), "{needle}");
    }
    let en = f.portal.assurance_report(Lang::En);
    for needle in [
        "Forgotten password",
        "checked again against the roster",
        "valid 30 minutes",
        "Forgotten login ID",
        "valid 21 days",
        "No administrator can set or see a member's password",
    ] {
        assert!(en.contains(needle), "{needle}");
    }
}
