//! A [`Mailer`] that keeps every mail in memory, for tests and demos.
//!
//! Journey tests read links and codes from the typed [`MailMessage`](crate::mail::MailMessage)
//! of the recorded mails, never by scraping text. The failure switch lets a test prove
//! that a mail which fails to send leaves a state the member can resend from.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::domain::EmailAddress;
use crate::lang::Lang;
use crate::mail::OutgoingMail;
use crate::ports::{MailError, Mailer};

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

    #[test]
    fn is_usable_as_a_shared_port() {
        let _: std::sync::Arc<dyn Mailer> = std::sync::Arc::new(RecordingMailer::new());
        assert_eq!(SimulatedMailFailure.code(), "mail.simulated_failure");
        assert!(SimulatedMailFailure.message(Lang::Ja).contains("メール"));
    }
}
