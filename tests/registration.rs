//! 新規利用登録 (R1–R5) end to end through `Portal`, in memory. Links and keys come from
//! the typed mails and screens, never from mail text.

mod common;

use std::sync::Arc;

use common::*;
use kenpo_auth::Rejection;
use kenpo_auth::flow::LinkStatus;
use kenpo_auth::ports::AuditKind;
use kenpo_auth::token::{AuthKey, RegistrationLinkToken, VerificationLinkToken};
use time::Duration;

#[tokio::test]
async fn member_registers_through_every_seed_screen() {
    let f = fixture();
    // R1: メールアドレス入力 → 送信する
    let started = f.portal.start_registration(TARO).await.unwrap();
    assert_eq!(started.carrier, None);
    let mail = f.mailer.last_to(&addr(TARO)).unwrap();
    assert_eq!(mail.rendered.subject, "利用登録手続きのご案内");
    let link = f.mailer.last_registration_link(TARO).expect("link 1");
    assert!(
        link.url
            .starts_with("https://portal.sakura-kenpo.example.jp/")
    );
    assert_eq!(link.expires_at, f.clock.now() + Duration::hours(3));

    // R2: GET shows the page without consuming; POST 【本人確認ページへ】 binds the browser.
    let token = link.token.clone();
    assert!(matches!(
        f.portal.inspect_registration_link(&token).await.unwrap(),
        LinkStatus::Valid { .. }
    ));
    let handle = f.portal.open_registration_link(&token).await.unwrap();

    // R3: 記号-番号-枝番 typed the way members type it (full-width, long-vowel hyphen).
    let shown = f
        .portal
        .verify_identity(
            &handle,
            claim("９９９ー１２３４５６ー００", "昭和60年4月12日"),
        )
        .await
        .unwrap();
    assert_eq!(shown.auth_key.expose_secret().len(), 8);
    let mail = f.mailer.last_to(&addr(TARO)).unwrap();
    assert_eq!(mail.rendered.subject, "本人確認完了のご案内");
    // SEC-11: the 認証キー travels on the screen only, never in the mail.
    assert!(!mail.rendered.body.contains(shown.auth_key.expose_secret()));

    // R4: link 2 (GET inspects) + the 認証キー typed in lower case and full width.
    let link2 = f.link2(TARO);
    assert!(matches!(
        f.portal.inspect_verification_link(&link2).await.unwrap(),
        LinkStatus::Valid { .. }
    ));
    let typed: String = shown
        .auth_key
        .expose_secret()
        .chars()
        .map(|c| {
            char::from_u32(c as u32 + 0xFEE0)
                .unwrap()
                .to_lowercase()
                .next()
                .unwrap()
        })
        .collect();
    let handle = f
        .portal
        .confirm_auth_key(&link2, &parsed(&typed))
        .await
        .unwrap();

    // R5: 新ログインID, 新パスワード (+確認), ニックネーム.
    let registered = f
        .portal
        .complete_registration(&handle, credentials("taro-sakura", PASSWORD))
        .await
        .unwrap();
    let accounts = f.store.danger_accounts();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, registered.account_id);
    assert_eq!(accounts[0].login_id.as_str(), "taro-sakura");
    // SEC-43: registration completed notice.
    assert_eq!(
        f.kinds_to(TARO),
        vec![
            "registration_link",
            "identity_verified",
            "registration_completed"
        ]
    );
    assert_eq!(f.audit.count(AuditKind::RegistrationCompleted), 1);
}

#[tokio::test]
async fn sec_07_known_address_gets_the_same_answer_and_a_notice_instead() {
    let f = fixture();
    f.register(TARO, CARD, BIRTH, "taro-sakura").await;
    f.after_mail_interval();
    let flows = f.store.flow_count();
    let mails = f.mailer.count();
    let fresh = f.portal.start_registration("new.member@example.jp").await;
    let after_fresh = (f.store.flow_count(), f.mailer.count());
    let known = f.portal.start_registration(TARO).await;
    assert_eq!(
        observed(&f.portal, &fresh).await,
        observed(&f.portal, &known).await
    );
    // Both paths do the same work: one flow written (dead for the known address, whose
    // link is never mailed) and one mail sent.
    assert_eq!(after_fresh, (flows + 1, mails + 1));
    assert_eq!(
        (f.store.flow_count(), f.mailer.count()),
        (flows + 2, mails + 2)
    );
    assert_eq!(
        f.mailer.last_to(&addr(TARO)).unwrap().message.kind(),
        "already_registered"
    );
    assert_eq!(
        f.audit.count(AuditKind::RegistrationForRegisteredAddress),
        1
    );
}

#[tokio::test]
async fn sec_13_mail_throttle_answers_like_a_sent_mail() {
    let f = fixture();
    let first = f.portal.start_registration(TARO).await;
    let second = f.portal.start_registration(TARO).await;
    assert_eq!(
        observed(&f.portal, &first).await,
        observed(&f.portal, &second).await
    );
    assert_eq!(
        f.kinds_to(TARO).len(),
        1,
        "the second request within 60 s sends nothing"
    );
    // ≤ 5 per hour: after 4 more spaced requests the 6th is dropped.
    for _ in 0..6 {
        f.after_mail_interval();
        f.portal.start_registration(TARO).await.unwrap();
    }
    assert_eq!(f.kinds_to(TARO).len(), 5);
    assert!(f.audit.count(AuditKind::MailThrottled) >= 2);
}

#[tokio::test]
async fn dom_20_carrier_address_gets_reception_advisory() {
    let f = fixture();
    let started = f
        .portal
        .start_registration("sakura.taro@docomo.ne.jp")
        .await
        .unwrap();
    let advisory = started.carrier_advisory.unwrap();
    assert!(advisory.contains("sakura-kenpo.example.jp"));
    let legacy = f
        .portal
        .start_registration("taro..sakura@docomo.ne.jp")
        .await
        .unwrap();
    assert!(legacy.legacy_address_warning);
}

#[tokio::test]
async fn invalid_address_is_refused_with_a_japanese_message() {
    let f = fixture();
    let r = rejection(
        f.portal
            .start_registration("山田 <taro@example.jp>")
            .await
            .unwrap_err(),
    );
    assert!(r.code().starts_with("email."));
    assert!(r.message(kenpo_auth::Lang::Ja).contains("メールアドレス"));
    assert_eq!(f.mailer.count(), 0);
}

#[tokio::test]
async fn registration_link_is_consumed_by_post_not_get() {
    let f = fixture();
    f.portal.start_registration(TARO).await.unwrap();
    let token = f.link1(TARO);
    // Mail scanners GET the link: nothing is consumed.
    for _ in 0..3 {
        assert!(matches!(
            f.portal.inspect_registration_link(&token).await.unwrap(),
            LinkStatus::Valid { .. }
        ));
    }
    f.portal.open_registration_link(&token).await.unwrap();
    // DOM-23: a used link says so, distinctly from an expired or unknown one.
    assert_eq!(
        f.portal.inspect_registration_link(&token).await.unwrap(),
        LinkStatus::Used
    );
    let r = rejection(f.portal.open_registration_link(&token).await.unwrap_err());
    assert_eq!(r, Rejection::LinkUsed);
    // A malformed link is the host's parse error, shown as the invalid-link page.
    assert_eq!(
        "not-a-token".parse::<RegistrationLinkToken>().err(),
        Some(Rejection::LinkInvalid)
    );
    // A well-formed link nobody was sent is the Portal's `Invalid`.
    assert_eq!(
        f.portal
            .inspect_registration_link(&parsed(UNKNOWN_TOKEN))
            .await
            .unwrap(),
        LinkStatus::Invalid
    );
}

#[tokio::test]
async fn sec_06_registration_link_lives_three_hours() {
    let f = fixture();
    f.portal.start_registration(TARO).await.unwrap();
    let token = f.link1(TARO);
    f.clock.advance(Duration::hours(3) - Duration::seconds(1));
    assert!(matches!(
        f.portal.inspect_registration_link(&token).await.unwrap(),
        LinkStatus::Valid { .. }
    ));
    f.clock.advance(Duration::seconds(1));
    assert_eq!(
        f.portal.inspect_registration_link(&token).await.unwrap(),
        LinkStatus::Expired
    );
    let r = rejection(f.portal.open_registration_link(&token).await.unwrap_err());
    assert_eq!(r, Rejection::Expired);
}

#[tokio::test]
async fn sec_06_registration_link_accepted_one_second_before_expiry() {
    let f = fixture();
    f.portal.start_registration(TARO).await.unwrap();
    let token = f.link1(TARO);
    f.clock.advance(Duration::hours(3) - Duration::seconds(1));
    f.portal.open_registration_link(&token).await.unwrap();
}

/// Runs R1–R2 and returns the flow handle.
/// Taro's flow past R3: the R2 handle (the browser that passed R3) and the key shown.
async fn at_auth_key(
    f: &Fixture,
) -> (
    kenpo_auth::token::FlowHandle,
    kenpo_auth::portal::AuthKeyShown,
) {
    let handle = opened(f, TARO).await;
    let shown = f
        .portal
        .verify_identity(&handle, claim(CARD, BIRTH))
        .await
        .unwrap();
    (handle, shown)
}

async fn opened(f: &Fixture, email: &str) -> kenpo_auth::token::FlowHandle {
    f.portal.start_registration(email).await.unwrap();
    f.portal
        .open_registration_link(&f.link1(email))
        .await
        .unwrap()
}

/// Runs R1–R4 and returns the handle of the credentials step (R5).
async fn at_credentials(
    f: &Fixture,
    email: &str,
    card: &str,
    birth: &str,
) -> kenpo_auth::token::FlowHandle {
    let handle = opened(f, email).await;
    let shown = f
        .portal
        .verify_identity(&handle, claim(card, birth))
        .await
        .unwrap();
    f.portal
        .confirm_auth_key(&f.link2(email), &shown.auth_key)
        .await
        .unwrap()
}

#[tokio::test]
async fn identity_step_lives_thirty_minutes() {
    let f = fixture();
    let handle = opened(&f, TARO).await;
    f.clock.advance(Duration::minutes(30));
    let r = rejection(
        f.portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::Expired);

    let f = fixture();
    let handle = opened(&f, TARO).await;
    f.clock
        .advance(Duration::minutes(30) - Duration::seconds(1));
    f.portal
        .verify_identity(&handle, claim(CARD, BIRTH))
        .await
        .unwrap();
}

#[tokio::test]
async fn sec_11_auth_key_and_link2_live_thirty_minutes() {
    for (wait, ok) in [
        (Duration::minutes(30) - Duration::seconds(1), true),
        (Duration::minutes(30), false),
    ] {
        let f = fixture();
        let handle = opened(&f, TARO).await;
        let shown = f
            .portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap();
        f.clock.advance(wait);
        let result = f
            .portal
            .confirm_auth_key(&f.link2(TARO), &shown.auth_key)
            .await;
        if ok {
            result.unwrap();
        } else {
            assert_eq!(rejection(result.unwrap_err()), Rejection::Expired);
        }
    }
}

#[tokio::test]
async fn credentials_step_lives_thirty_minutes() {
    for (wait, ok) in [
        (Duration::minutes(30) - Duration::seconds(1), true),
        (Duration::minutes(30), false),
    ] {
        let f = fixture();
        let handle = opened(&f, TARO).await;
        let shown = f
            .portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap();
        let handle = f
            .portal
            .confirm_auth_key(&f.link2(TARO), &shown.auth_key)
            .await
            .unwrap();
        f.clock.advance(wait);
        let result = f
            .portal
            .complete_registration(&handle, credentials("taro-sakura", PASSWORD))
            .await;
        if ok {
            result.unwrap();
        } else {
            assert_eq!(rejection(result.unwrap_err()), Rejection::Expired);
            assert!(f.store.danger_accounts().is_empty());
        }
    }
}

#[tokio::test]
async fn sec_11_five_wrong_auth_keys_kill_the_key() {
    let f = fixture();
    let (_, shown) = at_auth_key(&f).await;
    let link2 = f.link2(TARO);
    let wrong: AuthKey = parsed(if shown.auth_key.expose_secret() == "AAAAAAAA" {
        "BBBBBBBB"
    } else {
        "AAAAAAAA"
    });
    for i in 1..=5 {
        let r = rejection(f.portal.confirm_auth_key(&link2, &wrong).await.unwrap_err());
        if i < 5 {
            assert_eq!(r, Rejection::AuthKeyIncorrect, "try {i}");
        } else {
            assert_eq!(r, Rejection::AuthKeyAttemptsExhausted);
        }
    }
    // The right key no longer works.
    let r = rejection(
        f.portal
            .confirm_auth_key(&link2, &shown.auth_key)
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::LinkUsed);
    assert_eq!(f.audit.count(AuditKind::AuthKeyFailed), 5);
}

#[tokio::test]
async fn sec_11_auth_key_of_one_flow_does_not_open_another() {
    let f = fixture();
    let a = opened(&f, TARO).await;
    let key_a = f
        .portal
        .verify_identity(&a, claim(CARD, BIRTH))
        .await
        .unwrap()
        .auth_key;
    let b = opened(&f, "hanako@example.jp").await;
    let key_b = f
        .portal
        .verify_identity(&b, claim("999-123456-01", "1987-09-30"))
        .await
        .unwrap()
        .auth_key;
    assert_ne!(key_a, key_b);
    let r = rejection(
        f.portal
            .confirm_auth_key(&f.link2("hanako@example.jp"), &key_a)
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::AuthKeyIncorrect);
}

#[tokio::test]
async fn sec_10_every_skip_reorder_and_replay_is_rejected() {
    let f = fixture();
    let h1 = opened(&f, TARO).await;
    // Skip R3–R4: the R2 handle cannot complete registration.
    let r = rejection(
        f.portal
            .complete_registration(&h1, credentials("taro-sakura", PASSWORD))
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::WrongStep);
    let shown = f
        .portal
        .verify_identity(&h1, claim(CARD, BIRTH))
        .await
        .unwrap();
    // Replay R3 on the same handle: refused (no second key), and told why (#14).
    let r = rejection(
        f.portal
            .verify_identity(&h1, claim(CARD, BIRTH))
            .await
            .unwrap_err(),
    );
    assert!(matches!(r, Rejection::IdentityAlreadyVerified { .. }));
    // Skip R4: the R2 handle still cannot complete.
    let r = rejection(
        f.portal
            .complete_registration(&h1, credentials("taro-sakura", PASSWORD))
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::WrongStep);
    // Link 1 used as link 2, and link 2 as link 1: different token types never match.
    // The types keep them apart at compile time; the text of one parsed as the other
    // (what a host gets from a URL) must not find the flow either.
    let link1_as_link2: VerificationLinkToken = parsed(f.link1(TARO).expose_secret());
    let link2 = f.link2(TARO);
    let link2_as_link1: RegistrationLinkToken = parsed(link2.expose_secret());
    assert_eq!(
        rejection(
            f.portal
                .confirm_auth_key(&link1_as_link2, &shown.auth_key)
                .await
                .unwrap_err()
        ),
        Rejection::LinkInvalid
    );
    assert_eq!(
        rejection(
            f.portal
                .open_registration_link(&link2_as_link1)
                .await
                .unwrap_err()
        ),
        Rejection::LinkInvalid
    );
    // The flow handle is not a link either.
    assert_eq!(
        rejection(
            f.portal
                .confirm_auth_key(&parsed(h1.expose_secret()), &shown.auth_key)
                .await
                .unwrap_err()
        ),
        Rejection::LinkInvalid
    );
    let h2 = f
        .portal
        .confirm_auth_key(&link2, &shown.auth_key)
        .await
        .unwrap();
    // Replay R4.
    assert_eq!(
        rejection(
            f.portal
                .confirm_auth_key(&link2, &shown.auth_key)
                .await
                .unwrap_err()
        ),
        Rejection::LinkUsed
    );
    // Go back to R3 with the new handle.
    assert_eq!(
        rejection(
            f.portal
                .verify_identity(&h2, claim(CARD, BIRTH))
                .await
                .unwrap_err()
        ),
        Rejection::WrongStep
    );
    f.portal
        .complete_registration(&h2, credentials("taro-sakura", PASSWORD))
        .await
        .unwrap();
    // Replay R5.
    assert_eq!(
        rejection(
            f.portal
                .complete_registration(&h2, credentials("taro-other", PASSWORD))
                .await
                .unwrap_err()
        ),
        Rejection::WrongStep
    );
    assert_eq!(f.store.danger_accounts().len(), 1);
}

#[tokio::test]
async fn sec_09_wrong_identity_never_says_which_field() {
    let f = fixture();
    let handle = opened(&f, TARO).await;
    let mut answers = Vec::new();
    for (card, birth) in [
        ("999-123456-00", "1985-04-13"), // wrong birth date
        ("999-123456-02", "1985-04-12"), // wrong 枝番
        ("999-000000-00", "1985-04-12"), // unknown card
        ("998-123456-00", "2000-01-01"), // everything wrong
    ] {
        let r = rejection(
            f.portal
                .verify_identity(&handle, claim(card, birth))
                .await
                .unwrap_err(),
        );
        answers.push((r.code(), r.message(kenpo_auth::Lang::Ja)));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].0, "identity.not_confirmed");
}

#[tokio::test]
async fn sec_09_sixth_try_in_one_flow_fails_even_with_correct_data() {
    let f = fixture();
    let handle = opened(&f, TARO).await;
    for _ in 0..4 {
        f.portal
            .verify_identity(&handle, claim(CARD, "1985-04-13"))
            .await
            .unwrap_err();
    }
    let fifth = rejection(
        f.portal
            .verify_identity(&handle, claim(CARD, "1985-04-13"))
            .await
            .unwrap_err(),
    );
    assert_eq!(fifth, Rejection::IdentityNotConfirmed);
    let sixth = rejection(
        f.portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        sixth,
        Rejection::WrongStep,
        "the flow is dead after 5 tries"
    );
}

#[tokio::test]
async fn sec_09_identity_brute_force_across_new_flows_blocks_the_member() {
    let f = fixture();
    // An attacker opens new flows (new addresses) to get new tries on one member.
    let mut n = 0;
    'outer: for flow in 0..4 {
        let email = format!("attacker{flow}@example.com");
        let handle = opened(&f, &email).await;
        for day in 1..=4 {
            let r = rejection(
                f.portal
                    .verify_identity(&handle, claim(CARD, &format!("1985-04-{:02}", 20 + day)))
                    .await
                    .unwrap_err(),
            );
            n += 1;
            if n == 10 {
                assert_eq!(r, Rejection::IdentityNotConfirmed);
                break 'outer;
            }
        }
    }
    // The per-member counter survives a new flow: even the right data fails now, with
    // the answer a wrong birth date gets.
    let handle = opened(&f, "attacker-last@example.com").await;
    let r = rejection(
        f.portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::IdentityNotConfirmed);
    assert_eq!(f.audit.count(AuditKind::IdentityMemberBlocked), 1);
    // After the 24-hour window the member can register.
    f.clock.advance(Duration::hours(24));
    f.register(TARO, CARD, BIRTH, "taro-sakura").await;
}

/// SEC-13: one requester (an IP or network prefix, as the host names it) starts at most
/// `flow_starts_per_requester_per_hour` (20) flows an hour, whatever addresses it types;
/// beyond that nothing is mailed and the answer is the one a sent mail gets. Another
/// requester is not affected. (Before, one IP sent 59 registration mails in 60 s.)
#[tokio::test]
async fn sec_13_flow_starts_are_limited_per_requester() {
    let f = fixture();
    let cap = f.portal.policy().flow_starts_per_requester_per_hour as usize;
    let flooder = f.portal.from_requester("203.0.113.7");
    let first = flooder.start_registration("victim0@example.com").await;
    let first = observed(&f.portal, &first).await;
    for i in 1..=cap {
        let answer = flooder
            .start_registration(&format!("victim{i}@example.com"))
            .await;
        assert_eq!(
            observed(&f.portal, &answer).await,
            first,
            "a throttled request answers like a sent one"
        );
    }
    assert_eq!(
        f.mailer.count(),
        cap,
        "no mail beyond the requester's budget"
    );
    f.portal
        .from_requester("198.51.100.9")
        .start_registration(TARO)
        .await
        .unwrap();
    assert_eq!(
        f.mailer.count(),
        cap + 1,
        "another requester still gets its mail"
    );
    f.clock.advance(Duration::hours(1));
    flooder
        .start_registration("late@example.com")
        .await
        .unwrap();
    assert_eq!(
        f.mailer.count(),
        cap + 2,
        "the budget comes back after the hour"
    );
}

/// SEC-13: the whole portal starts at most `flow_starts_per_hour` flows an hour, however
/// many requesters share the flood.
#[tokio::test]
async fn sec_13_flow_starts_are_limited_for_the_whole_portal() {
    let mut policy = fixtures::danger_test_minimum_policy();
    policy.flow_starts_per_hour = 100;
    let f = fixture_with(policy);
    for i in 0..=100 {
        f.portal
            .from_requester(&format!("192.0.2.{i}"))
            .start_registration(&format!("member{i}@example.com"))
            .await
            .unwrap();
    }
    assert_eq!(f.mailer.count(), 100);
    assert_eq!(f.audit.count(AuditKind::MailThrottled), 1);
}

/// SEC-42: at R5 a login ID may not be the card number in any spelling — other
/// separators included (`999.123456.00`, before accepted) — nor the address or its
/// local part.
#[tokio::test]
async fn sec_42_login_id_cannot_spell_the_card_number_or_the_address() {
    let f = fixture();
    let handle = at_credentials(&f, TARO, CARD, BIRTH).await;
    let local = TARO.split_once('@').map(|(l, _)| l).unwrap();
    for typed in ["999.123456.00", "999_123456_00", "99912345600", local] {
        let r = f
            .portal
            .complete_registration(&handle, credentials(typed, PASSWORD))
            .await
            .unwrap_err();
        assert_eq!(rejection(r), Rejection::LoginIdIdentifying, "{typed}");
    }
    f.portal
        .complete_registration(&handle, credentials("taro-sakura", PASSWORD))
        .await
        .unwrap();
}

/// DOM-13: a birth date after today (2090 for 1990, 令和99年) is a field error the member
/// can fix, not a failed identity check that spends a try.
#[tokio::test]
async fn dom_13_future_birth_dates_are_refused_as_typos() {
    let f = fixture();
    for typed in ["2090-04-12", "令和99年1月1日"] {
        let r = rejection(f.portal.identity_claim(CARD, typed, None).unwrap_err());
        assert_eq!(r.code(), "birth_date.in_future", "{typed}");
        assert!(
            r.message(kenpo_auth::Lang::Ja).contains("未来の日付"),
            "{typed}"
        );
    }
    assert!(f.portal.identity_claim(CARD, BIRTH, None).is_ok());
}

/// SEC-13: rotating the digest key does not give an address a fresh mail allowance. The
/// per-address counter written under the previous key still counts while that key is
/// accepted (before, the counter's name changed with the key and the count restarted).
#[tokio::test]
async fn sec_13_key_rotation_keeps_the_per_address_mail_count() {
    let f = fixture();
    let cap = f.portal.policy().mails_per_address_per_hour;
    let target = "flooded@example.com";
    for _ in 0..cap {
        f.portal.start_registration(target).await.unwrap();
        f.after_mail_interval();
    }
    let sent = f.kinds_to(target).len();
    assert_eq!(sent, cap as usize);
    // The same deployment after a key rotation: new current key, the old one previous.
    let rotated = fixtures::portal_builder()
        .secret_key(2, [9u8; 32])
        .previous_secret_key(fixtures::SECRET_KEY_ID, fixtures::SECRET_KEY)
        .store(f.store.clone())
        .shared_mailer(Arc::new(f.mailer.clone()))
        .directory(f.directory.clone())
        .clock(Arc::new(f.clock.clone()))
        .build()
        .unwrap();
    rotated.start_registration(target).await.unwrap();
    assert_eq!(f.kinds_to(target).len(), sent, "the hourly cap still holds");
    // After the hour the address gets mail again, counted under the new key.
    f.clock.advance(Duration::hours(1));
    rotated.start_registration(target).await.unwrap();
    assert_eq!(f.kinds_to(target).len(), sent + 1);
}

/// SEC-09: once a member's budget is spent, a card number on the roster and one that is
/// not get the same answer, so ten checks do not reveal whether a 記号-番号-枝番 exists.
#[tokio::test]
async fn sec_09_exhausted_budget_is_no_card_number_oracle() {
    let f = fixture();
    let mut flow = 0;
    let mut next_handle = async || {
        flow += 1;
        opened(&f, &format!("prober{flow}@example.com")).await
    };
    let mut handle = next_handle().await;
    for day in 1..=f.portal.policy().identity_tries_per_member {
        if day % 4 == 0 {
            handle = next_handle().await;
        }
        let _ = f
            .portal
            .verify_identity(&handle, claim(CARD, &format!("1985-05-{day:02}")))
            .await;
    }
    let mut answers = Vec::new();
    for card in [CARD, "999-000000-00"] {
        let handle = next_handle().await;
        let r = f
            .portal
            .verify_identity(&handle, claim(card, "1985-05-30"))
            .await;
        answers.push(rejection(r.unwrap_err()));
    }
    assert_eq!(answers[0], answers[1], "on the roster vs not: {answers:?}");
    assert_eq!(answers[0], Rejection::IdentityNotConfirmed);
}

#[tokio::test]
async fn family_members_cannot_share_an_address() {
    let f = fixture();
    let shared = "yamada.family@example.jp";
    // Both start before either finishes, so R1 cannot tell.
    f.portal.start_registration(shared).await.unwrap();
    let h_taro = f
        .portal
        .open_registration_link(&f.link1(shared))
        .await
        .unwrap();
    f.after_mail_interval();
    f.portal.start_registration(shared).await.unwrap();
    let h_hanako = f
        .portal
        .open_registration_link(&f.link1(shared))
        .await
        .unwrap();
    let key_taro = f
        .portal
        .verify_identity(&h_taro, claim(CARD, BIRTH))
        .await
        .unwrap()
        .auth_key;
    let link_taro = f.link2(shared);
    f.after_mail_interval();
    let key_hanako = f
        .portal
        .verify_identity(&h_hanako, claim("999-123456-01", "1987-09-30"))
        .await
        .unwrap()
        .auth_key;
    let link_hanako = f.link2(shared);
    let h_taro = f
        .portal
        .confirm_auth_key(&link_taro, &key_taro)
        .await
        .unwrap();
    let h_hanako = f
        .portal
        .confirm_auth_key(&link_hanako, &key_hanako)
        .await
        .unwrap();
    f.portal
        .complete_registration(&h_taro, credentials("taro-sakura", PASSWORD))
        .await
        .unwrap();
    let r = rejection(
        f.portal
            .complete_registration(&h_hanako, credentials("hanako-sakura", PASSWORD))
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::FamilyEmailInUse);
    assert!(
        r.message(kenpo_auth::Lang::Ja)
            .contains("ご家族と重複するメールアドレスは使用できません")
    );
    assert_eq!(f.store.danger_accounts().len(), 1);
}

#[tokio::test]
async fn family_member_with_own_address_registers() {
    let f = fixture();
    f.register(TARO, CARD, BIRTH, "taro-sakura").await;
    f.register(
        "hanako@example.jp",
        "999-123456-01",
        "1987-09-30",
        "hanako-sakura",
    )
    .await;
    assert_eq!(f.store.danger_accounts().len(), 2);
}

#[tokio::test]
async fn one_account_per_member() {
    let f = fixture();
    f.register(TARO, CARD, BIRTH, "taro-sakura").await;
    let handle = opened(&f, "taro.second@example.jp").await;
    let r = rejection(
        f.portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::AlreadyRegistered);
    assert_eq!(f.store.danger_accounts().len(), 1);
}

#[tokio::test]
async fn r5_refuses_bad_credentials_with_reasons() {
    let f = fixture();
    let handle = at_credentials(&f, TARO, CARD, BIRTH).await;
    let h = &handle;
    let mut mismatch = credentials("taro-sakura", PASSWORD);
    mismatch.password_confirmation = kenpo_auth::domain::Password::new(OTHER_PASSWORD).unwrap();
    let cases = vec![
        (mismatch, "password.confirmation_mismatch"),
        (
            credentials("taro-sakura", "short-pass"),
            "password.too_short",
        ),
        // SEC-17: context words (login ID, e-mail local part, card number, birth date).
        (
            credentials("taro-sakura", "taro-sakura-is-my-password"),
            "password.contains_context",
        ),
        (
            credentials("taro-sakura", "my card 999123456 password"),
            "password.contains_context",
        ),
        (
            credentials("taro-sakura", "born on 19850412 in spring"),
            "password.contains_context",
        ),
        // SEC-17: the birth date in 和暦 and month-day forms too.
        (
            credentials("taro-sakura", "生まれは4月12日の春です散歩道"),
            "password.contains_context",
        ),
        (
            credentials("taro-sakura", "my era birthday S60.4.12 ok"),
            "password.contains_context",
        ),
        // SEC-42: the login ID may not be the e-mail address or the card number.
        (
            credentials("taro.yamada@example.jp", PASSWORD),
            "login_id.identifying",
        ),
        (
            credentials("999-123456-00", PASSWORD),
            "login_id.identifying",
        ),
        (credentials("ab", PASSWORD), "login_id.too_short"),
    ];
    for (c, code) in cases {
        let r = rejection(f.portal.complete_registration(h, c).await.unwrap_err());
        assert_eq!(r.code(), code);
        assert!(!r.message(kenpo_auth::Lang::Ja).is_empty());
    }
    // The flow is still usable after refusals.
    f.portal
        .complete_registration(h, credentials("taro-sakura", PASSWORD))
        .await
        .unwrap();
}

#[tokio::test]
async fn login_id_taken_is_said_and_another_can_be_chosen() {
    let f = fixture();
    f.register(TARO, CARD, BIRTH, "sakura-member").await;
    let handle = opened(&f, "hanako@example.jp").await;
    let shown = f
        .portal
        .verify_identity(&handle, claim("999-123456-01", "1987-09-30"))
        .await
        .unwrap();
    let handle = f
        .portal
        .confirm_auth_key(&f.link2("hanako@example.jp"), &shown.auth_key)
        .await
        .unwrap();
    let r = rejection(
        f.portal
            .complete_registration(&handle, credentials("SAKURA-member", PASSWORD))
            .await
            .unwrap_err(),
    );
    assert_eq!(r, Rejection::LoginIdTaken);
    f.portal
        .complete_registration(&handle, credentials("hanako-sakura", PASSWORD))
        .await
        .unwrap();
}

#[tokio::test]
async fn sec_44_audit_events_carry_no_address_or_card_number() {
    let f = fixture();
    f.register(TARO, CARD, BIRTH, "taro-sakura").await;
    let events = format!("{:?}", f.audit.events());
    assert!(!events.contains(TARO));
    assert!(!events.contains("123456"));
    assert!(events.contains("t***@example.jp"));
}

#[tokio::test]
async fn sec_03_store_holds_no_plaintext_secret() {
    let f = fixture();
    let handle = opened(&f, TARO).await;
    let link1 = f.link1(TARO).expose_secret().to_owned();
    let shown = f
        .portal
        .verify_identity(&handle, claim(CARD, BIRTH))
        .await
        .unwrap();
    let dump = f.store.danger_dump();
    for secret in [
        link1.as_str(),
        handle.expose_secret(),
        shown.auth_key.expose_secret(),
        f.link2(TARO).expose_secret(),
    ] {
        assert!(!dump.contains(secret), "store holds a plaintext secret");
    }
    assert!(!dump.contains("123456-00"), "store holds the card number");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sec_46_fifty_tasks_completing_one_flow_make_one_account() {
    let f = fixture();
    let handle = at_credentials(&f, TARO, CARD, BIRTH).await;
    let handle = Arc::new(handle);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let portal = f.portal.clone();
        let handle = handle.clone();
        tasks.push(tokio::spawn(async move {
            portal
                .complete_registration(&handle, credentials(&format!("taro-{i:03}"), PASSWORD))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(rejection(e), Rejection::WrongStep),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(f.store.danger_accounts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sec_08_fifty_flows_racing_one_address_make_one_account() {
    // Every member of a big family races to register the same address (in different
    // case spellings): exactly one account gets it.
    let f = fixture();
    let mut handles = Vec::new();
    for i in 0..50 {
        let card = format!("777-{:06}-{:02}", 100000 + i, 0);
        f.directory.insert(fixtures::member(
            &format!("F{i:03}"),
            &card,
            "1990-01-01",
            Some("サクラ ジロウ"),
            kenpo_auth::ports::Relation::Dependent,
        ));
        let email = if i % 2 == 0 {
            "Family@Example.JP"
        } else {
            "family@example.jp"
        };
        f.clock.advance(Duration::minutes(13)); // stay under the mail throttle
        let handle = opened(&f, email).await;
        let shown = f
            .portal
            .verify_identity(&handle, claim(&card, "1990-01-01"))
            .await
            .unwrap();
        let h = f
            .portal
            .confirm_auth_key(&f.link2(email), &shown.auth_key)
            .await
            .unwrap();
        handles.push(h);
    }
    // Keep every credentials step alive: the last one was issued just now, the first
    // 50 × 13 min ago — so move the clock back for the race (a test-only liberty).
    f.clock.advance(-Duration::minutes(13 * 50));
    let mut tasks = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        let portal = f.portal.clone();
        tasks.push(tokio::spawn(async move {
            portal
                .complete_registration(&h, credentials(&format!("family-{i:03}"), PASSWORD))
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert_eq!(rejection(e), Rejection::FamilyEmailInUse),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(f.store.danger_accounts().len(), 1);
}

#[test]
fn auth_key_parse_refuses_confusables() {
    assert!(AuthKey::parse("ABCD0OI1").is_err());
}

#[tokio::test]
async fn r5_screen_shows_the_address_the_account_will_get() {
    let f = fixture();
    let h1 = opened(&f, TARO).await;
    // Before R4 the address is not readable: the R2 handle is at another step.
    assert_eq!(
        rejection(f.portal.registration_email(&h1).await.unwrap_err()),
        Rejection::WrongStep
    );
    let shown = f
        .portal
        .verify_identity(&h1, claim(CARD, BIRTH))
        .await
        .unwrap();
    let h2 = f
        .portal
        .confirm_auth_key(&f.link2(TARO), &shown.auth_key)
        .await
        .unwrap();
    let email = f.portal.registration_email(&h2).await.unwrap();
    assert_eq!(email.for_sending(), TARO);
    f.clock.advance(Duration::minutes(30));
    assert_eq!(
        rejection(f.portal.registration_email(&h2).await.unwrap_err()),
        Rejection::Expired
    );
}

#[tokio::test]
async fn dom_08_identity_claim_uses_the_insurers_card_format() {
    let f = fixture();
    let claim = f
        .portal
        .identity_claim("９９９－１２３４５６－００", "1985/04/12", Some("ﾔﾏﾀﾞ ﾀﾛｳ"))
        .unwrap();
    assert_eq!(claim.card_number.canonical(), "999-123456-00");
    assert_eq!(claim.kana_name.unwrap().as_str(), "ヤマダタロウ");
    // The default 健保組合 format takes digits only: a kana 記号 is refused, in Japanese.
    let r = rejection(
        f.portal
            .identity_claim("あいう-1234-01", "1985-04-12", None)
            .unwrap_err(),
    );
    assert!(r.code().starts_with("card_number."));
    assert!(
        !r.starts_over(),
        "the member corrects the field on the same screen"
    );
    assert!(
        rejection(
            f.portal
                .identity_claim(CARD, "1985-02-30", None)
                .unwrap_err()
        )
        .code()
        .starts_with("birth_date.")
    );
}

#[tokio::test]
async fn dom_21_legacy_carrier_address_gets_advice_text() {
    let f = fixture();
    let started = f
        .portal
        .start_registration("taro..sakura@docomo.ne.jp")
        .await
        .unwrap();
    assert!(started.legacy_address_warning);
    assert!(started.legacy_address_advice.is_some());
    let plain = f.portal.start_registration(TARO).await.unwrap();
    assert_eq!(plain.legacy_address_advice, None);
}

#[test]
fn rejections_say_whether_the_member_starts_over() {
    for r in [
        Rejection::LinkUsed,
        Rejection::Expired,
        Rejection::WrongStep,
        Rejection::OtpInvalid,
        Rejection::AuthKeyAttemptsExhausted,
        Rejection::FamilyEmailInUse,
    ] {
        assert!(r.starts_over(), "{r:?}");
    }
    for r in [
        Rejection::AuthKeyIncorrect,
        Rejection::IdentityNotConfirmed,
        Rejection::OtpIncorrect,
        Rejection::LoginFailed,
        Rejection::LoginIdTaken,
        Rejection::PasswordConfirmationMismatch,
        Rejection::Busy,
    ] {
        assert!(!r.starts_over(), "{r:?}");
    }
}

/// #14: R5 sent again by the holder of its handle with the same login ID, moments after
/// it made the account (a double tap, a response lost on the way), is told the same
/// account instead of "start over"; nothing more is written. Another login ID, or after
/// `Policy::repeat_window`, is the old refusal.
#[tokio::test]
async fn a_repeated_r5_is_told_the_account_it_made() {
    let f = fixture();
    let handle = at_credentials(&f, TARO, CARD, BIRTH).await;
    let made = f
        .portal
        .complete_registration(&handle, credentials("taro-sakura", PASSWORD))
        .await
        .unwrap();
    let mails = f.mailer.count();
    let again = f
        .portal
        .complete_registration(&handle, credentials("taro-sakura", PASSWORD))
        .await
        .expect("the same registration");
    assert_eq!(again.account_id, made.account_id);
    assert_eq!(f.mailer.count(), mails, "no second 利用登録完了 mail");
    assert_eq!(f.store.danger_accounts().len(), 1);
    let other = f
        .portal
        .complete_registration(&handle, credentials("taro-other", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(other), Rejection::WrongStep);
    f.clock.advance(f.portal.policy().repeat_window);
    let late = f
        .portal
        .complete_registration(&handle, credentials("taro-sakura", PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(rejection(late), Rejection::WrongStep);
}

/// #14: link 2 can be mailed again from the browser that passed R3 (a lost or late
/// mail). The new link replaces the old, which dies; the 認証キー on screen stays valid;
/// the deadline does not move; resends are a mail interval apart and capped per flow
/// (SEC-13); no other handle may ask.
#[tokio::test]
async fn link_2_can_be_resent_with_the_key_unchanged() {
    let f = fixture();
    let (handle, shown) = at_auth_key(&f).await;
    let old = f.link2(TARO);
    let soon = f
        .portal
        .resend_verification_link(&handle)
        .await
        .unwrap_err();
    assert!(matches!(rejection(soon), Rejection::TooManyRequests { .. }));
    f.clock.advance(Duration::seconds(61));
    let resent = f.portal.resend_verification_link(&handle).await.unwrap();
    assert_eq!(
        resent.expires_at, shown.expires_at,
        "the deadline does not move"
    );
    let new = f.link2(TARO);
    assert_ne!(old.expose_secret(), new.expose_secret());
    // The receipt names the new link 2's mail, which went out.
    assert!(matches!(
        f.portal.mail_status(&resent.receipt).await.unwrap(),
        Some(kenpo_auth::flow::delivery::MailStatus::Sent { .. })
    ));
    let stranger = opened(&f, HANAKO).await;
    assert_eq!(
        rejection(
            f.portal
                .resend_verification_link(&stranger)
                .await
                .unwrap_err()
        ),
        Rejection::WrongStep,
        "another flow's handle"
    );
    assert_eq!(
        rejection(
            f.portal
                .confirm_auth_key(&old, &shown.auth_key)
                .await
                .unwrap_err()
        ),
        Rejection::LinkUsed,
        "the replaced link is dead"
    );
    f.portal
        .confirm_auth_key(&new, &shown.auth_key)
        .await
        .expect("the new link with the key already on screen");
}

/// #14 / SEC-13: link 2 resends stop at the per-flow cap, and after link 2's deadline a
/// resend says the step expired.
#[tokio::test]
async fn link_2_resends_are_capped_and_end_with_the_link() {
    let f = fixture();
    let (handle, _) = at_auth_key(&f).await;
    let cap = f.portal.policy().mails_per_address_per_hour;
    for _ in 0..cap {
        f.clock.advance(Duration::seconds(61));
        f.portal.resend_verification_link(&handle).await.unwrap();
    }
    f.clock.advance(Duration::seconds(61));
    assert_eq!(
        rejection(
            f.portal
                .resend_verification_link(&handle)
                .await
                .unwrap_err()
        ),
        Rejection::WrongStep
    );
    f.clock.advance(Duration::minutes(30));
    assert_eq!(
        rejection(
            f.portal
                .resend_verification_link(&handle)
                .await
                .unwrap_err()
        ),
        Rejection::Expired
    );
}

/// #14: R3 sent again by the browser that passed it (a double tap, a lost response) is
/// told identity is already verified — with link 2's deadline — not "start over", and
/// the 認証キー is not shown again; link 2 and the key shown first still work.
#[tokio::test]
async fn a_repeated_r3_is_told_identity_is_already_verified() {
    let f = fixture();
    let (handle, shown) = at_auth_key(&f).await;
    let mails = f.mailer.count();
    let again = rejection(
        f.portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        again,
        Rejection::IdentityAlreadyVerified {
            expires_at: shown.expires_at
        }
    );
    assert!(!again.starts_over());
    assert_eq!(f.mailer.count(), mails, "no second link 2, no second key");
    f.portal
        .confirm_auth_key(&f.link2(TARO), &shown.auth_key)
        .await
        .expect("the first key and link 2 still work");
}

/// SEC-11 / SEC-12 across a link-2 resend: wrong 認証キー entries carry over to the new
/// link, so resending cannot buy more guesses.
#[tokio::test]
async fn sec_11_wrong_keys_carry_over_a_link_2_resend() {
    let f = fixture();
    let (handle, shown) = at_auth_key(&f).await;
    let wrong: kenpo_auth::token::AuthKey = parsed(if shown.auth_key.expose_secret() == "AAAA" {
        "BBBB"
    } else {
        "AAAA"
    });
    let tries = f.portal.policy().auth_key_tries;
    for _ in 1..tries {
        let r = f.portal.confirm_auth_key(&f.link2(TARO), &wrong).await;
        assert_eq!(rejection(r.unwrap_err()), Rejection::AuthKeyIncorrect);
    }
    f.clock.advance(Duration::seconds(61));
    f.portal.resend_verification_link(&handle).await.unwrap();
    let r = f.portal.confirm_auth_key(&f.link2(TARO), &wrong).await;
    assert_eq!(
        rejection(r.unwrap_err()),
        Rejection::AuthKeyAttemptsExhausted,
        "the last try was spent before the resend"
    );
}
