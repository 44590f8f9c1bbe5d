//! The example's mailer: every mail goes to the outbox folder as an `.eml` file (or to
//! the SMTP server of `SMTP_URL`), and — in development only — its link or code is also
//! printed on the console, so a developer can click through without opening the files.
//!
//! SEC-39 forbids tokens in logs. The echo is therefore a switch of this example
//! (`--dev-log-secrets`, on by default only for a loopback base URL), announced by a
//! DEV-ONLY banner at start-up, and it prints to stderr directly rather than through
//! `tracing`, so no log pipeline ever collects it. A production host uses an SMTP mailer
//! and never echoes.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use kenpo_auth::mail::{MailMessage, OutgoingMail};
use kenpo_auth::ports::{MailError, Mailer};

/// One mail as the development mailbox shows it: decoded, whole.
#[derive(Clone, Debug)]
pub(crate) struct DevMail {
    /// When it was sent (Japan time, for the page).
    pub at: String,
    /// The recipient, in full (development only).
    pub to: String,
    /// The subject.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// DEVELOPMENT ONLY: the last mails sent, and the demo's 事前登録 letter, for the
/// `/dev/mailbox` page. Kept in memory; only built when the dev flag is on and the
/// portal listens on loopback.
#[derive(Debug, Default)]
pub(crate) struct DevMailbox {
    mails: Mutex<VecDeque<DevMail>>,
    letters: Mutex<Vec<String>>,
}

/// Mails kept for the page.
const KEPT: usize = 200;

impl DevMailbox {
    /// Newest first.
    pub(crate) fn mails(&self) -> Vec<DevMail> {
        let mails = self.mails.lock().unwrap_or_else(PoisonError::into_inner);
        mails.iter().rev().cloned().collect()
    }

    /// The letters (事前登録のお知らせ) issued since the start.
    pub(crate) fn letters(&self) -> Vec<String> {
        self.letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps a letter the insurer would have posted.
    pub(crate) fn post_letter(&self, text: String) {
        self.letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(text);
    }

    fn keep(&self, mail: DevMail) {
        let mut mails = self.mails.lock().unwrap_or_else(PoisonError::into_inner);
        if mails.len() >= KEPT {
            mails.pop_front();
        }
        mails.push_back(mail);
    }
}

/// The real delivery (outbox or SMTP) plus the optional DEV-ONLY console echo and
/// development mailbox.
pub(crate) struct DevConsoleMailer {
    delivery: Arc<dyn Mailer>,
    echo_secrets: bool,
    mailbox: Option<Arc<DevMailbox>>,
    clock: Arc<dyn kenpo_auth::ports::Clock>,
}

impl DevConsoleMailer {
    /// Sends through `delivery`; echoes links and codes when `echo_secrets` is set, and
    /// keeps each mail in `mailbox` when there is one.
    pub(crate) fn new(
        delivery: Arc<dyn Mailer>,
        echo_secrets: bool,
        mailbox: Option<Arc<DevMailbox>>,
        clock: Arc<dyn kenpo_auth::ports::Clock>,
    ) -> Self {
        DevConsoleMailer {
            delivery,
            echo_secrets,
            mailbox,
            clock,
        }
    }
}

/// The console line for a mail, when it carries something the member must use.
pub(crate) fn dev_echo_line(mail: &OutgoingMail) -> Option<String> {
    let to = mail.to.masked();
    let subject = &mail.rendered.subject;
    match &mail.message {
        MailMessage::RegistrationLink(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::IdentityVerified(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::PasswordResetLink(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::EmailChangeLink(link) => Some(format!("{subject} → {to}: {}", link.url)),
        MailMessage::LoginOtp { code, .. } => Some(format!(
            "{subject} → {to}: 暗証キー {}",
            code.expose_secret()
        )),
        _ => None,
    }
}

#[async_trait]
impl Mailer for DevConsoleMailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError> {
        self.delivery.send(mail).await?;
        if let Some(mailbox) = &self.mailbox {
            mailbox.keep(DevMail {
                at: super::pages::until(self.clock.now()),
                to: mail.to.for_sending().to_owned(),
                subject: mail.rendered.subject.clone(),
                body: mail.rendered.body.clone(),
            });
        }
        if self.echo_secrets
            && let Some(line) = dev_echo_line(mail)
        {
            eprintln!("[DEV-ONLY mail] {line}");
        }
        Ok(())
    }
}
