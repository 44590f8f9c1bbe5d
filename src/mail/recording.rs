//! A [`Mailer`] that keeps every mail in memory, for tests and demos.
//!
//! Journey tests read links and codes from the typed [`MailMessage`] of the recorded
//! mails, never by scraping text: the typed accessors
//! ([`last_registration_link`](RecordingMailer::last_registration_link),
//! [`last_otp`](RecordingMailer::last_otp), …) give the secret a member would copy from
//! the mail, already typed for the `Portal` step that takes it. The failure switch lets a
//! test prove that a mail which fails to send leaves a state the member can resend from;
//! [`FaultyMailer`](crate::testkit::FaultyMailer) wraps any mailer for finer faults.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use kenpo_auth::mail::RecordingMailer;
//! use kenpo_auth::store::MemoryStore;
//! use kenpo_auth::testkit::fixtures;
//!
//! let mailer = RecordingMailer::new();
//! let portal = fixtures::portal_builder()
//!     .store(MemoryStore::new())
//!     .shared_mailer(Arc::new(mailer.clone()))
//!     .directory(fixtures::sample_roster())
//!     .build()?;
//! portal.start_registration("taro.yamada@example.jp").await?;
//! let link = mailer
//!     .last_registration_link("Taro.Yamada@example.jp")
//!     .expect("link 1 was mailed");
//! assert!(link.url.starts_with("https://"));
//! portal.open_registration_link(&link.token).await?;
//! # Ok(())
//! # }
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::domain::EmailAddress;
use crate::lang::Lang;
use crate::mail::{MailLink, MailMessage, OutgoingMail};
use crate::ports::{MailError, Mailer};
use crate::token::{
    EmailChangeLinkToken, OtpCode, PasswordResetLinkToken, RegistrationLinkToken,
    VerificationLinkToken,
};

/// Records every mail it is asked to send. Clones share one record, so a test can keep a
/// clone while the portal owns another.
#[derive(Clone, Debug, Default)]
pub struct RecordingMailer {
    inner: Arc<Mutex<Record>>,
}

#[derive(Debug, Default)]
struct Record {
    sent: Vec<OutgoingMail>,
    fail_next: usize,
    failing: bool,
}

/// The latest mail to `$to` (see [`RecordingMailer::latest_to`]) whose message matches
/// `$pattern`, as `$value`.
macro_rules! latest {
    ($mailer:expr, $to:expr, $pattern:pat => $value:expr) => {
        $mailer.latest_to($to, |m| match m {
            $pattern => Some($value),
            _ => None,
        })
    };
}

impl RecordingMailer {
    /// An empty recorder that sends successfully.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        // A test that panicked while holding the lock leaves the record as it was; keep
        // reading it rather than failing every later assertion with a poison error.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every mail sent so far, oldest first.
    pub fn sent(&self) -> Vec<OutgoingMail> {
        self.record().sent.clone()
    }

    /// Every mail sent so far, oldest first, and forgets them: the next call sees only
    /// what was sent after it.
    pub fn take(&self) -> Vec<OutgoingMail> {
        std::mem::take(&mut self.record().sent)
    }

    /// The latest mail to `to`, compared by canonical address (so `Taro@Example.jp` and
    /// `taro@example.jp` are the same recipient).
    pub fn last_to(&self, to: &EmailAddress) -> Option<OutgoingMail> {
        self.record()
            .sent
            .iter()
            .rev()
            .find(|m| m.to.canonical() == to.canonical())
            .cloned()
    }

    /// How many mails were sent (failed attempts are not counted).
    pub fn count(&self) -> usize {
        self.record().sent.len()
    }

    /// The kinds ([`MailMessage::kind`]) of every mail sent to `to`, oldest first:
    /// `["registration_link", "identity_verified", …]`. `to` is compared by canonical
    /// address; text that is not an address was never mailed, so it gets an empty list.
    pub fn kinds_to(&self, to: &str) -> Vec<&'static str> {
        let Ok(to) = EmailAddress::parse(to) else {
            return Vec::new();
        };
        self.record()
            .sent
            .iter()
            .filter(|m| m.to.canonical() == to.canonical())
            .map(|m| m.message.kind())
            .collect()
    }

    /// The latest mail to `to` whose message `pick` accepts, newest first. `to` is typed
    /// text, compared by canonical address; text that is not an address finds nothing.
    fn latest_to<T>(&self, to: &str, pick: impl Fn(&MailMessage) -> Option<T>) -> Option<T> {
        let to = EmailAddress::parse(to).ok()?;
        self.record()
            .sent
            .iter()
            .rev()
            .filter(|m| m.to.canonical() == to.canonical())
            .find_map(|m| pick(&m.message))
    }

    /// Link 1 of 新規利用登録 (「利用登録手続きのご案内」, R1): the latest
    /// [`MailMessage::RegistrationLink`] sent to `to`, for
    /// [`Portal::open_registration_link`](crate::Portal::open_registration_link).
    ///
    /// Like every `last_*` accessor it looks for the latest mail *of its kind* to `to`
    /// (later mails of other kinds are skipped, mails forgotten by [`take`](Self::take)
    /// are not seen), compares addresses in canonical form, and answers `None` when no
    /// such mail was sent — so a test can also assert that a step mailed nothing.
    pub fn last_registration_link(&self, to: &str) -> Option<MailLink<RegistrationLinkToken>> {
        latest!(self, to, MailMessage::RegistrationLink(link) => link.clone())
    }

    /// Link 2 of 新規利用登録 (「本人確認完了のご案内」, R3): the latest
    /// [`MailMessage::IdentityVerified`] sent to `to`, for
    /// [`Portal::confirm_auth_key`](crate::Portal::confirm_auth_key) together with the
    /// 認証キー shown on screen (which is never mailed).
    pub fn last_verification_link(&self, to: &str) -> Option<MailLink<VerificationLinkToken>> {
        latest!(self, to, MailMessage::IdentityVerified(link) => link.clone())
    }

    /// The 暗証キー of the latest 「暗証キーのご案内」 ([`MailMessage::LoginOtp`], L1 and
    /// L4) sent to `to`, for [`Portal::verify_otp`](crate::Portal::verify_otp).
    pub fn last_otp(&self, to: &str) -> Option<OtpCode> {
        latest!(self, to, MailMessage::LoginOtp { code, .. } => code.clone())
    }

    /// The latest 「パスワード再設定のご案内」 link
    /// ([`MailMessage::PasswordResetLink`]) sent to `to`, for
    /// [`Portal::open_password_reset_link`](crate::Portal::open_password_reset_link).
    pub fn last_reset_link(&self, to: &str) -> Option<MailLink<PasswordResetLinkToken>> {
        latest!(self, to, MailMessage::PasswordResetLink(link) => link.clone())
    }

    /// The latest address-confirmation link ([`MailMessage::EmailChangeLink`]) sent to
    /// the *new* address `to`, for
    /// [`Portal::confirm_email_change`](crate::Portal::confirm_email_change).
    pub fn last_email_change_link(&self, to: &str) -> Option<MailLink<EmailChangeLinkToken>> {
        latest!(self, to, MailMessage::EmailChangeLink(link) => link.clone())
    }

    /// The login ID of the latest 「ログインIDのお知らせ」
    /// ([`MailMessage::LoginIdReminder`]) sent to `to`.
    pub fn last_login_id_reminder(&self, to: &str) -> Option<String> {
        latest!(self, to, MailMessage::LoginIdReminder { login_id } => login_id.clone())
    }

    /// Makes the next `n` sends fail with [`MailError::Transient`] (and record nothing).
    /// Replaces an earlier count.
    pub fn fail_next(&self, n: usize) {
        self.record().fail_next = n;
    }

    /// Makes every send fail with [`MailError::Transient`] until switched off.
    pub fn set_failing(&self, failing: bool) {
        self.record().failing = failing;
    }
}

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        let mut record = self.record();
        if record.failing {
            return Err(MailError::Transient(Box::new(SimulatedMailFailure)));
        }
        if record.fail_next > 0 {
            record.fail_next -= 1;
            return Err(MailError::Transient(Box::new(SimulatedMailFailure)));
        }
        record.sent.push(mail.clone());
        Ok(())
    }
}

/// The transport error a [`RecordingMailer`] reports when told to fail, so a test can
/// tell a simulated failure from a real one (downcast the [`MailError`]'s source).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("simulated mail transport failure (RecordingMailer)")]
pub struct SimulatedMailFailure;

impl SimulatedMailFailure {
    /// Stable identifier for logs.
    pub fn code(&self) -> &'static str {
        "mail.simulated_failure"
    }

    /// What a member would be told: the mail could not be sent, try again.
    pub fn message(&self, lang: Lang) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match lang {
            Lang::En => "The mail could not be sent. Please try again later.",
            _ => "メールを送信できませんでした。しばらくしてから再度お試しください。",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{MailMessage, RenderedMail};

    fn mail(to: &str, login_id: &str) -> OutgoingMail {
        OutgoingMail {
            to: EmailAddress::parse(to).unwrap(),
            lang: Lang::Ja,
            message: MailMessage::LoginIdReminder {
                login_id: login_id.to_owned(),
            },
            rendered: RenderedMail {
                subject: "ログインIDのお知らせ".to_owned(),
                body: String::new(),
            },
        }
    }

    #[tokio::test]
    async fn records_in_order_and_clones_share_the_record() {
        let mailer = RecordingMailer::new();
        let held_by_test = mailer.clone();
        mailer.send(&mail("taro@example.jp", "a")).await.unwrap();
        mailer.send(&mail("hanako@example.jp", "b")).await.unwrap();
        mailer.send(&mail("Taro@Example.jp", "c")).await.unwrap();
        assert_eq!(held_by_test.count(), 3);
        let to = EmailAddress::parse("TARO@example.jp").unwrap();
        let last = held_by_test.last_to(&to).unwrap();
        assert_eq!(
            last.message,
            MailMessage::LoginIdReminder {
                login_id: "c".to_owned()
            }
        );
        assert!(
            held_by_test
                .last_to(&EmailAddress::parse("jiro@example.jp").unwrap())
                .is_none()
        );
        assert_eq!(held_by_test.sent().len(), 3);
        assert_eq!(held_by_test.take().len(), 3);
        assert_eq!(held_by_test.count(), 0);
        assert!(held_by_test.take().is_empty());
    }

    /// DESIGN §2: "a mail that fails leaves a resendable state" — the switch makes sends
    /// fail transiently and records nothing, then recovers.
    #[tokio::test]
    async fn failure_switch_fails_transiently_then_recovers() {
        let mailer = RecordingMailer::new();
        mailer.fail_next(2);
        for _ in 0..2 {
            let err = mailer
                .send(&mail("taro@example.jp", "a"))
                .await
                .unwrap_err();
            let MailError::Transient(source) = err else {
                panic!("expected a transient failure")
            };
            assert!(source.downcast_ref::<SimulatedMailFailure>().is_some());
        }
        assert_eq!(mailer.count(), 0);
        mailer.send(&mail("taro@example.jp", "a")).await.unwrap();
        assert_eq!(mailer.count(), 1);

        mailer.set_failing(true);
        assert!(mailer.send(&mail("taro@example.jp", "b")).await.is_err());
        assert!(mailer.send(&mail("taro@example.jp", "b")).await.is_err());
        mailer.set_failing(false);
        mailer.send(&mail("taro@example.jp", "b")).await.unwrap();
        assert_eq!(mailer.count(), 2);
    }

    /// Every typed accessor finds the latest mail of its kind to the address (canonical
    /// form), skipping later mails of other kinds, and nothing for other addresses.
    #[tokio::test]
    async fn typed_accessors_read_the_latest_secret_of_their_kind() {
        use crate::mail::MailLink;
        use time::OffsetDateTime;

        let rng = &mut rand::rng();
        let at = OffsetDateTime::UNIX_EPOCH;
        fn link<T>(token: T) -> MailLink<T> {
            MailLink {
                url: "https://portal.example.jp/x?t=…".to_owned(),
                token,
                expires_at: OffsetDateTime::UNIX_EPOCH,
            }
        }
        let first = RegistrationLinkToken::generate(rng);
        let second = RegistrationLinkToken::generate(rng);
        let verify = VerificationLinkToken::generate(rng);
        let reset = PasswordResetLinkToken::generate(rng);
        let change = EmailChangeLinkToken::generate(rng);
        let code: OtpCode = "123456".parse().unwrap();
        let mailer = RecordingMailer::new();
        let to = |to: &str, message| OutgoingMail {
            message,
            ..mail(to, "")
        };
        let taro = |message| to("taro@example.jp", message);
        for m in [
            taro(MailMessage::RegistrationLink(link(first))),
            taro(MailMessage::RegistrationLink(link(second.clone()))),
            taro(MailMessage::IdentityVerified(link(verify.clone()))),
            taro(MailMessage::PasswordResetLink(link(reset.clone()))),
            to(
                "new@example.jp",
                MailMessage::EmailChangeLink(link(change.clone())),
            ),
            taro(MailMessage::LoginOtp {
                code: code.clone(),
                expires_at: at,
            }),
            mail("taro@example.jp", "taro-2026"),
        ] {
            mailer.send(&m).await.unwrap();
        }
        let taro = "Taro@Example.JP";
        assert_eq!(mailer.last_registration_link(taro).unwrap().token, second);
        assert_eq!(mailer.last_verification_link(taro).unwrap().token, verify);
        assert_eq!(mailer.last_reset_link(taro).unwrap().token, reset);
        assert_eq!(mailer.last_otp(taro).unwrap(), code);
        assert_eq!(mailer.last_login_id_reminder(taro).unwrap(), "taro-2026");
        assert_eq!(
            mailer
                .last_email_change_link("new@example.jp")
                .unwrap()
                .token,
            change
        );
        assert!(mailer.last_email_change_link(taro).is_none());
        assert!(mailer.last_otp("hanako@example.jp").is_none());
        assert!(mailer.last_otp("not an address").is_none());
        assert_eq!(
            mailer.kinds_to(taro),
            [
                "registration_link",
                "registration_link",
                "identity_verified",
                "password_reset_link",
                "login_otp",
                "login_id_reminder"
            ]
        );
        mailer.take();
        assert!(mailer.last_otp(taro).is_none(), "forgotten by take");
    }

    #[test]
    fn is_usable_as_a_shared_port() {
        let _: std::sync::Arc<dyn Mailer> = std::sync::Arc::new(RecordingMailer::new());
        assert_eq!(SimulatedMailFailure.code(), "mail.simulated_failure");
        assert!(SimulatedMailFailure.message(Lang::Ja).contains("メール"));
    }
}
