//! Host failures in the middle of the journeys, injected with `testkit::FaultyStore` and
//! `testkit::FaultyMailer`: a store that goes away, loses a `COMMIT` reply or keeps losing
//! races, a mail server that refuses a mailbox or is down. The member is told a host
//! error (never a made-up rejection), nothing half-made stays behind, and a retry works
//! (DESIGN §2: "a failed step never leaves half-made state behind").

mod common;

use std::sync::Arc;

use common::*;
use kenpo_auth::flow::delivery::MailStatus;
use kenpo_auth::mail::RecordingMailer;
use kenpo_auth::model::Undeliverable;
use kenpo_auth::ports::{AccountLookup, AuditKind, Store, StoreError};
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::{
    FaultyMailer, FaultyStore, InjectedFault, MailFault, StoreCall, StoreFault, When,
};
use kenpo_auth::{Error, Rejection};

const LOGIN: &str = "taro-sakura";

/// The sample fixture, its portal rebuilt over a `FaultyStore` and a `FaultyMailer`
/// wrapped around the fixture's own store and recording mailer.
struct Faulty {
    f: Fixture,
    store: FaultyStore<MemoryStore>,
    mail: FaultyMailer<RecordingMailer>,
}

fn faulty() -> Faulty {
    let f = fixture();
    let store = FaultyStore::new(f.store.clone());
    let mail = FaultyMailer::new(f.mailer.clone());
    let portal = fixtures::portal_builder()
        .store(store.clone())
        .mailer(mail.clone())
        .directory(f.directory.clone())
        .clock(Arc::new(f.clock.clone()))
        .audit(Arc::new(f.audit.clone()))
        .build()
        .unwrap();
    Faulty {
        f: Fixture { portal, ..f },
        store,
        mail,
    }
}

/// A faulty fixture with Taro's registration opened (R2 done): its handle.
async fn opened() -> (Faulty, kenpo_auth::token::FlowHandle) {
    let t = faulty();
    t.f.portal.start_registration(TARO).await.unwrap();
    let handle =
        t.f.portal
            .open_registration_link(&t.f.link1(TARO))
            .await
            .unwrap();
    (t, handle)
}

/// Whether `e` is the store's error, caused by an injected fault.
fn injected_store_error(e: &Error) -> bool {
    let Error::Store(StoreError::Backend(source) | StoreError::Corrupt(source)) = e else {
        return false;
    };
    source.downcast_ref::<InjectedFault>().is_some()
}

async fn registered() -> Faulty {
    let t = faulty();
    t.f.register(TARO, CARD, BIRTH, LOGIN).await;
    t
}

#[tokio::test]
async fn store_down_at_r1_is_a_host_error_and_the_member_can_retry() {
    let t = faulty();
    t.store.fail(StoreCall::Any, When::Always);
    let e = t.f.portal.start_registration(TARO).await.unwrap_err();
    assert!(injected_store_error(&e), "{e:?}");
    assert!(e.rejection().is_none(), "a host error, not the member's");
    assert!(t.f.mailer.last_registration_link(TARO).is_none());

    t.store.heal();
    t.f.portal.start_registration(TARO).await.unwrap();
    t.f.portal
        .open_registration_link(&t.f.link1(TARO))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_corrupt_record_fails_the_step_as_a_store_error() {
    let t = faulty();
    t.f.portal.start_registration(TARO).await.unwrap();
    t.store
        .inject(StoreCall::Load, When::Nth(1), StoreFault::Corrupt);
    let e =
        t.f.portal
            .open_registration_link(&t.f.link1(TARO))
            .await
            .unwrap_err();
    assert!(matches!(e, Error::Store(StoreError::Corrupt(_))), "{e:?}");
    // The link was not consumed by the failed step.
    t.f.portal
        .open_registration_link(&t.f.link1(TARO))
        .await
        .unwrap();
}

/// A failed commit writes nothing: the right 暗証キー whose commit failed is still the
/// right one, and is accepted on retry.
#[tokio::test]
async fn a_failed_commit_at_l2_consumes_nothing() {
    let t = registered().await;
    let challenge = t.f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    let code = t.f.otp(TARO);
    t.store.fail(StoreCall::Commit, When::Nth(1));
    let e =
        t.f.portal
            .verify_otp(&challenge.challenge, &code)
            .await
            .unwrap_err();
    assert!(injected_store_error(&e), "{e:?}");
    assert_eq!(t.f.audit.count(AuditKind::LoginSucceeded), 0);
    let session =
        t.f.portal
            .verify_otp(&challenge.challenge, &code)
            .await
            .unwrap();
    assert_eq!(t.store.faults_fired(), 1);
    assert!(
        t.f.portal
            .check_security_stamp(&session.account_id, &session.security_stamp)
            .await
            .unwrap()
    );
}

/// The connection drops during R5's `COMMIT`: the account was created but the member saw
/// a host error. The retry cannot create a second account; the member logs in.
/// #14: the connection is lost while R5's commit runs (the account was made, the reply
/// lost). The portal reads back instead of guessing: the member is told the account
/// exists, and one account exists. A retry is told the same (a repeat).
#[tokio::test]
async fn a_lost_commit_reply_at_r5_is_read_back() {
    let (t, handle) = opened().await;
    let shown =
        t.f.portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .unwrap();
    let handle =
        t.f.portal
            .confirm_auth_key(&t.f.link2(TARO), &shown.auth_key)
            .await
            .unwrap();
    t.store
        .inject(StoreCall::Commit, When::Nth(1), StoreFault::LostReply);
    let made =
        t.f.portal
            .complete_registration(&handle, credentials(LOGIN, PASSWORD))
            .await
            .expect("the commit took effect: read back, not an error");
    let again =
        t.f.portal
            .complete_registration(&handle, credentials(LOGIN, PASSWORD))
            .await
            .expect("a retry is told the same account");
    assert_eq!(again.account_id, made.account_id);
    let accounts = t.f.store.danger_accounts();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, made.account_id);
    t.f.login(LOGIN, PASSWORD, TARO).await;
}

/// #14: R3's commit lost its reply. Read back, the member is shown the 認証キー and link 2
/// is mailed — before, the key was never shown and the flow was stuck at the key step.
#[tokio::test]
async fn a_lost_commit_reply_at_r3_still_shows_the_key() {
    let (t, handle) = opened().await;
    t.store
        .inject(StoreCall::Commit, When::Nth(1), StoreFault::LostReply);
    let shown =
        t.f.portal
            .verify_identity(&handle, claim(CARD, BIRTH))
            .await
            .expect("read back: the key is shown");
    t.f.portal
        .confirm_auth_key(&t.f.link2(TARO), &shown.auth_key)
        .await
        .expect("link 2 was mailed and works with the key");
}

#[tokio::test]
async fn one_lost_race_is_retried_without_the_member_noticing() {
    let t = faulty();
    t.store
        .inject(StoreCall::Commit, When::Nth(1), StoreFault::Conflict);
    t.f.portal.start_registration(TARO).await.unwrap();
    assert_eq!(
        t.store.calls(StoreCall::Commit),
        3,
        "decided again, committed, the mail's delivery recorded"
    );
    assert_eq!(t.f.kinds_to(TARO), ["registration_link"], "one mail");
}

#[tokio::test]
async fn a_store_that_always_loses_the_race_answers_busy_and_sends_nothing() {
    let t = faulty();
    t.store
        .inject(StoreCall::Commit, When::Always, StoreFault::Conflict);
    let e = t.f.portal.start_registration(TARO).await.unwrap_err();
    assert_eq!(rejection(e), Rejection::Busy);
    assert!(t.store.calls(StoreCall::Commit) > 1, "it retried first");
    assert_eq!(t.f.mailer.count(), 0);
    let account =
        t.f.store
            .find_account(AccountLookup::Email(addr(TARO)))
            .await
            .unwrap();
    assert!(account.is_none());
}

/// DESIGN §2: the 暗証キー mail fails after L1 committed; the failure is audited, the
/// member is on the code screen, and 暗証キー再請求 after the cooldown delivers a code.
#[tokio::test]
async fn a_failed_otp_mail_is_audited_and_a_resend_delivers() {
    let t = registered().await;
    t.mail
        .fail_kind("login_otp", When::Nth(1), MailFault::Transient);
    let challenge = t.f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert!(t.f.mailer.last_otp(TARO).is_none(), "nothing went out");
    assert_eq!(t.f.audit.count(AuditKind::MailFailed), 1);
    t.f.after_mail_interval();
    t.f.portal.resend_otp(&challenge.challenge).await.unwrap();
    t.f.portal
        .verify_otp(&challenge.challenge, &t.f.otp(TARO))
        .await
        .unwrap();
}

/// SEC-07: a mailbox the server refuses changes nothing in R1's answer; its receipt
/// tells the truth — 「メールを送信できませんでした」 — which is about the address the
/// member typed, not about any account (#14).
#[tokio::test]
async fn a_refused_mailbox_answers_r1_like_any_other() {
    let t = faulty();
    t.mail.fail_to(HANAKO, MailFault::Permanent);
    let refused = t.f.portal.start_registration(HANAKO).await.unwrap();
    let sent = t.f.portal.start_registration(TARO).await.unwrap();
    assert_eq!(
        (refused.carrier, refused.legacy_address_warning),
        (sent.carrier, sent.legacy_address_warning)
    );
    let status = |receipt| t.f.portal.mail_status(receipt);
    assert!(matches!(
        status(&refused.receipt).await.unwrap(),
        Some(MailStatus::NotSent {
            reason: Undeliverable::Refused,
            ..
        })
    ));
    assert!(matches!(
        status(&sent.receipt).await.unwrap(),
        Some(MailStatus::Sent { .. })
    ));
    assert!(t.f.mailer.last_registration_link(HANAKO).is_none());
    assert!(t.f.mailer.last_registration_link(TARO).is_some());
    assert_eq!(t.f.audit.count(AuditKind::MailFailed), 1);
    assert_eq!(t.mail.attempts(), 2);
}

/// A transport that delivered but reported a failure: the member holds a working code
/// (and the operators see a failure that was not one).
#[tokio::test]
async fn a_lost_mail_reply_still_delivers_a_working_code() {
    let t = registered().await;
    t.mail.fail(When::Next(1), MailFault::LostReply);
    let challenge = t.f.portal.start_login(LOGIN, &pw(PASSWORD)).await.unwrap();
    assert_eq!(t.f.audit.count(AuditKind::MailFailed), 1);
    t.f.portal
        .verify_otp(&challenge.challenge, &t.f.otp(TARO))
        .await
        .unwrap();
}

/// Fail fast on SQLite (#14): another writer holds the database's write lock (a stuck
/// process, a backup tool). A step answers the retryable `StoreError::Timeout` once the
/// store's statement timeout has passed, instead of waiting on.
#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread")]
async fn a_locked_sqlite_database_answers_a_timeout() {
    use kenpo_auth::store::{SqliteStore, Timeouts};
    use sqlx::{Connection, Executor};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kenpo.db");
    let path = path.to_str().unwrap();
    let timeouts = Timeouts::new(
        std::time::Duration::from_millis(300),
        std::time::Duration::from_millis(300),
    );
    let store = SqliteStore::open_with_timeouts(path, timeouts)
        .await
        .unwrap();
    let f = fixture();
    let portal = fixtures::portal_builder()
        .store(store)
        .mailer(f.mailer.clone())
        .directory(f.directory.clone())
        .clock(Arc::new(f.clock.clone()))
        .build()
        .unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{path}"))
        .await
        .unwrap();
    other.execute("BEGIN IMMEDIATE").await.unwrap();
    let e = portal.start_registration(TARO).await.unwrap_err();
    assert!(
        matches!(e, Error::Store(StoreError::Timeout(_))),
        "a timeout, not a hang or another error: {e:?}"
    );
    assert!(e.is_retryable());
    other.execute("ROLLBACK").await.unwrap();
    portal
        .start_registration(TARO)
        .await
        .expect("works again once the lock is gone");
}
