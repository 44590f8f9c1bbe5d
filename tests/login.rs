//! Login (L1–L4) through `Portal`: password, 暗証キー, resend, closed screen, throttles.

mod common;

use std::sync::Arc;

use common::*;
use kenpo_auth::domain::LoginId;
use kenpo_auth::mail::MailMessage;
use kenpo_auth::model::Expect;
use kenpo_auth::password_hash::{HashParams, PasswordHashString};
use kenpo_auth::policy::Deviation;
use kenpo_auth::portal::{Authenticated, OtpChallenge};
use kenpo_auth::ports::{AccountLookup, AccountWrite, AuditKind, Commit, CommitOutcome, Store};
use kenpo_auth::testkit::{FaultyStore, StoreCall, When};
use kenpo_auth::token::{OtpChallengeId, OtpCode};
use kenpo_auth::{Policy, Portal, Rejection};
use time::Duration;

const LOGIN: &str = "taro-sakura";

/// SEC-34: a login whose password was checked before a password reset committed does not
/// survive the reset. L1's commit is conditional on the account's version, so it loses
/// the race, reads again, and the old password now fails (before, the challenge was
/// committed anyway and its 暗証キー gave a session with the new stamp).
#[tokio::test]
async fn sec_34_a_login_racing_a_password_reset_does_not_survive_it() {
    let f = registered().await;
    // The hash of another password, as the racing reset sets it.
    f.after_mail_interval();
    f.portal.start_registration(HANAKO).await.unwrap();
    let handle = f
        .portal
        .open_registration_link(&f.link1(HANAKO))
        .await
        .unwrap();
    let shown = f
        .portal
        .verify_identity(&handle, claim("999-123456-01", "1987-09-30"))
        .await
        .unwrap();
    let handle = f
        .portal
        .confirm_auth_key(&f.link2(HANAKO), &shown.auth_key)
        .await
        .unwrap();
    f.portal
        .complete_registration(
            &handle,
            credentials("hanako-sakura", "川沿いの道を自転車で走る朝の光"),
        )
        .await
        .unwrap();
    let other = f
        .store
        .danger_accounts()
        .into_iter()
        .find(|a| a.login_id.as_str() == "hanako-sakura")
        .unwrap()
        .password_hash;
    // The reset, as it will commit: Taro's account, at the version L1 reads, with the
    // other password's hash.
    let taro = f
        .store
        .find_account(AccountLookup::LoginId(LoginId::parse(LOGIN).unwrap()))
        .await
        .unwrap()
        .unwrap();
    let mut reset = taro.value.clone();
    reset.password_hash = other;
    let reset = Commit {
        accounts: vec![AccountWrite {
            expect: Expect::At(taro.version),
            account: reset,
        }],
        ..Commit::default()
    };
    // It lands after L1 has read the account and checked the password, just before L1
    // commits.
    let racing = FaultyStore::new(f.store.clone());
    racing.interleave(StoreCall::Commit, When::Nth(1), reset);
    let portal = kenpo_auth::testkit::fixtures::portal_builder()
        .store(racing.clone())
        .shared_mailer(Arc::new(f.mailer.clone()))
        .directory(f.directory.clone())
        .clock(Arc::new(f.clock.clone()))
        .build()
        .unwrap();
    let mails = f.mailer.count();
    let r = portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap_err();
    assert_eq!(
        racing.interleaved(),
        [CommitOutcome::Committed],
        "the reset won"
    );
    assert_eq!(rejection(r), Rejection::LoginFailed);
    assert_eq!(f.mailer.count(), mails, "no 暗証キー was mailed");
}

async fn registered() -> Fixture {
    let f = fixture();
    f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    f
}

/// A second portal over the fixture's store, mailer, roster and clock, with `policy`.
fn with_policy(f: &Fixture, policy: Policy) -> Portal {
    kenpo_auth::testkit::fixtures::portal_builder()
        .store(f.store.clone())
        .shared_mailer(Arc::new(f.mailer.clone()))
        .directory(f.directory.clone())
        .clock(Arc::new(f.clock.clone()))
        .policy(policy)
        .build()
        .unwrap()
}

/// Logs in on `challenge` with the 暗証キー last mailed to Taro.
async fn with_mailed_code(
    f: &Fixture,
    portal: &Portal,
    challenge: &OtpChallengeId,
) -> Authenticated {
    portal
        .verify_otp(challenge, &f.otp(TARO))
        .await
        .expect("the mailed code logs in")
}

/// Whether two L1 answers are the same code screen.
fn same_screen(a: &OtpChallenge, b: &OtpChallenge) -> bool {
    a.challenge.expose_secret() == b.challenge.expose_secret()
}

/// Two L1s of Taro's, the second past the repeat window (a second device): each code
/// screen with the code mailed for it.
async fn two_screens(f: &Fixture) -> ((OtpChallenge, OtpCode), (OtpChallenge, OtpCode)) {
    let first = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let first_code = f.otp(TARO);
    f.clock
        .advance(f.portal.policy().repeat_window + Duration::seconds(1));
    let second = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let second_code = f.otp(TARO);
    ((first, first_code), (second, second_code))
}

fn wrong(code: &OtpCode) -> OtpCode {
    let c = code.expose_secret();
    let last = c.as_bytes()[c.len() - 1];
    let flipped = if last == b'9' {
        '0'
    } else {
        char::from(last + 1)
    };
    parsed(&format!("{}{}", &c[..c.len() - 1], flipped))
}

#[tokio::test]
async fn member_logs_in_with_password_and_otp() {
    let f = registered().await;
    let challenge = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_eq!(challenge.masked_email, "t***@example.jp");
    assert_eq!(challenge.expires_at, f.clock.now() + Duration::minutes(10));
    let mail = f.mailer.last_to(&addr(TARO)).unwrap();
    assert_eq!(mail.rendered.subject, "暗証キーのご案内");
    let code = f.otp(TARO);
    assert_eq!(code.expose_secret().len(), 6);
    assert!(mail.rendered.body.contains(code.expose_secret()));
    let auth = f
        .portal
        .verify_otp(&challenge.challenge, &code)
        .await
        .unwrap();
    assert!(
        f.portal
            .check_security_stamp(&auth.account_id, &auth.security_stamp)
            .await
            .unwrap()
    );
    assert_eq!(f.audit.count(AuditKind::LoginSucceeded), 1);
}

/// #18: a portal whose Argon2 runs in place (on the request's own thread) logs a member
/// in, refuses a wrong password alike (SEC-23), and keeps working on a runtime worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_hashing_in_place_logs_in() {
    use kenpo_auth::password_hash::Offload;
    let f = registered().await;
    let portal = kenpo_auth::testkit::fixtures::portal_builder()
        .store(f.store.clone())
        .shared_mailer(Arc::new(f.mailer.clone()))
        .directory(f.directory.clone())
        .clock(Arc::new(f.clock.clone()))
        .hash_offload(Offload::InPlace)
        .build()
        .unwrap();
    let r = portal
        .start_login(LOGIN, &pw("not-the-password"))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::LoginFailed);
    let on_worker = portal.clone();
    let challenge = tokio::spawn(async move { on_worker.start_login(LOGIN, &pw(PASSWORD)).await })
        .await
        .unwrap()
        .unwrap();
    let auth = with_mailed_code(&f, &portal, &challenge.challenge).await;
    assert!(
        portal
            .check_security_stamp(&auth.account_id, &auth.security_stamp)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn login_id_is_case_and_width_insensitive() {
    let f = registered().await;
    f.portal
        .start_login("ＴＡＲＯ-Sakura", &pw(PASSWORD))
        .await
        .unwrap();
}

#[tokio::test]
async fn sec_28_code_accepted_at_9_59_and_rejected_at_10_00() {
    for (wait, ok) in [
        (Duration::minutes(10) - Duration::seconds(1), true),
        (Duration::minutes(10), false),
    ] {
        let f = registered().await;
        let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
        f.clock.advance(wait);
        let r = f.portal.verify_otp(&ch.challenge, &f.otp(TARO)).await;
        if ok {
            r.unwrap();
        } else {
            // #17: the member is told the code expired (and that a resend helps), not
            // that the screen is dead.
            let r = rejection(r.unwrap_err());
            assert_eq!(r, Rejection::OtpExpired);
            assert!(!r.starts_over());
            f.portal.resend_otp(&ch.challenge).await.unwrap();
            with_mailed_code(&f, &f.portal, &ch.challenge).await;
        }
    }
}

/// SEC-28: a code is consumed once — one login. Sent again by its holder within
/// `Policy::repeat_window` it is told of that same login (#14: a double tap must not show
/// "expired" for a login that happened); afterwards it is refused.
#[tokio::test]
async fn sec_28_code_works_only_once() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = f.otp(TARO);
    let login = f.portal.verify_otp(&ch.challenge, &code).await.unwrap();
    let again = f.portal.verify_otp(&ch.challenge, &code).await.unwrap();
    assert_eq!(
        again.authenticated_at, login.authenticated_at,
        "the same login"
    );
    assert!(!login.is_repeat() && again.is_repeat());
    assert_eq!(f.audit.count(AuditKind::LoginSucceeded), 1, "one login");
    f.clock.advance(f.portal.policy().repeat_window);
    let r = f.portal.verify_otp(&ch.challenge, &code).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
}

#[tokio::test]
async fn otp_rejected_after_screen_closed() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    f.portal.close_otp_screen(&ch.challenge).await.unwrap();
    // Closing twice, or an unknown screen, is harmless.
    f.portal.close_otp_screen(&ch.challenge).await.unwrap();
    f.portal
        .close_otp_screen(&parsed(UNKNOWN_TOKEN))
        .await
        .unwrap();
    // A screen name that is not one at all is the host's parse error, never the Portal's.
    assert_eq!(
        "nonsense".parse::<OtpChallengeId>().err(),
        Some(Rejection::OtpInvalid)
    );
    let r = f
        .portal
        .verify_otp(&ch.challenge, &f.otp(TARO))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
    assert_eq!(f.audit.count(AuditKind::OtpScreenClosed), 1);
    // The member starts again at L1.
    f.clock.advance(Duration::seconds(1));
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    with_mailed_code(&f, &f.portal, &ch.challenge).await;
}

#[tokio::test]
async fn otp_screen_that_stops_reporting_is_dead_under_a_heartbeat_policy() {
    let mut policy = danger_test_minimum_policy();
    policy.otp_screen_heartbeat = Some(Duration::seconds(30));
    let f = fixture_with(policy);
    f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let id = &ch.challenge;
    for _ in 0..5 {
        f.clock.advance(Duration::seconds(29));
        f.portal.heartbeat_otp_screen(id).await.unwrap();
    }
    f.clock.advance(Duration::seconds(30));
    let r = f.portal.heartbeat_otp_screen(id).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
    let r = f.portal.verify_otp(id, &f.otp(TARO)).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
}

#[tokio::test]
async fn sec_12_resend_kills_old_code_and_keeps_the_attempt_count() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let id = ch.challenge.clone();
    let old = f.otp(TARO);
    for _ in 0..3 {
        let r = f.portal.verify_otp(&id, &wrong(&old)).await.unwrap_err();
        assert_eq!(rejection(r), Rejection::OtpIncorrect);
    }
    // SEC-30: resend during the cooldown sends nothing and says when to retry.
    let mails = f.mailer.count();
    let r = rejection(f.portal.resend_otp(&id).await.unwrap_err());
    assert_eq!(r.code(), "too_many_requests");
    assert_eq!(r.retry_after(), Some(Duration::seconds(60)));
    assert_eq!(f.mailer.count(), mails);
    f.clock.advance(Duration::seconds(60));
    let again = f.portal.resend_otp(&id).await.unwrap();
    assert_eq!(again.expires_at, f.clock.now() + Duration::minutes(10));
    let new = f.otp(TARO);
    assert_ne!(old, new);
    // The old code is dead and the member is told to type the newest one (#17); it is
    // no guess at the new code, so it spends no try.
    let r = f.portal.verify_otp(&id, &old).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpReplaced);
    let r = f.portal.verify_otp(&id, &wrong(&new)).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpIncorrect);
    // 3 + 1 wrong so far: the fifth wrong entry ends the challenge although the code is new.
    let r = f.portal.verify_otp(&id, &wrong(&new)).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpAttemptsExhausted);
    let r = f.portal.verify_otp(&id, &new).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
}

#[tokio::test]
async fn sec_30_resends_are_capped_per_challenge() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let id = ch.challenge.clone();
    for _ in 0..3 {
        f.clock.advance(Duration::seconds(60));
        f.portal.resend_otp(&id).await.unwrap();
    }
    f.clock.advance(Duration::seconds(60));
    let r = f.portal.resend_otp(&id).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
    // The latest code still works.
    f.portal.verify_otp(&id, &f.otp(TARO)).await.unwrap();
}

#[tokio::test]
async fn sec_30_otp_mails_are_capped_per_account_per_hour() {
    let f = registered().await;
    let mut last = None;
    for _ in 0..10 {
        f.clock.advance(Duration::seconds(61));
        last = Some(f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap());
    }
    f.clock.advance(Duration::seconds(61));
    // SEC-23: at L1 the cap answers like a wrong password, so it cannot confirm one.
    let capped = rejection(
        f.portal
            .start_login(LOGIN, &pw(PASSWORD))
            .await
            .unwrap_err(),
    );
    let wrong = rejection(
        f.portal
            .start_login(LOGIN, &pw(OTHER_PASSWORD))
            .await
            .unwrap_err(),
    );
    assert_eq!(capped, Rejection::LoginFailed);
    assert_eq!(capped, wrong);
    let id = last.unwrap().challenge;
    f.clock.advance(Duration::seconds(60));
    assert!(matches!(
        rejection(f.portal.resend_otp(&id).await.unwrap_err()),
        Rejection::TooManyRequests { .. }
    ));
}

#[tokio::test]
async fn sec_27_code_of_challenge_a_does_not_work_on_challenge_b() {
    let f = registered().await;
    f.register(
        "hanako@example.jp",
        "999-123456-01",
        "1987-09-30",
        "hanako-sakura",
    )
    .await;
    let a = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code_a = f.otp(TARO);
    let b = f
        .portal
        .start_login("hanako-sakura", &pw(PASSWORD))
        .await
        .unwrap();
    let code_b = f.otp("hanako@example.jp");
    if code_a != code_b {
        let r = f
            .portal
            .verify_otp(&b.challenge, &code_a)
            .await
            .unwrap_err();
        assert_eq!(rejection(r), Rejection::OtpIncorrect);
    }
    f.portal.verify_otp(&a.challenge, &code_a).await.unwrap();
    f.portal.verify_otp(&b.challenge, &code_b).await.unwrap();
}

/// #14: a second L1 (a second device, past the repeat window) does not kill the code
/// already mailed; the login that completes ends the account's other open challenges.
#[tokio::test]
async fn a_completed_login_ends_the_other_open_challenges() {
    let f = registered().await;
    let ((first, first_code), (second, second_code)) = two_screens(&f).await;
    f.portal
        .verify_otp(&first.challenge, &first_code)
        .await
        .expect("the first code still works after a second login");
    let r = f
        .portal
        .verify_otp(&second.challenge, &second_code)
        .await
        .unwrap_err();
    assert_eq!(
        rejection(r),
        Rejection::OtpInvalid,
        "ended by the login made"
    );
}

#[tokio::test]
async fn sec_29_ten_wrong_codes_across_challenges_abort_and_notify() {
    let f = registered().await;
    let mut n = 0;
    let mut last_rejection = None;
    while n < 10 {
        let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
        let code = f.otp(TARO);
        for _ in 0..4 {
            let r = f
                .portal
                .verify_otp(&ch.challenge, &wrong(&code))
                .await
                .unwrap_err();
            n += 1;
            last_rejection = Some(rejection(r));
            if n == 10 {
                break;
            }
        }
        f.clock.advance(Duration::seconds(61));
    }
    assert_eq!(last_rejection, Some(Rejection::OtpAttemptsExhausted));
    // SEC-31: exactly one abort notice, with no secret in it.
    let aborts: Vec<_> = f
        .mailer
        .sent()
        .into_iter()
        .filter(|m| matches!(m.message, MailMessage::LoginOtpAborted { .. }))
        .collect();
    assert_eq!(aborts.len(), 1);
    assert!(!aborts[0].rendered.body.contains(PASSWORD));
    assert_eq!(f.audit.count(AuditKind::OtpAttemptsExhausted), 1);
    // The account cools down for 15 minutes: even the right password is refused.
    let r = f
        .portal
        .start_login(LOGIN, &pw(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::LoginFailed);
    f.clock.advance(Duration::minutes(15));
    f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
}

/// SEC-29: an attacker who has the password gets at most
/// `otp_failures_per_account_per_day` (100) wrong 暗証キー evaluated in 24 hours. The
/// 15-minute cooldowns restart the consecutive count and each right password clears the
/// password failure the abort added, but neither resets the day: before, this loop
/// evaluated 960 wrong codes a day.
#[tokio::test]
async fn sec_29_wrong_codes_are_capped_per_day_across_cooldowns() {
    let f = registered().await;
    let cap = f.portal.policy().otp_failures_per_account_per_day as usize;
    let start = f.clock.now();
    let mut refusals_after_cap = 0;
    while f.clock.now() < start + Duration::hours(24) {
        let Ok(ch) = f.portal.start_login(LOGIN, &pw(PASSWORD)).await else {
            // Cooling down, or the hourly 暗証キー mail cap: wait and try again.
            f.clock.advance(Duration::minutes(15));
            continue;
        };
        let code = f.otp(TARO);
        while let Err(e) = f.portal.verify_otp(&ch.challenge, &wrong(&code)).await {
            if rejection(e) != Rejection::OtpIncorrect {
                break;
            }
        }
        let evaluated = f.audit.count(AuditKind::OtpFailed)
            + f.audit
                .events()
                .iter()
                .filter(|e| {
                    e.kind == AuditKind::OtpAttemptsExhausted
                        && e.detail.as_deref() != Some("otp_daily_cap")
                })
                .count();
        assert!(
            evaluated <= cap,
            "{evaluated} wrong codes evaluated in a day"
        );
        if evaluated == cap {
            refusals_after_cap += 1;
        }
        f.clock.advance(Duration::seconds(61));
    }
    assert!(refusals_after_cap > 0, "the day's cap was reached");
    // After the day's window the account can log in again with its 暗証キー.
    f.clock.advance(Duration::hours(24));
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    with_mailed_code(&f, &f.portal, &ch.challenge).await;
}

/// SEC-46 with #14's repeat: a hundred tasks sending the right code at once (a storm of
/// double taps) make one login — one state change, one `LoginSucceeded` — and every
/// task is told the same login: the code is consumed once, and its holder is never told
/// "expired" for a login that happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sec_46_hundred_tasks_with_the_right_code_make_one_login() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let id = Arc::new(ch.challenge.clone());
    let code = Arc::new(f.otp(TARO));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (portal, id, code) = (f.portal.clone(), id.clone(), code.clone());
        tasks.push(tokio::spawn(
            async move { portal.verify_otp(&id, &code).await },
        ));
    }
    let mut logins = Vec::new();
    let mut first = 0;
    for t in tasks {
        let a = t.await.unwrap().expect("every holder is told it logged in");
        first += usize::from(!a.is_repeat());
        logins.push((a.account_id, a.security_stamp, a.authenticated_at));
    }
    logins.dedup();
    assert_eq!(logins.len(), 1, "one login, told a hundred times");
    assert_eq!(
        first, 1,
        "one answer is the login; the rest say they repeat it"
    );
    assert_eq!(f.audit.count(AuditKind::LoginSucceeded), 1);
    assert_eq!(f.audit.count(AuditKind::LoginRepeated), 99);
}

/// SEC-34 with #14's repeat: a password reset between the login and its repeat ends it
/// — the repeat would otherwise hand out a session with the new stamp.
#[tokio::test]
async fn sec_34_a_repeat_after_a_password_reset_is_refused() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = f.otp(TARO);
    f.portal.verify_otp(&ch.challenge, &code).await.unwrap();
    f.reset_password(
        LOGIN,
        TARO,
        CARD,
        BIRTH,
        "川沿いの道を自転車で走る朝の涼しい風",
    )
    .await;
    let r = f.portal.verify_otp(&ch.challenge, &code).await.unwrap_err();
    assert_eq!(rejection(r), Rejection::OtpInvalid);
}

/// #14: the accepted code sent again on its challenge within `Policy::repeat_window`
/// answers the same login; after the window, or with another code, or on another
/// challenge, it is refused as before (SEC-02: a code works once).
#[tokio::test]
async fn a_repeated_code_submission_gets_the_same_login_for_a_moment() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = f.otp(TARO);
    let first = f.portal.verify_otp(&ch.challenge, &code).await.unwrap();
    f.clock.advance(Duration::seconds(29));
    let again = f.portal.verify_otp(&ch.challenge, &code).await.unwrap();
    assert_eq!(
        (
            &again.account_id,
            &again.security_stamp,
            again.authenticated_at
        ),
        (
            &first.account_id,
            &first.security_stamp,
            first.authenticated_at
        )
    );
    let other = wrong(&code);
    let r = f
        .portal
        .verify_otp(&ch.challenge, &other)
        .await
        .unwrap_err();
    assert_eq!(
        rejection(r),
        Rejection::OtpInvalid,
        "another code is no repeat"
    );
    f.clock.advance(Duration::seconds(1));
    let r = f.portal.verify_otp(&ch.challenge, &code).await.unwrap_err();
    assert_eq!(
        rejection(r),
        Rejection::OtpInvalid,
        "after the window, used"
    );
}

#[tokio::test]
async fn sec_23_unknown_id_and_wrong_password_give_identical_answers() {
    let f = registered().await;
    let unknown = f
        .portal
        .start_login("nobody-here", &pw(PASSWORD))
        .await
        .unwrap_err();
    let wrong_pw = f
        .portal
        .start_login(LOGIN, &pw(OTHER_PASSWORD))
        .await
        .unwrap_err();
    let malformed = f.portal.start_login("x", &pw(PASSWORD)).await.unwrap_err();
    // SEC-22: a password `Password::new` refuses is answered by the host like any failure.
    let huge = host_start_login(&f.portal, LOGIN, &"あ".repeat(400_000))
        .await
        .unwrap_err();
    let answers: Vec<String> = [unknown, wrong_pw, malformed, huge]
        .into_iter()
        .map(|e| {
            let r = rejection(e);
            format!("{:?}|{}|{}", r, r.code(), r.message(kenpo_auth::Lang::Ja))
        })
        .collect();
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert!(answers[0].contains("login.failed"));
    // No mail reveals anything to either.
    assert_eq!(f.kinds_to(TARO).last(), Some(&"registration_completed"));
}

#[tokio::test]
async fn sec_24_password_failures_follow_the_throttle_schedule() {
    let f = registered().await;
    for _ in 0..5 {
        f.portal
            .start_login(LOGIN, &pw(OTHER_PASSWORD))
            .await
            .unwrap_err();
    }
    // SEC-43: the account-locked notice goes out once delays start.
    assert_eq!(f.kinds_to(TARO).last(), Some(&"account_locked"));
    // Delay 30 s after the 5th failure: the right password is refused, same answer.
    let r = f
        .portal
        .start_login(LOGIN, &pw(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::LoginFailed);
    f.clock.advance(Duration::seconds(29));
    f.portal
        .start_login(LOGIN, &pw(PASSWORD))
        .await
        .unwrap_err();
    f.clock.advance(Duration::seconds(1));
    // 30 s passed: a wrong password now is failure 6 → delay 60 s.
    f.portal
        .start_login(LOGIN, &pw(OTHER_PASSWORD))
        .await
        .unwrap_err();
    f.clock.advance(Duration::seconds(59));
    f.portal
        .start_login(LOGIN, &pw(PASSWORD))
        .await
        .unwrap_err();
    f.clock.advance(Duration::seconds(1));
    // A success resets the count.
    f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let acc = &f.store.danger_accounts()[0];
    assert_eq!(acc.password_failures, 0);
}

#[tokio::test]
async fn sec_24_after_the_cap_even_the_right_password_is_refused() {
    let mut policy = danger_test_minimum_policy();
    policy.password_failure_cap = 7;
    let f = fixture_with(policy);
    f.register(TARO, "999-123456-00", "1985-04-12", LOGIN).await;
    for _ in 0..7 {
        f.clock.advance(Duration::hours(2));
        f.portal
            .start_login(LOGIN, &pw(OTHER_PASSWORD))
            .await
            .unwrap_err();
    }
    f.clock.advance(Duration::days(30));
    let r = f
        .portal
        .start_login(LOGIN, &pw(PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(r), Rejection::LoginFailed);
    assert_eq!(f.store.danger_accounts()[0].password_failures, 7);
}

#[tokio::test]
async fn sec_20_old_hash_is_upgraded_after_a_good_login() {
    let f = registered().await;
    let before = f.store.danger_accounts()[0].password_hash.clone();
    assert!(before.as_str().contains("m=8,"));
    // The insurer raises the cost: a new portal over the same store.
    let mut policy = danger_test_minimum_policy();
    policy.hashing = HashParams {
        m_cost_kib: 64,
        t_cost: 2,
        p_cost: 1,
    };
    let policy = policy.allow_deviation(Deviation::WeakPasswordHashing, "test");
    let portal = with_policy(&f, policy);
    portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let after: PasswordHashString = f.store.danger_accounts()[0].password_hash.clone();
    assert!(after.as_str().contains("m=64,t=2,p=1"), "{after:?}");
    assert_ne!(before, after);
}

#[tokio::test]
async fn sec_04_no_otp_reaches_the_store() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let dump = f.store.danger_dump();
    assert!(!dump.contains(f.otp(TARO).expose_secret()));
    assert!(!dump.contains(ch.challenge.expose_secret()));
    assert!(!dump.contains(PASSWORD));
}

#[tokio::test]
async fn otp_typed_full_width_is_accepted() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let wide: String = f
        .otp(TARO)
        .expose_secret()
        .chars()
        .map(|c| char::from_u32(c as u32 + 0xFEE0).unwrap())
        .collect();
    let wide: OtpCode = parsed(&wide);
    f.portal.verify_otp(&ch.challenge, &wide).await.unwrap();
}

#[tokio::test]
async fn logged_in_pages_read_the_account_summary() {
    let f = registered().await;
    let ch = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let auth = with_mailed_code(&f, &f.portal, &ch.challenge).await;
    let summary = f
        .portal
        .account_summary(&auth.account_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.login_id.as_str(), LOGIN);
    assert_eq!(summary.member.as_str(), "M001");
    assert_eq!(summary.email.unwrap().for_sending(), TARO);
    assert_eq!(summary.nickname.unwrap().as_str(), "たろう");
    let unknown = kenpo_auth::ports::AccountId::from_stored("no-such-account");
    assert_eq!(f.portal.account_summary(&unknown).await.unwrap(), None);
}

fn otp_mails(f: &Fixture) -> usize {
    f.kinds_to(TARO)
        .iter()
        .filter(|k| **k == "login_otp")
        .count()
}

/// #14: L1 repeated moments later — a double tap, a reload, a response lost on a bad
/// connection — answers the same code screen (the same handle and receipt) and mails
/// nothing: the code in the first mail is the one to type.
#[tokio::test]
async fn sec_30_a_repeated_l1_answers_the_same_screen_and_mails_nothing() {
    let f = registered().await;
    let before = otp_mails(&f);
    let first = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    f.clock.advance(Duration::seconds(3));
    let again = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert!(same_screen(&again, &first), "the same screen");
    assert_eq!(again.receipt, first.receipt);
    assert_eq!(again.expires_at, first.expires_at);
    assert_eq!(otp_mails(&f), before + 1, "one mail");
    with_mailed_code(&f, &f.portal, &again.challenge).await;
    // A wrong password is no repeat: it is refused as ever (SEC-23).
    let r = f.portal.start_login(LOGIN, &pw(OTHER_PASSWORD)).await;
    assert_eq!(rejection(r.unwrap_err()), Rejection::LoginFailed);
}

/// #14 with L4 (SEC-30): where the repeat window outlasts the resend cooldown (both
/// within their bounds), an L1 repeated after a resend answers the screen as the resend
/// left it — the new code's expiry and mail, not the first ones — and mails nothing.
#[tokio::test]
async fn sec_30_a_repeat_after_a_resend_answers_the_resent_screen() {
    let f = registered().await;
    let mut policy = f.portal.policy().clone();
    policy.otp_resend_cooldown = Duration::seconds(10);
    policy.repeat_window = Duration::seconds(60);
    let portal = with_policy(&f, policy);
    let first = portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    f.clock.advance(Duration::seconds(15));
    let resent = portal.resend_otp(&first.challenge).await.unwrap();
    let code = f.otp(TARO);
    let mails = otp_mails(&f);
    f.clock.advance(Duration::seconds(5));
    let again = portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert!(same_screen(&again, &first), "the same screen");
    assert_eq!(
        again.expires_at, resent.expires_at,
        "the resent code's expiry"
    );
    assert_ne!(again.expires_at, first.expires_at);
    assert_eq!(again.receipt, resent.receipt, "the resent mail's receipt");
    assert_ne!(again.receipt, first.receipt);
    assert_eq!(otp_mails(&f), mails, "nothing mailed");
    portal
        .verify_otp(&again.challenge, &code)
        .await
        .expect("the resent code");
}

/// #14 and L3: a closed code screen is dead, so an L1 right after it opens a new one with
/// a new code — the repeat never revives a closed screen's key.
#[tokio::test]
async fn sec_28_an_l1_after_closing_the_screen_mails_a_new_code() {
    let f = registered().await;
    let first = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let first_code = f.otp(TARO);
    f.portal.close_otp_screen(&first.challenge).await.unwrap();
    f.clock.advance(Duration::seconds(2));
    let next = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_ne!(
        next.challenge.expose_secret(),
        first.challenge.expose_secret()
    );
    assert_eq!(otp_mails(&f), 2);
    assert_eq!(
        rejection(
            f.portal
                .verify_otp(&first.challenge, &first_code)
                .await
                .unwrap_err()
        ),
        Rejection::OtpInvalid
    );
    with_mailed_code(&f, &f.portal, &next.challenge).await;
}

/// SEC-28 with #14: under a heartbeat shorter than the repeat window, a screen that
/// never loaded (the lost response a repeat is for) dies a heartbeat after it opened; an
/// L1 after that opens a new screen and mails a new code instead of answering the dead
/// one.
#[tokio::test]
async fn sec_28_a_repeat_never_answers_a_screen_its_heartbeat_ended() {
    let f = registered().await;
    let mut policy = f.portal.policy().clone();
    policy.otp_screen_heartbeat = Some(Duration::seconds(10));
    policy.repeat_window = Duration::seconds(60);
    let portal = with_policy(&f, policy);
    let first = portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    f.clock.advance(Duration::seconds(5));
    let again = portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert!(
        same_screen(&again, &first),
        "within the heartbeat: the same screen"
    );
    f.clock.advance(Duration::seconds(10));
    let mails = otp_mails(&f);
    let next = portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert!(
        !same_screen(&next, &first),
        "past the heartbeat: a new screen"
    );
    assert_eq!(otp_mails(&f), mails + 1, "with a new code");
    with_mailed_code(&f, &portal, &next.challenge).await;
}

/// SEC-30 with #14: a wrong code on an older screen (a second device) does not spend
/// the recent screen's repeat: an L1 moments later still answers the recent screen.
#[tokio::test]
async fn sec_30_a_wrong_code_elsewhere_keeps_the_recent_screen() {
    let f = registered().await;
    let ((older, older_code), (recent, _)) = two_screens(&f).await;
    f.clock.advance(Duration::seconds(2));
    f.portal
        .verify_otp(&older.challenge, &wrong(&older_code))
        .await
        .unwrap_err();
    let mails = otp_mails(&f);
    let again = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_eq!(
        again.challenge.expose_secret(),
        recent.challenge.expose_secret()
    );
    assert_eq!(otp_mails(&f), mails, "nothing mailed");
}

/// SEC-28 with #14: a screen whose code was tried, or an L1 past the repeat window, is
/// not repeated: the member gets a new screen and a new mail.
#[tokio::test]
async fn sec_28_a_tried_screen_or_a_late_l1_is_not_repeated() {
    let f = registered().await;
    let first = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = f.otp(TARO);
    f.portal
        .verify_otp(&first.challenge, &wrong(&code))
        .await
        .unwrap_err();
    let tried = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_ne!(
        tried.challenge.expose_secret(),
        first.challenge.expose_secret()
    );
    assert_eq!(otp_mails(&f), 2);
    f.clock.advance(f.portal.policy().repeat_window);
    let late = f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_ne!(
        late.challenge.expose_secret(),
        tried.challenge.expose_secret()
    );
    assert_eq!(otp_mails(&f), 3);
}
