//! ログインID・パスワードを忘れた方 end to end through `Portal`, in memory. Links come
//! from the typed mails, never from mail text.

mod common;

use common::*;
use kenpo_auth::Lang;
use kenpo_auth::Rejection;
use kenpo_auth::flow::LinkStatus;
use kenpo_auth::policy::Deviation;
use kenpo_auth::ports::{AccountId, AuditKind, MemberId};
use kenpo_auth::token::OtpCode;
use time::Duration;

const LOGIN: &str = "taro-sakura";
const NEW_PASSWORD: &str = "川沿いの道を自転車で走る晴れた朝です";

async fn registered() -> (Fixture, AccountId) {
    let f = fixture();
    let id = f.register(TARO, CARD, BIRTH, LOGIN).await;
    f.after_mail_interval();
    (f, id)
}

// ---------------------------------------------------------------- forgot login ID

#[tokio::test]
async fn sec_40_login_id_is_mailed_to_the_registered_address_only() {
    let (f, _) = registered().await;
    let answer = f
        .portal
        .request_login_id_reminder(TARO, Some(claim(CARD, BIRTH)))
        .await
        .unwrap();
    // SEC-40: the answer never carries the ID.
    assert!(!format!("{answer:?}").contains(LOGIN));
    assert!(!answer.message(Lang::Ja).contains(LOGIN));
    assert!(answer.message(Lang::Ja).contains("ご登録がある場合は"));
    let mail = f.mailer.last_to(&addr(TARO)).unwrap();
    assert_eq!(mail.rendered.subject, "ログインIDのお知らせ");
    assert_eq!(
        f.mailer.last_login_id_reminder(TARO).as_deref(),
        Some(LOGIN)
    );
    assert!(mail.rendered.body.contains(LOGIN));
    assert_eq!(
        f.mailer.count(),
        4,
        "registration's three mails and the reminder"
    );
}

#[tokio::test]
async fn sec_40_reminder_answers_identically_whether_or_not_anything_matched() {
    let (f, _) = registered().await;
    let hanako = f
        .register(HANAKO, "999-123456-01", "1987-09-30", "hanako-sakura")
        .await;
    f.portal.disable_account(&hanako).await.unwrap();
    let before = f.mailer.count();
    let cases = [
        ("unknown address", "nobody@example.jp", claim(CARD, BIRTH)),
        ("wrong birth date", TARO, claim(CARD, "1985-04-13")),
        (
            "family member's card",
            TARO,
            claim("999-123456-01", "1987-09-30"),
        ),
        (
            "card not on the roster",
            TARO,
            claim("999-000000-00", BIRTH),
        ),
        (
            "disabled account",
            HANAKO,
            claim("999-123456-01", "1987-09-30"),
        ),
        ("match", TARO, claim(CARD, BIRTH)),
    ];
    let mut answers = Vec::new();
    for (case, email, c) in cases {
        // Every case spends its address's mail allowance (SEC-40's equal work).
        f.after_mail_interval();
        let r = f.portal.request_login_id_reminder(email, Some(c)).await;
        answers.push((case, observed(&f.portal, &r).await));
    }
    let (_, first) = &answers[0];
    for (case, a) in &answers {
        assert_eq!(a, first, "{case} answered differently");
    }
    // Only the match sent anything.
    assert_eq!(f.mailer.count(), before + 1);
    assert_eq!(
        f.mailer.last_to(&addr(TARO)).unwrap().message.kind(),
        "login_id_reminder"
    );
}

/// SEC-25: someone who knows only a member's address cannot use 「ログインIDを忘れた方」 to
/// spend the member's identity budget. The reminder's answer never says whether the card
/// data matched (SEC-40), so there is nothing to guess and nothing is counted; the mail
/// throttle (SEC-13) bounds the mails. The member's own reset, R3 and reminder still work.
#[tokio::test]
async fn sec_25_wrong_reminder_requests_do_not_spend_the_members_budget() {
    let (f, _) = registered().await;
    let p = f.portal.policy().clone();
    for day in 1..=p.identity_tries_per_member * 2 {
        let birth = format!("1985-05-{:02}", day % 28 + 1);
        f.portal
            .request_login_id_reminder(TARO, Some(claim(CARD, &birth)))
            .await
            .unwrap();
    }
    // The member's own password reset passes its roster re-check.
    f.reset_password(
        LOGIN,
        TARO,
        CARD,
        BIRTH,
        "満月の夜に港の灯りを静かに数えていく",
    )
    .await;
    // And the reminder with the right data still mails the login ID.
    f.after_mail_interval();
    f.portal
        .request_login_id_reminder(TARO, Some(claim(CARD, BIRTH)))
        .await
        .unwrap();
    assert_eq!(
        f.mailer.last_to(&addr(TARO)).unwrap().message.kind(),
        "login_id_reminder"
    );
    // R3 for the same member is not blocked either (it reaches the roster check, which
    // refuses only because the member already has an account).
    f.portal
        .start_registration("other@example.jp")
        .await
        .unwrap();
    let handle = f
        .portal
        .open_registration_link(&f.link1("other@example.jp"))
        .await
        .unwrap();
    let r = f.portal.verify_identity(&handle, claim(CARD, BIRTH)).await;
    assert_eq!(rejection(r.unwrap_err()), Rejection::AlreadyRegistered);
}

#[tokio::test]
async fn sec_09_reminder_guesses_under_other_addresses_do_not_block_the_member() {
    let (f, _) = registered().await;
    let p = f.portal.policy().clone();
    // Someone holding only Taro's card number cannot use the form to use up his
    // roster budget: with no account behind the address nothing is compared or counted.
    for i in 0..=p.identity_tries_per_member {
        f.portal
            .request_login_id_reminder(
                &format!("guess{i}@example.jp"),
                Some(claim(CARD, "2001-01-01")),
            )
            .await
            .unwrap();
    }
    f.portal
        .request_login_id_reminder(TARO, Some(claim(CARD, BIRTH)))
        .await
        .unwrap();
    assert_eq!(
        f.mailer.last_to(&addr(TARO)).unwrap().message.kind(),
        "login_id_reminder"
    );
}

#[tokio::test]
async fn sec_13_reminder_mails_are_throttled_per_address() {
    let (f, _) = registered().await;
    let first = f
        .portal
        .request_login_id_reminder(TARO, Some(claim(CARD, BIRTH)))
        .await;
    let second = f
        .portal
        .request_login_id_reminder(TARO, Some(claim(CARD, BIRTH)))
        .await;
    assert_eq!(
        observed(&f.portal, &first).await,
        observed(&f.portal, &second).await
    );
    let reminders = f
        .kinds_to(TARO)
        .into_iter()
        .filter(|k| *k == "login_id_reminder")
        .count();
    assert_eq!(reminders, 1, "the second request within 60 s sends nothing");
}

#[tokio::test]
async fn sec_40_reminder_needs_identity_by_default_and_email_alone_only_by_deviation() {
    let (f, _) = registered().await;
    let r = f.portal.request_login_id_reminder(TARO, None).await;
    assert_eq!(rejection(r.unwrap_err()), Rejection::IdentityNotConfirmed);
    let malformed = f.portal.request_login_id_reminder("taro@", None).await;
    assert!(
        rejection(malformed.unwrap_err())
            .code()
            .starts_with("email.")
    );

    let mut loose = danger_test_minimum_policy();
    loose.recovery_requires_identity = false;
    let loose = loose.allow_deviation(Deviation::RecoveryByEmailAlone, "tests only");
    let f = fixture_with(loose);
    f.register(TARO, CARD, BIRTH, LOGIN).await;
    f.after_mail_interval();
    f.portal
        .request_login_id_reminder(TARO, None)
        .await
        .unwrap();
    assert_eq!(
        f.mailer.last_to(&addr(TARO)).unwrap().message.kind(),
        "login_id_reminder"
    );
}

// ---------------------------------------------------------------- forgot password

#[tokio::test]
async fn sec_38_password_reset_end_to_end_does_not_log_in() {
    let (f, id) = registered().await;
    let answer = f.portal.request_password_reset(LOGIN).await.unwrap();
    assert!(answer.message(Lang::Ja).contains("メールを送信しました"));
    let mail = f.mailer.last_to(&addr(TARO)).unwrap();
    assert_eq!(mail.rendered.subject, "パスワード再設定のご案内");
    let link = f.mailer.last_reset_link(TARO).expect("reset link");
    assert!(
        link.url
            .starts_with("https://portal.sakura-kenpo.example.jp/password-reset/link?token=")
    );
    assert_eq!(link.expires_at, f.now() + Duration::minutes(30));
    let token = link.token.clone();
    // GET inspects without consuming.
    for _ in 0..2 {
        assert!(matches!(
            f.portal.inspect_password_reset_link(&token).await.unwrap(),
            LinkStatus::Valid { .. }
        ));
    }
    let handle = f.portal.open_password_reset_link(&token).await.unwrap();
    f.portal
        .complete_password_reset(
            &handle,
            Some(claim("９９９ー１２３４５６ー００", "昭和60年4月12日")),
            pw(NEW_PASSWORD),
            pw(NEW_PASSWORD),
        )
        .await
        .unwrap();
    // SEC-38/SEC-43: exactly one notice.
    let notices: Vec<_> = f
        .kinds_to(TARO)
        .into_iter()
        .filter(|k| *k == "password_changed")
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(
        f.mailer.last_to(&addr(TARO)).unwrap().rendered.subject,
        "パスワード変更のお知らせ"
    );
    // The old password is gone; the new one works — through the 暗証キー (SEC-38: a
    // reset does not log in).
    assert_eq!(
        rejection(
            f.portal
                .start_login(LOGIN, &pw(PASSWORD))
                .await
                .unwrap_err()
        ),
        Rejection::LoginFailed
    );
    let auth = f.login(LOGIN, NEW_PASSWORD, TARO).await;
    assert_eq!(auth.account_id, id);
    assert_eq!(f.audit.count(AuditKind::PasswordResetCompleted), 1);
}

#[tokio::test]
async fn sec_37_reset_request_answers_identically_for_every_login_id() {
    let (f, taro) = registered().await;
    let hanako = f
        .register(HANAKO, "999-123456-01", "1987-09-30", "hanako-sakura")
        .await;
    f.portal.disable_account(&hanako).await.unwrap();
    let provisioned = f
        .portal
        .provision_account(&MemberId::new("M003"))
        .await
        .unwrap();
    let accounts_before = f.store.danger_accounts();
    let mails_before = f.mailer.count();
    let cases = [
        ("unknown", "nobody-here".to_owned()),
        ("malformed", "x".to_owned()),
        ("empty", String::new()),
        ("disabled", "hanako-sakura".to_owned()),
        ("provisioned", provisioned.login_id.as_str().to_owned()),
        ("known", LOGIN.to_owned()),
    ];
    let mut answers = Vec::new();
    for (case, login_id) in &cases {
        let r = f.portal.request_password_reset(login_id).await;
        answers.push((*case, observed(&f.portal, &r).await));
    }
    for (case, a) in &answers {
        assert_eq!(a, &answers[0].1, "{case} answered differently");
    }
    // Only the known active account got a link; no account changed (SEC-37).
    assert_eq!(f.mailer.count(), mails_before + 1);
    assert_eq!(f.reset_link(TARO).expose_secret().len(), 43);
    let mut after = f.store.danger_accounts();
    let mut before = accounts_before;
    after.sort_by(|a, b| a.id.cmp(&b.id));
    before.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(after, before);
    // Opening the link changes no account either.
    f.portal
        .open_password_reset_link(&f.reset_link(TARO))
        .await
        .unwrap();
    assert_eq!(
        f.account(&taro),
        before.into_iter().find(|a| a.id == taro).unwrap()
    );
}

#[tokio::test]
async fn sec_25_reset_works_while_locked_and_clears_the_lock() {
    let (f, id) = registered().await;
    f.lock_by_wrong_passwords(&id, LOGIN).await;
    let cap = f.portal.policy().password_failure_cap;
    assert_eq!(f.account(&id).password_failures, cap);
    // SEC-24: at the cap even the right password is refused, however long one waits.
    f.clock.advance(Duration::days(2));
    assert_eq!(
        rejection(
            f.portal
                .start_login(LOGIN, &pw(PASSWORD))
                .await
                .unwrap_err()
        ),
        Rejection::LoginFailed
    );
    assert!(f.kinds_to(TARO).contains(&"account_locked"));
    f.after_mail_interval();
    f.reset_password(LOGIN, TARO, CARD, BIRTH, NEW_PASSWORD)
        .await;
    let a = f.account(&id);
    assert_eq!(a.password_failures, 0);
    assert_eq!(a.last_password_failure_at, None);
    // Login works at once, with no delay left.
    f.login(LOGIN, NEW_PASSWORD, TARO).await;
}

#[tokio::test]
async fn sec_25_reset_clears_the_otp_cooldown() {
    let (f, id) = registered().await;
    // SEC-29: ten consecutive wrong 暗証キー on the account (two challenges of five) start
    // the account's cooldown.
    let limit = f.portal.policy().otp_failures_per_account;
    let tries = f.portal.policy().otp_tries_per_challenge;
    let mut wrong_so_far = 0;
    while wrong_so_far < limit {
        f.after_mail_interval();
        let challenge = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
        let real = f.otp(TARO);
        let wrong: OtpCode = parsed(if real.expose_secret() == "000000" {
            "111111"
        } else {
            "000000"
        });
        for _ in 0..tries.min(limit - wrong_so_far) {
            let _ = f.portal.verify_otp(&challenge.challenge, &wrong).await;
            wrong_so_far += 1;
        }
    }
    assert!(f.account(&id).otp_cooldown_until.is_some());
    assert_eq!(
        rejection(
            f.portal
                .start_login(LOGIN, &pw(PASSWORD))
                .await
                .unwrap_err()
        ),
        Rejection::LoginFailed,
        "cooling down"
    );
    f.after_mail_interval();
    f.reset_password(LOGIN, TARO, CARD, BIRTH, NEW_PASSWORD)
        .await;
    let a = f.account(&id);
    assert_eq!(a.otp_cooldown_until, None);
    assert_eq!(a.otp_failures, 0);
    f.login(LOGIN, NEW_PASSWORD, TARO).await;
}

#[tokio::test]
async fn sec_38_reset_link_is_single_use() {
    let (f, _) = registered().await;
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let token = f.reset_link(TARO);
    f.portal.open_password_reset_link(&token).await.unwrap();
    let again = f.portal.open_password_reset_link(&token).await.unwrap_err();
    assert_eq!(rejection(again), Rejection::LinkUsed);
    assert_eq!(
        f.portal.inspect_password_reset_link(&token).await.unwrap(),
        LinkStatus::Used
    );
}

#[tokio::test]
async fn sec_38_reset_link_lives_thirty_minutes() {
    let (f, _) = registered().await;
    // Accepted one second before it expires.
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let early = f.reset_link(TARO);
    f.clock
        .advance(Duration::minutes(30) - Duration::seconds(1));
    f.portal.open_password_reset_link(&early).await.unwrap();
    // Refused at expires_at.
    f.after_mail_interval();
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let late = f.reset_link(TARO);
    f.clock.advance(Duration::minutes(30));
    assert_eq!(
        f.portal.inspect_password_reset_link(&late).await.unwrap(),
        LinkStatus::Expired
    );
    let r = f.portal.open_password_reset_link(&late).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::Expired);
}

/// SEC-37: a reset request changes nothing of the account's, so a stranger who knows the
/// login ID cannot kill the link the member is about to use; opening one link ends the
/// account's other open links (one reset in progress at most).
#[tokio::test]
async fn sec_37_a_request_keeps_earlier_links_and_opening_one_ends_the_others() {
    let (f, _) = registered().await;
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let first = f.reset_link(TARO);
    f.after_mail_interval();
    // Someone else asks again for the same login ID.
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let second = f.reset_link(TARO);
    assert_ne!(first.expose_secret(), second.expose_secret());
    assert!(matches!(
        f.portal.inspect_password_reset_link(&first).await.unwrap(),
        LinkStatus::Valid { .. }
    ));
    f.portal.open_password_reset_link(&first).await.unwrap();
    assert_eq!(
        f.portal.inspect_password_reset_link(&second).await.unwrap(),
        LinkStatus::Used
    );
    let r = f
        .portal
        .open_password_reset_link(&second)
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::LinkUsed);
}

#[tokio::test]
async fn sec_13_reset_mails_are_throttled_and_keep_the_live_link() {
    let (f, _) = registered().await;
    let a = f.portal.request_password_reset(LOGIN).await;
    let link = f.reset_link(TARO);
    let b = f.portal.request_password_reset(LOGIN).await;
    assert_eq!(observed(&f.portal, &a).await, observed(&f.portal, &b).await);
    let links = f
        .kinds_to(TARO)
        .into_iter()
        .filter(|k| *k == "password_reset_link")
        .count();
    assert_eq!(links, 1);
    // The throttled request did not kill the link already mailed.
    f.portal.open_password_reset_link(&link).await.unwrap();
}

#[tokio::test]
async fn sec_34_reset_ends_sessions_challenges_and_pending_changes() {
    let (f, id) = registered().await;
    let session = f.login(LOGIN, PASSWORD, TARO).await;
    assert!(
        f.portal
            .check_security_stamp(&id, &session.security_stamp)
            .await
            .unwrap()
    );
    // A pending address change and an open 暗証キー challenge.
    f.portal
        .change_email(&id, &session, "taro.new@example.jp")
        .await
        .unwrap();
    let change = f.email_change_link("taro.new@example.jp");
    f.clock.advance(Duration::seconds(61));
    let challenge = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = f.otp(TARO);
    f.after_mail_interval();
    f.reset_password(LOGIN, TARO, CARD, BIRTH, NEW_PASSWORD)
        .await;

    assert!(
        !f.portal
            .check_security_stamp(&id, &session.security_stamp)
            .await
            .unwrap(),
        "the old session is detectable through the changed stamp"
    );
    let r = f
        .portal
        .verify_otp(&challenge.challenge, &code)
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
    let r = f.portal.confirm_email_change(&change).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::LinkUsed);
    assert_eq!(f.account(&id).email, Some(addr(TARO)));
}

#[tokio::test]
async fn sec_09_reset_roster_check_is_limited_and_never_says_which_field() {
    let (f, id) = registered().await;
    let before = f.account(&id);
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let handle = f
        .portal
        .open_password_reset_link(&f.reset_link(TARO))
        .await
        .unwrap();
    let wrong = [
        claim(CARD, "1985-04-13"),
        claim("999-123456-01", BIRTH),
        claim("999-123456-01", "1987-09-30"),
        claim("999-000000-00", BIRTH),
    ];
    let mut answers = Vec::new();
    for c in wrong {
        let r = f
            .portal
            .complete_password_reset(&handle, Some(c), pw(NEW_PASSWORD), pw(NEW_PASSWORD))
            .await
            .unwrap_err();
        let r = rejection(r);
        answers.push((r.code(), r.message(Lang::Ja), format!("{r:?}")));
    }
    assert!(answers.iter().all(|a| *a == answers[0]));
    assert_eq!(answers[0].0, "identity.not_confirmed");
    // Without a claim nothing is compared: refused, no try spent.
    let r = f
        .portal
        .complete_password_reset(&handle, None, pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::IdentityNotConfirmed);
    // The fifth failure ends the flow; the right data then does not help.
    let r = f
        .portal
        .complete_password_reset(
            &handle,
            Some(claim(CARD, "2000-01-01")),
            pw(NEW_PASSWORD),
            pw(NEW_PASSWORD),
        )
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::IdentityNotConfirmed);
    let r = f
        .portal
        .complete_password_reset(
            &handle,
            Some(claim(CARD, BIRTH)),
            pw(NEW_PASSWORD),
            pw(NEW_PASSWORD),
        )
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::WrongStep);
    assert_eq!(
        f.account(&id),
        before,
        "no account change without a completed reset"
    );
    f.login(LOGIN, PASSWORD, TARO).await;
}

#[tokio::test]
async fn sec_17_reset_applies_the_full_password_policy() {
    let (f, _) = registered().await;
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let handle = f
        .portal
        .open_password_reset_link(&f.reset_link(TARO))
        .await
        .unwrap();
    let h = &handle;
    // The roster check passes with the first submission; the password is refused.
    let r = f
        .portal
        .complete_password_reset(h, Some(claim(CARD, BIRTH)), pw("みじかい"), pw("みじかい"))
        .await
        .unwrap_err();
    assert_eq!(rejection(r).code(), "password.too_short");
    // Later submissions need not repeat the roster check.
    let cases = [
        ("taro-sakura-no-pasuwado", "password.contains_context"),
        (
            "さくら19850412のパスワードです",
            "password.contains_context",
        ),
        ("aaaaaaaaaaaaaaaaaaaa", "password.common"),
    ];
    for (candidate, code) in cases {
        let r = f
            .portal
            .complete_password_reset(h, None, pw(candidate), pw(candidate))
            .await
            .unwrap_err();
        assert_eq!(rejection(r).code(), code, "{candidate}");
    }
    let r = f
        .portal
        .complete_password_reset(
            h,
            None,
            pw(NEW_PASSWORD),
            pw("ちがう確認用のパスワードです"),
        )
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::PasswordConfirmationMismatch);
    f.portal
        .complete_password_reset(h, None, pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap();
    // The handle is spent.
    let r = f
        .portal
        .complete_password_reset(h, None, pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::WrongStep);
}

#[tokio::test]
async fn sec_48_reset_by_email_alone_only_under_the_declared_deviation() {
    let mut loose = danger_test_minimum_policy();
    loose.recovery_requires_identity = false;
    let loose = loose.allow_deviation(Deviation::RecoveryByEmailAlone, "tests only");
    let f = fixture_with(loose);
    f.register(TARO, CARD, BIRTH, LOGIN).await;
    f.after_mail_interval();
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let handle = f
        .portal
        .open_password_reset_link(&f.reset_link(TARO))
        .await
        .unwrap();
    f.portal
        .complete_password_reset(&handle, None, pw(NEW_PASSWORD), pw(NEW_PASSWORD))
        .await
        .unwrap();
    f.login(LOGIN, NEW_PASSWORD, TARO).await;
    assert!(
        f.portal
            .assurance_report(Lang::En)
            .contains("the link alone lets the member set a new password")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sec_46_racing_completions_of_one_reset_make_one_change() {
    let (f, _) = registered().await;
    f.portal.request_password_reset(LOGIN).await.unwrap();
    let handle = f
        .portal
        .open_password_reset_link(&f.reset_link(TARO))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let portal = f.portal.clone();
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            portal
                .complete_password_reset(
                    &h,
                    Some(claim(CARD, BIRTH)),
                    pw(NEW_PASSWORD),
                    pw(NEW_PASSWORD),
                )
                .await
                .is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap());
    }
    assert_eq!(ok, 1);
    assert_eq!(
        f.kinds_to(TARO)
            .into_iter()
            .filter(|k| *k == "password_changed")
            .count(),
        1
    );
}
