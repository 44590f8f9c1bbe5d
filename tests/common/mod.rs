//! Shared fixture: a portal over MemoryStore, RecordingMailer, MemoryDirectory and a
//! ManualClock, with the fictional insurer and roster of `kenpo_auth::testkit::fixtures`.
//! Links and codes are read from the typed mails, never from their text, through the
//! `RecordingMailer` accessors a host's tests use too.
#![allow(dead_code)]

use std::sync::Arc;

use kenpo_auth::domain::Password;
use kenpo_auth::mail::RecordingMailer;
use kenpo_auth::store::MemoryStore;
use kenpo_auth::testkit::{ManualClock, MemoryDirectory, RecordingAudit};
use kenpo_auth::token::{OtpCode, RegistrationLinkToken, VerificationLinkToken};
use kenpo_auth::{Policy, Portal};

// The sample data and small builders live in `kenpo_auth::testkit::fixtures`; the short
// names the tests use are re-exported here (each test crate uses some of them).
#[allow(unused_imports)]
pub use kenpo_auth::testkit::fixtures::{
    self, HANAKO_EMAIL as HANAKO, ICHIRO_EMAIL as ICHIRO, OTHER_PASSWORD, PASSWORD,
    TARO_BIRTH as BIRTH, TARO_CARD as CARD, TARO_EMAIL as TARO, address as addr, claim,
    credentials, danger_test_minimum_policy, parsed, password as pw, rejection,
};

pub struct Fixture {
    pub portal: Portal,
    pub store: MemoryStore,
    pub mailer: RecordingMailer,
    pub directory: MemoryDirectory,
    pub clock: ManualClock,
    pub audit: RecordingAudit,
}

pub fn fixture() -> Fixture {
    fixture_with(danger_test_minimum_policy())
}

/// The sample portal (`fixtures::portal_builder`) over the sample roster, with `policy`.
pub fn fixture_with(policy: Policy) -> Fixture {
    let store = MemoryStore::new();
    let mailer = RecordingMailer::new();
    let directory = fixtures::sample_roster();
    let clock = fixtures::sample_clock();
    let audit = RecordingAudit::new();
    let portal = fixtures::portal_builder()
        .store(store.clone())
        .shared_mailer(Arc::new(mailer.clone()))
        .directory(directory.clone())
        .clock(Arc::new(clock.clone()))
        .audit(Arc::new(audit.clone()))
        .policy(policy)
        .build()
        .unwrap();
    Fixture {
        portal,
        store,
        mailer,
        directory,
        clock,
        audit,
    }
}

impl Fixture {
    /// Link 1 from the latest registration mail to `to`.
    pub fn link1(&self, to: &str) -> RegistrationLinkToken {
        let link = self.mailer.last_registration_link(to);
        link.unwrap_or_else(|| panic!("no registration link mailed to {to}"))
            .token
    }

    /// Link 2 from the latest identity-verified mail to `to`.
    pub fn link2(&self, to: &str) -> VerificationLinkToken {
        let link = self.mailer.last_verification_link(to);
        link.unwrap_or_else(|| panic!("no identity-verified mail to {to}"))
            .token
    }

    /// The 暗証キー from the latest 暗証キー mail to `to`.
    pub fn otp(&self, to: &str) -> OtpCode {
        let code = self.mailer.last_otp(to);
        code.unwrap_or_else(|| panic!("no 暗証キー mailed to {to}"))
    }

    /// Mails sent to `to`, by kind.
    pub fn kinds_to(&self, to: &str) -> Vec<&'static str> {
        self.mailer.kinds_to(to)
    }

    /// R1–R5 for a roster member; returns the account ID.
    pub async fn register(
        &self,
        email: &str,
        card: &str,
        birth: &str,
        login_id: &str,
    ) -> kenpo_auth::ports::AccountId {
        self.portal.start_registration(email).await.unwrap();
        let handle = self
            .portal
            .open_registration_link(&self.link1(email))
            .await
            .unwrap();
        let shown = self
            .portal
            .verify_identity(&handle, claim(card, birth))
            .await
            .unwrap();
        let handle = self
            .portal
            .confirm_auth_key(&self.link2(email), &shown.auth_key)
            .await
            .unwrap();
        self.portal
            .complete_registration(&handle, credentials(login_id, PASSWORD))
            .await
            .unwrap()
            .account_id
    }

    /// Moves past the per-address mail interval.
    pub fn after_mail_interval(&self) {
        self.clock.advance(time::Duration::seconds(61));
    }
}

// ---- recovery and account-life helpers ----

/// A well-formed token text that no flow was ever issued for.
pub const UNKNOWN_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// L1 as a host does it with the typed password: a password `Password::new` refuses is
/// answered exactly like a failed login (SEC-22).
pub async fn host_start_login(
    portal: &Portal,
    login_id: &str,
    password: &str,
) -> Result<kenpo_auth::portal::OtpChallenge, kenpo_auth::Error> {
    match Password::new(password) {
        Ok(password) => portal.start_login(login_id, &password).await,
        Err(_) => Err(kenpo_auth::Rejection::LoginFailed.into()),
    }
}

impl Fixture {
    /// The link from the latest password-reset mail to `to`.
    /// パスワードを忘れた方 end to end: request → open → complete with the roster
    /// re-check; panics on any refusal.
    pub async fn reset_password(
        &self,
        login_id: &str,
        to: &str,
        card: &str,
        birth: &str,
        new: &str,
    ) {
        self.portal.request_password_reset(login_id).await.unwrap();
        let handle = self
            .portal
            .open_password_reset_link(&self.reset_link(to))
            .await
            .unwrap();
        self.portal
            .complete_password_reset(&handle, Some(claim(card, birth)), pw(new), pw(new))
            .await
            .unwrap();
    }

    pub fn reset_link(&self, to: &str) -> kenpo_auth::token::PasswordResetLinkToken {
        let link = self.mailer.last_reset_link(to);
        link.unwrap_or_else(|| panic!("no password-reset link mailed to {to}"))
            .token
    }

    /// The link from the latest address-confirmation mail to `to`.
    pub fn email_change_link(&self, to: &str) -> kenpo_auth::token::EmailChangeLinkToken {
        let link = self.mailer.last_email_change_link(to);
        link.unwrap_or_else(|| panic!("no e-mail-change link mailed to {to}"))
            .token
    }

    /// L1–L2 with the 暗証キー mailed to `email`.
    pub async fn login(
        &self,
        login_id: &str,
        password: &str,
        email: &str,
    ) -> kenpo_auth::portal::Authenticated {
        let challenge = self
            .portal
            .start_login(login_id, &pw(password))
            .await
            .unwrap();
        self.portal
            .verify_otp(&challenge.challenge, &self.otp(email))
            .await
            .unwrap()
    }

    /// The stored account with this ID.
    pub fn account(&self, id: &kenpo_auth::ports::AccountId) -> kenpo_auth::ports::Account {
        self.store
            .danger_accounts()
            .into_iter()
            .find(|a| a.id == *id)
            .expect("account stored")
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Wrong passwords until the account reaches the hard cap (SEC-24), waiting out each
    /// delay with the manual clock.
    pub async fn lock_by_wrong_passwords(&self, id: &kenpo_auth::ports::AccountId, login_id: &str) {
        let p = self.portal.policy().clone();
        loop {
            let failures = self.account(id).password_failures;
            if failures >= p.password_failure_cap {
                break;
            }
            self.clock
                .advance(p.password_delay(failures) + time::Duration::seconds(1));
            let _ = self
                .portal
                .start_login(login_id, &pw("まちがったパスワードです"))
                .await;
        }
    }
}

/// An answer that carries a mail receipt.
pub trait Receipted: std::fmt::Debug {
    fn receipt(&self) -> kenpo_auth::model::MailId;
}

impl Receipted for kenpo_auth::portal::RegistrationStarted {
    fn receipt(&self) -> kenpo_auth::model::MailId {
        self.receipt
    }
}

impl Receipted for kenpo_auth::portal::RecoveryRequested {
    fn receipt(&self) -> kenpo_auth::model::MailId {
        self.receipt
    }
}

/// What a requester can compare of an answer with a receipt: the answer without the
/// receipt (random, one per request), and what that receipt's status says (without its
/// time). Two answers an outsider must not tell apart give the same text.
pub async fn observed<T: Receipted>(
    portal: &Portal,
    answer: &Result<T, kenpo_auth::Error>,
) -> String {
    match answer {
        Err(e) => format!("Err({e:?})"),
        Ok(a) => {
            let receipt = a.receipt();
            let text = format!("{a:?}").replace(&format!("{receipt:?}"), "MailId(..)");
            let status = portal.mail_status(&receipt).await.expect("status");
            let status = format!("{status:?}");
            let kind = status
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned();
            format!("Ok({text}) mail: {kind}")
        }
    }
}
